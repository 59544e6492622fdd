"""The small NumPy ops every BLOOM layer is built from: linear, layer norm, GELU, softmax.

Shape legend: B batch, T query length, S key length, H hidden (E in transformers), N heads,
D head_dim, V vocab, F any feature width. Every op computes in float32, as transformers does for
a float32 model, and is a pure function of its arguments (no config objects, no mode flags).
"""

from __future__ import annotations

import numpy as np


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """y = x @ W^T + b, PyTorch's `nn.Linear` layout: weight is [out, in]."""
    lead = x.shape[:-1]
    y = x.reshape(-1, x.shape[-1]) @ weight.T  # [B*T, in] @ [in, out] -> [B*T, out], one BLAS call
    if bias is not None:
        y += bias
    return y.reshape(*lead, weight.shape[0])  # [B, T, out]


def linear_tp(x: np.ndarray, weight: np.ndarray, pretraining_tp: int) -> np.ndarray:
    """`x @ W^T` summed over `pretraining_tp` column slices, as Megatron's tensor-parallel ranks
    computed it during BLOOM's pre-training (transformers' `slow_but_exact` path).

    subtle: transformers adds **no bias** on this path, so neither do we. The slice bounds are
    `int(i * in / tp)`, a float division truncated, exactly as in transformers.
    """
    width = x.shape[-1] / pretraining_tp
    out = np.zeros((*x.shape[:-1], weight.shape[0]), dtype=np.float32)  # [B, T, out]
    for i in range(pretraining_tp):
        lo, hi = int(i * width), int((i + 1) * width)
        out = out + linear(x[..., lo:hi], weight[:, lo:hi])  # [B, T, in/tp] -> [B, T, out]
    return out


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """Normalise each row of the last axis to mean 0, variance 1, then scale and shift.

    The variance is the biased one (divide by F, not F - 1), as in `torch.nn.LayerNorm`.
    """
    mean = x.mean(axis=-1, keepdims=True)  # [..., 1]
    centered = x - mean  # [..., F]
    var = (centered * centered).mean(axis=-1, keepdims=True)  # [..., 1]
    return centered / np.sqrt(var + np.float32(eps)) * weight + bias  # [..., F]


def bloom_gelu(x: np.ndarray) -> np.ndarray:
    """BLOOM's GELU: the tanh approximation with Megatron's rounded constants.

    0.79788456 ~ sqrt(2/pi). Keep the constants and the order of operations as they are: they are
    what the weights were trained with, and what transformers computes.
    """
    x = x.astype(np.float32, copy=False)
    return x * np.float32(0.5) * (np.float32(1.0) + np.tanh(np.float32(0.79788456) * x *
                                                            (np.float32(1.0) + np.float32(0.044715) * x * x)))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x) / sum(exp(x)) along `axis`, in float32.

    Why subtract the row max: exp of a large score overflows; softmax(x - c) == softmax(x) for any
    per-row constant c, so shifting by the max keeps every exponent <= 0 and changes nothing else.
    """
    x = x.astype(np.float32, copy=False)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ---------------------------------------------------------------------------------------------------
# Backward passes. Each takes the gradient of the loss with respect to the op's output (`d_y`, same
# shape as y) and what the forward saw, and returns the gradients with respect to its inputs and
# parameters. They are the chain rule written out by hand; `minibloom.training` calls them in reverse.
# ---------------------------------------------------------------------------------------------------


def linear_backward(d_y: np.ndarray, x: np.ndarray, weight: np.ndarray,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of y = x @ W^T + b: returns (d_x [..., in], d_W [out, in], d_b [out]).

    Each y[m, o] = sum_i x[m, i] W[o, i] + b[o], so
        d_x = d_y @ W         (every output o sends back W[o, :] times its gradient)
        d_W = d_y^T @ x       (summed over the M = B*T rows that used the same weight)
        d_b = sum_m d_y[m]
    """
    d_y2 = d_y.reshape(-1, d_y.shape[-1])  # [M, out]
    x2 = x.reshape(-1, x.shape[-1])  # [M, in]
    d_x = (d_y2 @ weight).reshape(*x.shape)  # [M, out] @ [out, in] -> [..., in]
    d_w = d_y2.T @ x2  # [out, M] @ [M, in] -> [out, in]
    return d_x, d_w, d_y2.sum(axis=0)  # d_b: [out]


def linear_tp_backward(d_y: np.ndarray, x: np.ndarray, weight: np.ndarray,
                       pretraining_tp: int) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of `linear_tp`: (d_x, d_W). Slice i only touches columns lo:hi of x and W, so
    each slice gets the plain linear gradient of its own columns; there is no bias (its gradient is 0)."""
    width = x.shape[-1] / pretraining_tp
    d_x, d_w = np.empty_like(x), np.empty_like(weight)  # [..., in], [out, in]
    for i in range(pretraining_tp):
        lo, hi = int(i * width), int((i + 1) * width)
        d_x[..., lo:hi], d_w[:, lo:hi], _ = linear_backward(d_y, x[..., lo:hi], weight[:, lo:hi])
    return d_x, d_w


def layer_norm_backward(d_y: np.ndarray, x: np.ndarray, weight: np.ndarray, eps: float,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of y = xhat * w + b with xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps).

    Returns (d_x [..., F], d_w [F], d_b [F]). With g = d_y * w (the gradient reaching xhat), the
    mean and the variance each depend on the whole row, which gives the two correction terms:
        d_x = rstd * (g - mean(g) - xhat * mean(g * xhat))
    (subtracting mean(g): shifting x by a constant leaves y unchanged; the xhat term: so does scaling).
    """
    mean = x.mean(axis=-1, keepdims=True)  # [..., 1]
    centered = x - mean  # [..., F]
    rstd = np.float32(1.0) / np.sqrt((centered * centered).mean(axis=-1, keepdims=True) + np.float32(eps))
    xhat = centered * rstd  # [..., F]
    g = d_y * weight  # [..., F]
    d_x = rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    flat = (-1, x.shape[-1])
    return d_x, (d_y * xhat).reshape(flat).sum(axis=0), d_y.reshape(flat).sum(axis=0)  # [..., F], [F], [F]


def bloom_gelu_backward(d_y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of `bloom_gelu` at x: d_x = d_y * gelu'(x).

    y = 0.5 x (1 + tanh(u)), u = 0.79788456 (x + 0.044715 x^3), so by the product rule
        gelu'(x) = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) (0.79788456 + 0.1070322243 x^2)
    with 0.1070322243 = 3 * 0.044715 * 0.79788456: Megatron's `bloom_gelu_back`, which transformers
    uses when training, so we keep its constants.
    """
    x = x.astype(np.float32, copy=False)
    t = np.tanh(np.float32(0.79788456) * x * (np.float32(1.0) + np.float32(0.044715) * x * x))
    du = np.float32(0.79788456) + np.float32(0.1070322243) * x * x  # d u / d x
    slope = np.float32(0.5) * x * ((np.float32(1.0) - t * t) * du) + np.float32(0.5) * (np.float32(1.0) + t)
    return slope * d_y


def softmax_backward(d_p: np.ndarray, p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Gradient of p = softmax(s) along `axis`: d_s = p * (d_p - sum(d_p * p)).

    The Jacobian is dp_i/ds_j = p_i (delta_ij - p_j); applied to d_p it gives the line above.
    Keys that were masked have p = 0, so they get no gradient, as they should.
    """
    return p * (d_p - (d_p * p).sum(axis=axis, keepdims=True))


def embedding_backward(d_x: np.ndarray, ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """Gradient of the gather x = table[ids]: a scatter-add, d_table [V, H].

    A token that occurs k times receives the sum of its k rows of d_x; tokens never seen get 0.
    (`np.add.at`, not `d_table[ids] += d_x`, which would keep only one of repeated ids.)
    """
    d_table = np.zeros((vocab_size, d_x.shape[-1]), np.float32)  # [V, H]
    np.add.at(d_table, ids.reshape(-1), d_x.reshape(-1, d_x.shape[-1]))  # [B*T] rows added into [V, H]
    return d_table
