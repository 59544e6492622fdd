"""Differential fuzz: minibloom's safetensors reader against the `safetensors` package.

The same mutated files go to both readers; they must give the same verdict (accept or reject),
and equal tensors (dtype, shape, bytes) when both accept. The package's verdict is that of
`safetensors.numpy.load_file`: its Rust header checks, then NumPy building each array. Mutations
cover what the two have differed on: tensors named twice, gaps, overlaps, trailing bytes,
`__metadata__` values that are not strings, a `__metadata__` that is not an object (falsy ones too:
[], 0, false, ""), > 64 dimensions, zero-size tensors with huge dimensions, 64-bit overflows, lying
header lengths, truncation and byte flips. Dtypes are those both read into NumPy (the package's
NumPy side has no bfloat16; minibloom has no 8-bit floats).
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibloom import MinibloomError
from minibloom.safetensors_io import load_file
from tests.fuzz.fuzz_utils import fuzz_settings

safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="the differential test needs `safetensors`")

DTYPES = {"F64": 8, "F32": 4, "F16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
          "U16": 2, "U32": 4, "U64": 8}
NOT_AN_OBJECT = st.sampled_from([[], [["format", "pt"]], 0, 0.0, 1, False, True, "", "pt", {}])  # {}: accepted
HUGE = st.sampled_from([0, 1, 2, 3, 2**31, 2**32, 2**61, 2**62, 2**63 - 1, 2**63, 2**64 - 1, 2**64])


@st.composite
def entries(draw):
    """A list of (name, entry) pairs, mostly valid and contiguous, then mutated."""
    n = draw(st.integers(0, 4))
    names = [draw(st.sampled_from(["a", "b", "c", "w.0", "__metadata__x"])) for _ in range(n)]
    pairs, offset = [], 0
    for name in names:
        dtype = draw(st.sampled_from(sorted(DTYPES)))
        shape = draw(st.lists(st.integers(0, 3), max_size=3))
        size = int(np.prod(shape, dtype=np.int64)) * DTYPES[dtype]
        pairs.append([name, {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}])
        offset += size
    for _ in range(draw(st.integers(0, 2))):
        if not pairs:
            break
        k = draw(st.integers(0, len(pairs) - 1))
        entry = pairs[k][1]
        kind = draw(st.sampled_from(["shape_huge", "dims", "zero_huge", "offsets", "shift", "dtype", "dup",
                                     "extra_field"]))
        if kind == "shape_huge":
            entry["shape"] = draw(st.lists(HUGE, max_size=4))
        elif kind == "dims":
            entry["shape"] = [1] * draw(st.sampled_from([63, 64, 65, 70]))
        elif kind == "zero_huge":
            entry["shape"] = [0, draw(HUGE), draw(HUGE)][:draw(st.integers(2, 3))]
        elif kind == "offsets":
            entry["data_offsets"] = [draw(st.integers(0, 40)), draw(st.integers(0, 40))]
        elif kind == "shift":
            entry["data_offsets"] = [o + draw(st.integers(-4, 4)) for o in entry["data_offsets"]]
        elif kind == "dtype":
            entry["dtype"] = draw(st.sampled_from(sorted(DTYPES)))
        elif kind == "dup":
            pairs.append([pairs[k][0], dict(draw(st.sampled_from([p[1] for p in pairs])))])
        else:
            entry["extra"] = draw(st.integers(0, 3))
    return pairs, offset


@st.composite
def files(draw):
    pairs, data_len = draw(entries())
    meta = draw(st.sampled_from(["none", "ok", "null", "int", "nested", "twice", "not_an_object"]))
    metadata = {"none": [], "ok": [["__metadata__", {"format": "pt"}]], "null": [["__metadata__", None]],
                "int": [["__metadata__", {"format": 1}]], "nested": [["__metadata__", {"f": {"a": "b"}}]],
                "twice": [["__metadata__", {"a": "b"}], ["__metadata__", {"a": "c"}]],
                "not_an_object": [["__metadata__", draw(NOT_AN_OBJECT)]]}[meta]
    items = metadata + pairs
    if items and draw(st.booleans()):
        items = draw(st.permutations(items))
    header = ("{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in items) + "}").encode()
    header += b" " * draw(st.integers(0, 7))
    data = draw(st.binary(min_size=data_len, max_size=data_len))
    data += b"\0" * draw(st.sampled_from([0, 0, 0, 1, 4]))  # trailing bytes
    blob = bytearray(struct.pack("<Q", len(header)) + header + data)
    damage = draw(st.sampled_from(["none", "none", "none", "truncate", "flip", "length"]))
    if damage == "truncate" and blob:
        blob = blob[:draw(st.integers(0, len(blob) - 1))]
    elif damage == "flip":
        for _ in range(draw(st.integers(1, 3))):
            blob[draw(st.integers(0, len(blob) - 1))] = draw(st.integers(0, 255))
    elif damage == "length":
        blob[:8] = struct.pack("<Q", draw(st.sampled_from([0, 1, len(header) - 1, len(header) + 1, 2**63, 2**64 - 1])))
    return bytes(blob)


@fuzz_settings
@given(files())
def test_minibloom_accepts_exactly_what_the_safetensors_package_accepts(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("st") / "x.safetensors"
    path.write_bytes(blob)
    try:
        theirs = safetensors_numpy.load_file(str(path))
    except Exception as e:  # noqa: BLE001 -- any refusal is the package's "reject"
        theirs, why = None, f"{type(e).__name__}: {e}"
    try:
        ours = load_file(path)
    except MinibloomError as e:
        ours, our_why = None, str(e)
    if theirs is None:
        assert ours is None, f"minibloom accepts a file the package rejects ({why})"
        return
    assert ours is not None, f"minibloom rejects a file the package accepts: {our_why}"
    assert sorted(ours) == sorted(theirs)
    for name, value in theirs.items():
        assert ours[name].dtype == value.dtype and ours[name].shape == value.shape, name
        assert ours[name].tobytes() == value.tobytes(), name
