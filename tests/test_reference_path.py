"""The pieces that keep the reference path reading as the math: `dense` (the tensor-parallel split in
one place), `trace.unfuse` / `trace.peek` (recording what a fused op hides), and the residual adds
living in the block (attention and MLP return their own output)."""

from __future__ import annotations

import numpy as np
import pytest

from minibloom import BloomConfig, BloomModel
from minibloom.alibi import alibi_bias
from minibloom.attention import self_attention
from minibloom.backends import numpy_backend, numpy_backward
from minibloom.block import bloom_block, mlp, sub_params
from minibloom.dense import dense, dense_backward
from minibloom.explain.hooks import HookedTrace
from minibloom.functional import linear, linear_backward, linear_tp, linear_tp_backward
from minibloom.masking import causal_padding_bias
from minibloom.model import block_spec
from minibloom.trace import NO_TRACE, Trace

rng = np.random.default_rng(0)
X = rng.standard_normal((2, 3, 6), dtype=np.float32)
W = rng.standard_normal((5, 6), dtype=np.float32)
B = rng.standard_normal(5, dtype=np.float32)


def test_dense_is_linear_with_one_slice_and_linear_tp_without_bias_with_more():
    np.testing.assert_array_equal(dense(X, W, B, 1, numpy_backend), linear(X, W, B))
    np.testing.assert_array_equal(dense(X, W, B, 3, numpy_backend), linear_tp(X, W, 3))


@pytest.mark.parametrize("tp", [1, 2, 3])
def test_dense_backward_is_the_backward_of_the_op_dense_ran(tp):
    d_y = rng.standard_normal((2, 3, 5), dtype=np.float32)
    d_x, d_w, d_b = dense_backward(d_y, X, W, tp, numpy_backward)
    if tp == 1:
        want = linear_backward(d_y, X, W)
    else:
        want = (*linear_tp_backward(d_y, X, W, tp), np.zeros(5, np.float32))  # the unused bias gets 0
    for got, expected in zip((d_x, d_w, d_b), want):
        np.testing.assert_array_equal(got, expected)


def fused(x):
    return np.float32(10) * x  # stands for a kernel rounding differently from its halves


def first(x):
    return x + 1


def then(h):
    return 2 * h


def test_unfuse_runs_the_fused_op_unless_the_intermediate_is_wanted():
    assert NO_TRACE.unfuse("mid", fused, first, then) is fused
    trace = Trace()
    np.testing.assert_array_equal(trace.unfuse("mid", fused, first, then)(np.ones(2)), [4, 4])
    np.testing.assert_array_equal(trace.store["mid"], [2, 2])


def test_peek_records_beside_the_fused_op_and_patches_only_when_a_hook_replaces():
    assert NO_TRACE.peek("mid", fused, first, then) is fused
    reading = Trace()
    np.testing.assert_array_equal(reading.peek("mid", fused, first, then)(np.ones(2)), [10, 10])  # fused's value
    np.testing.assert_array_equal(reading.store["mid"], [2, 2])
    patching = HookedTrace({"mid": [lambda value, name: value * 0 + 7]}, keep=False)
    np.testing.assert_array_equal(patching.peek("mid", fused, first, then)(np.ones(2)), [14, 14])  # then(7)


@pytest.mark.parametrize("post_ln", [False, True])
def test_the_block_adds_both_residuals_to_what_attention_and_mlp_return(post_ln):
    cfg = BloomConfig(vocab_size=16, hidden_size=12, n_head=3, n_layer=1,
                      apply_residual_connection_post_layernorm=post_ln)
    model, spec = BloomModel(cfg, seed=3), block_spec(cfg)
    p, ops, eps = model.layer_params(0), numpy_backend, cfg.layer_norm_epsilon
    x = rng.standard_normal((2, 4, 12), dtype=np.float32)
    mask = np.array([[0, 1, 1, 1], [1, 1, 1, 1]])
    alibi, bias = alibi_bias(mask, 3), causal_padding_bias(mask, 4)
    ln1 = ops.layer_norm(x, p["input_layernorm.weight"], p["input_layernorm.bias"], eps)
    attn, _ = self_attention(ln1, sub_params(p, "self_attention."), alibi, bias, spec.attention, ops)
    x1 = (ln1 if post_ln else x) + attn
    ln2 = ops.layer_norm(x1, p["post_attention_layernorm.weight"], p["post_attention_layernorm.bias"], eps)
    by_hand = (ln2 if post_ln else x1) + mlp(ln2, sub_params(p, "mlp."), spec.attention, ops)
    np.testing.assert_array_equal(bloom_block(x, p, alibi, bias, spec, ops)[0], by_hand)
