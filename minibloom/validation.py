"""Checks on the arrays users pass to the models, done before any array work.

Each check returns a clean NumPy array or raises `InputError` naming the argument and, for bad
values, the first position at fault -- never a NumPy broadcast error three calls deeper.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError


def as_array(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as e:  # ragged lists and the like
        raise InputError(f"{name} must be a rectangular array: {e}") from None
    if arr.dtype == object:
        raise InputError(f"{name} must be a numeric array, got objects (a ragged list?)")
    return arr


def check_ids(input_ids: Any, vocab_size: int, name: str = "input_ids") -> np.ndarray:
    """Token ids: an integer array [B, T] with B, T >= 1 and every id in [0, vocab_size)."""
    ids = as_array(input_ids, name)
    if ids.dtype.kind not in "iu":
        raise InputError(f"{name} must hold integers, got dtype {ids.dtype}")
    check_rank(ids, 2, name, "[batch, seq_len]")
    bad = np.argwhere((ids < 0) | (ids >= vocab_size))
    if bad.size:
        b, t = bad[0]
        raise InputError(f"{name}[{b}, {t}] = {ids[b, t]} is outside the vocabulary [0, {vocab_size})")
    return ids.astype(np.int64)


def check_embeds(inputs_embeds: Any, hidden_size: int) -> np.ndarray:
    """Input embeddings: a float array [B, T, H] of finite values."""
    x = as_array(inputs_embeds, "inputs_embeds")
    if x.dtype.kind != "f":
        raise InputError(f"inputs_embeds must hold floats, got dtype {x.dtype}")
    check_rank(x, 3, "inputs_embeds", "[batch, seq_len, hidden_size]")
    if x.shape[-1] != hidden_size:
        raise InputError(f"inputs_embeds has last dimension {x.shape[-1]}, the config's hidden_size is {hidden_size}")
    return x.astype(np.float32)


def check_rank(arr: np.ndarray, rank: int, name: str, layout: str) -> None:
    if arr.ndim != rank:
        raise InputError(f"{name} must have shape {layout}, got shape {arr.shape}")
    if 0 in arr.shape:
        raise InputError(f"{name} must not be empty, got shape {arr.shape}")


def check_attention_mask(attention_mask: Any, batch: int, key_length: int) -> np.ndarray:
    """The 2-D mask [B, S] over every key the queries see; 1 = real token, 0 = padding."""
    mask = as_array(attention_mask, "attention_mask")
    if mask.dtype.kind not in "biuf":
        raise InputError(f"attention_mask must be numeric, got dtype {mask.dtype}")
    if mask.shape != (batch, key_length):
        raise InputError(f"attention_mask has shape {mask.shape}, expected {(batch, key_length)} "
                         "(batch, past + new tokens)")
    if mask.dtype.kind == "f" and not np.isfinite(mask).all():
        raise InputError("attention_mask holds NaN or infinite values")
    return mask


def check_head_mask(head_mask: Any, n_layer: int, n_head: int) -> np.ndarray | None:
    """head_mask [N] (same for every layer) or [L, N] -> [L, N] float32, or None."""
    if head_mask is None:
        return None
    hm = as_array(head_mask, "head_mask")
    if hm.dtype.kind not in "biuf":
        raise InputError(f"head_mask must be numeric, got dtype {hm.dtype}")
    if hm.shape == (n_head,):
        return np.broadcast_to(hm.astype(np.float32), (n_layer, n_head))
    if hm.shape == (n_layer, n_head):
        return hm.astype(np.float32)
    raise InputError(f"head_mask has shape {hm.shape}, expected ({n_head},) or ({n_layer}, {n_head})")
