"""`run_with_cache` and `run_with_hooks`: read or replace any intermediate of a forward pass by its
golden name (docs/golden.md), as TransformerLens does with its hook names.

The forward code writes `h = trace.record(name, h)` at every step (`trace.py`), so a trace that
returns something else than it was given patches the computation from that step on: activation
patching needs no second copy of the model code. `HookedTrace` is that trace.

    >>> from minibloom import BloomForCausalLM, BloomConfig
    >>> lm = BloomForCausalLM(BloomConfig(vocab_size=32, hidden_size=16, n_head=4, n_layer=2))
    >>> out, cache = lm.run_with_cache([[1, 2, 3]])
    >>> cache["h.1.self_attention.probs"].shape        # [B, N, T, S]
    (1, 4, 3, 3)
    >>> zero_head_0 = lambda ctx, name: ctx * (np.arange(16) >= 4)   # head 0 owns columns 0..3
    >>> patched = lm.run_with_hooks([[1, 2, 3]], fwd_hooks=[("h.0.self_attention.context", zero_head_0)])
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from ..errors import InputError
from ..golden.format import BEFORE_LAYERS, HEAD_OUTPUTS, INPUTS, LAYER_OPS
from ..trace import Trace

Hook = Callable[[np.ndarray, str], Any]  # (a copy of the value, its name) -> a replacement, or None to keep it


class HookedTrace(Trace):
    """A trace that runs hooks on named intermediates and keeps (or not) a copy of each.

    hooks: {full name: [fn, ...]}; each fn gets a float32 copy of the value and its name and returns
    a replacement of the same shape, or None to leave the value as it is (a read-only hook). A copy,
    so that changing the argument in place changes nothing: one ALiBi tensor is shared by every layer.
    """

    def __init__(self, hooks: dict[str, list[Hook]], keep: bool, store: dict | None = None, prefix: str = "",
                 fired: set[str] | None = None):
        super().__init__(store, prefix)
        self.hooks, self.keep = hooks, keep
        self.fired = set() if fired is None else fired  # shared by every scope: which hooks ran

    def scope(self, name: str) -> "HookedTrace":
        return HookedTrace(self.hooks, self.keep, self.store, self.prefix + name + ".", self.fired)

    def record(self, name: str, value: np.ndarray) -> np.ndarray:
        full = self.prefix + name
        for fn in self.hooks.get(full, ()):
            self.fired.add(full)
            new = fn(np.array(value, np.float32, copy=True), full)
            if new is not None:
                value = replacement(new, np.shape(value), full)
        if self.keep:
            self.store[full] = np.array(value, np.float32, copy=True)
        return value

    def wants(self, name: str) -> bool:
        return self.keep or self.prefix + name in self.hooks


def replacement(new: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """A hook's return value as float32 of the shape it replaces, or an InputError naming the hook."""
    try:
        arr = np.asarray(new, np.float32)
    except (TypeError, ValueError) as e:
        raise InputError(f"the hook on {name} returned {type(new).__name__}, not an array of numbers: {e}") from None
    if arr.shape != tuple(shape):
        raise InputError(f"the hook on {name} returned shape {arr.shape}; it replaces a tensor of shape {tuple(shape)}")
    return arr


def hook_names(n_layer: int) -> list[str]:
    """Every name a hook can patch, in forward order: the golden names a forward records."""
    before = [n for n in BEFORE_LAYERS if n not in INPUTS]
    return before + [f"h.{i}.{op}" for i in range(n_layer) for op in LAYER_OPS] + ["ln_f"]


def check_hooks(fwd_hooks: Iterable[tuple[str, Hook]], n_layer: int) -> dict[str, list[Hook]]:
    """[(name, fn)] -> {name: [fn, ...]}, every name checked before the forward runs."""
    known = set(hook_names(n_layer))
    hooks: dict[str, list[Hook]] = {}
    for i, pair in enumerate(fwd_hooks):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise InputError(f"fwd_hooks[{i}] must be a (name, function) pair, got {type(pair).__name__}")
        name, fn = pair
        if not isinstance(name, str) or name not in known:
            why = ("is the model's input or output: change it before or after the call"
                   if name in INPUTS + HEAD_OUTPUTS + ("last_hidden_state",) else
                   f"is not an intermediate of this model (embeddings, embeddings_layernorm, h.{{0..{n_layer - 1}}}"
                   ".<op>, ln_f; the ops are in docs/golden.md)")
            raise InputError(f"fwd_hooks[{i}]: {name!r} {why}")
        if not callable(fn):
            raise InputError(f"fwd_hooks[{i}]: the hook on {name} is {type(fn).__name__}, not a function")
        hooks.setdefault(name, []).append(fn)
    return hooks


class HookedRun:
    """`run_with_cache` and `run_with_hooks`, mixed into BloomModel and the heads."""

    def run_with_cache(self, input_ids: Any = None, attention_mask: Any = None,
                       fwd_hooks: Iterable[tuple[str, Hook]] = (), **forward_kwargs: Any) -> tuple[Any, dict]:
        """Run the forward once; return (output, cache). cache: {golden name: float32 array}, exactly
        the tensors `minibloom golden dump` writes for these inputs (inputs, every intermediate in
        forward order, the head's outputs). fwd_hooks: as `run_with_hooks`; the cache then holds
        the patched values. Other keywords (head_mask, ...) go to the forward."""
        out, store = self._hooked_forward(input_ids, attention_mask, fwd_hooks, True, forward_kwargs)
        ids = np.asarray(input_ids)
        mask = np.ones(ids.shape, np.int64) if attention_mask is None else np.asarray(attention_mask)
        cache = {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64), **store}
        for name in (*HEAD_OUTPUTS, "last_hidden_state"):
            value = getattr(out, name, None)
            if value is not None:
                cache[name] = np.asarray(value, np.float32)
        return out, cache

    def run_with_hooks(self, input_ids: Any = None, attention_mask: Any = None,
                       fwd_hooks: Iterable[tuple[str, Hook]] = (), **forward_kwargs: Any) -> Any:
        """Run the forward with `fwd_hooks` [(golden name, fn)]: fn(value copy, name) returns a
        replacement of the same shape (activation patching) or None (only reading). Several hooks on
        one name run in order. Returns the forward's output."""
        return self._hooked_forward(input_ids, attention_mask, fwd_hooks, False, forward_kwargs)[0]

    def _hooked_forward(self, input_ids, attention_mask, fwd_hooks, keep, forward_kwargs):
        if "trace" in forward_kwargs:
            raise InputError("run_with_cache/run_with_hooks make their own trace: pass no trace")
        hooks = check_hooks(fwd_hooks, self.config.n_layer)
        trace = HookedTrace(hooks, keep)
        out = self(input_ids, attention_mask=attention_mask, trace=trace, **forward_kwargs)
        missed = sorted(set(hooks) - trace.fired)
        if missed:  # fail closed: a patch that never ran must not look like one that changed nothing
            raise InputError(f"fwd_hooks: this forward never computed {', '.join(missed)}")
        return out, trace.store
