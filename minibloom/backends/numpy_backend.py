"""The NumPy backend: the readable ops of `functional.py` and `attention.py`, plus the widening of
2-byte weights to float32 (the whole matrix, each call: simple, and slow for float16 storage --
the Numba backend widens while it multiplies)."""

from __future__ import annotations

import numpy as np

from .. import functional
from ..attention import attention_probs
from ..storage import gather_rows, to_float32

__all__ = ["attention_probs", "bloom_gelu", "context", "embed", "layer_norm", "linear", "linear_gelu", "linear_tp"]

layer_norm = functional.layer_norm
bloom_gelu = functional.bloom_gelu


def embed(table: np.ndarray, ids: np.ndarray) -> np.ndarray:
    return gather_rows(table, ids)  # [V, H][B, T] -> [B, T, H]


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    return functional.linear(x, to_float32(weight), bias)


def linear_gelu(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return functional.bloom_gelu(linear(x, weight, bias))


def linear_tp(x: np.ndarray, weight: np.ndarray, pretraining_tp: int) -> np.ndarray:
    return functional.linear_tp(x, to_float32(weight), pretraining_tp)


def context(probs: np.ndarray, v: np.ndarray) -> np.ndarray:
    return probs @ v  # [B, N, T, S] @ [B, N, S, D] -> [B, N, T, D]
