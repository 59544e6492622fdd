"""The embedded checkpoint: small, documented, and as good on held-out text as its record says."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from minibloom import EMBEDDED_CHECKPOINT, BloomForCausalLM, BloomTokenizer, InputError
from minibloom.perplexity import perplexity

HELD_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "heldout", "tempest.txt")
META = json.load(open(os.path.join(EMBEDDED_CHECKPOINT, "metadata.json")))


def test_checkpoint_is_small_float16_with_its_tokenizer_and_provenance():
    files = os.listdir(EMBEDDED_CHECKPOINT)
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(files)
    assert os.path.getsize(os.path.join(EMBEDDED_CHECKPOINT, "model.safetensors")) <= 10_000_000
    lm = BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT, storage="float16")
    assert all(p.dtype == np.float16 for p in lm.params.values() if p.ndim == 2)  # used as stored
    assert "public domain" in META["source"] and META["held_out"] == "tempest_gut.txt"


def test_held_out_perplexity_stays_at_the_documented_value():
    tok = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
    lm = BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT, backend="numba")
    ids = np.array(tok.encode(open(HELD_OUT, encoding="utf-8").read()))
    assert len(ids) == META["held_out_tokens"]
    ppl = perplexity(lm, ids, window=META["seq_len"])
    print(f"held-out perplexity on The Tempest: {ppl:.2f} (documented {META['held_out_perplexity']})")
    assert ppl <= META["held_out_perplexity"] * 1.001
    assert ppl < 0.05 * lm.config.vocab_size  # far better than guessing among the 4096 tokens


def test_perplexity_by_hand():
    lm = BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT)
    ids = np.array([5, 9, 40, 41, 7, 300, 12])
    logits = lm(ids[None]).logits[0].astype(np.float64)  # one window: predictions for ids[1:]
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(
        -1, keepdims=True)
    by_hand = np.exp(-logp[np.arange(6), ids[1:]].mean())
    assert abs(perplexity(lm, ids, window=16) - by_hand) < 1e-3 * by_hand
    with pytest.raises(InputError):
        perplexity(lm, ids[:1])
