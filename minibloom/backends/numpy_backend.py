"""The NumPy backend: the readable ops of `functional.py` and `attention.py`, plus the widening of
compact weights (2-byte, int8) to float32, WIDEN_ROWS rows at a time, each call.

subtle: compact storage is for the Numba backend, which widens while it multiplies. Here every
op widens again: blocks keep the temporaries small (a whole 250880 x 1024 embedding widened for
the logits was 1 GB per token) and halve the time for bfloat16 and int8, but a product is still
1.1-2x float32's time, and float16 ~10x (NumPy widens it slowly); see docs/performance.md.
The model warns once when it is built so (`PreTrainedBloom.__init__`); storage="float32" widens
once at load instead."""

from __future__ import annotations

import numpy as np

from .. import functional
from ..attention import attention_probs
from ..storage import Int8Matrix, gather_rows, to_float32

__all__ = ["attention_probs", "bloom_gelu", "context", "embed", "layer_norm", "linear", "linear_gelu", "linear_tp"]

layer_norm = functional.layer_norm
bloom_gelu = functional.bloom_gelu


def embed(table: np.ndarray, ids: np.ndarray) -> np.ndarray:
    return gather_rows(table, ids)  # [V, H][B, T] -> [B, T, H]


WIDEN_ROWS = 1024  # weight rows widened per product: a few MB, cache-sized, reused by the allocator


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    if weight.dtype == np.float32:
        return functional.linear(x, weight, bias)
    out = np.empty(x.shape[:-1] + weight.shape[:1], np.float32)  # [..., O]
    for start in range(0, weight.shape[0], WIDEN_ROWS):
        stop = min(start + WIDEN_ROWS, weight.shape[0])
        out[..., start:stop] = functional.linear(x, widen_rows(weight, start, stop),
                                                 None if bias is None else bias[start:stop])
    return out


def widen_rows(weight: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows start:stop of a stored weight, as float32 (an int8 slice with its own rows' scales)."""
    if isinstance(weight, Int8Matrix):
        return weight.codes()[start:stop].astype(np.float32) * weight.row_scales()[start:stop, None]
    return to_float32(weight[start:stop])


def linear_gelu(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return functional.bloom_gelu(linear(x, weight, bias))


def linear_tp(x: np.ndarray, weight: np.ndarray, pretraining_tp: int) -> np.ndarray:
    return functional.linear_tp(x, to_float32(weight), pretraining_tp)


def context(probs: np.ndarray, v: np.ndarray) -> np.ndarray:
    return probs @ v  # [B, N, T, S] @ [B, N, S, D] -> [B, N, T, D]
