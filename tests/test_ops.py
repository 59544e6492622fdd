"""The small ops against values checkable by hand (transformers' numbers from REFERENCE_NOTES)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minibloom.alibi import alibi_bias, alibi_positions, alibi_slopes
from minibloom.attention import merge_heads, split_heads
from minibloom.functional import bloom_gelu, layer_norm, linear, linear_tp, softmax
from minibloom.masking import MASK_VALUE, causal_padding_bias


def test_alibi_slopes_power_of_two_are_the_geometric_sequence():
    assert np.array_equal(alibi_slopes(8), np.float32(2.0) ** -np.arange(1, 9, dtype=np.float32))


def test_alibi_slopes_match_transformers_float32_values_for_16_and_12_heads():
    # transformers' torch.pow in float32 gives 0.49999997, not 0.5, for the second of 16 heads.
    s16 = alibi_slopes(16)
    assert s16[0] == np.float32(0.70710677) and s16[1] == np.float32(0.49999997)
    # the notes print 8 digits, so compare within 1 ULP of the printed value
    expected12 = [2.0 ** -k for k in range(1, 9)] + [0.70710677, 0.35355338, 0.17677669, 0.08838834]
    np.testing.assert_array_max_ulp(alibi_slopes(12), np.array(expected12, dtype=np.float32), maxulp=1)
    assert np.array_equal(alibi_slopes(12)[:8], np.float32(2.0) ** -np.arange(1, 9, dtype=np.float32))


@given(st.integers(1, 300))
def test_alibi_slopes_count_and_range(n_head):
    s = alibi_slopes(n_head)
    assert s.shape == (n_head,) and s.dtype == np.float32
    assert np.all((s > 0) & (s < 1))


def test_alibi_positions_skip_padding_as_transformers_does():
    mask = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [1, 0, 1, 1, 0]])
    assert alibi_positions(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4], [0, 0, 1, 2, 0]]
    head0 = alibi_bias(mask, 12)[:, 0, 0, :]
    assert head0.tolist() == [[0, 0, 0, .5, 1], [0, .5, 1, 1.5, 2], [0, 0, .5, 1, 0]]


def test_non_binary_mask_changes_positions_like_torch():
    assert alibi_positions(np.array([[2, 2, 2]])).tolist() == [[2, 6, 10]]  # (cumsum - 1) * mask
    assert alibi_positions(np.array([[1.0, 0.5, 1.0]], dtype=np.float32)).tolist() == [[0.0, 0.25, 1.5]]


def test_mask_is_causal_and_hides_padding_with_finfo_min():
    bias = causal_padding_bias(np.array([[0, 1, 1]]), query_length=3)[0, 0]
    m = MASK_VALUE
    assert bias.tolist() == [[m, m, m], [m, 0, m], [m, 0, 0]]


def test_mask_with_past_lets_new_queries_see_every_past_key():
    bias = causal_padding_bias(np.ones((1, 5)), query_length=2, past_length=3)[0, 0]
    assert (bias == 0).tolist() == [[True] * 4 + [False], [True] * 5]


def test_fully_masked_row_softmaxes_to_uniform_not_nan():
    scores = np.array([[0.3, -2.0, 5.0]], np.float32) + np.float32(MASK_VALUE)
    assert np.allclose(softmax(scores), 1 / 3)


def test_softmax_is_shift_invariant_and_normalised():
    x = np.random.default_rng(0).integers(-40, 40, size=(4, 9)).astype(np.float32) / 8  # x + 512 is exact
    assert np.allclose(softmax(x).sum(-1), 1, atol=1e-6)
    assert np.allclose(softmax(x), softmax(x + 512), atol=1e-6)


def test_bloom_gelu_hand_values():
    x = np.array([0.0, 1.0, -1.0, 3.0], np.float32)
    by_hand = [0.5 * v * (1 + np.tanh(0.79788456 * v * (1 + 0.044715 * v * v))) for v in x.tolist()]
    assert np.allclose(bloom_gelu(x), by_hand, atol=1e-7)
    assert bloom_gelu(x).dtype == np.float32


def test_layer_norm_normalises_then_scales_and_shifts():
    x = np.array([[1.0, 2.0, 3.0, 6.0]], np.float32)
    y = layer_norm(x, np.ones(4, np.float32), np.zeros(4, np.float32), 0.0)
    assert np.allclose(y.mean(), 0, atol=1e-6) and np.allclose(y.var(), 1, atol=1e-5)
    y2 = layer_norm(x, np.full(4, 2, np.float32), np.full(4, 1, np.float32), 0.0)
    assert np.allclose(y2, 2 * y + 1, atol=1e-6)


def test_linear_uses_torch_weight_layout():
    x = np.array([[[1.0, 2.0]]], np.float32)
    w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)  # [out=3, in=2]
    assert linear(x, w, np.array([0, 0, 10], np.float32)).tolist() == [[[1.0, 2.0, 13.0]]]


@given(st.integers(1, 4), st.integers(1, 3))
def test_linear_tp_equals_linear_without_bias(tp, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 3, 12)).astype(np.float32)
    w = rng.normal(size=(5, 12)).astype(np.float32)
    assert np.allclose(linear_tp(x, w, tp), linear(x, w), atol=1e-5)


def test_split_heads_reads_the_per_head_interleaved_layout():
    B, T, N, D = 1, 2, 3, 4
    fused = np.arange(B * T * 3 * N * D, dtype=np.float32).reshape(B, T, 3 * N * D)
    q, k, v = split_heads(fused, N)
    # row (head n, slot s, dim d) sits at column n*3D + s*D + d
    assert q[0, 1, 0, 2] == fused[0, 0, 1 * 3 * D + 0 * D + 2]
    assert k[0, 2, 1, 0] == fused[0, 1, 2 * 3 * D + 1 * D + 0]
    assert v[0, 0, 1, 3] == fused[0, 1, 0 * 3 * D + 2 * D + 3]
    assert merge_heads(q).shape == (B, T, N * D)
