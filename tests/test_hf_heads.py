"""The four task heads against transformers' outputs and losses, as transformers wrote them (tests/hf_expected/)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import minibloom
from tests.conftest import HF_EXPECTED_DIR, assert_close
from tests.test_hf_model import load_expected

with open(os.path.join(HF_EXPECTED_DIR, "MANIFEST.json")) as f:
    HEAD_CASES = json.load(f)["head_cases"]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("case", sorted(HEAD_CASES))
def test_head_logits_and_losses_match_transformers(case, backend):
    cls = getattr(minibloom, HEAD_CASES[case])
    model = cls.from_pretrained(os.path.join(HF_EXPECTED_DIR, case), backend=backend)
    for set_name, data in load_expected(case).items():
        out = model(**data["input"])
        for field, expected in data["output"].items():
            got = getattr(out, field)
            if field == "loss":
                if np.isnan(expected):
                    assert np.isnan(got), f"{case}/{set_name}: transformers gives NaN, got {got}"
                else:
                    assert abs(got - expected) <= 1e-5 * max(1.0, abs(float(expected))), \
                        f"{case}/{set_name}/loss: {got} != {expected}"
            else:
                assert_close(got, expected, f"{case}/{set_name}/{field}")


def test_head_cases_cover_both_lm_head_layouts_and_every_problem_type():
    from minibloom.safetensors_io import read_header

    tied, _ = read_header(os.path.join(HF_EXPECTED_DIR, "causal_lm_tied", "model.safetensors"))
    untied, _ = read_header(os.path.join(HF_EXPECTED_DIR, "causal_lm_untied", "model.safetensors"))
    assert "lm_head.weight" not in tied and "lm_head.weight" in untied
    assert all(n.startswith("transformer.") or "." not in n.split(".", 1)[0] for n in tied)
    kinds = {load_expected(c)["labels"]["input"]["labels"].dtype.kind
             for c in HEAD_CASES if c.startswith("seq_cls")}
    assert kinds == {"f", "i"}
