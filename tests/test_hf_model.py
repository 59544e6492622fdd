"""BloomModel against the outputs transformers wrote to tests/hf_expected/ (no torch needed).

Each case in tests/hf_expected/ is a tiny checkpoint written by transformers' save_pretrained (single
file or sharded; with or without the `transformer.` prefix; float32, float16, bfloat16) plus its
float32 outputs on fixed inputs: plain, right-padded, left-padded, head_mask, inputs_embeds.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from tests.conftest import HF_EXPECTED_DIR, assert_close, hf_cases

from minibloom import BloomModel
from minibloom.safetensors_io import load_file


def load_expected(case: str) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """expected.safetensors -> {input set: {"input": {...}, "output": {...}}}."""
    sets: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for key, value in load_file(os.path.join(HF_EXPECTED_DIR, case, "expected.safetensors")).items():
        set_name, kind, name = key.split("/")
        sets.setdefault(set_name, {"input": {}, "output": {}})[kind][name] = value
    return sets


def stored_dtype(case: str) -> str:
    """The dtype the case's checkpoint holds (its 2-byte storage keeps every value exact)."""
    return {"bf16": "bfloat16", "fp16": "float16"}.get(case, "float32")


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("storage", ["float32", "as stored"])
@pytest.mark.parametrize("case", hf_cases())
def test_bloom_model_matches_transformers_outputs(case, backend, storage):
    storage = stored_dtype(case) if storage == "as stored" else storage
    model = BloomModel.from_pretrained(os.path.join(HF_EXPECTED_DIR, case), backend=backend, storage=storage)
    for set_name, data in load_expected(case).items():
        inputs = {k: (v.astype(np.int64) if k in ("input_ids", "attention_mask") else v)
                  for k, v in data["input"].items()}
        out = model(**inputs, output_hidden_states=True, output_attentions=True)
        expected = data["output"]
        assert_close(out.last_hidden_state, expected["last_hidden_state"], f"{case}/{set_name}/last_hidden_state")
        assert len(out.hidden_states) == model.config.n_layer + 1
        for i, h in enumerate(out.hidden_states):
            assert_close(h, expected[f"hidden_states.{i}"], f"{case}/{set_name}/hidden_states.{i}")
        for i, a in enumerate(out.attentions):
            assert_close(a, expected[f"attentions.{i}"], f"{case}/{set_name}/attentions.{i}")


def test_hf_cases_cover_the_required_checkpoint_kinds():
    """The fixture set itself: a power-of-two and a non-power-of-two head count, tp=2 slow_but_exact,
    post-LN residual, bf16, fp16, sharded, and both name layouts."""
    configs = {case: BloomModel.from_pretrained(os.path.join(HF_EXPECTED_DIR, case)).config for case in hf_cases()}
    assert any(c.n_head == 8 for c in configs.values())
    assert any(c.n_head in (6, 12) for c in configs.values())
    assert any(c.pretraining_tp == 2 and c.slow_but_exact for c in configs.values())
    assert any(c.apply_residual_connection_post_layernorm for c in configs.values())
    files = {case: os.listdir(os.path.join(HF_EXPECTED_DIR, case)) for case in configs}
    assert any("model.safetensors.index.json" in f for f in files.values())
    from minibloom.safetensors_io import read_header
    dtypes = set()
    prefixed = set()
    for case in configs:
        path = os.path.join(HF_EXPECTED_DIR, case, "model.safetensors")
        if os.path.exists(path):
            infos, _ = read_header(path)
            dtypes |= {i.dtype for i in infos.values()}
            prefixed |= {n.startswith("transformer.") for n in infos}
    assert {"F32", "F16", "BF16"} <= dtypes
    assert prefixed == {True, False}
