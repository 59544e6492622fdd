"""A bfloat16 / float16 golden file (`golden dump --dtype`) is what transformers computes in that dtype:
checked against transformers' own half-precision forward, captured with hooks."""

from __future__ import annotations

import numpy as np
import pytest

from minibloom import BloomForCausalLM, golden
from tests.reference.reference_utils import hooked_intermediates, torch, transformers

# documented in docs/golden.md: the largest difference from transformers, in ULPs of the dtype
MAX_ULPS = {"bfloat16": 1.0, "float16": 8.0}


def small_bloom(seed: int, hidden: int, heads: int):
    model = transformers.BloomForCausalLM(transformers.BloomConfig(vocab_size=50, hidden_size=hidden, n_head=heads,
                                                                   n_layer=3)).eval()
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layernorm" in name or "ln_f" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn(p.shape))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape))
            else:
                p.copy_((0.5 if "word_embeddings" in name else 0.1) * torch.randn(p.shape))
    return model


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("seed, hidden, heads", [(0, 32, 4), (1, 48, 6)])
def test_half_precision_golden_matches_transformers_in_that_dtype(tmp_path, dtype, seed, hidden, heads):
    theirs = small_bloom(seed, hidden, heads)
    theirs.save_pretrained(tmp_path)
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 50, size=(2, 7))
    mask = np.ones_like(ids)
    mask[1, :3] = 0  # left padding
    ours = BloomForCausalLM.from_pretrained(tmp_path)
    golden.dump(ours, tmp_path / "low.safetensors", ids, mask, dtype=dtype)
    golden.dump(ours, tmp_path / "f32.safetensors", ids, mask)
    low, f32 = golden.load(tmp_path / "low.safetensors"), golden.load(tmp_path / "f32.safetensors")
    assert low.metadata["dtype"] == dtype and low.dtype_of("logits") == dtype
    port = hooked_intermediates(theirs.to(getattr(torch, dtype)), ids, mask, derived=False)  # in that dtype
    report = golden.compare(low, port, skip_missing=True, port_dtype=dtype)
    assert report.ok, golden.format_report(report, failures_only=True)
    compared = [r for r in report.rows if not r.skipped and r.compared]
    assert len(compared) >= 3 * 10 + 3
    assert max(r.max_ulp for r in compared) <= MAX_ULPS[dtype], golden.format_report(report)
    # the half-precision golden is much closer to transformers in that dtype than the float32 one
    near = {r.name: r.rel_norm for r in compared}
    far = {r.name: r.rel_norm for r in golden.compare(f32, port, skip_missing=True, port_dtype=dtype).rows}
    assert near["logits"] < far["logits"] / 2
