"""The Numba backward ops: the hot element-wise and row-wise loops of the backward pass, compiled.

Same functions, signatures and results as `numpy_backward` (tested equal, op by op):

- layer_norm_backward: one kernel per row: pass 1 recomputes mean and rstd (float64 sums), pass 2
  the two row means of g = d_y * w, pass 3 writes d_x and accumulates d_w, d_b (no [R, F] temporaries).
- bloom_gelu_backward: chunks of 4096 elements, tanh through a vectorised exp once per element.
- cross_entropy_with_grad: one row of logits at a time: max, exp (vectorised), sum, then the row
  is overwritten by its gradient (softmax - one-hot) / n; the loss sums in float64.
- softmax_backward: per row of probs, pass 1 the dot product sum(d_p * p), pass 2 d_s.
- embedding_backward: a scatter-add loop over the B*T rows (NumPy's `add.at` is slow).
- linear_backward, linear_tp_backward: matrix products, left to BLAS (NumPy's, as in the forward).

Kernel template as in `numba_backend`: what it computes; geometry (here: serial, row by row, for the
reason given there: BLAS threads and Numba threads alternating on few cores slow both); the passes.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..functional import linear_backward, linear_tp_backward
from ..losses import IGNORE_INDEX, counted_targets
from .numba_backend import _exp_row

__all__ = ["bloom_gelu_backward", "cross_entropy_with_grad", "embedding_backward", "layer_norm_backward", "linear_backward",
           "linear_tp_backward", "softmax_backward"]

SERIAL = dict(cache=True, nogil=True, error_model="numpy")  # as numba_backend: divisions vectorise
CHUNK = 4096  # elements per vectorised pass of the element-wise kernels (two small scratch rows)
FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}  # as numba_backend: vectorise, keep NaN/inf meaning


@numba.njit(**SERIAL)
def _layer_norm_backward(d_y, x, weight, eps, d_x, d_w, d_b):
    """Rows r of x [R, F]: d_x[r] = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = d_y[r] * w;
    d_w += d_y[r] * xhat, d_b += d_y[r] (accumulated over rows, in float64 buffers)."""
    R, F = x.shape
    for r in range(R):
        total = 0.0  # pass 1: mean and rstd, as the forward kernel
        for f in range(F):
            total += x[r, f]
        mean = np.float32(total / F)
        sq = 0.0
        for f in range(F):
            c = np.float32(x[r, f] - mean)
            sq += c * c
        rstd = np.float32(1.0) / np.float32(math.sqrt(np.float32(sq / F) + eps))
        g_sum, gx_sum = 0.0, 0.0  # pass 2: row sums of g and g * xhat
        for f in range(F):
            xhat = np.float32(x[r, f] - mean) * rstd
            g = d_y[r, f] * weight[f]
            g_sum += g
            gx_sum += g * xhat
        g_mean, gx_mean = np.float32(g_sum / F), np.float32(gx_sum / F)
        for f in range(F):  # pass 3: d_x, and the parameter gradients
            xhat = np.float32(x[r, f] - mean) * rstd
            d_x[r, f] = rstd * (d_y[r, f] * weight[f] - g_mean - xhat * gx_mean)
            d_w[f] += d_y[r, f] * xhat
            d_b[f] += d_y[r, f]


def layer_norm_backward(d_y: np.ndarray, x: np.ndarray, weight: np.ndarray, eps: float,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    F = x.shape[-1]
    x2 = np.ascontiguousarray(x, np.float32).reshape(-1, F)  # [R, F]
    d_y2 = np.ascontiguousarray(d_y, np.float32).reshape(-1, F)
    d_x = np.empty_like(x2)
    d_w, d_b = np.zeros(F, np.float64), np.zeros(F, np.float64)
    _layer_norm_backward(d_y2, x2, np.ascontiguousarray(weight, np.float32), np.float32(eps), d_x, d_w, d_b)
    return d_x.reshape(x.shape), d_w.astype(np.float32), d_b.astype(np.float32)


@numba.njit(fastmath=FAST, **SERIAL)
def _gelu_backward(d_y, x, d_x):
    """d_x[i] = d_y[i] * gelu'(x[i]) over flat arrays, Megatron's constants (see functional).

    In chunks of CHUNK elements: pass 1 the tanh argument u and exp(2|u|) (`_exp_row`, which
    vectorises; a libm exp or tanh per element does not, ~5x slower), pass 2 tanh(u) =
    sign(u) (1 - 2 / (exp(2|u|) + 1)) and the slope. Within 1e-6 relative of NumPy's tanh;
    exp(2|u|) overflowing to inf gives |tanh| = 1.
    """
    e = np.zeros(CHUNK, np.float32)
    scratch = np.empty(CHUNK, np.int32)
    for lo in range(0, x.size, CHUNK):
        n = min(CHUNK, x.size - lo)
        for k in range(n):
            v = x[lo + k]
            u = np.float32(0.79788456) * v * (np.float32(1.0) + np.float32(0.044715) * v * v)
            e[k] = np.float32(2.0) * abs(u)
        _exp_row(e, e, scratch)  # whole rows (a slice's layout would not vectorise); the tail is unused
        for k in range(n):
            v = x[lo + k]
            t = np.float32(1.0) - np.float32(2.0) / (e[k] + np.float32(1.0))
            t = -t if v < 0 else t  # u has the sign of v, as 1 + 0.044715 v^2 > 0
            du = np.float32(0.79788456) + np.float32(0.1070322243) * v * v  # d u / d v
            slope = np.float32(0.5) * v * ((np.float32(1.0) - t * t) * du) + np.float32(0.5) * (np.float32(1.0) + t)
            d_x[lo + k] = slope * d_y[lo + k]


def bloom_gelu_backward(d_y: np.ndarray, x: np.ndarray) -> np.ndarray:
    x1 = np.ascontiguousarray(x, np.float32).reshape(-1)
    d_x = np.empty_like(x1)
    _gelu_backward(np.ascontiguousarray(d_y, np.float32).reshape(-1), x1, d_x)
    return d_x.reshape(x.shape)


@numba.njit(fastmath=FAST, **SERIAL)
def _softmax_backward(d_p, p, d_s):
    """Rows r of [R, S]: pass 1 dot = sum_s d_p * p; pass 2 d_s = p * (d_p - dot)."""
    R, S = p.shape
    for r in range(R):
        dot = np.float32(0.0)
        for s in range(S):
            dot += d_p[r, s] * p[r, s]
        for s in range(S):
            d_s[r, s] = p[r, s] * (d_p[r, s] - dot)


def softmax_backward(d_p: np.ndarray, p: np.ndarray, axis: int = -1) -> np.ndarray:
    if axis not in (-1, p.ndim - 1):
        raise ValueError("numba softmax_backward works along the last axis")
    S = p.shape[-1]
    p2 = np.ascontiguousarray(p, np.float32).reshape(-1, S)  # [R, S]
    d_s = np.empty_like(p2)
    _softmax_backward(np.ascontiguousarray(d_p, np.float32).reshape(-1, S), p2, d_s)
    return d_s.reshape(p.shape)


@numba.njit(**SERIAL)
def _embedding_backward(d_x, ids, d_table):
    """d_table[ids[m]] += d_x[m] for each of the M gathered rows, in order."""
    M, H = d_x.shape
    for m in range(M):
        row = ids[m]
        for h in range(H):
            d_table[row, h] += d_x[m, h]


def embedding_backward(d_x: np.ndarray, ids: np.ndarray, vocab_size: int) -> np.ndarray:
    H = d_x.shape[-1]
    d_table = np.zeros((vocab_size, H), np.float32)  # [V, H]
    _embedding_backward(np.ascontiguousarray(d_x, np.float32).reshape(-1, H),
                        np.ascontiguousarray(ids, np.int64).reshape(-1), d_table)
    return d_table


@numba.njit(fastmath=FAST, **SERIAL)
def _cross_entropy_rows(x, targets, ignore_index, inv_n, d_x):
    """Rows r of logits x [M, C]: d_x[r] = (softmax(x[r]) - onehot(t_r)) * inv_n, or 0 where the
    target is ignored; returns the sum over counted rows of -log p(t_r) = log sum exp(x - max) - (x[t] - max)."""
    M, C = x.shape
    scratch = np.empty(C, np.int32)
    loss = 0.0
    for r in range(M):
        row = d_x[r]
        t = targets[r]
        if t == ignore_index:
            row[:] = 0.0
            continue
        m = x[r, 0]
        for c in range(1, C):
            m = max(m, x[r, c])
        for c in range(C):
            row[c] = x[r, c] - m  # shifted: every exponent <= 0
        picked = row[t]
        _exp_row(row, row, scratch)
        total = 0.0
        for c in range(C):
            total += row[c]
        loss += math.log(total) - picked
        scale = np.float32(inv_n / total)
        for c in range(C):
            row[c] *= scale
        row[t] -= np.float32(inv_n)
    return loss


def cross_entropy_with_grad(logits: np.ndarray, targets: np.ndarray, ignore_index: int = IGNORE_INDEX,
                            name: str = "labels") -> tuple[np.float32, np.ndarray]:
    M, C = logits.shape
    targets, counted = counted_targets(targets, M, C, ignore_index, name)
    d_x = np.empty((M, C), np.float32)
    x = np.ascontiguousarray(logits, np.float32)
    n = counted.size
    total = _cross_entropy_rows(x, targets.astype(np.int64), np.int64(ignore_index), 1.0 / max(n, 1), d_x)
    with np.errstate(invalid="ignore", divide="ignore"):
        loss = np.float32(np.float64(total) / n) if n else np.float32(np.nan)  # all ignored: NaN, as torch
    return loss, d_x
