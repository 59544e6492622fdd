"""Live tests of the cache and generation against transformers 4.57.1."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minibloom
from minibloom.cache import KVCache
from minibloom.generation.logits_process import process_scores
from tests.conftest import assert_close
from tests.reference.reference_utils import mirror, torch, torch_bloom, transformers

PAD = 3


@st.composite
def generation_setups(draw):
    n_head = draw(st.integers(1, 4))
    config = dict(vocab_size=draw(st.integers(8, 24)), hidden_size=n_head * draw(st.integers(2, 6)), n_head=n_head,
                  n_layer=draw(st.integers(1, 2)), pad_token_id=PAD, eos_token_id=2)
    B, L = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    ids = np.array(draw(st.lists(st.lists(st.integers(4, config["vocab_size"] - 1), min_size=L, max_size=L),
                                 min_size=B, max_size=B)), np.int64)
    for b in range(B):  # mixed prompt lengths: left padding
        ids[b, :draw(st.integers(0, L - 1))] = PAD
    settings = dict(max_new_tokens=draw(st.integers(1, 8)),
                    eos_token_id=draw(st.sampled_from([2, [2], [2, 5], [6, 2, 7]])),
                    repetition_penalty=draw(st.sampled_from([1.0, 1.3])))
    if draw(st.booleans()):
        settings.update(num_beams=draw(st.integers(2, 4)), length_penalty=draw(st.sampled_from([1.0, 0.5, -0.5])),
                        early_stopping=draw(st.sampled_from([False, True, "never"])))
        settings["num_return_sequences"] = draw(st.integers(1, settings["num_beams"]))
    return config, ids, (ids != PAD).astype(np.int64), settings


@given(generation_setups(), st.integers(0, 10**6))
def test_greedy_and_beam_search_produce_transformers_token_ids(setup, seed):
    config, ids, mask, settings = setup
    ref = torch_bloom(transformers.BloomForCausalLM, seed, **config)
    with torch.no_grad():  # small embeddings keep the random model from repeating one token forever
        ref.transformer.word_embeddings.weight.mul_(0.3)
    with torch.no_grad():
        expected = ref.generate(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), do_sample=False,
                                **settings).numpy()
    got = mirror(ref, minibloom.BloomForCausalLM).generate(ids, attention_mask=mask, **settings)
    np.testing.assert_array_equal(got, expected)


@given(st.integers(0, 10**6), st.sampled_from([0.5, 1.0, 1.7]), st.sampled_from([0, 1, 5, 50]),
       st.sampled_from([1.0, 0.9, 0.5, 0.05]), st.sampled_from([1.0, 1.2, 0.8]))
def test_sampling_distributions_match_transformers_processors(seed, temperature, top_k, top_p, penalty):
    from transformers.generation import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor,
                                         TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

    rng = np.random.default_rng(seed)
    logits = (3 * rng.normal(size=(3, 40))).astype(np.float32)
    ids = rng.integers(0, 40, size=(3, 6))
    procs = LogitsProcessorList()  # transformers' own order for sampling
    if penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(penalty))
    if temperature != 1.0:
        procs.append(TemperatureLogitsWarper(temperature))
    if top_k:
        procs.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        procs.append(TopPLogitsWarper(top_p))
    expected = torch.softmax(procs(torch.from_numpy(ids), torch.from_numpy(logits.copy())), -1).numpy()
    ours = process_scores(ids, logits, True, penalty, temperature, top_k, top_p)
    e = np.exp(ours - ours.max(-1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(-1, keepdims=True), expected, atol=1e-6, rtol=0)


def test_cache_matches_dynamic_cache_both_ways():
    ref = torch_bloom(transformers.BloomForCausalLM, 1, vocab_size=30, hidden_size=16, n_head=4, n_layer=2)
    ours = mirror(ref, minibloom.BloomForCausalLM)
    ids = np.array([[4, 5, 6, 7], [8, 9, 10, 11]])
    mask = np.array([[0, 1, 1, 1], [1, 1, 1, 1]])
    with torch.no_grad():
        out = ref(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), use_cache=True)
    theirs = out.past_key_values.to_legacy_cache()
    mine = ours(ids, attention_mask=mask, use_cache=True).past_key_values.to_legacy()
    for (tk, tv), (mk, mv) in zip(theirs, mine, strict=True):
        assert_close(mk, tk.numpy(), "key")
        assert_close(mv, tv.numpy(), "value")
    # continue from transformers' cache in minibloom, and compare with transformers continuing
    step = np.array([[12], [13]])
    full_mask = np.concatenate([mask, np.ones((2, 1), int)], axis=1)
    cache = KVCache.from_legacy([(k.numpy(), v.numpy()) for k, v in theirs])
    with torch.no_grad():
        expected = ref(torch.from_numpy(step), attention_mask=torch.from_numpy(full_mask),
                       past_key_values=out.past_key_values).logits.numpy()
    assert_close(ours(step, attention_mask=full_mask, past_key_values=cache).logits, expected, "logits")
