"""The logit lens: what the model would predict if it stopped after each layer.

The residual stream h_i entering block i is in the same space as the last one, so the model's own
head can read it early: lm_head(ln_f(h_i)). Row 0 reads the embedding layer norm's output h_0, row i
the stream entering block i, and the last row (L) is the model's own prediction, its logits.
Early rows are rough guesses that sharpen layer by layer (nostalgebraist, "interpreting GPT: the
logit lens", 2020).

    top_ids [L+1, T, k], top_probs [L+1, T, k]   (with a leading B when input_ids is [B, T])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..functional import softmax
from ..validation import is_int


@dataclass
class LogitLens:
    """top_ids (int64) and top_probs (float32), [L+1, T, k] or [B, L+1, T, k]: the k most likely
    next tokens at each position for each layer's reading, most likely first (ties: lower id first)."""

    top_ids: np.ndarray
    top_probs: np.ndarray


def top_k(probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest entries of the last axis, largest first (ties: lower index first): (ids, values)."""
    part = np.argpartition(-probs, k - 1, axis=-1)[..., :k]  # [..., k], unordered: O(V), not a full sort
    vals = np.take_along_axis(probs, part, axis=-1)
    order = np.lexsort((part, -vals), axis=-1)  # by value descending, then id ascending
    ids = np.take_along_axis(part, order, axis=-1)
    return ids.astype(np.int64), np.take_along_axis(vals, order, axis=-1)


def logit_lens(model: Any, input_ids: Any, attention_mask: Any = None, k: int = 5) -> LogitLens:
    """The logit lens of a `BloomForCausalLM` on input_ids [T] or [B, T] (see the module docstring).

    One forward with output_hidden_states; the readings are made one layer at a time, so only one
    [B, T, V] array of logits is alive at once.
    """
    if not hasattr(model, "lm_head_weight"):
        raise InputError(f"logit_lens needs a BloomForCausalLM (it reads the LM head), got {type(model).__name__}")
    V = model.config.vocab_size
    if not is_int(k) or not 1 <= k <= V:
        raise InputError(f"k must be an integer from 1 to the vocab size {V}, got {k!r}")
    ids = np.asarray(input_ids)
    single = ids.ndim == 1
    if single:
        ids = ids[None]
        attention_mask = None if attention_mask is None else np.asarray(attention_mask)[None]
    out = model(ids, attention_mask=attention_mask, output_hidden_states=True, use_cache=False)
    cfg, params = model.config, model.params
    rows = []
    for h in out.hidden_states[:-1]:  # h_0 .. h_{L-1}; the last entry is ln_f(h_L), read by the model itself
        normed = model.ops.layer_norm(h, params["ln_f.weight"], params["ln_f.bias"], cfg.layer_norm_epsilon)
        rows.append(top_k(softmax(model.ops.linear(normed, model.lm_head_weight), axis=-1), k))  # [B, T, V] -> k
    rows.append(top_k(softmax(out.logits, axis=-1), k))
    top_ids = np.stack([r[0] for r in rows], axis=1)  # [B, L+1, T, k]
    top_probs = np.stack([r[1] for r in rows], axis=1).astype(np.float32)
    return LogitLens(top_ids[0], top_probs[0]) if single else LogitLens(top_ids, top_probs)
