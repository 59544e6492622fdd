"""One BLOOM transformer block: pre-LayerNorm attention and MLP, each with a residual add.

    a = input_layernorm(x);           x1 = r1 + attention(a)       r1 = a if post-LN residual else x
    m = post_attention_layernorm(x1); out = r2 + mlp(m)            r2 = m if post-LN residual else x1

The two residual adds live here, in the block: `self_attention` and `mlp` return their own output.
    mlp(m) = dense_4h_to_h(bloom_gelu(dense_h_to_4h(m)))

`apply_residual_connection_post_layernorm` (False in every released BLOOM) makes the residual
branch start from the *normalised* activations instead of the block input.

Shape legend: B batch, T query length, S key length, H hidden, N heads.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from .attention import AttentionSpec, self_attention, self_attention_backward
from .cache import CacheSlot
from .dense import dense, dense_backward
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
    """The feed-forward sub-layer [B, T, H] -> [B, T, H], through a 4H-wide GELU layer.
    The backend fuses linear and GELU; a trace that wants the pre-GELU values gets them unfused."""
    gelu_of_linear = trace.unfuse("dense_h_to_4h", ops.linear_gelu, ops.linear, ops.bloom_gelu)
    hidden = trace.record("gelu", gelu_of_linear(x, p["dense_h_to_4h.weight"], p["dense_h_to_4h.bias"]))  # [B, T, 4H]
    out = dense(hidden, p["dense_4h_to_h.weight"], p["dense_4h_to_h.bias"], spec.tp, ops)  # [B, T, 4H] -> [B, T, H]
    return trace.record("dense_4h_to_h", out)


def layer_norm(x: np.ndarray, p: dict[str, np.ndarray], name: str, eps: float, ops: ModuleType) -> np.ndarray:
    """The layer norm `name` ("input_layernorm", "ln_f", ...) of x [B, T, H], its tensors taken from `p`."""
    return ops.layer_norm(x, p[name + ".weight"], p[name + ".bias"], eps)


def bloom_block(x: np.ndarray, p: dict[str, np.ndarray], alibi: np.ndarray, mask_bias: np.ndarray,
                spec: BlockSpec, ops: ModuleType, head_mask: np.ndarray | None = None,
                cache: CacheSlot | None = None, trace: Trace = NO_TRACE) -> tuple[np.ndarray, np.ndarray]:
    """Run one block: x [B, T, H] -> (out [B, T, H], attention probs [B, N, T, S]).
    `ops` is the backend module that computes each op (`minibloom.backends`); `trace` records
    the intermediates under golden-file names (`trace.py`)."""
    rec, eps, post_ln = trace.record, spec.layer_norm_epsilon, spec.residual_post_layernorm
    ln1 = rec("input_layernorm", layer_norm(x, p, "input_layernorm", eps, ops))  # [B, T, H]
    attn, probs = self_attention(ln1, sub_params(p, "self_attention."), alibi, mask_bias, spec.attention, ops,
                                 head_mask, cache, trace.scope("self_attention"))  # [B, T, H], [B, N, T, S]
    x1 = (ln1 if post_ln else x) + attn  # the residual add: [B, T, H]
    ln2 = rec("post_attention_layernorm", layer_norm(x1, p, "post_attention_layernorm", eps, ops))  # [B, T, H]
    out = (ln2 if post_ln else x1) + mlp(ln2, sub_params(p, "mlp."), spec.attention, ops, trace.scope("mlp"))
    return rec("output", out), probs  # [B, T, H], [B, N, T, S]


# ---------------------------------------------------------------------------------------------------
# Backward: the block's gradient, sub-layer by sub-layer in reverse order.
# ---------------------------------------------------------------------------------------------------


def mlp_backward(d_out: np.ndarray, rec: dict[str, np.ndarray], p: dict[str, np.ndarray], spec: AttentionSpec,
                 bops: ModuleType, trace: Trace = NO_TRACE) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Backward of `mlp`: d_out [B, T, H] -> (d_x [B, T, H], grads by `mlp.*` names).

    rec holds the MLP's input (`post_attention_layernorm`), the pre-GELU values (`dense_h_to_4h`)
    and the GELU output (`gelu`), each [B, T, H] or [B, T, 4H]. `trace` records the gradient arriving
    at each of them (`d.h.{i}.mlp.*` in a training golden).
    """
    grads = {}
    trace.record("dense_4h_to_h", d_out)
    d_hidden, grads["dense_4h_to_h.weight"], grads["dense_4h_to_h.bias"] = dense_backward(
        d_out, rec["gelu"], p["dense_4h_to_h.weight"], spec.tp, bops)  # [B, T, 4H]
    trace.record("gelu", d_hidden)
    d_pre = trace.record("dense_h_to_4h", bops.bloom_gelu_backward(d_hidden, rec["dense_h_to_4h"]))  # [B, T, 4H]
    d_x, grads["dense_h_to_4h.weight"], grads["dense_h_to_4h.bias"] = bops.linear_backward(
        d_pre, rec["post_attention_layernorm"], p["dense_h_to_4h.weight"])  # [B, T, H]
    return d_x, grads


def bloom_block_backward(d_out: np.ndarray, rec: dict[str, np.ndarray], p: dict[str, np.ndarray], spec: BlockSpec,
                         bops: ModuleType, head_mask: np.ndarray | None = None, trace: Trace = NO_TRACE,
                         ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Backward of `bloom_block`: d_out [B, T, H] -> (d_x [B, T, H], grads by the layer's names).

    A residual add `out = r + f(r')` copies the gradient to both branches, so each sub-layer's
    gradient is *added* to the one flowing straight through. With the usual pre-LN residual:
        d_x1 = d_out + LN2'(mlp'(d_out));   d_x = d_x1 + LN1'(attn'(d_x1))
    With `residual_post_layernorm` the straight path starts at the LN output instead:
        d_x1 = LN2'(d_out + mlp'(d_out));   d_x = LN1'(d_x1 + attn'(d_x1))
    rec: the layer's record (`input`, the LN outputs, `qkv`, `probs`, `context`, `dense`, the MLP's).
    `trace` records the gradient arriving at each intermediate, under the forward's names.
    """
    eps, post_ln = spec.layer_norm_epsilon, spec.residual_post_layernorm
    grads = {}
    trace.record("output", d_out)
    d_ln2, g = mlp_backward(d_out, rec, sub_params(p, "mlp."), spec.attention, bops, trace.scope("mlp"))  # [B, T, H]
    grads.update({"mlp." + k: v for k, v in g.items()})
    if post_ln:
        d_ln2 = d_ln2 + d_out
    trace.record("post_attention_layernorm", d_ln2)
    residual1 = rec["input_layernorm"] if post_ln else rec["input"]
    x1 = residual1 + rec["dense"]  # the post-attention LN input, recomputed: [B, T, H]
    d_x1, grads["post_attention_layernorm.weight"], grads["post_attention_layernorm.bias"] = bops.layer_norm_backward(
        d_ln2, x1, p["post_attention_layernorm.weight"], eps)
    if not post_ln:
        d_x1 = d_x1 + d_out
    d_ln1, g = self_attention_backward(d_x1, rec, sub_params(p, "self_attention."), spec.attention, bops,
                                       rec.get("raw_probs"), head_mask, trace.scope("self_attention"))  # [B, T, H]
    grads.update({"self_attention." + k: v for k, v in g.items()})
    if post_ln:
        d_ln1 = d_ln1 + d_x1
    trace.record("input_layernorm", d_ln1)
    d_x, grads["input_layernorm.weight"], grads["input_layernorm.bias"] = bops.layer_norm_backward(
        d_ln1, rec["input"], p["input_layernorm.weight"], eps)
    if not post_ln:
        d_x = d_x + d_x1
    return d_x, grads
