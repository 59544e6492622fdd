"""`minibloom golden dump / compare` as a porter's script calls them: batches, options, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minibloom import golden
from minibloom.embedded import EMBEDDED_CHECKPOINT
from minibloom.errors import CheckpointError
from minibloom.tokenizer import BloomTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minibloom", "golden", *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    path = tmp_path_factory.mktemp("g") / "g.safetensors"
    done = run("dump", "--text", "To be, or not", "--text", "ROMEO. Hello there, my friend", "-o", path)
    assert done.returncode == 0, done.stderr
    return path


def test_several_texts_make_a_left_padded_batch(batch):
    g = golden.load(batch)
    tok = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
    short, long = tok("To be, or not")["input_ids"], tok("ROMEO. Hello there, my friend")["input_ids"]
    mask = g.tensors["attention_mask"]
    assert mask.shape == (2, len(long)) and mask[0].sum() == len(short) and mask[0, 0] == 0 and mask[1].all()
    assert list(g.tensors["input_ids"][0, -len(short):]) == list(short)
    assert json.loads(g.metadata["text"]) == ["To be, or not", "ROMEO. Hello there, my friend"]
    assert g.tensors["h.0.self_attention.q"].shape[0::2] == (2, len(long))


def test_inputs_json_is_dumped_as_given(tmp_path):
    spec = {"input_ids": [[0, 0, 5, 6], [7, 8, 9, 10]], "attention_mask": [[0, 0, 1, 1], [1, 1, 1, 1]]}
    (tmp_path / "in.json").write_text(json.dumps(spec))
    assert run("dump", "--inputs", tmp_path / "in.json", "-o", tmp_path / "g.safetensors").returncode == 0
    g = golden.load(tmp_path / "g.safetensors")
    np.testing.assert_array_equal(g.tensors["input_ids"], spec["input_ids"])
    np.testing.assert_array_equal(g.tensors["attention_mask"], spec["attention_mask"])
    half = run("dump", "--inputs", tmp_path / "in.json", "--dtype", "float16", "-o", tmp_path / "h.safetensors")
    assert half.returncode == 0 and golden.load(tmp_path / "h.safetensors").dtype_of("logits") == "float16"
    for bad in ({"input_ids": [[1, 2], [3]]}, {"input_ids": [[1, 2]], "attention_mask": [[1, 2]]}, [1, 2], "x"):
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        done = run("dump", "--inputs", tmp_path / "bad.json", "-o", tmp_path / "b.safetensors")
        assert done.returncode == 2 and "--inputs" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "b.safetensors").exists()


def test_compare_options_on_the_command_line(batch, tmp_path):
    g = golden.load(batch)
    port = tmp_path / "port"
    port.mkdir()
    for name, value in g.tensors.items():  # a port with a wrong gelu in layer 2, no scores or probs
        if name.endswith((".scores", ".probs")):
            continue
        np.save(port / f"{name}.npy", value * np.float32(1.001) if name == "h.2.mlp.gelu" else value)
    missing = run("compare", batch, port)
    assert missing.returncode == 1 and "FAIL: first divergence at h.0.self_attention.scores: missing" in missing.stdout
    skipped = run("compare", batch, port, "--skip-missing", "--failures-only")
    assert skipped.returncode == 1 and "first divergence at h.2.mlp.gelu" in skipped.stdout
    assert "h.0.input_layernorm" not in skipped.stdout  # only failures are listed
    assert run("compare", batch, port, "--skip-missing", "--layers", ":2", "--only", "h.*").returncode == 0
    assert run("compare", batch, port, "--skip-missing", "--layers", "2:3", "--only", "h.*").returncode == 1
    logits = run("compare", batch, port, "--logits-only")  # this "port" copied the golden's logits
    assert logits.returncode == 0 and "PASS: 1 tensors" in logits.stdout
    (tmp_path / "tol.json").write_text(json.dumps({"h.*": {"atol": 1.0}, "ln_f": {"atol": 1.0},
                                                   "logits": {"atol": 1.0}}))
    loose = run("compare", batch, port, "--skip-missing", "--tolerances", tmp_path / "tol.json", "--json")
    report = json.loads(loose.stdout)
    assert loose.returncode == 0 and report["ok"] and report["layers"][0]["layer"] == "embeddings"
    plot = run("compare", batch, port, "--skip-missing", "--plot", tmp_path / "e.png", "--failures-only")
    if plot.returncode == 2:
        assert "matplotlib" in plot.stderr
    else:
        assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("flags, blamed", [(["--atol", "-1"], "--atol"), (["--rtol", "nan"], "--rtol"),
                                           (["--atol", "inf"], "--atol"), (["--layers", "x"], "--layers")])
def test_bad_tolerances_and_ranges_exit_2_naming_the_flag(batch, flags, blamed):
    done = run("compare", batch, batch, *flags)
    assert done.returncode == 2 and blamed in done.stderr and "Traceback" not in done.stderr


def test_zero_tolerances_pass_identical_files(batch):
    done = run("compare", batch, batch, "--atol", "0", "--rtol", "0")
    assert done.returncode == 0 and "within atol=0, rtol=0" in done.stdout


def test_a_tolerances_file_that_is_a_fifo_or_a_nesting_bomb_is_refused_at_once(tmp_path):
    from minibloom.golden import read_tolerances

    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    bomb = tmp_path / "bomb.json"
    bomb.write_text("[" * 10_000 + "]" * 10_000)
    for path in (fifo, bomb):
        with pytest.raises(CheckpointError, match=str(path.name)):
            read_tolerances(path)  # a FIFO would block open(); the bomb would be a RecursionError
