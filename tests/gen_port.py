"""An independent port of BLOOM *generation* with a KV cache, for the generation-golden tests, written
from docs/golden.md and docs/golden-format.md alone (it reuses tests/golden_port.py's NumPy ops, not
minibloom). It replays the golden's `gen.tokens` and records the documented `gen.*` names; `cached=False`
recomputes every step with a full forward of prompt + tokens so far: the self-check a port runs.

`sample` replays a sampling golden: from its own logits it computes each step's processed scores
(temperature, top-k, top-p), probabilities and the token the golden's draw chooses (the replay rule of
docs/golden.md), and records them; it still feeds the golden's tokens forward.

`bugs`: "alibi_restart" -- in cached steps the new tokens' ALiBi positions restart at 0 instead of
continuing after the cached ones. Sampling bugs: "top_p_drops_crossing" -- the nucleus keeps the
tokens whose cumulative probability is <= p, dropping the one that crosses p; "temperature_last" --
top-k and top-p filter the raw logits and the temperature divides afterwards (so the nucleus is the
untempered one); "cdf_off_by_one" -- the draw is compared with the cumulative sums *before* each
token, which picks the token after the right one.
"""

from __future__ import annotations

import math

import numpy as np

from tests.golden_port import Port


class GenPort(Port):
    def __init__(self, directory: str, bugs=()):
        super().__init__(directory)
        self.gen_bugs = set(bugs)

    def run(self, ids, mask, past, new_pos):
        """ids [B, T] of the new tokens, mask [B, S] over past + new; past: per layer (k, v) [B, N, P, D].
        Returns (last logits [B, V], per layer the new (k, v))."""
        N, (B, T) = self.cfg["n_head"], ids.shape
        S = mask.shape[1]
        P = S - T
        pos = ((np.cumsum(mask, -1) - 1) * mask).astype(np.float32)  # key positions over real tokens
        if "alibi_restart" in self.gen_bugs and P > 0:
            pos[:, P:] = np.arange(T)  # the bug: the new keys counted from 0
        alibi = self.slopes(N)[None, :, None, None] * pos[:, None, None, :]  # [B, N, 1, S]
        causal = np.arange(S)[None, :] <= (P + np.arange(T))[:, None]  # [T, S]
        allowed = (causal[None] & (mask[:, None, :] == 1))[:, None]  # [B, 1, T, S]
        x = self.layer_norm(self.w["word_embeddings.weight"][ids], "word_embeddings_layernorm")
        new = []
        for i in range(self.cfg["n_layer"]):
            h = self.layer_norm(x, f"h.{i}.input_layernorm")
            fused = self.linear(h, f"h.{i}.self_attention.query_key_value").reshape(B, T, N, 3, -1)
            q, k, v = (fused[:, :, :, j].transpose(0, 2, 1, 3) for j in range(3))  # [B, N, T, D]
            new.append((k, v))
            if past:
                k, v = np.concatenate([past[i][0], k], 2), np.concatenate([past[i][1], v], 2)
            scores = alibi + q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(q.shape[-1]))
            scores = scores + np.where(allowed, 0, np.finfo(np.float32).min).astype(np.float32)
            e = np.exp(scores - scores.max(-1, keepdims=True))
            ctx = ((e / e.sum(-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(B, T, -1)
            x = x + self.linear(ctx, f"h.{i}.self_attention.dense")
            h = self.layer_norm(x, f"h.{i}.post_attention_layernorm")
            x = x + self.linear(self.gelu(self.linear(h, f"h.{i}.mlp.dense_h_to_4h")), f"h.{i}.mlp.dense_4h_to_h")
        logits = self.layer_norm(x, "ln_f")[:, -1] @ self.w["word_embeddings.weight"].T  # [B, V]
        return logits.astype(np.float32), new

    def generate(self, ids, mask, tokens, cached: bool = True) -> dict[str, np.ndarray]:
        """The gen.* names for the golden's tokens [B, N]: cached decoding, or a full forward per step."""
        rec, past, B = {"gen.tokens": tokens}, None, ids.shape[0]
        for s in range(tokens.shape[1]):
            seq = np.concatenate([ids, tokens[:, :s]], 1)
            full_mask = np.concatenate([mask, np.ones((B, s), mask.dtype)], 1)
            step_ids = seq if s == 0 or not cached else seq[:, -1:]
            logits, new = self.run(step_ids, full_mask, past if cached else None, None)
            rows = ids.shape[1] if s == 0 else 1  # the rows step s adds to the cache
            for i, (k, v) in enumerate(new):
                rec[f"gen.{s}.h.{i}.k"], rec[f"gen.{s}.h.{i}.v"] = k[:, :, -rows:], v[:, :, -rows:]
            rec[f"gen.{s}.logits"] = logits
            past = [(k, v) if past is None else (np.concatenate([past[i][0], k], 2), np.concatenate([past[i][1], v], 2))
                    for i, (k, v) in enumerate(new)] if cached else None
        return rec

    def process(self, logits, temperature, top_k, top_p):
        """logits [B, V] -> processed scores: / temperature, keep the top_k, keep the nucleus of top_p."""
        x = logits.astype(np.float32)
        if "temperature_last" not in self.gen_bugs:
            x = x / np.float32(temperature)
        if top_k:
            kth = np.sort(x, -1)[:, -min(top_k, x.shape[-1])][:, None]  # [B, 1]: the k-th largest
            x = np.where(x >= kth, x, -np.inf).astype(np.float32)
        if top_p < 1:
            order = np.argsort(-x, -1, kind="stable")  # [B, V] most likely first
            probs = np.take_along_axis(self.softmax(x), order, -1)
            before = np.cumsum(probs, -1) - probs  # the mass of the more likely tokens
            keep = (np.cumsum(probs, -1) <= top_p) if "top_p_drops_crossing" in self.gen_bugs else before < top_p
            keep[:, 0] = True  # the most likely token always stays
            x = np.where(np.take_along_axis(keep, np.argsort(order, -1), -1), x, -np.inf).astype(np.float32)
        if "temperature_last" in self.gen_bugs:
            x = x / np.float32(temperature)
        return x

    @staticmethod
    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return (e / e.sum(-1, keepdims=True)).astype(np.float32)

    def pick(self, probs, draws):
        """The replay rule: u = draw / 2**53; the first token whose float64 cumulative sum exceeds
        u times the row's total (at most V - 1)."""
        u = draws.astype(np.float64) / 2.0 ** 53  # [B]
        cumulative = np.cumsum(probs.astype(np.float64), -1)  # [B, V]
        target = u * cumulative[:, -1]  # [B]
        if "cdf_off_by_one" in self.gen_bugs:
            cumulative = cumulative - probs  # the bug: the sums before each token
        picked = np.array([np.searchsorted(c, t, side="right") for c, t in zip(cumulative, target)])
        return np.minimum(picked, probs.shape[-1] - 1).astype(np.int64)

    def sample(self, ids, mask, tokens, draws, temperature, top_k, top_p, cached: bool = True):
        """The gen.* names of a sampling golden: generate's, plus per step scores, probs and the token
        the golden's draw chooses from this port's probabilities."""
        rec = self.generate(ids, mask, tokens, cached)
        for s in range(tokens.shape[1]):
            scores = self.process(rec[f"gen.{s}.logits"], temperature, top_k, top_p)
            rec[f"gen.{s}.scores"], rec[f"gen.{s}.probs"] = scores, self.softmax(scores)
            rec[f"gen.{s}.token"] = self.pick(rec[f"gen.{s}.probs"], draws[:, s])
        return rec
