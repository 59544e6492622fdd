"""How weight matrices are held in memory: float32, or 2-byte float16 / bfloat16 with float32 compute.

Decoding one token reads every weight once, so its speed is set by how many bytes the weights take.
Keeping the big matrices (embeddings, QKV, dense, MLP, LM head) in 2 bytes halves that, and halves
the RAM. All arithmetic stays float32: a backend widens each weight to float32 as it reads it.

NumPy has float16 but no bfloat16. A bfloat16 matrix is held as its raw 16-bit patterns under the
structured dtype `BF16`, so that nothing mistakes them for integers; its float32 value is those 16
bits as the *top* half of a float32 word (bfloat16 is float32 with the low 16 mantissa bits cut).
Vectors (biases, layer-norm parameters) always stay float32: they are tiny.

`storage="auto"` (the default) keeps what the checkpoint holds: a bfloat16 checkpoint stays
2 bytes and memory-mapped. Converting (a float32 checkpoint to 2 bytes, say) goes tensor by tensor
and, within a tensor, block by block (`convert`), so the peak memory is the output plus one input
tensor, not the whole float32 checkpoint plus temporaries.
"""

from __future__ import annotations

import contextlib
import mmap
import sys

import numpy as np

from .errors import InputError

BF16 = np.dtype([("bfloat16", "<u2")])
STORAGE_DTYPES = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16), "bfloat16": BF16,
                  "int8": np.dtype(np.int8)}
STORAGES = ("auto", *STORAGE_DTYPES)
# Linux >= 5.4 (asm-generic/mman-common.h); Python 3.11 does not export the name
_MADV_PAGEOUT = getattr(mmap, "MADV_PAGEOUT", 21 if sys.platform.startswith("linux") else None)
CONVERT_BLOCK = 1 << 16  # elements converted at a time: ~2 MB of temporaries, whatever the tensor


def check_storage(storage: str) -> None:
    if not isinstance(storage, str) or storage not in STORAGES:
        raise InputError(f"storage must be one of {list(STORAGES)}, got {storage!r}")


def storage_of(array: np.ndarray) -> str:
    """The storage name of a weight matrix's dtype ("float32" for anything else)."""
    return next((name for name, dtype in STORAGE_DTYPES.items() if array.dtype == dtype), "float32")


def gather_rows(table: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """table[ids] as float32 for any stored table (an int8 row is widened with its own scale)."""
    if isinstance(table, Int8Matrix):
        return table.codes()[ids].astype(np.float32) * table.row_scales()[ids][..., None]
    return to_float32(table[ids])


def resolve_storage(storage: str, params: dict[str, np.ndarray]) -> str:
    """"auto" -> the storage the word embeddings (the largest matrix) come in; others unchanged."""
    check_storage(storage)
    if storage != "auto":
        return storage
    table = params.get("word_embeddings.weight")
    return storage_of(table) if table is not None else "float32"


class Int8Matrix(np.ndarray):
    """An int8 weight matrix [N, K]: codes w8 = round(127 w / absmax) with one absmax per output row.

    LLM.int8()'s row-wise absmax quantisation (Dettmers et al., 2022, shown on BLOOM-176B): each
    row's largest |w| maps to 127, so a row's error is at most absmax / 254 per weight, and the
    row's scale is applied once to the dot product, not to every weight: y[r] = (x . w8[r]) * absmax[r] / 127.
    The array holds the codes; `absmax` [N] float32 rides along (the name bitsandbytes saves it
    under, SCB). A view of another shape (a slice, a gather) has no absmax and cannot be widened
    by mistake: `to_float32` refuses it.
    """

    absmax: np.ndarray | None

    def __new__(cls, codes: np.ndarray, absmax: np.ndarray):
        obj = np.asarray(codes, dtype=np.int8).view(cls)
        obj.absmax = np.asarray(absmax, dtype=np.float32)
        if obj.ndim != 2 or obj.absmax.shape != obj.shape[:1]:
            raise InputError(f"int8 matrix: codes {obj.shape} need one absmax per row, got {obj.absmax.shape}")
        return obj

    def __array_finalize__(self, obj) -> None:
        same = obj is not None and getattr(obj, "shape", None) == self.shape
        self.absmax = getattr(obj, "absmax", None) if same else None

    def row_scales(self) -> np.ndarray:
        """absmax / 127 per row [N], float32: what a dot product with the codes is multiplied by."""
        if self.absmax is None:
            raise InputError("a slice of an int8 matrix has no row scales; index the widened matrix instead")
        return self.absmax / np.float32(127.0)

    def codes(self) -> np.ndarray:
        return self.view(np.ndarray)


def as_array(value) -> np.ndarray:
    """A weight as a plain ndarray (a memory map stays mapped, but as an ndarray view), except an
    Int8Matrix, whose row scales must stay with it."""
    return value if isinstance(value, Int8Matrix) else np.asarray(value)


def quantize_int8(array: np.ndarray) -> Int8Matrix:
    """float32 [N, K] -> Int8Matrix: per-row absmax, codes rounded to nearest (ties to even)."""
    w = np.asarray(array, dtype=np.float32)
    absmax = np.abs(w).max(axis=1)  # [N]
    scale = np.where(absmax > 0, absmax, np.float32(1.0)) / np.float32(127.0)
    return Int8Matrix(np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8), absmax)


def to_float32(array: np.ndarray) -> np.ndarray:
    """Any stored weight as float32 (no copy when it already is)."""
    if isinstance(array, Int8Matrix):
        return array.codes().astype(np.float32) * array.row_scales()[:, None]
    if array.dtype == np.int8:
        raise InputError("int8 codes without their row scales cannot be widened (hold them as an Int8Matrix)")
    if array.dtype == BF16:
        return (array.view(np.uint16).astype(np.uint32) << 16).view(np.float32)  # bf16 = float32's top half
    return np.asarray(array, dtype=np.float32)


def bfloat16_bits(array: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), rounding to nearest, ties to even, like torch's
    `.to(torch.bfloat16)`: add 0x7FFF plus the lowest kept bit, then drop the low 16 bits. NaN stays
    NaN (as the quiet NaN 0x7FC0)."""
    x = np.ascontiguousarray(array, dtype=np.float32)
    bits = x.view(np.uint32)
    # uint32 arithmetic: only NaN patterns (above 0x7F800000 after the sign) can wrap, and they are replaced
    rounded = ((bits + (np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))) >> np.uint32(16)).astype(np.uint16)
    rounded[np.isnan(x)] = 0x7FC0
    return rounded


def from_float32(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float32 -> the storage dtype (bfloat16 rounded as torch rounds it)."""
    if dtype == BF16:
        return bfloat16_bits(array).view(BF16)
    if dtype == np.int8:
        return quantize_int8(array)
    return np.asarray(array, dtype=np.float32).astype(dtype)


def store(name: str, array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Hold tensor `name` in `dtype` if it is a matrix, else in float32. Already-right arrays
    (a memory-mapped checkpoint, say) are kept as they are, not copied."""
    target = dtype if array.ndim == 2 else np.dtype(np.float32)
    if array.dtype == target and (target != np.int8 or isinstance(array, Int8Matrix)):
        return array
    return convert(array, target)


def convert(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`array` in storage `dtype`, converted CONVERT_BLOCK elements at a time into the output.

    subtle: memory. Converting a whole tensor at once makes float32 and integer temporaries several
    times its size (the 1 GB LM head of bloom-560m alone peaked at ~9 GB), and the pages of a
    memory-mapped source stay resident after they were read. So the output is allocated once and
    filled block by block, and a memory-mapped source's pages are released when it is done
    (`release_pages`): the peak is the output plus one source tensor.
    """
    if dtype == np.int8:
        return _convert_int8(array)
    if isinstance(array, Int8Matrix):
        array = to_float32(array)  # rare (int8 to another storage): widened whole, with its row scales
    out = np.empty(array.shape, dtype)
    flat_in, flat_out = array.reshape(-1), out.reshape(-1)
    for lo in range(0, flat_in.size, CONVERT_BLOCK):
        block = to_float32(np.asarray(flat_in[lo:lo + CONVERT_BLOCK]))
        flat_out[lo:lo + CONVERT_BLOCK] = block if dtype == np.float32 else from_float32(block, dtype)
    release_pages(array)
    return out


def _convert_int8(array: np.ndarray) -> Int8Matrix:
    """`convert` to int8: whole rows at a time (each row has its own scale)."""
    codes, absmax = np.empty(array.shape, np.int8), np.empty(array.shape[0], np.float32)
    step = max(1, CONVERT_BLOCK // max(1, array.shape[1]))
    for lo in range(0, array.shape[0], step):
        block = quantize_int8(to_float32(np.asanyarray(array[lo:lo + step])))
        codes[lo:lo + step], absmax[lo:lo + step] = block.codes(), block.absmax
    release_pages(array)
    return Int8Matrix(codes, absmax)


def release_pages(array: np.ndarray) -> None:
    """Let the kernel reclaim the resident pages of a memory-mapped array just converted (they are
    re-read from the file if touched again); nothing for ordinary arrays.

    subtle: checkpoints map copy-on-write (mode "c", so weights can be trained in place), and the
    source may be another model's parameters. MADV_DONTNEED would drop a page changed in place and
    silently revert it to the file's bytes, so on such a map only MADV_PAGEOUT is used: it reclaims
    clean pages and keeps (or swaps out) changed ones. Read-only maps (mode "r") cannot hold a
    change, so DONTNEED is safe there. Where the kernel has neither, the pages simply stay."""
    base = array
    while base is not None and not isinstance(base, np.memmap):
        base = base.base
    handle = getattr(base, "_mmap", None)
    if handle is None or not hasattr(handle, "madvise"):
        return
    advice = getattr(mmap, "MADV_DONTNEED", None) if base.mode == "r" else _MADV_PAGEOUT if base.mode == "c" else None
    if advice is not None:
        with contextlib.suppress(OSError):  # EINVAL on kernels before 5.4: keep the pages
            handle.madvise(advice)
