"""Generation goldens (docs/golden.md, "Generation goldens"): greedy decoding with the KV cache, each
step's logits and cache rows. An independent cached port (tests/gen_port.py, not minibloom's code)
passes, a cache bug (ALiBi positions restarting at 0 in cached steps) is named at its step, and the
documented self-check -- a port's cached steps against its own full forward -- names it too."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from minibloom import BloomForCausalLM, golden
from minibloom.golden_generate import dump_generate
from tests.conftest import GOLDEN_DIR
from tests.gen_port import GenPort

CHECKPOINT = os.path.join(GOLDEN_DIR, "heads12_prefixed")
IDS = np.array([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]])
MASK = np.array([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "gen.safetensors"
    dump_generate(BloomForCausalLM.from_pretrained(CHECKPOINT), path, IDS, MASK, steps=4)
    return golden.load(path)


def test_the_golden_is_greedy_decoding_with_the_cache_step_by_step(expected):
    model = BloomForCausalLM.from_pretrained(CHECKPOINT)
    tokens = expected.tensors["gen.tokens"]
    assert (model.generate(IDS, MASK, max_new_tokens=4)[:, IDS.shape[1]:] == tokens).all()
    assert expected.tensors["gen.0.h.1.k"].shape == (2, 12, 6, 4) and expected.tensors["gen.3.h.1.v"].shape == (2, 12, 1, 4)
    full = model(np.concatenate([IDS, tokens[:, :3]], 1), attention_mask=np.concatenate([MASK, np.ones((2, 3))], 1))
    for s in range(4):  # each step's logits are the uncached forward's at that position
        np.testing.assert_allclose(expected.tensors[f"gen.{s}.logits"], full.logits[:, 5 + s], atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("cached", [True, False])
def test_a_correct_port_passes_cached_or_not(expected, cached):
    report = golden.compare(expected, GenPort(CHECKPOINT).generate(IDS, MASK, expected.tensors["gen.tokens"], cached))
    text = golden.format_report(report)
    assert report.ok and "decoding: ok (20 tensors)" in text, text
    assert max(r.headroom for r in report.rows) < 0.5


def test_alibi_positions_restarting_in_cached_steps_are_named_at_step_1(expected):
    report = golden.compare(expected, GenPort(CHECKPOINT, ["alibi_restart"]).generate(
        IDS, MASK, expected.tensors["gen.tokens"]))
    text = golden.format_report(report, failures_only=True)
    assert report.first_divergence.name == "gen.1.h.1.k", text  # layer 0's keys see no attention yet
    assert "decoding: first divergent step 1, at gen.1.h.1.k" in text


def test_the_port_self_check_cached_against_its_own_full_forward_names_the_step(expected):
    tokens = expected.tensors["gen.tokens"]
    for bugs, ok in (((), True), (("alibi_restart",), False)):
        port = GenPort(CHECKPOINT, bugs)
        uncached = golden.GoldenFile(port.generate(IDS, MASK, tokens, cached=False))
        report = golden.compare(uncached, port.generate(IDS, MASK, tokens, cached=True))
        assert report.ok == ok, golden.format_report(report)
        if not ok:
            assert report.first_divergence.name == "gen.1.h.1.k"


def test_the_cli_dumps_a_generation_golden(tmp_path):
    path = tmp_path / "g.safetensors"
    run = [sys.executable, "-m", "minibloom", "golden", "dump", "--checkpoint", CHECKPOINT, "--ids", "5", "6", "7"]
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run(run + ["--generate", "3", "-o", str(path)], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert golden.load(path).tensors["gen.tokens"].shape == (1, 3)
    done = subprocess.run(run + ["--generate", "0", "-o", str(tmp_path / "x.safetensors")], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 2 and "--generate" in done.stderr
