"""Generation goldens (docs/golden.md, "Generation goldens"): greedy decoding with the KV cache, each
step's logits and cache rows. An independent cached port (tests/gen_port.py, not minibloom's code)
passes, a cache bug (ALiBi positions restarting at 0 in cached steps) is named at its step, and the
documented self-check -- a port's cached steps against its own full forward -- names it too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minibloom import BloomForCausalLM, golden
from minibloom.errors import InputError
from minibloom.generation import sample
from minibloom.golden.generate import dump_generate, replay
from tests.conftest import HF_EXPECTED_DIR
from tests.gen_port import GenPort

CHECKPOINT = os.path.join(HF_EXPECTED_DIR, "heads12_prefixed")
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


# Sampling goldens (docs/golden.md, "Sampling goldens"): temperature 6 flattens this small model's
# peaked distributions so top-k 20 and top-p 0.9 both cut (the nucleus keeps 16 and 14 tokens at step 0)
SAMPLING = {"temperature": 6.0, "top_k": 20, "top_p": 0.9, "seed": 0}


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "sample.safetensors"
    dump_generate(BloomForCausalLM.from_pretrained(CHECKPOINT), path, IDS, MASK, steps=4, sample=True, **SAMPLING)
    return golden.load(path)


def replay_port(sampled, bugs=(), cached=True):
    t = sampled.tensors
    return GenPort(CHECKPOINT, bugs).sample(IDS, MASK, t["gen.tokens"], t["gen.draws"], SAMPLING["temperature"],
                                            SAMPLING["top_k"], SAMPLING["top_p"], cached)


def test_the_sampling_golden_is_generates_sampling_with_the_same_seed(sampled):
    model = BloomForCausalLM.from_pretrained(CHECKPOINT)
    t = sampled.tensors
    out = model.generate(IDS, MASK, max_new_tokens=4, do_sample=True, return_dict_in_generate=True, output_scores=True,
                         **SAMPLING)
    assert (out.sequences[:, IDS.shape[1]:] == t["gen.tokens"]).all() and not (t["gen.tokens"] == 2).any()  # no EOS
    assert t["gen.draws"].shape == (2, 4) and t["gen.0.token"].shape == (2,) and t["gen.3.probs"].shape == (2, 64)
    draws = np.random.default_rng(SAMPLING["seed"]).random((4, 2)).T  # generate draws rng.random(B) per step
    assert (t["gen.draws"] == draws * 2.0 ** 53).all()
    for s in range(4):
        # generate's processed scores: the same tokens removed (-inf), the logits equal up to rounding
        # (generate's prefill computes the last position's logits alone)
        np.testing.assert_allclose(t[f"gen.{s}.scores"], out.scores[s], rtol=1e-5, atol=1e-6)
        assert (t[f"gen.{s}.token"] == t["gen.tokens"][:, s]).all()
        assert 1 < (t[f"gen.{s}.probs"] > 0).sum(-1).min() and (t[f"gen.{s}.probs"] > 0).sum(-1).max() <= 20
    meta = json.loads(sampled.metadata["generate"])
    assert meta["decoding"] == "sample" and meta["seed"] == 0 and meta["top_p"] == 0.9


def test_replay_is_generations_sampler_for_any_probabilities():
    """`replay` with the same draws picks what generation.sample picks (a property over random rows)."""
    rng = np.random.default_rng(7)
    for _ in range(50):
        probs = rng.dirichlet(np.full(64, 0.3), size=3).astype(np.float32)
        probs[rng.random(probs.shape) < 0.5] = 0  # removed tokens
        probs[:, 5] += 1e-3
        seed = int(rng.integers(1 << 30))
        u = np.random.default_rng(seed).random(3)
        assert (replay(probs, u) == sample(probs, np.random.default_rng(seed))).all()


@pytest.mark.parametrize("cached", [True, False])
def test_a_port_that_replays_the_draws_passes(sampled, cached):
    port = replay_port(sampled, cached=cached)
    report = golden.compare(sampled, port)
    assert report.ok and "decoding: ok (32 tensors)" in golden.format_report(report), golden.format_report(report)
    assert all((port[f"gen.{s}.token"] == sampled.tensors["gen.tokens"][:, s]).all() for s in range(4))


@pytest.mark.parametrize("bug, first", [
    ("top_p_drops_crossing", "gen.0.scores"),  # the nucleus at step 0 holds > 1 token: the bug cuts one
    ("temperature_last", "gen.0.scores"),      # the untempered nucleus is smaller already at step 0
    ("cdf_off_by_one", "gen.0.token"),         # scores and probabilities right, the token the next one
])
def test_a_classic_sampling_bug_is_named_at_its_step_and_quantity(sampled, bug, first):
    report = golden.compare(sampled, replay_port(sampled, [bug]))
    text = golden.format_report(report, failures_only=True)
    assert report.first_divergence.name == first, text
    assert f"decoding: first divergent step 0, at {first}" in text
    assert {r.name for r in report.rows if not r.ok} >= {first}
    assert all(r.ok for r in report.rows if r.name in ("gen.0.logits", "gen.0.h.1.k"))  # the forward is right
    if bug == "cdf_off_by_one":  # a token is an id: named as one, with no float budget
        assert "the sampled token differs at batch 0: expected" in text and "(a token must match exactly)" in text


def test_the_cli_dumps_a_sampling_golden(tmp_path):
    path = tmp_path / "s.safetensors"
    run = [sys.executable, "-m", "minibloom", "golden", "dump", "--checkpoint", CHECKPOINT, "--ids", "5", "6", "7",
           "--generate", "3"]
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run(run + ["--sample", "--temperature", "6", "--top-k", "20", "--top-p", "0.9", "--seed", "3",
                                 "-o", str(path)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "3 sampled steps" in done.stdout
    model = BloomForCausalLM.from_pretrained(CHECKPOINT)
    tokens = model.generate(np.array([[5, 6, 7]]), max_new_tokens=3, do_sample=True, seed=3, temperature=6.0,
                            top_k=20, top_p=0.9)[:, 3:]
    assert (golden.load(path).tensors["gen.tokens"] == tokens).all()
    for bad, flag in ((["--sample", "--top-p", "0"], "--top-p"), (["--sample", "--temperature", "0"], "--temperature"),
                      (["--seed", "1"], "--sample")):
        done = subprocess.run(run + bad + ["-o", str(tmp_path / "x.safetensors")], capture_output=True, text=True,
                              cwd=ROOT, env=env, timeout=120)
        assert done.returncode == 2 and flag in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize("bad, word", [({"top_k": -1}, "--top-k"), ({"top_p": 1.5}, "--top-p"),
                                       ({"temperature": float("nan")}, "--temperature"), ({"seed": -3}, "--seed"),
                                       ({"temperature": True}, "--temperature")])
def test_bad_sampling_settings_are_refused_before_any_work(tmp_path, bad, word):
    model = BloomForCausalLM.from_pretrained(CHECKPOINT)
    with pytest.raises(InputError, match=word) as caught:
        dump_generate(model, tmp_path / "x.safetensors", IDS, MASK, steps=2, sample=True, **{**SAMPLING, **bad})
    assert isinstance(caught.value, ValueError) and not (tmp_path / "x.safetensors").exists()
