"""Gradients and AdamW steps against torch's, as torch wrote them (tests/hf_expected/grads/)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from safetensors.numpy import load_file

import minibloom
from minibloom.training import AdamW, value_and_grad
from tests.conftest import HF_EXPECTED_DIR, assert_close

GRADS_DIR = os.path.join(HF_EXPECTED_DIR, "grads")
REGENERATE = "python tests/reference/make_hf_grads.py"
with open(os.path.join(GRADS_DIR, "MANIFEST.json")) as f:
    MANIFEST = json.load(f)


def split(tensors: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("case", sorted(MANIFEST["cases"]))
def test_gradients_match_torch_autograd(case, backend):
    cls = getattr(minibloom, MANIFEST["cases"][case])
    model = cls.from_pretrained(os.path.join(GRADS_DIR, case), backend=backend)
    expected = load_file(os.path.join(GRADS_DIR, case, "expected.safetensors"))
    loss, grads = value_and_grad(model, **split(expected, "input/"))
    want = float(expected["loss"])
    assert abs(float(loss) - want) <= 1e-5 * max(1.0, abs(want)), f"{case}: loss {loss} != {want} ({REGENERATE})"
    want = split(expected, "grad/")
    assert set(grads) == set(want) == set(model.params)
    for name, g in want.items():
        assert_close(grads[name], g, f"{case}: d loss / d {name}")


def test_hf_cases_cover_every_head_and_option():
    configs = {c: minibloom.BloomConfig.from_pretrained(os.path.join(GRADS_DIR, c)) for c in MANIFEST["cases"]}
    assert set(MANIFEST["cases"].values()) == {"BloomForCausalLM", "BloomForSequenceClassification",
                                               "BloomForTokenClassification", "BloomForQuestionAnswering"}
    assert {c.tie_word_embeddings for c in configs.values()} == {True, False}
    assert any(c.pretraining_tp == 2 and c.slow_but_exact for c in configs.values())
    assert any(c.apply_residual_connection_post_layernorm for c in configs.values())
    assert any(c.n_head & (c.n_head - 1) for c in configs.values())  # a head count not a power of two
    inputs = [load_file(os.path.join(GRADS_DIR, c, "expected.safetensors")) for c in MANIFEST["cases"]]
    assert any("input/head_mask" in t for t in inputs)
    assert any((t["input/attention_mask"][:, 0] == 0).any() for t in inputs)  # left padding
    tp = load_file(os.path.join(GRADS_DIR, "causal_lm_tp2_slow", "expected.safetensors"))
    assert not tp["grad/h.0.self_attention.dense.bias"].any()  # the biases slow_but_exact drops get no gradient


def test_adamw_ten_steps_match_torch():
    expected = load_file(os.path.join(GRADS_DIR, "adamw", "expected.safetensors"))
    params = {k: v.copy() for k, v in split(expected, "init/").items()}
    kw = MANIFEST["adamw"]
    opt = AdamW(params, lr=kw["lr"], betas=tuple(kw["betas"]), eps=kw["eps"], weight_decay=kw["weight_decay"])
    for step in range(10):
        opt.step(split(expected, f"step{step}/grad/"))
        for name, want in split(expected, f"step{step}/param/").items():
            np.testing.assert_allclose(params[name], want, rtol=0, atol=1e-6, err_msg=f"{name} after step {step + 1}")
