"""`dense`: the output projection of attention and of the MLP, and its backward.

    dense(x) = x @ W^T + b                                   [..., in] -> [..., out]

BLOOM was pre-trained with Megatron's tensor parallelism: `pretraining_tp` ranks each held a slice of
the input columns and their partial products were summed. transformers' `slow_but_exact=True`
replays that sum for the two output projections (`self_attention.dense`, `mlp.dense_4h_to_h`), so
float32 rounds as it did in pre-training; it adds **no bias** there (`functional.linear_tp`). Every
released config leaves slow_but_exact off, and `tp` is then 1: a plain linear layer. Keeping the
choice here keeps it out of attention.py and block.py, which each call `dense` once.

Shape legend: B batch, T tokens, in/out the projection's widths.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np


def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, tp: int, ops: ModuleType) -> np.ndarray:
    """x [B, T, in] -> [B, T, out] through weight [out, in] and bias [out]; with tp > 1, the sum over
    tp column slices and no bias (`linear_tp`). `ops`: the backend computing it."""
    return ops.linear_tp(x, weight, tp) if tp > 1 else ops.linear(x, weight, bias)


def dense_backward(d_y: np.ndarray, x: np.ndarray, weight: np.ndarray, tp: int, bops: ModuleType,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of `dense`: (d_x [B, T, in], d_W [out, in], d_b [out]). The slices of `linear_tp`
    each touch their own columns, so the gradients are linear's, column block by column block; its
    unused bias gets 0. `bops`: the backward ops (NumPy reference or Numba kernels)."""
    if tp == 1:
        return bops.linear_backward(d_y, x, weight)
    d_x, d_w = bops.linear_tp_backward(d_y, x, weight, tp)
    return d_x, d_w, np.zeros(weight.shape[0], np.float32)
