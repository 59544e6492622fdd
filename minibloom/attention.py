"""BLOOM self-attention: fused QKV projection, ALiBi-biased scores, masked softmax, output dense.

    scores[b, n, t, s] = q[b,n,t] . k[b,n,s] / sqrt(D) + slope[n] * pos[b, s] + mask[b, t, s]
    probs = softmax_s(scores) * head_mask[n]
    out   = dense(concat_n(probs @ v))                    (the block adds it to the residual stream)

Shape legend: B batch, T query length, S key length, H hidden, N heads, D head_dim = H / N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from .cache import CacheSlot
from .dense import dense, dense_backward
from .functional import softmax
from .trace import NO_TRACE, Trace


@dataclass(frozen=True)
class AttentionSpec:
    """The attention hyper-parameters a layer needs (taken from BloomConfig)."""

    n_head: int
    pretraining_tp: int = 1
    slow_but_exact: bool = False

    @property
    def tp(self) -> int:
        """The column slices the output projections sum over (`dense.py`): pretraining_tp when
        slow_but_exact, else 1 (a plain linear layer)."""
        return self.pretraining_tp if self.slow_but_exact else 1


def split_heads(fused_qkv: np.ndarray, n_head: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[B, T, 3H] -> q, k, v, each [B, N, T, D].

    subtle: the fused weight is laid out per head, q/k/v interleaved: row (n, slot, d) is
    n*3D + slot*D + d. So the view is [B, T, N, 3, D], not three [B, T, H] blocks.
    """
    B, T, three_h = fused_qkv.shape
    D = three_h // (3 * n_head)
    fused = fused_qkv.reshape(B, T, n_head, 3, D)  # [B, T, N, 3, D]
    # contiguous copies: NumPy's batched matmul falls back from BLAS (~10x slower) on strided views
    q, k, v = (np.ascontiguousarray(fused[:, :, :, i, :].transpose(0, 2, 1, 3)) for i in range(3))  # 3 x [B, N, T, D]
    return q, k, v


def transposed(a: np.ndarray) -> np.ndarray:
    """[..., X, Y] -> [..., Y, X], copied contiguous.

    subtle: NumPy's stacked matmul hands a transposed *view* to its own loops instead of BLAS (5x
    slower at [8, 8, 128, 32]); the copy costs one pass over the array and gets BLAS back."""
    return np.ascontiguousarray(np.swapaxes(a, -1, -2))


def merge_heads(context: np.ndarray) -> np.ndarray:
    """[B, N, T, D] -> [B, T, N*D]: put the heads side by side again."""
    B, N, T, D = context.shape
    return context.transpose(0, 2, 1, 3).reshape(B, T, N * D)


def attention_scores(q: np.ndarray, k: np.ndarray, alibi: np.ndarray, mask_bias: np.ndarray) -> np.ndarray:
    """Scaled dot-product scores plus ALiBi plus the mask -> [B, N, T, S], what softmax receives.

    As in transformers' `alibi.baddbmm(q, k^T, beta=1, alpha=1/sqrt(D))`: the scale multiplies the
    product, then ALiBi is added, then the mask (an addition too, so masked scores round to finfo.min).
    """
    inv_norm = np.float32(1.0 / math.sqrt(q.shape[-1]))
    scores = alibi + inv_norm * (q @ transposed(k))  # [B,N,1,S] + [B,N,T,D]@[B,N,D,S] -> [B,N,T,S]
    return scores + mask_bias  # [B, N, T, S]


def attention_probs(q: np.ndarray, k: np.ndarray, alibi: np.ndarray, mask_bias: np.ndarray) -> np.ndarray:
    """softmax over keys of `attention_scores` -> [B, N, T, S]."""
    return softmax(attention_scores(q, k, alibi, mask_bias), axis=-1)  # [B, N, T, S]


def mask_heads(probs: np.ndarray, head_mask: np.ndarray | None) -> np.ndarray:
    """probs [B, N, T, S] * head_mask[n]: 0 switches head n off (transformers' `head_mask`)."""
    return probs if head_mask is None else probs * head_mask.astype(np.float32)[None, :, None, None]


def self_attention(x: np.ndarray, p: dict[str, np.ndarray], alibi: np.ndarray, mask_bias: np.ndarray,
                   spec: AttentionSpec, ops: ModuleType, head_mask: np.ndarray | None = None,
                   cache: CacheSlot | None = None, trace: Trace = NO_TRACE) -> tuple[np.ndarray, np.ndarray]:
    """One attention sub-layer: x [B, T, H] -> (attention output [B, T, H], probs [B, N, T, S]).

    `p` holds the layer's `self_attention.*` tensors under their checkpoint names; the block adds
    the output to the residual stream. `head_mask` [N] scales each head's probabilities.
    `cache`: where this layer keeps past keys/values; the new T tokens then attend to all S = P + T.
    `trace` records each step under its golden name (`rec` returns what it is given).
    """
    rec = trace.record
    fused = rec("qkv", ops.linear(x, p["query_key_value.weight"], p["query_key_value.bias"]))  # [B, T, 3H]
    q, k, v = (rec(name, t) for name, t in zip("qkv", split_heads(fused, spec.n_head)))  # 3 x [B, N, T, D]
    if cache is not None:
        k, v = cache.store(k, v)  # 2 x [B, N, S, D]: the past positions, then the new ones
    probs_of = trace.peek("scores", ops.attention_probs, attention_scores, softmax)  # softmax(scores)
    probs = probs_of(q, k, rec("alibi", alibi), mask_bias)  # q [B,N,T,D], k [B,N,S,D] -> [B,N,T,S]
    probs = rec("probs", mask_heads(probs, head_mask))  # [B, N, T, S]
    context = rec("context", merge_heads(ops.context(probs, v)))  # [B, N, T, S] @ [B, N, S, D] -> [B, T, H]
    return rec("dense", dense(context, p["dense.weight"], p["dense.bias"], spec.tp, ops)), probs  # [B, T, H]


# ---------------------------------------------------------------------------------------------------
# Backward: from the gradient of the attention output back to the fused QKV projection's input.
# ---------------------------------------------------------------------------------------------------


def split_heads_backward(d_q: np.ndarray, d_k: np.ndarray, d_v: np.ndarray) -> np.ndarray:
    """3 x [B, N, T, D] -> d_fused [B, T, 3H]: `split_heads` only moves numbers, so its backward puts
    each gradient back where its value came from (row n*3D + slot*D + d)."""
    B, N, T, D = d_q.shape
    stacked = np.stack([d.transpose(0, 2, 1, 3) for d in (d_q, d_k, d_v)], axis=3)  # [B, T, N, 3, D]
    return stacked.reshape(B, T, N * 3 * D)


def merge_heads_backward(d_merged: np.ndarray, n_head: int) -> np.ndarray:
    """[B, T, H] -> [B, N, T, D]: the inverse move of `merge_heads`."""
    B, T, H = d_merged.shape
    return np.ascontiguousarray(d_merged.reshape(B, T, n_head, H // n_head).transpose(0, 2, 1, 3))  # for BLAS


def attention_scores_backward(d_scores: np.ndarray, q: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of scores = alibi + (q @ k^T) / sqrt(D) + mask with respect to q and k.

    ALiBi and the mask are constants added to the scores, so the gradient passes through them
    unchanged: d_q = d_scores @ k / sqrt(D), d_k = d_scores^T @ q / sqrt(D).

    subtle: a fully masked row (a left-pad query) has every score rounded to finfo.min, so its
    forward value no longer depends on q or k, yet torch's autograd (and we) still send it the
    straight-through gradient of its uniform softmax. Finite differences would see 0 there.
    """
    inv_norm = np.float32(1.0 / math.sqrt(q.shape[-1]))
    d_q = inv_norm * (d_scores @ k)  # [B, N, T, S] @ [B, N, S, D] -> [B, N, T, D]
    d_k = inv_norm * (transposed(d_scores) @ q)  # [B, N, S, T] @ [B, N, T, D] -> [B, N, S, D]
    return d_q, d_k


def self_attention_backward(d_out: np.ndarray, rec: dict[str, np.ndarray], p: dict[str, np.ndarray],
                            spec: AttentionSpec, bops: ModuleType, raw_probs: np.ndarray | None = None,
                            head_mask: np.ndarray | None = None, trace: Trace = NO_TRACE,
                            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Backward of `self_attention`'s output projection, probs @ v, softmax and QKV projection.

    d_out [B, T, H]: gradient of the attention output (the residual is handled by the block).
    rec: what the forward kept: `input_layernorm` (the input x), `qkv`, `probs` (after head_mask),
    `context`. raw_probs: the probs *before* head_mask (needed only when head_mask is given, since a
    head switched off keeps no probs). Returns (d_x [B, T, H], grads by `self_attention.*` names).
    `bops` is the backward-ops module (NumPy reference or Numba kernels). `trace` records the gradient
    arriving at each intermediate under its forward name (`d.h.{i}.self_attention.*`; the ALiBi bias,
    a constant, gets none).
    """
    x, probs, context = rec["input_layernorm"], rec["probs"], rec["context"]
    grads = {}
    trace.record("dense", d_out)
    d_context, grads["dense.weight"], grads["dense.bias"] = dense_backward(d_out, context, p["dense.weight"],
                                                                           spec.tp, bops)  # [B, T, H]
    trace.record("context", d_context)
    q, k, v = split_heads(rec["qkv"], spec.n_head)  # 3 x [B, N, T, D]
    d_ctx = merge_heads_backward(d_context, spec.n_head)  # [B, T, H] -> [B, N, T, D]
    d_probs = trace.record("probs", d_ctx @ transposed(v))  # [B, N, T, D] @ [B, N, D, S] -> [B, N, T, S]
    d_v = transposed(probs) @ d_ctx  # [B, N, S, T] @ [B, N, T, D] -> [B, N, S, D]
    d_probs = mask_heads(d_probs, head_mask)  # probs_out = probs * head_mask[n]: the gradient scales the same way
    probs = probs if head_mask is None else raw_probs  # softmax's backward reads the probs before the mask
    d_scores = trace.record("scores", bops.softmax_backward(d_probs, probs))  # [B, N, T, S]
    d_q, d_k = attention_scores_backward(d_scores, q, k)  # [B, N, T, D] each
    for name, d in (("v", d_v), ("k", d_k), ("q", d_q)):
        trace.record(name, d)
    d_fused = trace.record("qkv", split_heads_backward(d_q, d_k, d_v))  # [B, T, 3H]
    d_x, grads["query_key_value.weight"], grads["query_key_value.bias"] = bops.linear_backward(
        d_fused, x, p["query_key_value.weight"])  # [B, T, H]
    return d_x, grads
