"""Checks on the arrays users pass to the models, done before any array work.

Each check returns a clean NumPy array or raises `InputError` naming the argument and, for bad
values, the first position at fault -- never a NumPy broadcast error three calls deeper.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from .errors import ConfigError, InputError, MemoryBudgetError


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


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_unicode(text: str, name: str = "text") -> str:
    """Refuse a str holding a lone surrogate (U+D800..U+DFFF): it is not Unicode text and has no
    UTF-8 bytes to tokenize. Such strs come from decoding bytes with errors="surrogateescape"
    (Python does so for command-line arguments that are not valid UTF-8) or from JSON escapes."""
    match = None if text.isascii() else _SURROGATE.search(text)
    if match:
        raise InputError(f"{name} holds a lone surrogate U+{ord(match.group()):04X} at character {match.start()}: "
                         "not valid Unicode (decode its bytes with errors='replace')")
    return text


def memory_budget() -> int:
    """Bytes one allocation may ask for: `MINIBLOOM_MEMORY_BUDGET` if set, else the machine's RAM,
    and never more than what an address-space limit (RLIMIT_AS, `ulimit -v`) leaves free."""
    env = os.environ.get("MINIBLOOM_MEMORY_BUDGET")
    if env:
        try:
            return int(float(env))
        except (ValueError, OverflowError):
            raise ConfigError(f"MINIBLOOM_MEMORY_BUDGET must be a number of bytes, got {env[:40]!r}") from None
    try:
        budget = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX
        budget = 2**40
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/statm") as f:
                mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            budget = min(budget, max(soft - mapped, 0))
    except (ImportError, OSError, ValueError):
        pass
    return budget


def check_allocation(nbytes: int, name: str) -> int:
    """Refuse, before allocating, an array of `nbytes` that cannot fit the memory budget.

    `name` says which argument asked for it and how ("max_length=10**9 (the attention mask, int64
    [B, T])"), so the error names the culprit instead of a MemoryError from deep inside NumPy."""
    budget = memory_budget()
    if nbytes > budget:
        raise MemoryBudgetError(f"{name} needs {_human(nbytes)}, more than the memory budget of {_human(budget)} "
                                "(the machine's RAM, an address-space limit, or MINIBLOOM_MEMORY_BUDGET)")
    return nbytes


def _human(nbytes: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:,.0f} {unit}" if unit == "bytes" else f"{nbytes:,.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes} bytes"


# --- checks moved from heads.py ---


def check_int_labels(labels: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Integer labels of exactly `shape`, as int64."""
    arr = as_array(labels, name)
    if arr.dtype.kind not in "iu":
        raise InputError(f"{name} must hold integers (class ids), got dtype {arr.dtype}")
    if arr.shape != shape:
        raise InputError(f"{name} has shape {arr.shape}, expected {shape}")
    return arr.astype(np.int64)


def check_float_labels(labels: np.ndarray, shapes: list[tuple[int, ...]], name: str) -> None:
    """Real-valued labels (regression, multi-label) of one of `shapes`."""
    if labels.dtype.kind not in "biuf":
        raise InputError(f"{name} must be numeric, got dtype {labels.dtype}")
    if labels.shape not in shapes:
        raise InputError(f"{name} has shape {labels.shape}, expected {' or '.join(map(str, shapes))}")
