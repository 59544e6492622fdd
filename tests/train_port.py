"""An independent port of BLOOM *training* for the training-golden tests, written from docs/golden.md
and docs/golden-format.md alone: the backward of tests/golden_port.py's forward, in plain NumPy, and
torch's AdamW. It does not use minibloom; it records the documented names (`loss`, `d.<name>`,
`grad.<parameter>`, `step.<s>.*`) into a plain dict, as a porter in another language would.

`bugs` injects the classic backward and optimizer bugs; FIRST_OP is what `golden compare` must name.
"""

from __future__ import annotations

import math

import numpy as np

from tests.golden_port import Port

TRAIN_BUGS = ("softmax_no_rowsum", "erf_gelu_grad", "tied_one_use", "adamw_bias_step")


def first_op(bug: str, n_layer: int) -> str:
    """The name compare must report first for `bug` (the backward walks the layers in reverse)."""
    last = n_layer - 1
    return {"softmax_no_rowsum": f"d.h.{last}.self_attention.scores",
            "erf_gelu_grad": f"d.h.{last}.mlp.dense_h_to_4h",
            "tied_one_use": "grad.word_embeddings.weight",
            "adamw_bias_step": "step.1.param.word_embeddings.weight"}[bug]


def ln_backward(d_y, x, w, eps):
    """y = (x - mean) / sqrt(var + eps) * w + b: (d_x, d_w, d_b)."""
    mu = x.mean(-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + np.float32(eps))
    xhat = (x - mu) * rstd
    g = d_y * w
    d_x = rstd * (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True))
    flat = (-1, x.shape[-1])
    return d_x.astype(np.float32), (d_y * xhat).reshape(flat).sum(0), d_y.reshape(flat).sum(0)


def lin_backward(d_y, x, w):
    """y = x @ W^T + b: (d_x, d_W, d_b)."""
    d2, x2 = d_y.reshape(-1, d_y.shape[-1]), x.reshape(-1, x.shape[-1])
    return (d2 @ w).reshape(x.shape), d2.T @ x2, d2.sum(0)


class TrainPort(Port):
    def __init__(self, directory: str, bugs=()):
        super().__init__(directory)
        self.train_bugs = set(bugs)

    def gelu_grad(self, x):
        if "erf_gelu_grad" in self.train_bugs:  # the exact GELU's derivative, not the tanh form's
            erf = np.vectorize(math.erf)(x / math.sqrt(2)).astype(np.float32)
            return 0.5 * (1 + erf) + x * np.exp(-0.5 * x * x) / np.float32(math.sqrt(2 * math.pi))
        t = np.tanh(0.79788456 * x * (1 + 0.044715 * x * x))
        return 0.5 * x * ((1 - t * t) * (0.79788456 + 0.1070322243 * x * x)) + 0.5 * (1 + t)

    def loss_and_backward(self, ids, mask, labels) -> dict[str, np.ndarray]:
        """Forward, the shifted cross-entropy, then every d.* and grad.* name."""
        f = self.forward(ids, mask)
        self.rec = {}
        L, N, eps = self.cfg["n_layer"], self.cfg["n_head"], self.cfg.get("layer_norm_epsilon", 1e-5)
        logits = f["logits"].astype(np.float64)  # [B, T, V]
        B, T, V = logits.shape
        target = np.concatenate([labels[:, 1:], np.full((B, 1), -100)], 1)  # position t predicts t + 1
        valid = target != -100
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        rows = np.nonzero(valid)
        out = {"loss": np.array([-np.log(p[rows + (target[rows],)]).mean()], np.float32)}
        d_logits = np.where(valid[..., None], p, 0.0)
        d_logits[rows + (target[rows],)] -= 1.0
        d_logits = (d_logits / valid.sum()).astype(np.float32)
        out["d.logits"] = d_logits
        E = self.w["word_embeddings.weight"]
        d_h = d_logits @ E  # logits = ln_f @ E^T
        d_E_head = d_logits.reshape(-1, V).T @ f["ln_f"].reshape(-1, E.shape[1])
        out["d.ln_f"] = d_h
        last = f[f"h.{L - 1}.output"]
        d_x, out["grad.ln_f.weight"], out["grad.ln_f.bias"] = ln_backward(d_h, last, self.w["ln_f.weight"], eps)
        for i in reversed(range(L)):
            d_x = self.block_backward(d_x, f, i, N, eps, out)
        out["d.embeddings_layernorm"] = d_x
        d_e, out["grad.word_embeddings_layernorm.weight"], out["grad.word_embeddings_layernorm.bias"] = ln_backward(
            d_x, f["embeddings"], self.w["word_embeddings_layernorm.weight"], eps)
        out["d.embeddings"] = d_e
        d_E = np.zeros_like(E)
        np.add.at(d_E, ids.reshape(-1), d_e.reshape(-1, E.shape[1]))  # the gather's use
        if "tied_one_use" not in self.train_bugs:
            d_E += d_E_head  # the LM head's use of the same matrix
        out["grad.word_embeddings.weight"] = d_E
        return {**f, **{k: np.asarray(v, np.float32) for k, v in out.items()}}

    def block_backward(self, d_out, f, i, N, eps, out):
        """Layer i from d(output) to d(input); records d.h.{i}.* and grad.h.{i}.* into `out`."""
        p, w = f"h.{i}.", lambda n: self.w[f"h.{i}.{n}"]
        d, g, a = "d." + p, "grad." + p, p + "self_attention."
        x = f[f"h.{i - 1}.output"] if i else f["embeddings_layernorm"]
        out[d + "output"] = out[d + "mlp.dense_4h_to_h"] = d_out
        d_g, out[g + "mlp.dense_4h_to_h.weight"], out[g + "mlp.dense_4h_to_h.bias"] = lin_backward(
            d_out, f[p + "mlp.gelu"], w("mlp.dense_4h_to_h.weight"))
        out[d + "mlp.gelu"] = d_g
        d_up = out[d + "mlp.dense_h_to_4h"] = d_g * self.gelu_grad(f[p + "mlp.dense_h_to_4h"])
        d_ln2, out[g + "mlp.dense_h_to_4h.weight"], out[g + "mlp.dense_h_to_4h.bias"] = lin_backward(
            d_up, f[p + "post_attention_layernorm"], w("mlp.dense_h_to_4h.weight"))
        out[d + "post_attention_layernorm"] = d_ln2
        x1 = x + f[a + "dense"]  # the post-attention LN's input
        d_x1, out[g + "post_attention_layernorm.weight"], out[g + "post_attention_layernorm.bias"] = ln_backward(
            d_ln2, x1, w("post_attention_layernorm.weight"), eps)
        d_x1 = out["d." + a + "dense"] = d_x1 + d_out  # plus the residual's
        d_ctx, out[g + "self_attention.dense.weight"], out[g + "self_attention.dense.bias"] = lin_backward(
            d_x1, f[a + "context"], w("self_attention.dense.weight"))
        out["d." + a + "context"] = d_ctx
        B, T, H = d_ctx.shape
        D = H // N
        d_c = d_ctx.reshape(B, T, N, D).transpose(0, 2, 1, 3)  # [B, N, T, D]
        q, k, v, probs = f[a + "q"], f[a + "k"], f[a + "v"], f[a + "probs"]
        d_probs = out["d." + a + "probs"] = d_c @ v.transpose(0, 1, 3, 2)  # [B, N, T, S]
        d_v = probs.transpose(0, 1, 3, 2) @ d_c
        if "softmax_no_rowsum" in self.train_bugs:
            d_scores = probs * d_probs
        else:
            d_scores = probs * (d_probs - (d_probs * probs).sum(-1, keepdims=True))
        out["d." + a + "scores"] = d_scores
        d_q = d_scores @ k / np.float32(math.sqrt(D))
        d_k = d_scores.transpose(0, 1, 3, 2) @ q / np.float32(math.sqrt(D))
        out["d." + a + "v"], out["d." + a + "k"], out["d." + a + "q"] = d_v, d_k, d_q
        # qkv[b, t, n*3D + j*D + e] holds q / k / v (j = 0 / 1 / 2)[b, n, t, e]
        d_qkv = np.stack([t.transpose(0, 2, 1, 3) for t in (d_q, d_k, d_v)], 3).reshape(B, T, 3 * H)
        out["d." + a + "qkv"] = d_qkv
        d_ln1, out[g + "self_attention.query_key_value.weight"], out[g + "self_attention.query_key_value.bias"] = \
            lin_backward(d_qkv, f[p + "input_layernorm"], w("self_attention.query_key_value.weight"))
        out[d + "input_layernorm"] = d_ln1
        d_x, out[g + "input_layernorm.weight"], out[g + "input_layernorm.bias"] = ln_backward(
            d_ln1, x, w("input_layernorm.weight"), eps)
        return d_x + d_x1

    def train(self, ids, mask, golden: dict[str, np.ndarray], hyper: dict) -> dict[str, np.ndarray]:
        """The training golden's names: the forward, loss and backward of this port, then AdamW replayed
        on the golden's gradients (grad.*, step.<s>.grad.*) as docs/golden.md says a port does."""
        labels = golden["labels"]
        rec = self.loss_and_backward(ids, mask, labels)
        lr, (b1, b2), eps, wd = hyper["lr"], hyper["betas"], hyper["eps"], hyper["weight_decay"]
        params = {k: v.copy() for k, v in self.w.items()}
        m = {k: np.zeros_like(v) for k, v in params.items()}
        v2 = {k: np.zeros_like(v) for k, v in params.items()}
        steps = hyper["steps"]
        for s in range(1, steps + 1):
            grads = {n: golden[("grad." if s == 1 else f"step.{s}.grad.") + n] for n in params}
            t = s + 1 if "adamw_bias_step" in self.train_bugs else s
            for n, p in params.items():
                g = grads[n]
                p *= np.float32(1 - lr * wd)
                m[n] = (b1 * m[n] + (1 - b1) * g).astype(np.float32)
                v2[n] = (b2 * v2[n] + (1 - b2) * g * g).astype(np.float32)
                denom = np.sqrt(v2[n]) / np.float32(math.sqrt(1 - b2 ** t)) + np.float32(eps)
                p -= np.float32(lr / (1 - b1 ** t)) * m[n] / denom
            rec.update({f"step.{s}.param.{n}": p.copy() for n, p in params.items()})
            if s == steps:
                rec.update({f"step.{s}.m.{n}": a for n, a in m.items()})
                rec.update({f"step.{s}.v.{n}": a for n, a in v2.items()})
            else:  # the port's own loss and gradients at the weights the step left
                self.w = params
                nxt = self.loss_and_backward(ids, mask, labels)
                rec[f"step.{s + 1}.loss"] = nxt["loss"]
                rec.update({f"step.{s + 1}.grad.{n}": nxt["grad." + n] for n in params})
                self.w = {k: v.copy() for k, v in params.items()}
        return rec
