"""What slowed a C porter (issue 29): a FAIL line prints the bound actually applied, the budget's
precision is always stated with its reason (a port's stored dtype never changes it silently), masked
score entries print as "masked", and `minibloom info` prints the residual option and the epsilon."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from minibloom import BloomConfig, BloomForCausalLM, golden
from minibloom.embedded import EMBEDDED_CHECKPOINT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDS = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]])
MASK = np.array([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    model = BloomForCausalLM(BloomConfig(vocab_size=40, hidden_size=24, n_head=4, n_layer=2), seed=3)
    path = tmp_path_factory.mktemp("g") / "golden.safetensors"
    golden.dump(model, path, IDS, MASK)
    return golden.load(path)


def numbers(line: str, *keys: str) -> list[float]:
    return [float(re.search(re.escape(k) + r" ([-0-9.e+]+)", line).group(1)) for k in keys]


def fail_line(report) -> str:
    return next(x for x in golden.format_report(report).splitlines() if x.startswith("FAIL: first divergence"))


def test_the_fail_line_prints_the_bound_applied_and_it_recomputes_the_headroom(expected):
    port = {k: v.copy() for k, v in expected.tensors.items()}
    port["h.1.mlp.gelu"][1, 3, 7] += 1e-3
    line = fail_line(golden.compare(expected, port))
    assert "h.1.mlp.gelu (batch 1, token 3, channel 7)" in line
    diff, allowed, rms, e, headroom = numbers(line, "|diff|", "allowed", "rms", "|expected|", "headroom")
    tol = float(re.search(r"= ([-0-9.e+]+) \* \(rms", line).group(1))
    assert tol == pytest.approx(golden.default_tolerance("h.1.mlp.gelu", 2, "float32"), rel=1e-2)
    assert allowed == pytest.approx(tol * (rms + e), rel=1e-2)  # the printed terms give the bound...
    assert headroom == pytest.approx(diff / allowed, rel=1e-2)  # ...and the bound the headroom
    assert diff == pytest.approx(1e-3, rel=1e-3) and "float32 budget" in line
    explicit = fail_line(golden.compare(expected, port, atol=1e-5, rtol=1e-3))
    diff, atol, rtol, e, allowed, headroom = numbers(explicit, "|diff|", "atol", "rtol", "|expected|", "allowed",
                                                     "headroom")
    assert allowed == pytest.approx(atol + rtol * e, rel=1e-4) and headroom == pytest.approx(diff / allowed, rel=1e-2)


def test_the_precision_of_the_budget_is_stated_with_its_reason(expected):
    """A float32 port storing float16 is budgeted as float16 only when --port-dtype is not given, and
    the report says so; with --port-dtype float32 its storage rounding is allowed, not float16's budget."""
    with np.errstate(over="ignore"):  # the masked scores' float32 min becomes -inf, a mask value too
        as_f16 = {k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in expected.tensors.items()}
    silent = golden.format_report(golden.compare(expected, as_f16))
    assert re.search(r"precision: float16 for \d+ tensors \('embeddings', .*because the port stored them as "
                     r"float16 \(budget 0.04, float32's is 1e-05; .*--port-dtype float32\)", silent)
    told = golden.compare(expected, as_f16, port_dtype="float32")
    assert told.ok  # a correct float32 port that stores float16: its rounding is allowed on top
    text = golden.format_report(told)
    assert re.search(r"precision: float32 for \d+ tensors, as --port-dtype says; stored as float16: half its ULP",
                     text)
    bad = {k: v.copy() for k, v in as_f16.items()}  # a 1 % error: past float16 storage, under float16's budget
    bad["h.0.mlp.gelu"] = (expected.tensors["h.0.mlp.gelu"] * 1.01).astype(np.float16)
    assert golden.compare(expected, bad).ok  # what the float16 budget lets through...
    caught = golden.compare(expected, bad, port_dtype="float32")
    assert caught.first_divergence.name == "h.0.mlp.gelu"  # ...the float32 budget plus storage catches
    assert "+ half a storage ULP" in fail_line(caught)
    same = golden.format_report(golden.compare(expected, expected.tensors))
    assert re.search(r"precision: float32 for \d+ tensors, because the port stored them as float32\n", same)


def test_a_masked_score_prints_as_masked(expected):
    port = {k: v.copy() for k, v in expected.tensors.items()}
    port["h.0.self_attention.scores"][1, 2, 3, 0] = 0.5  # a padding key the port forgot to mask
    line = fail_line(golden.compare(expected, port))
    assert "h.0.self_attention.scores (batch 1, head 2, token 3, key 0; the key is padding): expected masked, " \
           "got 0.5" in line
    assert "3.40282" not in line and "holds a mask value: -inf, or at most half" in line
    port = {k: v.copy() for k, v in expected.tensors.items()}
    port["h.0.self_attention.scores"][0, 0, 1, 1] = -np.inf  # an allowed key masked: got "masked"
    assert "expected" in (line := fail_line(golden.compare(expected, port))) and "got -inf" in line


def test_info_prints_the_residual_option_and_the_epsilon():
    run = [sys.executable, "-m", "minibloom", "info", EMBEDDED_CHECKPOINT]
    env = {**os.environ, "PYTHONPATH": ROOT}
    text = subprocess.run(run, capture_output=True, text=True, env=env, cwd=ROOT, check=True).stdout
    config = json.load(open(os.path.join(EMBEDDED_CHECKPOINT, "config.json")))
    assert re.search(r"layer_norm_epsilon\s+" + re.escape(str(config["layer_norm_epsilon"])), text)
    assert re.search(r"apply_residual_connection_post_layernorm\s+False", text)
    summary = json.loads(subprocess.run(run + ["--json"], capture_output=True, text=True, env=env, cwd=ROOT,
                                        check=True).stdout)
    assert summary["layer_norm_epsilon"] == config["layer_norm_epsilon"]
    assert summary["apply_residual_connection_post_layernorm"] is False
