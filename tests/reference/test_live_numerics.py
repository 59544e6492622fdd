"""Numerics at the edges, against transformers in float32: float16 checkpoints with large
activations stay finite (minibloom computes in float32, whatever the storage), and rows that are
all padding give the same finite values transformers gives."""

from __future__ import annotations

import numpy as np
import pytest

from minibloom import BloomForCausalLM
from tests.conftest import assert_close
from tests.reference.reference_utils import torch, torch_bloom, transformers


@pytest.mark.parametrize("storage", ["float32", "float16"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_float16_checkpoint_with_large_activations_stays_finite(tmp_path, backend, storage):
    theirs = torch_bloom(transformers.BloomForCausalLM, 3, vocab_size=40, hidden_size=32, n_head=4, n_layer=2)
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            if p.ndim == 2:
                p.mul_(300.0)  # activations in the thousands: float16 arithmetic would overflow
    theirs.half().save_pretrained(tmp_path)
    reference = transformers.BloomForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    ids = np.array([[1, 5, 9, 30, 2], [3, 3, 8, 8, 7]])
    mask = np.array([[1, 1, 1, 1, 1], [0, 0, 0, 0, 0]])  # the second row is all padding
    with torch.no_grad():
        expected = reference(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
    assert np.isfinite(expected).all()
    ours = BloomForCausalLM.from_pretrained(tmp_path, backend=backend, storage=storage)
    got = ours(ids, attention_mask=mask).logits
    assert np.isfinite(got).all()
    assert_close(got, expected, f"{backend}/{storage} logits", atol=1e-5)
