"""The `minibloom` console script, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from minibloom import BloomModel
from tests.conftest import GOLDEN_DIR


def run(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("minibloom")
    cmd = [exe] if exe else [sys.executable, "-m", "minibloom"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=120)


def test_init_info_forward_round_trip(tmp_path):
    target = str(tmp_path / "ck")
    assert run("init", target, "--n-layer", "1", "--vocab-size", "50", "--seed", "3").returncode == 0
    info = run("info", target, "--json")
    assert info.returncode == 0
    summary = json.loads(info.stdout)
    assert (summary["n_layer"], summary["vocab_size"], summary["weight_files"]) == (1, 50, ["model.safetensors"])
    assert summary["parameters"] == sum(v.size for v in BloomModel.from_pretrained(target).params.values())
    out = run("forward", target, "--ids", "1", "2", "3")
    assert out.returncode == 0 and "shape (3, 64)" in out.stdout


def test_forward_prints_the_model_output():
    case = os.path.join(GOLDEN_DIR, "heads8")
    out = run("forward", case, "--ids", "4", "5")
    hidden = BloomModel.from_pretrained(case)(np.array([[4, 5]])).last_hidden_state[0]
    assert f"mean {hidden.mean():.6f}" in out.stdout and f"std {hidden.std():.6f}" in out.stdout


def test_forward_on_the_numba_backend_with_2_byte_storage():
    case = os.path.join(GOLDEN_DIR, "bf16")
    out = run("forward", case, "--ids", "4", "5", "--backend", "numba", "--storage", "bfloat16")
    hidden = BloomModel.from_pretrained(case)(np.array([[4, 5]])).last_hidden_state[0]
    assert f"std {hidden.std():.6f}" in out.stdout


def test_output_into_a_closed_pipe_is_not_a_traceback():
    case = os.path.join(GOLDEN_DIR, "heads8")
    ids = " ".join(["7"] * 3000)  # ~200 kB of output: more than a pipe buffer holds
    done = subprocess.run(f"{sys.executable} -m minibloom forward {case} --ids {ids} | head -1",
                          shell=True, capture_output=True, text=True)
    assert done.returncode == 0 and "Traceback" not in done.stderr


@pytest.mark.parametrize("args,message", [
    (("info", "/nonexistent/checkpoint"), "checkpoint directory not found: /nonexistent/checkpoint"),
    (("forward", os.path.join(GOLDEN_DIR, "heads8"), "--ids", "1", "64"), "input_ids[0, 1] = 64 is outside"),
])
def test_user_errors_print_one_line_and_exit_2(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("minibloom: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_corrupt_weights_file_is_a_one_line_error(tmp_path):
    shutil.copytree(os.path.join(GOLDEN_DIR, "heads8"), tmp_path / "ck")
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{oops")
    result = run("info", str(tmp_path / "ck"))
    assert result.returncode == 2 and "model.safetensors" in result.stderr and "Traceback" not in result.stderr


def test_help_teaches_every_command():
    out = run("--help").stdout
    for command in ("init", "info", "forward"):
        assert command in out
