"""KV cache: for any split of a sequence into chunks, cached logits equal the full forward's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibloom import BloomConfig, BloomForCausalLM, InputError
from minibloom.cache import KVCache
from tests.test_model_properties import random_model


@st.composite
def split_points(draw, T):
    cuts = sorted(set(draw(st.lists(st.integers(1, T - 1), max_size=4)))) if T > 1 else []
    return [0, *cuts, T]


@given(st.integers(1, 3), st.integers(1, 12), st.integers(0, 10**6), st.data())
def test_chunked_decoding_with_the_cache_equals_the_full_forward(B, T, seed, data):
    model = random_model(n_head=data.draw(st.integers(1, 4)), head_dim=4, n_layer=2, seed=seed)
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 50, size=(B, T))
    mask = np.ones((B, T), np.int64)
    for b in range(B):  # left padding, as in batched generation
        mask[b, :data.draw(st.integers(0, T - 1))] = 0
    full = model(ids, attention_mask=mask, use_cache=False).last_hidden_state
    cuts = data.draw(split_points(T))
    cache = KVCache.for_config(model.config, B, T)
    parts = [model(ids[:, a:b], attention_mask=mask[:, :b], past_key_values=cache).last_hidden_state
             for a, b in zip(cuts, cuts[1:])]
    chunked = np.concatenate(parts, axis=1)
    real = mask == 1  # pad *queries* attend uniformly to however many keys exist, in transformers too
    np.testing.assert_allclose(chunked[real], full[real], atol=1e-5, rtol=0)
    assert cache.length == T


def test_model_made_cache_grows_and_a_fixed_one_refuses_to_overflow():
    model = BloomForCausalLM(BloomConfig(vocab_size=20, hidden_size=8, n_head=2, n_layer=1))
    out = model(np.array([[1, 2, 3]]), use_cache=True)
    cache = out.past_key_values
    assert (cache.length, cache.capacity, cache.growable) == (3, 3, True)
    model(np.array([[4]]), attention_mask=np.ones((1, 4)), past_key_values=cache)
    assert (cache.length, cache.capacity) == (4, 6)
    fixed = KVCache.for_config(model.config, 1, 4)
    model(np.array([[1, 2, 3]]), past_key_values=fixed)
    with pytest.raises(InputError, match="holds 4 positions; 3 are used and 2 more do not fit"):
        model(np.array([[4, 5]]), attention_mask=np.ones((1, 5)), past_key_values=fixed)


def test_cache_input_errors_are_named():
    model = BloomForCausalLM(BloomConfig(vocab_size=20, hidden_size=8, n_head=2, n_layer=1))
    cache = model(np.array([[1, 2]]), use_cache=True).past_key_values
    with pytest.raises(InputError, match=r"attention_mask has shape \(1, 1\), expected \(1, 3\)"):
        model(np.array([[3]]), attention_mask=np.ones((1, 1)), past_key_values=cache)
    with pytest.raises(InputError, match="holds 1 rows, the input has 2"):
        model(np.array([[3], [4]]), past_key_values=cache)
    with pytest.raises(InputError, match="must be a minibloom KVCache"):
        model(np.array([[3]]), past_key_values=((np.zeros(1), np.zeros(1)),))


def test_legacy_layout_round_trip_continues_decoding_identically():
    model = random_model(n_head=2, head_dim=4, n_layer=2, seed=3)
    lm = BloomForCausalLM(model.config, {**model.params})
    ids = np.array([[5, 6, 7, 8]])
    cache = lm(ids[:, :3], use_cache=True).past_key_values
    legacy = cache.to_legacy()
    assert len(legacy) == 2 and legacy[0][0].shape == (1, 2, 3, 4)  # [B, N, P, D] per layer
    rebuilt = KVCache.from_legacy(legacy)
    a = lm(ids[:, 3:], attention_mask=np.ones((1, 4)), past_key_values=cache).logits
    b = lm(ids[:, 3:], attention_mask=np.ones((1, 4)), past_key_values=rebuilt).logits
    np.testing.assert_array_equal(a, b)


def test_reorder_gives_each_row_its_parents_past():
    cache = KVCache(n_layer=1, batch=3, n_head=1, head_dim=1, capacity=4)
    cache.update(0, np.arange(6, dtype=np.float32).reshape(3, 1, 2, 1), np.zeros((3, 1, 2, 1), np.float32), 0)
    cache.length = 2
    cache.reorder(np.array([2, 2, 0]))
    assert cache.keys[0][:, 0, :2, 0].tolist() == [[4, 5], [4, 5], [0, 1]]
