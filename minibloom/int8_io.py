"""int8 checkpoints: minibloom's safetensors layout for `storage="int8"`, saved and reloaded bit-exactly.

One file, `model.safetensors` (never sharded), with header metadata
`{"format": "pt", "minibloom_storage": "int8"}`. For every weight matrix `<module>.weight` [N, K]:

    <module>.weight   I8  [N, K]   codes w8 = round(127 w / absmax), in [-127, 127]
    <module>.SCB      F32 [N]      absmax of each output row (bitsandbytes' name for it)

so w ~= w8 * SCB[:, None] / 127. Vectors (biases, layer norms) are F32 under their usual names.
Names carry the `transformer.` prefix exactly as the float checkpoints of the same class do.
transformers does not load this layout (its bitsandbytes loader wants its own config); minibloom
reads it with any `storage`, and with `storage="auto"` keeps the int8 codes memory-mapped.
"""

from __future__ import annotations

import os

import numpy as np
import safetensors.numpy

from .atomic import Transaction
from .errors import CheckpointError
from .safetensors_io import map_tensor, read_header
from .storage import Int8Matrix, quantize_int8, to_float32
from .weights import SAFE_WEIGHTS_INDEX_NAME as INDEX_NAME
from .weights import SAFE_WEIGHTS_NAME as WEIGHTS_NAME
from .weights import SHARD_NAME

METADATA = {"format": "pt", "minibloom_storage": "int8"}


def scale_name(weight_name: str) -> str:
    """`h.0.mlp.dense_h_to_4h.weight` -> `h.0.mlp.dense_h_to_4h.SCB`."""
    return weight_name[:-len("weight")] + "SCB"


def save_int8(state: dict[str, np.ndarray], txn: Transaction) -> None:
    """Stage `state` (checkpoint names -> arrays; matrices quantised here unless already int8) in
    the transaction `txn` (`atomic.transaction`), with the other layouts' weight files removed."""
    tensors: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if value.ndim == 2:
            matrix = value if isinstance(value, Int8Matrix) else quantize_int8(to_float32(value))
            tensors[name] = np.ascontiguousarray(matrix.codes())
            tensors[scale_name(name)] = np.ascontiguousarray(matrix.absmax, np.float32)
        else:
            tensors[name] = np.ascontiguousarray(to_float32(value))
    txn.write_bytes(WEIGHTS_NAME, safetensors.numpy.save(tensors, metadata=METADATA))
    for fname in os.listdir(txn.directory):  # a sharded float checkpoint was here: the one file replaces it
        if fname == INDEX_NAME or SHARD_NAME.match(fname):
            txn.remove(fname)


def is_int8_checkpoint(directory: str | os.PathLike) -> bool:
    path = os.path.join(directory, WEIGHTS_NAME)
    return os.path.isfile(path) and read_header(path)[1].get("minibloom_storage") == "int8"


def load_int8(directory: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of an int8 checkpoint, memory-mapped: matrices as `Int8Matrix`."""
    path = os.path.join(directory, WEIGHTS_NAME)
    infos, _ = read_header(path)
    state = {}
    for name, info in infos.items():
        if name.endswith(".SCB"):
            continue
        if info.dtype != "I8":
            state[name] = map_tensor(path, info)
            continue
        scale = scale_name(name)
        if scale not in infos or infos[scale].dtype != "F32" or infos[scale].shape != info.shape[:1] or len(info.shape) != 2:
            raise CheckpointError(f"{path}: int8 tensor {name!r} needs {scale!r}, float32 of shape {info.shape[:1]}")
        codes = np.memmap(path, dtype=np.int8, mode="r", offset=info.begin, shape=tuple(info.shape))
        state[name] = Int8Matrix(codes, map_tensor(path, infos[scale]))
    return state
