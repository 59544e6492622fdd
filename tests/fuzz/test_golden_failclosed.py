"""Golden files from a port, read as an attacker would write them: every header is checked against
the file's size and the memory budget before a byte is allocated, and a file that `golden.load`
accepts holds exactly what NumPy itself reads from it.

- `test_hostile_golden_files_fail_typed_fast_and_small`: fixed cases, each in a forked child whose
  address space is capped (RLIMIT_AS) at what it has mapped plus 100 MB, with a 1 s clock (a 5 s
  alarm ends a hang): lying .npy / .npz headers, a zip bomb, a FIFO and /dev/zero in a .npy
  directory. Each must raise its typed error, naming the file.
- `test_npy_reader_agrees_with_numpy` / `test_npz_reader_agrees_with_numpy`: arrays of every dtype
  and order written by NumPy, then truncated, flipped, or given a random shape / header length:
  minibloom's reader either raises a `MinibloomError` or returns what `numpy.load` returns.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibloom import golden
from tests.fuzz.fuzz_utils import fuzz_settings, only_minibloom_errors

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def npy_claiming(shape, descr: str = "<f4", data: bytes = bytes(12)) -> bytes:
    """A well-formed .npy header for `shape`, followed by only `data`."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue() + data


SCRIPT = r"""
import json, os, signal, sys, time
import numpy as np
from minibloom import CheckpointError, MinibloomError, golden
from minibloom.errors import MemoryBudgetError
from tests.fuzz.isolated import cap_address_space, in_forked_children

root = sys.argv[1]
golden.load(os.path.join(root, "good"))  # warm up every code path once
cases = [("npy claims 4 TiB", "npy4t", CheckpointError), ("npy v2 header of 4 GiB", "npyhead", CheckpointError),
         ("npy shape of 2**62 (overflows)", "npyover", CheckpointError),
         ("npy object dtype", "npyobj", CheckpointError),
         ("npz member claims 4 TiB", "npz4t.npz", CheckpointError),
         ("npz member size lies (4 GiB)", "npzsize.npz", CheckpointError),
         ("zip bomb past the budget", "bomb.npz", MemoryBudgetError),
         ("FIFO in a npy directory", "fifo", CheckpointError),
         ("/dev/zero in a npy directory", "zero", CheckpointError)]

def run_case(name, expected):
    cap_address_space()
    signal.alarm(5)  # a hang (a FIFO opened for reading) ends here instead of blocking the test
    start = time.perf_counter()
    try:
        golden.load(os.path.join(root, name))
        outcome, message = type(None), ""
    except BaseException as e:
        outcome, message = type(e), str(e)
    seconds = time.perf_counter() - start
    ok = issubclass(outcome, expected) and issubclass(outcome, MinibloomError) and os.path.join(root, name) in message
    return None if ok and seconds <= 1.0 else f"{outcome.__name__} in {seconds:.2f} s: {message[:200]}"

print(json.dumps(in_forked_children(cases, run_case)))
"""


def test_hostile_golden_files_fail_typed_fast_and_small(tmp_path):
    if not hasattr(os, "mkfifo") or not os.path.exists("/proc/self/statm"):
        pytest.skip("needs Linux (/proc, mkfifo)")
    small = npy_bytes(np.zeros(3, np.float32))

    def npy_dir(name: str, data: bytes | None = None) -> str:
        d = tmp_path / name
        d.mkdir()
        if data is not None:
            (d / "logits.npy").write_bytes(data)
        return str(d)

    npy_dir("good", small)
    npy_dir("npy4t", npy_claiming([2**40]))  # 4 TiB of float32 in 140 bytes
    npy_dir("npyhead", b"\x93NUMPY\x02\x00" + (2**32 - 1).to_bytes(4, "little") + b"{'descr': '<f4', " + b" " * 64)
    npy_dir("npyover", npy_claiming([2**62, 4]))
    npy_dir("npyobj", npy_claiming([1], "|O"))  # a pickled object: never
    with zipfile.ZipFile(tmp_path / "npz4t.npz", "w") as z:
        z.writestr("logits.npy", npy_claiming([2**40]))
    with zipfile.ZipFile(tmp_path / "npzsize.npz", "w") as z:
        z.writestr("logits.npy", small)
    blob = bytearray((tmp_path / "npzsize.npz").read_bytes())  # the central directory's sizes lie
    at = blob.rindex(b"PK\x01\x02")
    blob[at + 24:at + 28] = (2**32 - 2).to_bytes(4, "little")  # uncompressed size: 4 GiB
    (tmp_path / "npzsize.npz").write_bytes(bytes(blob))
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z:  # 400 MB of zeros in ~400 KB
        with z.open("logits.npy", "w", force_zip64=True) as f:
            f.write(npy_claiming([100_000_000], data=b""))
            chunk = bytes(2**24)
            for _ in range(400_000_000 // len(chunk)):
                f.write(chunk)
            f.write(bytes(400_000_000 % len(chunk)))
    fifo = npy_dir("fifo")
    os.mkfifo(os.path.join(fifo, "logits.npy"))
    zero = npy_dir("zero")
    os.symlink("/dev/zero", os.path.join(zero, "logits.npy"))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stderr[-3000:]
    failures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert failures == [], failures


DTYPES = ["<f4", ">f4", "<f8", "<f2", "<i8", ">i4", "|u1", "|i1", "|b1", "<u2", "<c8", "<U3", "|V4"]


@st.composite
def npy_files(draw):
    """(bytes, array) of a file NumPy wrote, often corrupted afterwards."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    array = np.arange(int(np.prod(shape)), dtype=np.int64).astype(dtype) if dtype.kind != "V" else \
        np.zeros(shape, dtype)
    array = array.reshape(shape)
    if draw(st.booleans()) and array.ndim == 2:
        array = np.asfortranarray(array)
    data = bytearray(npy_bytes(array))
    kind = draw(st.sampled_from(["none", "truncate", "extend", "flip", "shape", "length", "version"]))
    if kind == "truncate":
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif kind == "extend":
        data += bytes(draw(st.integers(1, 64)))
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, min(len(data), 128) - 1))] = draw(st.integers(0, 255))
    elif kind == "shape":
        dims = draw(st.lists(st.one_of(st.integers(-2, 8), st.integers(0, 2**64)), max_size=4))
        text = repr(tuple(dims)).encode()
        start = data.index(b"'shape': ") + len(b"'shape': ")
        end = data.index(b")", start) + 1
        data = data[:start] + text + data[end:]
    elif kind == "length":
        data[8:10] = draw(st.integers(0, 2**16 - 1)).to_bytes(2, "little")
    elif kind == "version":
        data[6] = draw(st.integers(0, 4))
    return bytes(data), kind


def same_as_numpy(path: str, tensors: dict) -> None:
    """What minibloom accepted, NumPy reads the same: values, dtype, shape."""
    loaded = np.load(path, allow_pickle=False)
    items = {k: loaded[k] for k in loaded.files} if hasattr(loaded, "files") else {"logits": loaded}
    assert set(items) == set(tensors)
    for name, value in items.items():
        assert tensors[name].dtype == value.dtype and tensors[name].shape == value.shape
        np.testing.assert_array_equal(tensors[name], value)


@fuzz_settings
@given(npy_files())
def test_npy_reader_agrees_with_numpy(tmp_path_factory, case):
    data, kind = case
    d = tmp_path_factory.mktemp("npy")
    (d / "logits.npy").write_bytes(data)
    with only_minibloom_errors():
        tensors = golden.load(d).tensors
        same_as_numpy(str(d / "logits.npy"), tensors)
        assert kind in ("none", "flip", "shape", "length", "version")  # truncated or extended data is refused


@fuzz_settings
@given(st.lists(npy_files(), min_size=1, max_size=3), st.booleans(), st.data())
def test_npz_reader_agrees_with_numpy(tmp_path_factory, members, compressed, data):
    path = tmp_path_factory.mktemp("npz") / "port.npz"
    names = ["logits", "ln_f", "h.0.output"]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED) as z:
        for name, (blob, _) in zip(names, members):
            z.writestr(name + ".npy", blob)
    if data.draw(st.booleans()):  # corrupt the zip itself too
        blob = bytearray(path.read_bytes())
        for _ in range(data.draw(st.integers(1, 4))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
        path.write_bytes(bytes(blob))
    with only_minibloom_errors():
        tensors = golden.load(path).tensors
        same_as_numpy(str(path), tensors)


def test_what_numpy_writes_is_read(tmp_path):
    """Never refuse what the reference writes: np.save / savez / savez_compressed of every numeric
    dtype, both orders, empty and 0-d arrays."""
    arrays = {"logits": np.arange(6, dtype=">f4").reshape(2, 3), "ln_f": np.asfortranarray(np.ones((3, 2))),
              "h.0.output": np.zeros((0, 4), np.float16), "input_ids": np.array(7, np.int64),
              "attention_mask": np.ones((1, 3), bool)}
    d = tmp_path / "dir"
    d.mkdir()
    for name, value in arrays.items():
        np.save(d / f"{name}.npy", value)
    np.savez(tmp_path / "a.npz", **arrays)
    np.savez_compressed(tmp_path / "b.npz", **arrays)
    for path in (d, tmp_path / "a.npz", tmp_path / "b.npz"):
        tensors = golden.load(path).tensors
        for name, value in arrays.items():
            assert tensors[name].dtype == value.dtype and tensors[name].shape == value.shape
            np.testing.assert_array_equal(tensors[name], value)
