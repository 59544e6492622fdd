"""Perplexity: how surprised a causal LM is by a text, exp(mean next-token cross-entropy).

A perplexity of 50 means the model is, on average, as unsure as a uniform choice among 50 tokens.
Long texts are scored in windows of `window` tokens that do not overlap (each window starts with
no context, so this slightly overstates the perplexity of a model with a longer context).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError


def perplexity(model, input_ids, window: int = 128) -> float:
    """exp(mean cross-entropy of every token after the first of each window), by a causal LM."""
    ids = np.asarray(input_ids).reshape(-1)
    if ids.size < 2 or window < 2:
        raise InputError(f"perplexity needs at least 2 tokens and a window >= 2, got {ids.size} and {window}")
    total, count = 0.0, 0
    for start in range(0, ids.size - 1, window):
        chunk = ids[start:start + window]
        if chunk.size < 2:
            break
        loss = model(chunk[None], labels=chunk[None]).loss  # mean over chunk.size - 1 predictions
        total += float(loss) * (chunk.size - 1)
        count += chunk.size - 1
    return math.exp(total / count)
