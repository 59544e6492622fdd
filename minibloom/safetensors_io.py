"""The .safetensors file format, read and written with NumPy alone.

A .safetensors file is:

    [8 bytes]  N, the header length, unsigned little-endian
    [N bytes]  a JSON object: {name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
                               "__metadata__": {str: str}}   (padded with spaces)
    [rest]     the tensor bytes; offsets are relative to the start of this region, little-endian, C order

Why not the `safetensors` package: NumPy has no bfloat16, so `safetensors.numpy` cannot read
bloom-176b's tensors; and a loader that checks every header field itself can say exactly which
tensor of which file is broken. (The test suite uses the `safetensors` package as an oracle.)

bfloat16 is the top half of a float32: decode it as `uint16 -> uint32 << 16 -> float32`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

from .atomic import atomic_open
from .errors import SafetensorsFormatError
from .safe_read import loads, open_regular

# safetensors dtype code -> NumPy dtype of the stored bytes (bf16 is read as raw uint16)
STORAGE_DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
                  "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
                  "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
                  "U16": np.dtype("<u2"), "U32": np.dtype("<u4"), "U64": np.dtype("<u8")}
FLOAT_CODES = ("F64", "F32", "F16", "BF16")
DTYPE_CODES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}
# The safetensors package refuses longer headers. The largest real one: all 845 tensors of BLOOM-176B in
# one file, a header of 112 KB (the released checkpoint splits them over 72 shards, a few KB each).
MAX_HEADER_BYTES = 100_000_000


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives in a file: dtype code, shape, and absolute byte range."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # absolute offset in the file
    end: int


def read_header(path: str | os.PathLike) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Parse and validate the header of a .safetensors file without reading any tensor bytes.

    Returns ({name: TensorInfo}, metadata). Every lie a header can tell (length past the end of
    the file, offsets out of bounds or overlapping, byte counts that disagree with the shape,
    unknown dtypes) raises `SafetensorsFormatError` naming the file and the tensor.
    """
    path = os.fspath(path)
    try:
        with open_regular(path, SafetensorsFormatError) as f:  # never a FIFO or /dev/zero
            size = os.fstat(f.fileno()).st_size
            prefix = f.read(8)
            if len(prefix) < 8:
                raise SafetensorsFormatError(f"{path}: file is {size} bytes, too short for a safetensors header")
            n = int.from_bytes(prefix, "little")
            if n > min(MAX_HEADER_BYTES, size - 8):
                raise SafetensorsFormatError(f"{path}: header length {n} exceeds the file size ({size} bytes)")
            raw = f.read(n)
    except OSError as e:
        raise SafetensorsFormatError(f"cannot read {path}: {e}") from None
    header = loads(raw, f"{path}: header", SafetensorsFormatError, object_pairs_hook=_keep_overwritten)
    if not isinstance(header, dict):
        raise SafetensorsFormatError(f"{path}: header must be a JSON object")
    _check_repeats(path, header)
    metadata = header.pop("__metadata__", None)  # optional (serde's Option): null is absent, [] or 0 is refused
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsFormatError(f"{path}: '__metadata__' must be an object of strings, got {metadata!r:.100}")
    data_start = 8 + n
    infos = {name: _tensor_info(path, name, entry, data_start, size) for name, entry in header.items()}
    _check_contiguous(path, infos, data_start, size)
    return infos, metadata


class _JSONObject(dict):
    """A JSON object that remembers the (key, value) pairs a repeated key overwrote."""

    overwritten: list


def _keep_overwritten(pairs: list[tuple[str, object]]) -> _JSONObject:
    """Repeated keys, as the `safetensors` package (serde) treats them: a tensor named twice keeps
    its last entry, but the first must still be well-typed (and its bytes become a gap, which
    `_check_contiguous` refuses); a repeated `__metadata__`, dtype, shape or data_offsets is refused."""
    obj = _JSONObject(pairs)
    last = {key: i for i, (key, _) in enumerate(pairs)}
    obj.overwritten = [(key, value) for i, (key, value) in enumerate(pairs) if last[key] != i]
    return obj


def _check_repeats(path: str, header: _JSONObject) -> None:
    for name, entry in header.overwritten:
        if name == "__metadata__":
            raise SafetensorsFormatError(f"{path}: '__metadata__' appears twice in the header")
        _entry_fields(f"{path}: tensor {name!r} (its first, overwritten entry)", entry)
    meta = header.get("__metadata__")
    if isinstance(meta, _JSONObject) and not all(isinstance(v, str) for _, v in meta.overwritten):
        raise SafetensorsFormatError(f"{path}: '__metadata__' values must be strings")


U64 = 2**64 - 1  # the reference reads shapes and offsets as u64 and refuses any overflow
NUMPY_MAX_BYTES = 2**63 - 1  # NumPy refuses a shape whose nonzero dims times the itemsize pass this
NUMPY_MAX_DIMS = 64


def _is_u64(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= U64


def _entry_fields(where: str, entry: object) -> tuple[str, list[int], list[int]]:
    """The three fields of a header entry, type-checked: dtype code, shape, [begin, end]."""
    if not isinstance(entry, dict):
        raise SafetensorsFormatError(f"{where}: header entry must be an object")
    repeated = {key for key, _ in getattr(entry, "overwritten", ())} & {"dtype", "shape", "data_offsets"}
    if repeated:
        raise SafetensorsFormatError(f"{where}: field {sorted(repeated)[0]!r} appears twice")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in STORAGE_DTYPES:
        raise SafetensorsFormatError(f"{where}: unsupported dtype {dtype!r} (minibloom reads {', '.join(STORAGE_DTYPES)})")
    if not isinstance(shape, list) or not all(_is_u64(d) for d in shape):
        raise SafetensorsFormatError(f"{where}: shape must be a list of non-negative integers, got {shape!r:.200}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_u64(o) for o in offsets):
        raise SafetensorsFormatError(f"{where}: data_offsets must be [begin, end], got {offsets!r:.200}")
    return dtype, shape, offsets


def _tensor_info(path: str, name: str, entry: object, data_start: int, size: int) -> TensorInfo:
    """Validate one header entry and turn its relative offsets into absolute ones."""
    where = f"{path}: tensor {name!r}"
    dtype, shape, offsets = _entry_fields(where, entry)
    if len(shape) > NUMPY_MAX_DIMS:
        raise SafetensorsFormatError(f"{where}: {len(shape)} dimensions, more than the {NUMPY_MAX_DIMS} NumPy supports")
    itemsize = STORAGE_DTYPES[dtype].itemsize
    count = 1
    for d in shape:  # the reference's checked product, left to right: an overflow is an error even before a 0
        count *= d
        if count > U64:
            raise SafetensorsFormatError(f"{where}: shape {shape} overflows 64 bits")
    if count * itemsize > U64:
        raise SafetensorsFormatError(f"{where}: shape {shape} of {dtype} overflows 64 bits of bytes")
    decoded = 4 if dtype == "BF16" else itemsize  # bfloat16 is decoded to float32
    if math.prod(d for d in shape if d) * decoded > NUMPY_MAX_BYTES:
        raise SafetensorsFormatError(f"{where}: shape {shape} is too large for NumPy to build, even empty")
    begin, end = offsets
    if not begin <= end or data_start + end > size:
        raise SafetensorsFormatError(f"{where}: data_offsets {offsets} lie outside the data region "
                                     f"({size - data_start} bytes)")
    if end - begin != count * itemsize:
        raise SafetensorsFormatError(f"{where}: {end - begin} bytes stored but shape {shape} of {dtype} "
                                     f"needs {count * itemsize}")
    return TensorInfo(name, dtype, tuple(shape), data_start + begin, data_start + end)


def _check_contiguous(path: str, infos: dict[str, TensorInfo], data_start: int, size: int) -> None:
    """The tensors, in offset order, tile the data region exactly: no overlap, no gap, nothing after
    (the `safetensors` package's rule; a gap is where a hidden or duplicated tensor would sit)."""
    position = data_start  # absolute offsets
    for t in sorted(infos.values(), key=lambda t: (t.begin, t.end)):
        if t.begin != position:
            what = "overlaps the tensor before it" if t.begin < position else f"starts after a gap of " \
                f"{t.begin - position} bytes"
            raise SafetensorsFormatError(f"{path}: tensor {t.name!r} {what} (data_offsets must tile the data region)")
        position = t.end
    if size != position:
        raise SafetensorsFormatError(f"{path}: {size - position} bytes after the last tensor "
                                     "(the data region must end where the last tensor does)")


def read_tensor(path: str | os.PathLike, info: TensorInfo, dtype: np.dtype | None = None) -> np.ndarray:
    """Read one tensor's bytes (memory-mapped) and decode them to `dtype`.

    dtype None keeps the stored type, except bfloat16, which NumPy lacks: it becomes float32.
    """
    storage = STORAGE_DTYPES[info.dtype]
    if dtype is None:
        dtype = np.float32 if info.dtype == "BF16" else storage.newbyteorder("=")
    count = (info.end - info.begin) // storage.itemsize
    if count == 0:
        try:
            return np.zeros(info.shape, dtype=dtype)
        except ValueError:  # a zero-size shape NumPy cannot build in this (wider) dtype
            raise SafetensorsFormatError(f"{path}: tensor {info.name!r}: NumPy cannot build shape {info.shape} "
                                         f"as {np.dtype(dtype)}") from None
    raw = np.memmap(path, dtype=storage, mode="c", offset=info.begin, shape=(count,))
    if info.dtype == "BF16":
        values = (raw.astype(np.uint32) << 16).view(np.float32)  # bf16 is the top half of a float32
    else:
        values = raw
    return np.array(values, dtype=dtype).reshape(info.shape)


def map_tensor(path: str | os.PathLike, info: TensorInfo) -> np.ndarray:
    """A float tensor as a copy-on-write memory map, no copy: F32 as float32, F16 as float16, BF16 as
    raw 16-bit patterns under `storage.BF16`; pages are read from disk only when first touched, so
    loading costs no time and RAM holds only what is used. Other dtypes are decoded to float32.
    Copy-on-write (mode "c"): the weights can be changed in place (training, an edit), each changed
    page becomes private memory, and the file on disk never changes."""
    from .storage import BF16

    if info.dtype not in ("F32", "F16", "BF16") or info.end == info.begin:
        return read_tensor(path, info, np.float32)
    storage = STORAGE_DTYPES[info.dtype]
    raw = np.memmap(path, dtype=storage, mode="c", offset=info.begin, shape=((info.end - info.begin) // storage.itemsize,))
    return (raw.view(BF16) if info.dtype == "BF16" else raw).reshape(info.shape)


def load_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every tensor of a .safetensors file, in its stored dtype (bfloat16 as float32)."""
    infos, _ = read_header(path)
    return {name: read_tensor(path, info) for name, info in infos.items()}


def encode(array: np.ndarray, dtype: str) -> bytes:
    """float array -> little-endian bytes of `dtype` ('float32', 'float16' or 'bfloat16';
    bfloat16 rounds to nearest even, see `storage.bfloat16_bits`)."""
    from .storage import bfloat16_bits

    x = np.ascontiguousarray(array, dtype=np.float32)
    if dtype == "float32":
        return x.astype("<f4").tobytes()
    if dtype == "float16":
        return x.astype("<f2").tobytes()
    return bfloat16_bits(x).astype("<u2").tobytes()


def save_file(tensors: dict[str, np.ndarray], path: str | os.PathLike, dtype: str = "float32",
              metadata: dict[str, str] | None = None) -> None:
    """Write `tensors` to a .safetensors file atomically, floats stored as `dtype`; integer
    tensors are stored as int64 (I64)."""
    if dtype not in DTYPE_CODES:
        raise ValueError(f"dtype must be one of {sorted(DTYPE_CODES)}, got {dtype!r}")
    header: dict[str, object] = {"__metadata__": dict(metadata or {"format": "pt"})}
    blobs, offset = [], 0
    for name in sorted(tensors):
        integer = np.asarray(tensors[name]).dtype.kind in "iu"
        blob = np.ascontiguousarray(tensors[name], "<i8").tobytes() if integer else encode(tensors[name], dtype)
        header[name] = {"dtype": "I64" if integer else DTYPE_CODES[dtype], "shape": list(np.shape(tensors[name])),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # pad so the data region starts 8-byte aligned
    with atomic_open(path) as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for blob in blobs:
            f.write(blob)
