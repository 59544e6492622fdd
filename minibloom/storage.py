"""How weight matrices are held in memory: float32, or 2-byte float16 / bfloat16 with float32 compute.

Decoding one token reads every weight once, so its speed is set by how many bytes the weights take.
Keeping the big matrices (embeddings, QKV, dense, MLP, LM head) in 2 bytes halves that, and halves
the RAM. All arithmetic stays float32: a backend widens each weight to float32 as it reads it.

NumPy has float16 but no bfloat16. A bfloat16 matrix is held as its raw 16-bit patterns under the
structured dtype `BF16`, so that nothing mistakes them for integers; its float32 value is those 16
bits as the *top* half of a float32 word (bfloat16 is float32 with the low 16 mantissa bits cut).
Vectors (biases, layer-norm parameters) always stay float32: they are tiny.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

BF16 = np.dtype([("bfloat16", "<u2")])
STORAGE_DTYPES = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16), "bfloat16": BF16}


def check_storage(storage: str) -> np.dtype:
    if storage not in STORAGE_DTYPES:
        raise InputError(f"storage must be one of {sorted(STORAGE_DTYPES)}, got {storage!r}")
    return STORAGE_DTYPES[storage]


def to_float32(array: np.ndarray) -> np.ndarray:
    """Any stored weight as float32 (no copy when it already is)."""
    if array.dtype == BF16:
        return (array.view(np.uint16).astype(np.uint32) << 16).view(np.float32)  # bf16 = float32's top half
    return np.asarray(array, dtype=np.float32)


def bfloat16_bits(array: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), rounding to nearest, ties to even, like torch's
    `.to(torch.bfloat16)`: add 0x7FFF plus the lowest kept bit, then drop the low 16 bits. NaN stays
    NaN (as the quiet NaN 0x7FC0)."""
    x = np.ascontiguousarray(array, dtype=np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    rounded[np.isnan(x)] = 0x7FC0
    return rounded


def from_float32(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float32 -> the storage dtype (bfloat16 rounded as torch rounds it)."""
    if dtype == BF16:
        return bfloat16_bits(array).view(BF16)
    return np.asarray(array, dtype=np.float32).astype(dtype)


def store(name: str, array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Hold tensor `name` in `dtype` if it is a matrix, else in float32. Already-right arrays
    (a memory-mapped checkpoint, say) are kept as they are, not copied."""
    target = dtype if array.ndim == 2 else np.dtype(np.float32)
    if array.dtype == target:
        return array
    return from_float32(to_float32(array), target) if target != np.float32 else to_float32(array)
