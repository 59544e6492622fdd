"""The hub cache that tests/test_hub.py builds is one transformers itself reads offline: the layout is real."""

from __future__ import annotations

import numpy as np

from minibloom import EMBEDDED_CHECKPOINT, BloomForCausalLM, BloomTokenizer
from tests.hub_utils import make_hub_cache
from tests.reference.reference_utils import torch, transformers

REPO = "bigscience-test/tiny-bloom"


def test_transformers_and_minibloom_load_the_same_hub_name_from_one_cache(tmp_path, monkeypatch):
    saved = tmp_path / "saved"
    BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT).save_pretrained(saved)
    BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT).save_pretrained(saved)
    cache = str(tmp_path / "cache")
    make_hub_cache(cache, REPO, str(saved))
    monkeypatch.setenv("HF_HUB_CACHE", cache)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    theirs = transformers.BloomForCausalLM.from_pretrained(REPO, cache_dir=cache, local_files_only=True).eval()
    their_tok = transformers.AutoTokenizer.from_pretrained(REPO, cache_dir=cache, local_files_only=True)
    ours, our_tok = BloomForCausalLM.from_pretrained(REPO), BloomTokenizer.from_pretrained(REPO)
    text = "ROMEO.\nWhat light"
    ids = our_tok.encode(text)
    assert ids == their_tok(text)["input_ids"]
    with torch.no_grad():
        expected = theirs(torch.tensor([ids])).logits.numpy()
    got = ours(np.array([ids])).logits
    assert np.abs(got - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())
