"""The .safetensors reader/writer: round trips, bf16 by hand, the `safetensors` package as oracle,
and every header lie turned into a typed error naming the file and tensor."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minibloom.errors import CheckpointError, SafetensorsFormatError
from minibloom.safetensors_io import encode, load_file, read_header, save_file

safetensors_numpy = pytest.importorskip("safetensors.numpy")

finite32 = hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=3, max_side=5),
                      elements=st.floats(-1e4, 1e4, width=32))


def write_raw(path, header: dict, data: bytes, header_len: int | None = None) -> str:
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw) if header_len is None else header_len) + raw + data)
    return str(path)


@given(finite32, st.sampled_from(["float32", "float16"]))
def test_round_trip_agrees_with_the_safetensors_package(tmp_path_factory, array, dtype):
    path = str(tmp_path_factory.mktemp("st") / "a.safetensors")
    save_file({"x": array, "y": array * 2}, path, dtype)
    ours = load_file(path)
    theirs = safetensors_numpy.load_file(path)
    for name in ("x", "y"):
        assert theirs[name].dtype == np.dtype(dtype) and theirs[name].shape == array.shape
        assert np.array_equal(ours[name], theirs[name].astype(np.float32))


def test_bfloat16_decodes_as_the_top_half_of_float32(tmp_path):
    # 1.0 = 0x3F80, -2.0 = 0xC000, 0.15625 = 0x3E20: the float32 bits with the low 16 zero
    data = struct.pack("<3H", 0x3F80, 0xC000, 0x3E20)
    path = write_raw(tmp_path / "b.safetensors", {"t": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}, data)
    assert load_file(path)["t"].tolist() == [1.0, -2.0, 0.15625]


@given(finite32)
def test_bfloat16_encoding_rounds_to_nearest_even(array):
    bits = np.frombuffer(encode(array, "bfloat16"), "<u2").astype(np.uint32) << 16
    decoded = bits.view(np.float32).reshape(array.shape)
    # round-to-nearest: the error is at most half a bf16 ULP (2^-8 relative)
    assert np.all(np.abs(decoded - array) <= np.abs(array) * 2.0 ** -8 + 1e-38)


def test_bfloat16_round_trip_is_exact_for_bf16_values(tmp_path):
    values = np.array([1.0, -2.5, 3.140625, 0.0, 65280.0], np.float32)
    save_file({"v": values}, tmp_path / "v.safetensors", "bfloat16")
    assert np.array_equal(load_file(tmp_path / "v.safetensors")["v"], values)


def test_integer_tensors_keep_their_dtype(tmp_path):
    ids = np.array([[1, 2], [3, 4]], np.int64)
    safetensors_numpy.save_file({"ids": ids}, str(tmp_path / "i.safetensors"))
    back = load_file(tmp_path / "i.safetensors")["ids"]
    assert back.dtype == np.int64 and back.tolist() == ids.tolist()


def test_header_is_eight_byte_aligned_and_marks_pt_format(tmp_path):
    save_file({"a": np.ones(3, np.float32)}, tmp_path / "a.safetensors")
    raw = (tmp_path / "a.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    assert n % 8 == 0 and json.loads(raw[8:8 + n])["__metadata__"] == {"format": "pt"}


ENTRY = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize("header,data,header_len,message", [
    (None, b"", None, "too short"),
    ({"t": ENTRY}, b"\0" * 8, 10**9, "header length"),
    ({"t": ENTRY}, b"\0" * 4, None, "outside the data region"),
    ({"t": {**ENTRY, "dtype": "F8_E4M3"}}, b"\0" * 8, None, "unsupported dtype"),
    ({"t": {**ENTRY, "shape": [3]}}, b"\0" * 12, None, "needs 12"),
    ({"t": {**ENTRY, "shape": [-2]}}, b"\0" * 8, None, "non-negative"),
    ({"t": {**ENTRY, "data_offsets": [8, 0]}}, b"\0" * 8, None, "outside"),
    ({"t": {**ENTRY, "data_offsets": "0-8"}}, b"\0" * 8, None, "begin, end"),
    ({"t": ENTRY, "u": ENTRY}, b"\0" * 8, None, "overlap"),
    ({"t": [1, 2]}, b"", None, "must be an object"),
])
def test_lying_headers_raise_format_errors_naming_file_and_tensor(tmp_path, header, data, header_len, message):
    path = tmp_path / "bad.safetensors"
    if header is None:
        path.write_bytes(b"\x01\x02")
    else:
        write_raw(path, header, data, header_len)
    with pytest.raises(SafetensorsFormatError, match=message) as info:
        read_header(path)
    assert "bad.safetensors" in str(info.value)


def test_header_that_is_not_json_is_a_format_error(tmp_path):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(struct.pack("<Q", 4) + b"\xff\xfe{[")
    with pytest.raises(SafetensorsFormatError, match="not valid JSON"):
        read_header(path)


def test_a_save_that_fails_mid_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "keep.safetensors"
    save_file({"a": np.ones(4, np.float32)}, path)
    before = path.read_bytes()

    def broken_fsync(fd):  # the bytes are written, the disk then fails before the rename
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("minibloom.atomic.os.fsync", broken_fsync)
    with pytest.raises(CheckpointError, match="No space left"):
        save_file({"a": np.zeros(4, np.float32), "b": np.ones(100, np.float32)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.safetensors"]  # no temporary file left behind


def test_unwritable_destination_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="cannot write"):
        save_file({"a": np.ones(2, np.float32)}, tmp_path / "missing_dir" / "a.safetensors")


@pytest.mark.parametrize("metadata", [None, {}, {"format": "pt"}, [], [["a", "b"]], 0, 0.0, 1, False, True, "", "pt",
                                      {"a": None}, {"a": 1}])
def test_metadata_is_accepted_exactly_when_the_safetensors_package_accepts_it(tmp_path, metadata):
    """`__metadata__` is an optional map of strings: null (serde's None) and objects of strings are
    read, anything else is refused, falsy values ([], 0, false, "") included."""
    path = write_raw(tmp_path / "m.safetensors",
                     {"__metadata__": metadata, "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4)
    try:
        safetensors_numpy.load_file(path)
    except Exception:  # noqa: BLE001 -- any refusal is the package's "reject"
        with pytest.raises(SafetensorsFormatError, match="__metadata__"):
            read_header(path)
    else:
        assert read_header(path)[1] == (metadata or {})
