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
