"""Properties of the forward pass that need no reference implementation."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minibloom import BloomConfig, BloomModel
from minibloom.weights import bloom_param_shapes

V = 50


def random_model(n_head: int, head_dim: int, n_layer: int, seed: int, **extra) -> BloomModel:
    """A model with spread-out weights and non-zero biases (the default init makes many terms vanish)."""
    config = BloomConfig(vocab_size=V, hidden_size=n_head * head_dim, n_head=n_head, n_layer=n_layer, **extra)
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in bloom_param_shapes(config).items():
        scale = 1.0 if name.startswith("word_embeddings.") else 0.2
        base = 1.0 if ("layernorm" in name or "ln_f" in name) and name.endswith("weight") else 0.0
        params[name] = (base + scale * rng.normal(size=shape)).astype(np.float32)
    return BloomModel(config, params)


models = st.builds(random_model, n_head=st.integers(1, 6), head_dim=st.integers(1, 6), n_layer=st.integers(1, 2),
                   seed=st.integers(0, 10**6), apply_residual_connection_post_layernorm=st.booleans())


@given(models, st.integers(2, 10), st.data())
def test_causality_changing_token_t_changes_nothing_before_t(model, T, data):
    ids = np.array([data.draw(st.lists(st.integers(0, V - 1), min_size=T, max_size=T))])
    t = data.draw(st.integers(0, T - 1))
    changed = ids.copy()
    changed[0, t] = (ids[0, t] + 1) % V
    a, b = model(ids).last_hidden_state, model(changed).last_hidden_state
    np.testing.assert_array_equal(a[:, :t], b[:, :t])


@given(models, st.integers(1, 8), st.integers(1, 5), st.data())
def test_left_padding_leaves_real_tokens_unchanged(model, T, pad, data):
    ids = np.array([data.draw(st.lists(st.integers(0, V - 1), min_size=T, max_size=T))])
    pad_ids = np.array([data.draw(st.lists(st.integers(0, V - 1), min_size=pad, max_size=pad))])
    padded = np.concatenate([pad_ids, ids], axis=1)
    mask = np.concatenate([np.zeros((1, pad), np.int64), np.ones((1, T), np.int64)], axis=1)
    alone = model(ids).last_hidden_state
    together = model(padded, attention_mask=mask).last_hidden_state[:, pad:]
    np.testing.assert_allclose(together, alone, atol=1e-5, rtol=0)


@given(models, st.integers(1, 8), st.integers(1, 5), st.data())
def test_right_padding_leaves_real_tokens_unchanged(model, T, pad, data):
    ids = np.array([data.draw(st.lists(st.integers(0, V - 1), min_size=T + pad, max_size=T + pad))])
    mask = np.concatenate([np.ones((1, T), np.int64), np.zeros((1, pad), np.int64)], axis=1)
    alone = model(ids[:, :T]).last_hidden_state
    padded = model(ids, attention_mask=mask).last_hidden_state[:, :T]
    np.testing.assert_allclose(padded, alone, atol=1e-5, rtol=0)


@given(models, st.integers(2, 4), st.integers(1, 6), st.data())
def test_batch_rows_are_independent(model, B, T, data):
    ids = np.array(data.draw(st.lists(st.lists(st.integers(0, V - 1), min_size=T, max_size=T), min_size=B,
                                      max_size=B)))
    batch = model(ids).last_hidden_state
    for b in range(B):
        np.testing.assert_allclose(batch[b:b + 1], model(ids[b:b + 1]).last_hidden_state, atol=1e-5, rtol=0)


@given(st.integers(0, 10**6))
def test_zeroing_a_head_equals_removing_its_contribution(seed):
    """head_mask 0 for head n == zeroing the dense-input columns that head n's context feeds."""
    model = random_model(n_head=3, head_dim=4, n_layer=1, seed=seed)
    ids = np.random.default_rng(seed).integers(0, V, size=(2, 5))
    head_mask = np.array([1.0, 0.0, 1.0])
    masked = model(ids, head_mask=head_mask).last_hidden_state
    pruned_params = dict(model.params)
    w = pruned_params["h.0.self_attention.dense.weight"].copy()
    w[:, 4:8] = 0.0  # head 1's context occupies hidden columns [4, 8)
    pruned_params["h.0.self_attention.dense.weight"] = w
    pruned = BloomModel(model.config, pruned_params)(ids).last_hidden_state
    np.testing.assert_allclose(masked, pruned, atol=1e-5, rtol=0)
    assert np.abs(masked - model(ids).last_hidden_state).max() > 1e-3  # the head mattered


def test_fully_padded_query_rows_attend_uniformly():
    model = random_model(n_head=2, head_dim=4, n_layer=1, seed=0)
    mask = np.array([[0, 0, 1, 1]])
    probs = model(np.array([[1, 2, 3, 4]]), attention_mask=mask, output_attentions=True).attentions[0]
    np.testing.assert_allclose(probs[0, :, :2, :], 0.25, atol=1e-7)  # pad queries see all 4 keys equally
    assert np.all(probs[0, :, 2:, :2] == 0)  # real queries never see pads


def test_inputs_embeds_equals_looking_up_the_ids():
    model = random_model(n_head=2, head_dim=4, n_layer=2, seed=5)
    ids = np.array([[3, 1, 4, 1, 5]])
    embeds = model.params["word_embeddings.weight"][ids]
    np.testing.assert_array_equal(model(inputs_embeds=embeds).last_hidden_state, model(ids).last_hidden_state)


def test_hidden_states_end_with_ln_f_and_attentions_have_key_length():
    model = random_model(n_head=2, head_dim=4, n_layer=3, seed=7)
    out = model(np.array([[1, 2, 3]]), output_hidden_states=True, output_attentions=True)
    assert len(out.hidden_states) == 4 and np.array_equal(out.hidden_states[-1], out.last_hidden_state)
    assert [a.shape for a in out.attentions] == [(1, 2, 3, 3)] * 3
    assert out.to_tuple()[0] is out.last_hidden_state and out["attentions"] is out.attentions
