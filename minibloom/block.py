"""One BLOOM transformer block: pre-LayerNorm attention and MLP, each with a residual add.

    a = input_layernorm(x);           x1 = r1 + attention(a)       r1 = a if post-LN residual else x
    m = post_attention_layernorm(x1); out = r2 + mlp(m)            r2 = m if post-LN residual else x1
    mlp(m) = dense_4h_to_h(bloom_gelu(dense_h_to_4h(m)))

`apply_residual_connection_post_layernorm` (False in every released BLOOM) makes the residual
branch start from the *normalised* activations instead of the block input.

Shape legend: B batch, T query length, S key length, H hidden, N heads.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from .attention import AttentionSpec, self_attention
from .cache import CacheSlot
from .functional import bloom_gelu
from .trace import NO_TRACE, Trace


@dataclass(frozen=True)
class BlockSpec:
    """The block hyper-parameters (taken from BloomConfig)."""

    attention: AttentionSpec
    layer_norm_epsilon: float = 1e-5
    residual_post_layernorm: bool = False


def sub_params(params: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The tensors under `prefix`, with the prefix removed: ('h.0.', {'h.0.mlp.x': a}) -> {'mlp.x': a}."""
    return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}


def mlp(x: np.ndarray, p: dict[str, np.ndarray], spec: AttentionSpec, ops: ModuleType,
        trace: Trace = NO_TRACE) -> np.ndarray:
    """The feed-forward sub-layer [B, T, H] -> [B, T, H], through a 4H-wide GELU layer."""
    if trace.active:  # the backend fuses linear and GELU; unfused, the pre-GELU values can be recorded
        pre = ops.linear(x, p["dense_h_to_4h.weight"], p["dense_h_to_4h.bias"])  # [B, T, 4H]
        trace.record("dense_h_to_4h", pre)
        hidden = bloom_gelu(pre)
    else:
        hidden = ops.linear_gelu(x, p["dense_h_to_4h.weight"], p["dense_h_to_4h.bias"])  # gelu(linear): [B, T, 4H]
    trace.record("gelu", hidden)
    if spec.pretraining_tp > 1 and spec.slow_but_exact:
        out = ops.linear_tp(hidden, p["dense_4h_to_h.weight"], spec.pretraining_tp)  # no bias, as transformers
    else:
        out = ops.linear(hidden, p["dense_4h_to_h.weight"], p["dense_4h_to_h.bias"])  # [B, T, H]
    trace.record("dense_4h_to_h", out)
    return out


def bloom_block(x: np.ndarray, p: dict[str, np.ndarray], alibi: np.ndarray, mask_bias: np.ndarray,
                spec: BlockSpec, ops: ModuleType, head_mask: np.ndarray | None = None,
                cache: CacheSlot | None = None, trace: Trace = NO_TRACE) -> tuple[np.ndarray, np.ndarray]:
    """Run one block: x [B, T, H] -> (out [B, T, H], attention probs [B, N, T, S]).
    `ops` is the backend module that computes each op (`minibloom.backends`); `trace` records
    the intermediates under golden-file names (`trace.py`)."""
    eps = spec.layer_norm_epsilon
    ln1 = ops.layer_norm(x, p["input_layernorm.weight"], p["input_layernorm.bias"], eps)  # [B, T, H]
    trace.record("input_layernorm", ln1)
    residual = ln1 if spec.residual_post_layernorm else x
    x1, probs = self_attention(ln1, residual, sub_params(p, "self_attention."), alibi, mask_bias,
                               spec.attention, ops, head_mask, cache,
                               trace.scope("self_attention"))  # [B, T, H], [B, N, T, S]
    ln2 = ops.layer_norm(x1, p["post_attention_layernorm.weight"], p["post_attention_layernorm.bias"], eps)
    trace.record("post_attention_layernorm", ln2)
    residual = ln2 if spec.residual_post_layernorm else x1
    out = residual + mlp(ln2, sub_params(p, "mlp."), spec.attention, ops, trace.scope("mlp"))  # [B, T, H]
    trace.record("output", out)
    return out, probs
