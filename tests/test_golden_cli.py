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


def _port_dir(g, directory, extra=None) -> str:
    """A port that copied the golden (so everything it records passes), plus `extra` tensors."""
    os.makedirs(directory)
    for name, value in {**g.tensors, **(extra or {})}.items():
        np.save(os.path.join(directory, f"{name}.npy"), value)
    return str(directory)


@pytest.mark.parametrize("flags, why", [
    (["--only", "logitz"], "--only 'logitz' matches no tensor"),          # a typo
    (["--only", "logits", "--only", "ln-f"], "--only 'ln-f' matches no tensor"),  # one typo among good globs
    (["--layers", "50:60"], "--layers 50:60 selects none of the golden's"),
    (["--layers", "50:60", "--only", "h.*"], "--layers 50:60 selects none of the golden's"),
    (["--only", "input_ids", "--only", "attention_mask"], "nothing compared"),  # the inputs say nothing of a port
])
def test_comparing_nothing_fails_and_says_why(batch, flags, why):
    """It printed "PASS: 0 tensors" and exited 0."""
    done = run("compare", batch, batch, *flags)
    assert done.returncode == 1 and "PASS" not in done.stdout, done.stdout
    assert why in done.stdout.splitlines()[-1], done.stdout
    report = json.loads(run("compare", batch, batch, *flags, "--json").stdout)
    assert report["ok"] is False and any(why in p for p in report["problems"])


def test_a_port_that_recorded_nothing_the_golden_has_fails_even_with_skip_missing(batch, tmp_path):
    g = golden.load(batch)
    inputs = {k: g.tensors[k] for k in ("input_ids", "attention_mask")}
    port = tmp_path / "port"
    port.mkdir()
    for name, value in inputs.items():
        np.save(port / f"{name}.npy", value)
    done = run("compare", batch, port, "--skip-missing")
    assert done.returncode == 1 and "nothing compared" in done.stdout.splitlines()[-1], done.stdout


@pytest.mark.parametrize("extra", ["transformer.h.0.mlp.gelu", "h.00.mlp.gelu", "h.0.mlp.gelu_impl", "h.7.output"])
def test_names_the_golden_does_not_define_fail_unless_allowed(batch, tmp_path, extra):
    """A name compare cannot use was ignored: a port writing `transformer.`-prefixed names passed."""
    g = golden.load(batch)
    port = _port_dir(g, tmp_path / "port", {extra: g.tensors["h.0.mlp.gelu"] + 1})
    done = run("compare", batch, port)
    assert done.returncode == 1 and extra in done.stdout and "--allow-unknown" in done.stdout, done.stdout
    allowed = run("compare", batch, port, "--allow-unknown")
    assert allowed.returncode == 0 and extra in allowed.stdout, allowed.stdout  # still listed
    report = json.loads(run("compare", batch, port, "--json").stdout)
    assert report["ok"] is False and report["unknown"] == [extra]


@pytest.mark.parametrize("flags", [["--only", "*?" * 200], ["--only", "h.*"] * 300])
def test_long_or_many_only_globs_are_usage_errors(batch, flags):
    done = run("compare", batch, batch, *flags)
    assert done.returncode == 2 and "--only" in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("table", [{"*?" * 200: {"atol": 1}}, {f"n{i}": {"atol": 1} for i in range(40_000)}])
def test_long_or_many_tolerance_globs_are_usage_errors_at_once(batch, tmp_path, table):
    """40,000 globs took 48 s on a 66-tensor golden (the regex cache thrashed): minutes on a real model."""
    import time

    path = tmp_path / "tol.json"
    path.write_text(json.dumps(table, separators=(",", ":")))
    start = time.perf_counter()
    done = run("compare", batch, batch, "--tolerances", path)
    assert done.returncode == 2 and "--tolerances" in done.stderr and str(path) in done.stderr, done.stderr
    assert time.perf_counter() - start < 20
