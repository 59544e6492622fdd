"""A port in C writes a golden file (examples/c_golden_writer): compiled and run when a C compiler
exists, its files read and compared by `minibloom golden compare`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from minibloom import BloomConfig, BloomModel, golden

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "examples", "c_golden_writer", "golden_writer.c")
COMPILER = next((c for c in (os.environ.get("CC"), "cc", "gcc", "clang") if c and shutil.which(c)), None)
MASK = np.array([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 1, 1, 1, 1]])
N_HEAD, N_LAYER = 6, 2  # six heads: the slopes' non-power-of-two branch


@pytest.fixture(scope="module")
def writer(tmp_path_factory):
    if COMPILER is None:
        pytest.skip("no C compiler (cc, gcc, clang or $CC) on this machine: the C writer cannot be built")
    if sys.byteorder != "little":
        pytest.skip("the C example writes little-endian bytes as they are in memory")
    return compile_c(tmp_path_factory, SOURCE, "-Wall", "-Werror")


def compile_c(tmp_path_factory, source: str, *flags: str) -> str:
    """`source` built with the C compiler found above (C99, -O2, `flags`): the executable's path."""
    exe = str(tmp_path_factory.mktemp("c") / os.path.splitext(os.path.basename(source))[0])
    subprocess.run([COMPILER, "-O2", "-std=c99", *flags, "-o", exe, source, "-lm"], check=True)
    return exe


@pytest.fixture(scope="module")
def golden_path(tmp_path_factory):
    model = BloomModel(BloomConfig(vocab_size=32, hidden_size=24, n_head=N_HEAD, n_layer=N_LAYER), seed=1)
    path = str(tmp_path_factory.mktemp("g") / "golden.safetensors")
    golden.dump(model, path, np.arange(15).reshape(3, 5) % 32, MASK)
    return path


def run_writer(writer, mode, out, mask):
    args = [writer, mode, str(out), str(N_HEAD), str(N_LAYER), *map(str, mask.shape), *map(str, mask.ravel())]
    subprocess.run(args, check=True)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "minibloom", "golden", "compare", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})


@pytest.mark.parametrize("mode", ["npy", "safetensors"])
def test_the_c_port_file_is_read_and_passes(writer, golden_path, tmp_path, mode):
    out = tmp_path / ("port" if mode == "npy" else "port.safetensors")
    if mode == "npy":
        out.mkdir()
    run_writer(writer, mode, out, MASK)
    port = golden.load(out)
    assert port.metadata == {} and port.tensors["h.1.self_attention.alibi"].shape == (3 * N_HEAD, 1, 5)
    np.testing.assert_array_equal(port.tensors["attention_mask"], MASK)
    done = cli(golden_path, out, "--only", "*.alibi", "--only", "attention_mask")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS: 3 tensors" in done.stdout
    assert cli(golden_path, out).returncode == 1  # the other names are missing...
    assert cli(golden_path, out, "--skip-missing").returncode == 0  # ...and skipped on request


def test_a_c_port_that_ignores_the_padding_is_caught(writer, golden_path, tmp_path):
    run_writer(writer, "npy", tmp_path, np.ones_like(MASK))  # positions 0..T-1 on every row: arange
    (tmp_path / "attention_mask.npy").unlink()
    done = cli(golden_path, tmp_path, "--only", "*.alibi")
    assert done.returncode == 1
    assert "FAIL: first divergence at h.0.self_attention.alibi (batch 1," in done.stdout


# --- minibloom/data/golden_writer.h: the single-file header a C port includes ---------------------

CHECK_SOURCE = os.path.join(ROOT, "tests", "golden_writer_check.c")


@pytest.fixture(scope="module")
def header_check(tmp_path_factory):
    if COMPILER is None:
        pytest.skip("no C compiler (cc, gcc, clang or $CC) on this machine: golden_writer.h cannot be built")
    if sys.byteorder != "little":
        pytest.skip("golden_writer.h writes little-endian safetensors and refuses big-endian machines")
    return compile_c(tmp_path_factory, CHECK_SOURCE, "-Wall", "-Wextra", "-Werror", "-pedantic",
                     "-I", os.path.dirname(golden.C_WRITER_HEADER))


def bf16_round(x):
    from minibloom.golden.lowp import rounder
    return rounder("bfloat16")(x)


def test_the_header_writes_every_dtype_as_numpy_rounds_it(header_check, tmp_path):
    from safetensors import safe_open

    rng = np.random.default_rng(0)
    special = [0.0, -0.0, 1.0, -1.0, 65504.0, 65519.99, 65520.0, -70000.0, 6.1e-5, 6.0e-5, 5.96e-8, 2.98e-8,
               2.99e-8, 1e-10, 3.4e38, -3.4e38, np.inf, -np.inf, 1.00048828125, 1.00146484375, 0.1]
    values = np.r_[special, rng.standard_normal(1000) * 10.0 ** rng.integers(-9, 6, 1000)].astype(np.float32)
    raw = tmp_path / "values.f32"
    values.tofile(raw)
    out = tmp_path / "port.safetensors"
    subprocess.run([header_check, "values", str(out), str(raw)], check=True)
    with safe_open(str(out), framework="np") as f:  # the reference reader accepts the file (NumPy has no bf16)
        got = {k: f.get_tensor(k) for k in f.keys() if k != "bf16"}
    np.testing.assert_array_equal(got["f32"], values)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(got["f16"], values.astype(np.float16))  # nearest even, overflow to inf
    np.testing.assert_array_equal(got["f64"], values.astype(np.float64))
    mine = golden.load(out)  # and so does minibloom, recording each stored dtype
    np.testing.assert_array_equal(mine.tensors["bf16"], bf16_round(values))
    assert [mine.dtype_of(n) for n in ("f32", "f16", "bf16", "f64")] == ["float32", "float16", "bfloat16", "float64"]
    np.testing.assert_array_equal(got["input_ids"], [[0, 1, 2], [250679, -1, 2 ** 63 - 1]])
    assert got["i32"].tolist() == [7, -7, 0] and got["scalar"].shape == () and got["empty"].shape == (0,)
    assert got['odd "name"\\with\ttab'] == values[0]
    with open(out, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
    assert n % 8 == 0 and not os.path.exists(str(out) + ".tmp")


def test_the_header_nan_is_a_nan_in_every_dtype(header_check, tmp_path):
    raw = tmp_path / "nan.f32"
    np.array([np.nan, -np.nan], np.float32).tofile(raw)
    subprocess.run([header_check, "values", str(tmp_path / "p.safetensors"), str(raw)], check=True)
    got = golden.load(tmp_path / "p.safetensors").tensors
    assert all(np.isnan(got[k]).all() for k in ("f32", "f16", "bf16", "f64"))


@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16"])
def test_a_c_port_using_the_header_passes_compare(header_check, golden_path, tmp_path, dtype):
    out = tmp_path / "port.safetensors"
    subprocess.run([header_check, "alibi", str(out), dtype, str(N_HEAD), str(N_LAYER), *map(str, MASK.shape),
                    *map(str, MASK.ravel())], check=True)
    done = cli(golden_path, out, "--only", "*.alibi", "--only", "attention_mask")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS: 3 tensors" in done.stdout


def test_the_header_refuses_a_name_given_twice(header_check, tmp_path):
    out = tmp_path / "twice.safetensors"
    done = subprocess.run([header_check, "twice", str(out)], capture_output=True, text=True)
    assert done.returncode == 1 and "name given twice: logits" in done.stderr
    assert not out.exists()
