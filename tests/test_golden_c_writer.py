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
    exe = str(tmp_path_factory.mktemp("c") / "golden_writer")
    subprocess.run([COMPILER, "-O2", "-std=c99", "-Wall", "-Werror", "-o", exe, SOURCE, "-lm"], check=True)
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
