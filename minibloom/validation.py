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


# --- the heads' labels ---


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


# --- generate's settings ---
# Checks of single Python arguments (generate's settings, a seed, a count), each returning the value
# as a plain Python object or raising `InputError` naming the argument.


def is_int(value: Any) -> bool:
    """A Python or NumPy integer (bool is not one)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value: Any, minimum: int, optional: bool = False) -> int | None:
    """An integer >= minimum (NumPy integer scalars accepted), as a Python int; None if optional."""
    if value is None and optional:
        return None
    if not is_int(value) or value < minimum:
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
        raise InputError(f"{name} must be {kind}{' or None' if optional else ''}, got {value!r} "
                         f"({type(value).__name__})")
    return int(value)


def check_float(name: str, value: Any) -> float:
    """A finite real number (int, float or NumPy scalar), as a Python float."""
    if not (is_int(value) or isinstance(value, (float, np.floating))) or not np.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r} ({type(value).__name__})")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """True or False (a NumPy bool accepted), as a Python bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_id(name: str, value: Any, vocab_size: int) -> int:
    """A token id: an integer in [0, vocab_size), as a Python int."""
    if not is_int(value):
        raise InputError(f"{name} must be a token id (an integer), got {value!r} ({type(value).__name__})")
    if not 0 <= value < vocab_size:
        raise InputError(f"{name} {value!r} is outside the vocabulary [0, {vocab_size})")
    return int(value)


def check_bad_words(words: Any, vocab_size: int) -> list[list[int]] | None:
    """None, or a non-empty list of non-empty lists of token ids."""
    if words is None:
        return None
    if not isinstance(words, (list, tuple)) or not words or \
            any(not isinstance(w, (list, tuple, np.ndarray)) or len(w) == 0 for w in words):
        raise InputError(f"bad_words_ids must be a non-empty list of non-empty lists of token ids, got {words!r}")
    return [[check_id("bad_words_ids", i, vocab_size) for i in w] for w in words]


def check_stop_strings(stop: Any) -> list[str] | None:
    """None, or a non-empty string or list of them, as a list."""
    if stop is None:
        return None
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, (list, tuple)) or not stop or any(not isinstance(s, str) or not s for s in stop):
        raise InputError(f"stop_strings must be a non-empty string or a list of them, got {stop!r}")
    return list(stop)


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """The random generator of a `seed` argument: None (fresh entropy), an integer >= 0, or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and not (is_int(seed) and seed >= 0):
        raise InputError(f"seed must be None, an integer >= 0 or a numpy.random.Generator, got {seed!r} "
                         f"({type(seed).__name__})")
    return np.random.default_rng(None if seed is None else int(seed))


def check_transition_inputs(sequences: Any, scores: Any, beam_indices: Any, normalize_logits: Any,
                            vocab_size: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`compute_transition_scores`'s arguments: (scores stacked [steps, rows, V] float32, sequences
    [B, L] integers, beam_indices [B, <= steps] below rows; by default row b is its own beam)."""
    if not isinstance(scores, (tuple, list)) or not scores:
        raise InputError("scores must be generate's non-empty tuple of per-step [rows, V] arrays "
                         "(output_scores=True, return_dict_in_generate=True)")
    stacked = np.stack([np.asarray(x, np.float32) for x in scores])  # [steps, rows, V]
    if stacked.ndim != 3 or (vocab_size is not None and stacked.shape[2] != vocab_size):
        raise InputError(f"scores: expected arrays [rows, {vocab_size or 'V'}], got {stacked.shape[1:]}")
    steps, rows, _ = stacked.shape
    sequences = as_array(sequences, "sequences")
    if sequences.ndim != 2 or sequences.dtype.kind not in "iu":
        raise InputError(f"sequences must be integer token ids [B, L], got {sequences.dtype} {sequences.shape}")
    if not isinstance(normalize_logits, bool):
        raise InputError(f"normalize_logits must be True or False, got {normalize_logits!r}")
    if beam_indices is None:
        beam_indices = np.broadcast_to(np.arange(rows)[:, None], (rows, steps))
    beam_indices = np.asarray(beam_indices)
    if beam_indices.ndim != 2 or beam_indices.dtype.kind not in "iu" or beam_indices.shape[0] != sequences.shape[0] \
            or beam_indices.shape[1] > steps or (beam_indices >= rows).any():
        raise InputError(f"beam_indices: expected integers [{sequences.shape[0]}, <= {steps}] below {rows}, "
                         f"got {beam_indices.dtype} {beam_indices.shape}")
    return stacked, sequences, beam_indices


# --- the tokenizer's call arguments ---
# The arguments of BloomTokenizer's transformers-style calls (tokenizer/batching.py): the texts, and
# transformers' padding / truncation / side / return_tensors values, refused as transformers refuses them.

def check_texts(text: Any) -> list[str]:
    """A str or a non-empty list/tuple of str -> list of str; anything else is an InputError."""
    if isinstance(text, str):
        return [check_unicode(text)]
    if isinstance(text, (list, tuple)) and text and all(isinstance(t, str) for t in text):
        return [check_unicode(t, f"text[{k}]") for k, t in enumerate(text)]
    if isinstance(text, (list, tuple)):
        bad = next((k for k, t in enumerate(text) if not isinstance(t, str)), None)
        raise InputError("text must be a str or a non-empty list of str" +
                         ("" if bad is None else f"; text[{bad}] is a {type(text[bad]).__name__}"))
    raise InputError(f"text must be a str or a list of str, got {type(text).__name__}")


def check_text(text: Any) -> str:
    """One str (`encode`'s argument); anything else, a list included, is an InputError."""
    if not isinstance(text, str):
        raise InputError(f"text must be a str or a list of str, got {type(text).__name__}")
    return check_unicode(text)


# transformers 4.57.1's TruncationStrategy and PaddingStrategy values (True/False are also accepted)
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")
PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")


def check_truncation(truncation: Any) -> bool | None:
    """transformers' truncation argument -> True (cut to max_length), False, or None (the default:
    cut when max_length is given without padding). A single text has only a first sequence, so
    'longest_first' and 'only_first' cut it and 'only_second' is the error transformers raises."""
    if truncation is None or truncation is True or truncation is False:
        return truncation
    if isinstance(truncation, str) and truncation in TRUNCATION_STRATEGIES:
        if truncation == "only_second":
            raise InputError("truncation='only_second' needs a second sequence (a text pair), which minibloom's "
                             "tokenizer does not take")
        return truncation != "do_not_truncate"
    raise InputError(f"truncation must be True, False, None or one of {list(TRUNCATION_STRATEGIES)}, "
                     f"got {truncation!r}")


def check_padding(padding: Any, max_length: int | None) -> str | None:
    """transformers' padding argument -> None (no padding), "longest" or "max_length"."""
    if max_length is not None and (not isinstance(max_length, (int, np.integer)) or max_length < 0):
        raise InputError(f"max_length must be a non-negative integer, got {max_length!r}")
    if not (padding is True or padding is False or isinstance(padding, str) and padding in PADDING_STRATEGIES):
        raise InputError(f"padding must be True, False or one of {list(PADDING_STRATEGIES)}, got {padding!r}")
    if padding is False or padding == "do_not_pad":
        return None
    if padding == "max_length":
        if max_length is None:
            raise InputError("padding='max_length' needs max_length")
        return "max_length"
    return "longest"


def check_side(side: Any, name: str) -> str:
    if side not in ("left", "right"):
        raise InputError(f"{name} must be 'left' or 'right', got {side!r}")
    return side


def check_return_tensors(return_tensors: Any) -> None:
    if return_tensors not in (None, "np"):
        raise InputError(f"return_tensors must be None (lists) or 'np' (NumPy arrays): minibloom has no torch, "
                         f"got {return_tensors!r}")
