"""An independent BLOOM port for the golden-file tests, written from docs/golden-format.md alone.

It does NOT use minibloom: it reads the checkpoint with the `safetensors` package and config.json
with `json`, computes the forward pass in plain NumPy, and records the documented names into a
plain dict that the tests write as a safetensors / .npz / .npy-directory file with no metadata.
This is what a porter in another language does, so the tests exercise the contract, not our code.

`bugs` injects the seven classic porting bugs; `variants` switches to forms that are different but
correct (and pass with the documented compare options). `bf16` rounds every op's output (and the
weights) to bfloat16, as a port computing in that dtype does, with float32 accumulation.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
from safetensors.numpy import load_file

BUGS = ("slopes", "positions", "qkv_split", "erf_gelu", "no_embedding_layernorm", "eps", "fp16_accumulation")
# the op each bug shows up at first (what `golden compare` must name)
FIRST_OP = {"slopes": "h.0.self_attention.alibi", "positions": "h.0.self_attention.alibi",
            "qkv_split": "h.0.self_attention.q", "erf_gelu": "h.0.mlp.gelu",
            "no_embedding_layernorm": "embeddings_layernorm", "eps": "embeddings_layernorm",
            "fp16_accumulation": "h.0.self_attention.qkv"}
VARIANTS = ("neg_inf_mask", "zero_pad_rows", "fused_attention", "relative_alibi", "bnts_layout")


def round_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> the nearest bfloat16 (ties to even), kept as float32."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


class Port:
    def __init__(self, directory: str, bugs=(), variants=(), bf16: bool = False):
        with open(os.path.join(directory, "config.json")) as f:
            self.cfg = json.load(f)
        raw = load_file(os.path.join(directory, "model.safetensors"))
        self.w = {k.removeprefix("transformer."): v.astype(np.float32) for k, v in raw.items()}
        if bf16:
            self.w = {k: round_bf16(v) for k, v in self.w.items()}
        self.bugs, self.variants, self.bf16 = set(bugs), set(variants), bf16
        self.rec: dict[str, np.ndarray] = {}

    def out(self, name: str, x: np.ndarray) -> np.ndarray:
        """Round to the compute dtype, record under `name`, pass on."""
        x = round_bf16(x) if self.bf16 else x.astype(np.float32)
        if name:
            self.rec[name] = x.copy()
        return x

    def linear(self, x, prefix):
        W, b = self.w[prefix + ".weight"], self.w[prefix + ".bias"]
        if "fp16_accumulation" in self.bugs:
            return (x.astype(np.float16) @ W.T.astype(np.float16)).astype(np.float32) + b
        return x @ W.T + b

    def layer_norm(self, x, prefix):
        eps = 1e-6 if "eps" in self.bugs else self.cfg.get("layer_norm_epsilon", 1e-5)
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * self.w[prefix + ".weight"] + self.w[prefix + ".bias"]

    def slopes(self, n):
        if "slopes" in self.bugs:  # the power-of-two formula used for every n
            return np.array([2 ** (-8 * (i + 1) / n) for i in range(n)], np.float32)
        p = 2 ** math.floor(math.log2(n))
        s = [2 ** (-8 * (i + 1) / p) for i in range(p)]
        s += [2 ** (-4 * (2 * i + 1) / p) for i in range(n - p)]
        return np.array(s, np.float32)

    def gelu(self, x):
        if "erf_gelu" in self.bugs:
            return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))).astype(np.float32)
        return x * 0.5 * (1.0 + np.tanh(0.79788456 * x * (1 + 0.044715 * x * x)))

    def attention(self, x, i, alibi, allowed, pos):
        p, N = f"h.{i}.self_attention.", self.cfg["n_head"]
        B, T, H = x.shape
        D = H // N
        fused = self.out(p + "qkv", self.linear(x, f"h.{i}.self_attention.query_key_value"))  # [B, T, 3H]
        if "qkv_split" in self.bugs:  # three [B, T, H] blocks: wrong for BLOOM's per-head interleaving
            q, k, v = (fused[..., j * H:(j + 1) * H].reshape(B, T, N, D).transpose(0, 2, 1, 3) for j in range(3))
        else:
            f = fused.reshape(B, T, N, 3, D)
            q, k, v = (f[:, :, :, j].transpose(0, 2, 1, 3) for j in range(3))  # [B, N, T, D]
        for name, t in (("q", q), ("k", k), ("v", v)):
            self.rec[p + name] = t.copy()
        if "relative_alibi" in self.variants:  # the paper's form: slope * (j - i)
            alibi = self.slopes(N)[None, :, None, None] * (pos[:, None, None, :] - pos[:, None, :, None])
        self.rec[p + "alibi"] = alibi.copy()
        scores = alibi + (q @ k.transpose(0, 1, 3, 2)) / np.float32(math.sqrt(D))  # [B, N, T, S]
        lowest = -3.3895314e38 if self.bf16 else np.finfo(np.float32).min
        if "neg_inf_mask" in self.variants:
            scores = np.where(allowed, scores, -np.inf)
        else:
            scores = scores + np.where(allowed, 0, lowest).astype(np.float32)
        scores = self.out("" if "fused_attention" in self.variants else p + "scores", scores)
        with np.errstate(invalid="ignore"):
            e = np.exp(scores - scores.max(-1, keepdims=True))
            probs = e / e.sum(-1, keepdims=True)
        if {"zero_pad_rows", "neg_inf_mask"} & self.variants:  # rows with no allowed key: zeros
            probs = np.where(allowed.any(-1, keepdims=True), probs, 0.0)
        probs = self.out("" if "fused_attention" in self.variants else p + "probs", probs)
        ctx = self.out(p + "context", (probs @ v).transpose(0, 2, 1, 3).reshape(B, T, H))
        return self.out(p + "dense", self.linear(ctx, f"h.{i}.self_attention.dense"))

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        B, T = ids.shape
        x = self.out("embeddings", self.w["word_embeddings.weight"][ids])
        if "no_embedding_layernorm" not in self.bugs:
            x = self.layer_norm(x, "word_embeddings_layernorm")
        x = self.out("embeddings_layernorm", x)
        pos = np.tile(np.arange(T), (B, 1)) if "positions" in self.bugs else (np.cumsum(mask, -1) - 1) * mask
        pos = pos.astype(np.float32)
        alibi = self.out("", self.slopes(self.cfg["n_head"])[None, :, None, None] * pos[:, None, None, :])
        allowed = (np.tril(np.ones((T, T), bool))[None] & (mask[:, None, :] == 1))[:, None]  # [B, 1, T, S]
        for i in range(self.cfg["n_layer"]):
            h = self.out(f"h.{i}.input_layernorm", self.layer_norm(x, f"h.{i}.input_layernorm"))
            x = self.out("", x + self.attention(h, i, alibi, allowed, pos))
            h = self.out(f"h.{i}.post_attention_layernorm", self.layer_norm(x, f"h.{i}.post_attention_layernorm"))
            up = self.out(f"h.{i}.mlp.dense_h_to_4h", self.linear(h, f"h.{i}.mlp.dense_h_to_4h"))
            g = self.out(f"h.{i}.mlp.gelu", self.gelu(up))
            down = self.out(f"h.{i}.mlp.dense_4h_to_h", self.linear(g, f"h.{i}.mlp.dense_4h_to_h"))
            x = self.out(f"h.{i}.output", x + down)
        x = self.out("ln_f", self.layer_norm(x, "ln_f"))
        self.out("logits", x @ self.w["word_embeddings.weight"].T)
        rec = dict(self.rec)
        if "bnts_layout" in self.variants:  # transformers' internal [B*N, T, S] / [B*N, 1, S] layouts
            for name in [n for n in rec if n.endswith((".scores", ".probs", ".alibi"))]:
                rec[name] = rec[name].reshape(-1, *rec[name].shape[2:])
        return rec
