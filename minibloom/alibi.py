"""ALiBi: BLOOM's only notion of position, a per-head linear penalty on distance.

BLOOM has no position embeddings. Instead each head n adds `slope[n] * position(key)` to its
attention scores. The paper's bias is `-slope * (query - key)`; BLOOM drops the query part because
softmax ignores a constant added to a whole row (softmax(x + c) == softmax(x)), so a bias that
depends on the key position alone gives the same attention -- and is cheaper: one [S] vector per
head instead of a [T, S] matrix.

Shape legend: B batch, S key length (past + new tokens), N heads.
"""

from __future__ import annotations

import math

import numpy as np


def alibi_slopes(n_head: int) -> np.ndarray:
    """The per-head slopes [N]: a geometric sequence, interleaved when N is not a power of two.

    For N a power of two the slopes are base^1 ... base^N with base = 2^(-8/N): for N = 8 that is
    1/2, 1/4, ..., 1/256. Otherwise take the N' = 2^floor(log2 N) slopes of the nearest smaller
    power of two, then the odd powers of 2^(-4/N') (the in-between slopes of 2N' heads) for the rest.

    subtle: transformers computes `torch.pow(float32 base, k)` in float32. Rounding the float64
    power to float32 matches it for every N <= 128 except one head in a few N (1 ULP, e.g. N=32).
    """
    closest = 2 ** math.floor(math.log2(n_head))
    base = np.float32(2.0 ** (-(2.0 ** -(math.log2(closest) - 3))))  # 2^(-8/closest)
    slopes = np.float64(base) ** np.arange(1, closest + 1)
    if closest != n_head:
        extra_base = np.float32(2.0 ** (-(2.0 ** -(math.log2(2 * closest) - 3))))  # 2^(-4/closest)
        n_extra = min(closest, n_head - closest)
        slopes = np.concatenate([slopes, np.float64(extra_base) ** np.arange(1, 2 * n_extra, 2)])
    return slopes.astype(np.float32)  # [N]


def alibi_positions(attention_mask: np.ndarray) -> np.ndarray:
    """Key positions [B, S] counted over real tokens only: `(cumsum(mask) - 1) * mask`.

    Why the cumulative sum: with left padding the first *real* token must be position 0 whatever
    the amount of padding, so a padded row gives the same numbers as the unpadded one. Pads get 0.
    E.g. mask [0, 0, 1, 1, 1] -> positions [0, 0, 0, 1, 2].
    """
    mask = np.asarray(attention_mask)
    if mask.dtype.kind in "biu":  # integer masks count exactly in int64, as torch does
        mask = mask.astype(np.int64)
    else:
        mask = mask.astype(np.float32)
    return ((np.cumsum(mask, axis=-1, dtype=mask.dtype) - 1) * mask).astype(np.float32)  # [B, S]


def alibi_bias(attention_mask: np.ndarray, n_head: int) -> np.ndarray:
    """The ALiBi term added to every query's scores: slope[n] * position[b, s] -> [B, N, 1, S]."""
    slopes = alibi_slopes(n_head)  # [N]
    positions = alibi_positions(attention_mask)  # [B, S]
    return slopes[None, :, None, None] * positions[:, None, None, :]  # [B, N, 1, S]
