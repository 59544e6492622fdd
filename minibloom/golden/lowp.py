"""Golden files in bfloat16 / float16: the forward pass as transformers computes it in that dtype.

A port that computes in half precision is best compared with a golden computed the same way: its
rounding then matches op for op, and the tolerances can stay tight enough to catch small bugs. This
module replays BLOOM's forward pass the way `model.to(torch.bfloat16)` runs it on a CPU, rounding
where torch rounds:

- the weights are cast to the dtype once (`model.to(dtype)`);
- every op's output is rounded to the dtype: linear layers (float32 accumulation inside),
  layer norms (float32 inside), each residual add, the ALiBi tensor (`build_alibi_tensor(...).to(dtype)`),
  `baddbmm` (alibi + q·kᵀ/√D), the mask add, `bmm(probs, v)`;
- softmax runs in float32 on the rounded scores and is rounded back
  (`F.softmax(..., dtype=torch.float32).to(dtype)`);
- GELU is BLOOM's expression evaluated one elementwise op at a time, each rounded, as eager torch does;
- masked scores hold the dtype's own `finfo.min` (bf16: -3.3895e38, fp16: -65504).

It is a second, deliberately literal forward pass: minibloom's model computes in float32 only, and
rounding inside it would cost every user. It reuses the model's pieces (ALiBi, masks, head split).
Checked against transformers' own bf16/fp16 forward in tests/reference/test_live_golden_lowp.py.

Shape legend: B batch, T tokens, S keys, H hidden, N heads, D head_dim, V vocab.
"""

from __future__ import annotations

import math

import numpy as np

from ..alibi import alibi_bias
from ..attention import merge_heads, split_heads
from ..errors import InputError
from ..functional import layer_norm, softmax
from ..masking import causal_padding_bias
from ..storage import bfloat16_bits, to_float32

LOW_DTYPES = {"bfloat16": np.float32(-3.3895313892515355e38), "float16": np.float32(-65504.0)}  # finfo.min


def rounder(dtype: str):
    """float32 -> the nearest value of `dtype` (ties to even, as torch's `.to(dtype)`), kept as float32."""
    if dtype == "bfloat16":
        return lambda x: (bfloat16_bits(np.asarray(x, np.float32)).astype(np.uint32) << 16).view(np.float32)
    if dtype == "float16":
        return lambda x: np.asarray(x, np.float32).astype(np.float16).astype(np.float32)
    raise InputError(f"dtype must be one of float32, {', '.join(LOW_DTYPES)}; got {dtype!r}")


def gelu_rounded(x: np.ndarray, r) -> np.ndarray:
    """`x * 0.5 * (1.0 + tanh(0.79788456 * x * (1 + 0.044715 * x * x)))`, rounding after each op."""
    inner = r(r(r(np.float32(0.044715) * x) * x) + np.float32(1.0))  # 1 + 0.044715 * x * x
    t = r(np.tanh(r(r(np.float32(0.79788456) * x) * inner)))
    return r(r(x * np.float32(0.5)) * r(np.float32(1.0) + t))


def capture_lowp(model, input_ids: np.ndarray, attention_mask: np.ndarray, dtype: str) -> dict[str, np.ndarray]:
    """The golden record of `model` (BloomModel or BloomForCausalLM) computed in `dtype`, as float32
    arrays holding `dtype` values, under the documented names."""
    r = rounder(dtype)
    cfg, cls = model.config, type(model).__name__
    if cls not in ("BloomModel", "BloomForCausalLM"):
        raise InputError(f"a {dtype} golden is computed for BloomModel and BloomForCausalLM, not {cls}")
    if cfg.pretraining_tp > 1 and cfg.slow_but_exact:
        raise InputError(f"a {dtype} golden does not replay slow_but_exact with pretraining_tp > 1")
    base = getattr(model, "transformer", model)
    w = {name: r(to_float32(p)) for name, p in base.params.items()}  # model.to(dtype)
    ids, mask = np.asarray(input_ids, np.int64), np.asarray(attention_mask, np.int64)
    eps, N = cfg.layer_norm_epsilon, cfg.n_head
    rec: dict[str, np.ndarray] = {"input_ids": ids, "attention_mask": mask}

    def put(name: str, x: np.ndarray) -> np.ndarray:
        rec[name] = x
        return x

    def ln(x, prefix):
        return r(layer_norm(x, w[prefix + ".weight"], w[prefix + ".bias"], eps))

    def linear(x, prefix):
        return r(x @ w[prefix + ".weight"].T + w[prefix + ".bias"])

    x = put("embeddings", w["word_embeddings.weight"][ids])  # [B, T, H]
    h = put("embeddings_layernorm", ln(x, "word_embeddings_layernorm"))
    alibi = r(alibi_bias(mask, N))  # [B, N, 1, S]
    blocked = causal_padding_bias(mask, ids.shape[1]) < 0  # [B, 1, T, S]
    mask_bias = np.where(blocked, LOW_DTYPES[dtype], np.float32(0))
    for i in range(cfg.n_layer):
        p = f"h.{i}."
        ln1 = put(p + "input_layernorm", ln(h, p + "input_layernorm"))
        qkv = put(p + "self_attention.qkv", linear(ln1, p + "self_attention.query_key_value"))  # [B, T, 3H]
        q, k, v = split_heads(qkv, N)  # 3 x [B, N, T, D]
        for name, t in (("q", q), ("k", k), ("v", v)):
            put(p + "self_attention." + name, np.ascontiguousarray(t))
        put(p + "self_attention.alibi", alibi)
        inv_norm = np.float32(1.0 / math.sqrt(q.shape[-1]))
        scores = r(alibi + inv_norm * (q @ k.transpose(0, 1, 3, 2)))  # baddbmm: [B, N, T, S]
        scores = put(p + "self_attention.scores", r(scores + mask_bias))
        probs = put(p + "self_attention.probs", r(softmax(scores)))  # float32 softmax, rounded back
        ctx = put(p + "self_attention.context", merge_heads(r(probs @ v)))  # [B, T, H]
        dense = put(p + "self_attention.dense", linear(ctx, p + "self_attention.dense"))
        x1 = r((ln1 if cfg.apply_residual_connection_post_layernorm else h) + dense)
        ln2 = put(p + "post_attention_layernorm", ln(x1, p + "post_attention_layernorm"))
        up = put(p + "mlp.dense_h_to_4h", linear(ln2, p + "mlp.dense_h_to_4h"))
        g = put(p + "mlp.gelu", gelu_rounded(up, r))
        down = put(p + "mlp.dense_4h_to_h", linear(g, p + "mlp.dense_4h_to_h"))
        h = put(p + "output", r((ln2 if cfg.apply_residual_connection_post_layernorm else x1) + down))
    out = put("ln_f", ln(h, "ln_f"))
    if cls == "BloomForCausalLM":
        put("logits", r(out @ r(to_float32(model.lm_head_weight)).T))  # [B, T, V]
    else:
        put("last_hidden_state", out)
    return rec
