"""The Numba backward ops: the hot element-wise and row-wise loops of the backward pass, compiled.

Same functions, signatures and results as `numpy_backward` (tested equal, op by op):

- layer_norm_backward: one kernel per row: pass 1 recomputes mean and rstd (float64 sums), pass 2
  the two row means of g = d_y * w, pass 3 writes d_x and accumulates d_w, d_b (no [R, F] temporaries).
- bloom_gelu_backward: one pass, tanh (as exp, which vectorises) once per element.
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

__all__ = ["bloom_gelu_backward", "embedding_backward", "layer_norm_backward", "linear_backward",
           "linear_tp_backward", "softmax_backward"]

SERIAL = dict(cache=True, nogil=True)
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

    tanh(u) is written as 1 - 2 / (exp(2u) + 1): LLVM vectorises the exp, not a scalar tanh call
    (~3x faster; within 1e-6 relative of NumPy's tanh; exp overflowing to inf gives tanh = 1).
    """
    for i in range(x.size):
        v = x[i]
        u = np.float32(0.79788456) * v * (np.float32(1.0) + np.float32(0.044715) * v * v)
        t = np.float32(1.0) - np.float32(2.0) / (np.exp(np.float32(2.0) * u) + np.float32(1.0))
        du = np.float32(0.79788456) + np.float32(0.1070322243) * v * v  # d u / d v
        slope = np.float32(0.5) * v * ((np.float32(1.0) - t * t) * du) + np.float32(0.5) * (np.float32(1.0) + t)
        d_x[i] = slope * d_y[i]


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
