"""BLOOM self-attention: fused QKV projection, ALiBi-biased scores, masked softmax, output dense.

    scores[b, n, t, s] = q[b,n,t] . k[b,n,s] / sqrt(D) + slope[n] * pos[b, s] + mask[b, t, s]
    probs = softmax_s(scores) * head_mask[n]
    out   = dense(concat_n(probs @ v))

Shape legend: B batch, T query length, S key length, H hidden, N heads, D head_dim = H / N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from .cache import CacheSlot
from .functional import softmax
from .trace import NO_TRACE, Trace


@dataclass(frozen=True)
class AttentionSpec:
    """The attention hyper-parameters a layer needs (taken from BloomConfig)."""

    n_head: int
    pretraining_tp: int = 1
    slow_but_exact: bool = False


def split_heads(fused_qkv: np.ndarray, n_head: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[B, T, 3H] -> q, k, v, each [B, N, T, D].

    subtle: the fused weight is laid out per head, q/k/v interleaved: row (n, slot, d) is
    n*3D + slot*D + d. So the view is [B, T, N, 3, D], not three [B, T, H] blocks.
    """
    B, T, three_h = fused_qkv.shape
    D = three_h // (3 * n_head)
    fused = fused_qkv.reshape(B, T, n_head, 3, D)  # [B, T, N, 3, D]
    q, k, v = (fused[:, :, :, i, :].transpose(0, 2, 1, 3) for i in range(3))  # 3 x [B, N, T, D]
    return q, k, v


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
    scores = alibi + inv_norm * (q @ k.transpose(0, 1, 3, 2))  # [B,N,1,S] + [B,N,T,D]@[B,N,D,S] -> [B,N,T,S]
    return scores + mask_bias  # [B, N, T, S]


def attention_probs(q: np.ndarray, k: np.ndarray, alibi: np.ndarray, mask_bias: np.ndarray) -> np.ndarray:
    """softmax over keys of `attention_scores` -> [B, N, T, S]."""
    return softmax(attention_scores(q, k, alibi, mask_bias), axis=-1)  # [B, N, T, S]


def self_attention(x: np.ndarray, residual: np.ndarray, p: dict[str, np.ndarray], alibi: np.ndarray,
                   mask_bias: np.ndarray, spec: AttentionSpec, ops: ModuleType, head_mask: np.ndarray | None = None,
                   cache: CacheSlot | None = None, trace: Trace = NO_TRACE) -> tuple[np.ndarray, np.ndarray]:
    """One attention sub-layer: returns (residual + attention output [B, T, H], probs [B, N, T, S]).

    `p` holds the layer's `self_attention.*` tensors under their checkpoint names.
    `head_mask` [N] scales each head's probabilities (0 switches a head off).
    `cache`: where this layer keeps past keys/values; the new T tokens then attend to all S = P + T.
    """
    fused = ops.linear(x, p["query_key_value.weight"], p["query_key_value.bias"])  # [B, T, H] -> [B, T, 3H]
    trace.record("qkv", fused)
    q, k, v = split_heads(fused, spec.n_head)  # 3 x [B, N, T, D]
    trace.record("q", q)
    trace.record("k", k)
    trace.record("v", v)
    if cache is not None:
        k, v = cache.store(k, v)  # 2 x [B, N, S, D]: the past positions, then the new ones
    if trace.active:  # the scores exist only inside the fused op: recompute them for the record
        trace.record("alibi", alibi)
        trace.record("scores", attention_scores(q, k, alibi, mask_bias))
    probs = ops.attention_probs(q, k, alibi, mask_bias)  # [B, N, T, S]
    if head_mask is not None:
        probs = probs * head_mask.astype(np.float32)[None, :, None, None]
    trace.record("probs", probs)
    context = merge_heads(ops.context(probs, v))  # [B, N, T, S] @ [B, N, S, D] -> [B, N, T, D] -> [B, T, H]
    trace.record("context", context)
    if spec.pretraining_tp > 1 and spec.slow_but_exact:
        out = ops.linear_tp(context, p["dense.weight"], spec.pretraining_tp)  # no bias: see linear_tp
    else:
        out = ops.linear(context, p["dense.weight"], p["dense.bias"])  # [B, T, H]
    trace.record("dense", out)
    return residual + out, probs
