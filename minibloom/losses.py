"""The losses of the task heads, in float32, as torch.nn computes them with reduction="mean".

- cross_entropy: -log softmax(logits)[target], averaged over the targets that are not ignored
  (causal LM, token classification, single-label classification, question answering);
- mse: mean squared error (regression);
- bce_with_logits: binary cross-entropy on raw logits (multi-label classification).

Numerical stability: log softmax is computed as `x - max - log(sum(exp(x - max)))` (log-sum-exp),
so no exponent overflows; BCE uses `max(x, 0) - x*t + log1p(exp(-|x|))`, which never takes the
log of 0. Sums are accumulated in float64 and the result returned as float32.

Shape legend: M rows (flattened batch x positions), C classes.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

IGNORE_INDEX = -100


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(softmax(x)) without computing softmax first: x - logsumexp(x)."""
    x = logits.astype(np.float32, copy=False)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def cross_entropy(logits: np.ndarray, targets: np.ndarray, ignore_index: int = IGNORE_INDEX,
                  name: str = "labels") -> np.float32:
    """Mean of -log p(target) over rows whose target != ignore_index: logits [M, C], targets [M].

    subtle: when every target is ignored, torch divides 0 by 0 and returns NaN; so do we.
    """
    M, C = logits.shape
    targets = np.asarray(targets).reshape(M)
    counted = targets != ignore_index  # [M]
    bad = np.flatnonzero(counted & ((targets < 0) | (targets >= C)))
    if bad.size:
        raise InputError(f"{name} holds {targets[bad[0]]} at flat position {bad[0]}: targets must be in "
                         f"[0, {C}) or {ignore_index} (ignored)")
    logp = log_softmax(logits)  # [M, C]
    picked = logp[np.flatnonzero(counted), targets[counted]]  # [counted]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.float32(-picked.astype(np.float64).sum() / counted.sum())


def mse(predictions: np.ndarray, targets: np.ndarray) -> np.float32:
    """mean((p - t)^2) over every element."""
    diff = predictions.astype(np.float64) - np.asarray(targets, dtype=np.float32).astype(np.float64)
    return np.float32(np.mean(diff * diff))


def bce_with_logits(logits: np.ndarray, targets: np.ndarray) -> np.float32:
    """mean(-t log sigmoid(x) - (1 - t) log(1 - sigmoid(x))), in the stable form."""
    x = logits.astype(np.float32)
    t = np.asarray(targets, dtype=np.float32)
    per_element = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    return np.float32(per_element.astype(np.float64).mean())


# ---------------------------------------------------------------------------------------------------
# Backward: the gradient of each (mean) loss with respect to its logits.
# ---------------------------------------------------------------------------------------------------


def counted_targets(targets: np.ndarray, M: int, C: int, ignore_index: int, name: str,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(targets [M], the indices of the rows that count [n]); a target outside [0, C) is an InputError."""
    targets = np.asarray(targets).reshape(M)
    counted = np.flatnonzero(targets != ignore_index)  # [n]
    bad = counted[(targets[counted] < 0) | (targets[counted] >= C)]
    if bad.size:
        raise InputError(f"{name} holds {targets[bad[0]]} at flat position {bad[0]}: targets must be in "
                         f"[0, {C}) or {ignore_index} (ignored)")
    return targets, counted


def cross_entropy_with_grad(logits: np.ndarray, targets: np.ndarray, ignore_index: int = IGNORE_INDEX,
                            name: str = "labels") -> tuple[np.float32, np.ndarray]:
    """`cross_entropy` and its gradient d loss / d logits [M, C] from one exp of the logits.

    -log softmax(x)[t] = logsumexp(x) - x[t]; the derivative of logsumexp is softmax, that of x[t]
    the one-hot row, so d_logits = (softmax(x) - onehot(t)) / n_counted, and 0 on ignored rows.
    subtle: when every target is ignored the loss is NaN (0/0) but torch's gradient is 0 (no row
    writes one); so is ours.
    """
    M, C = logits.shape
    targets, counted = counted_targets(targets, M, C, ignore_index, name)  # [M], [n] rows that count
    x = logits.astype(np.float32, copy=False)
    shifted = x - x.max(axis=-1, keepdims=True)  # [M, C]
    e = np.exp(shifted)  # the one exp
    total = e.sum(axis=-1, keepdims=True)  # [M, 1]
    picked = shifted[counted, targets[counted]] - np.log(total[counted, 0])  # log p(target), as log_softmax
    with np.errstate(invalid="ignore", divide="ignore"):
        loss = np.float32(-picked.astype(np.float64).sum() / counted.size)
    if counted.size == 0:
        return loss, np.zeros((M, C), np.float32)
    e *= (np.float32(1.0) / np.float32(counted.size)) / total  # softmax / n
    e[counted, targets[counted]] -= np.float32(1.0) / np.float32(counted.size)
    e[targets == ignore_index] = 0.0  # ignored rows add nothing to the loss
    return loss, e


def cross_entropy_backward(logits: np.ndarray, targets: np.ndarray, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """d loss / d logits [M, C] for `cross_entropy` (see `cross_entropy_with_grad`)."""
    return cross_entropy_with_grad(logits, targets, ignore_index)[1]


def mse_backward(predictions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """d mean((p - t)^2) / d p = 2 (p - t) / n, same shape as predictions."""
    diff = predictions.astype(np.float32) - np.asarray(targets, dtype=np.float32)
    return (np.float32(2.0) / np.float32(diff.size)) * diff


def bce_with_logits_backward(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """d bce / d x = (sigmoid(x) - t) / n: the log-sigmoid terms differentiate to exactly that."""
    x = logits.astype(np.float32)
    t = np.asarray(targets, dtype=np.float32)
    sigmoid = np.float32(0.5) * (np.float32(1.0) + np.tanh(np.float32(0.5) * x))  # 1 / (1 + e^-x), no overflow
    return (sigmoid - t) / np.float32(x.size)
