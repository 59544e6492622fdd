"""Recording the intermediates of a forward pass, for golden files (`golden.py`).

The model functions take a `trace` and wrap each step that a porter may want to compare:
`h = rec("ln_f", ops.layer_norm(h, ...))` with `rec = trace.record`, so recording costs no line of its
own; `trace.scope("h.3")` prefixes the names of one layer. `record` returns the value the forward goes
on with: its input here, a replacement when a hook patches it (`explain/hooks.py`, `run_with_hooks`),
or a reference kept for the backward (`training/grad.py`). The default, `NO_TRACE`, records nothing
and returns its input, so the readable code stays one path.

Some intermediates exist only inside a backend's fused op (the attention scores inside
`attention_probs`, the pre-GELU values inside `linear_gelu`). `trace.unfuse` and `trace.peek` pick
the op: the fused one when nobody asks for the intermediate, else one that records it too.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


class Trace:
    """Collects named float32 copies of intermediates, in the order they are computed."""

    def __init__(self, store: dict[str, np.ndarray] | None = None, prefix: str = ""):
        self.store = {} if store is None else store
        self.prefix = prefix

    def scope(self, name: str) -> "Trace":
        return Trace(self.store, self.prefix + name + ".")

    def record(self, name: str, value: np.ndarray) -> np.ndarray:
        """Keep a float32 copy of `value` under the scoped name; return `value` for the forward."""
        self.store[self.prefix + name] = np.array(value, dtype=np.float32, copy=True)
        return value

    def wants(self, name: str) -> bool:
        """Whether `record(name, ...)` would keep or change anything (see `unfuse`)."""
        return True

    def unfuse(self, name: str, fused: Callable[..., Any], first: Callable[..., Any],
               then: Callable[[Any], Any]) -> Callable[..., Any]:
        """The op computing `then(first(*args))`: `fused` itself, or, when this trace wants the
        intermediate `name`, `then(record(name, first(*args)))`, so that it can be kept or replaced.
        For a fused op whose halves compute the same floats (`linear_gelu` = `bloom_gelu(linear)`).

            hidden = trace.unfuse("dense_h_to_4h", ops.linear_gelu, ops.linear, ops.bloom_gelu)(x, w, b)
        """
        if not self.wants(name):
            return fused
        return lambda *args: then(self.record(name, first(*args)))

    def peek(self, name: str, fused: Callable[..., Any], inner: Callable[..., Any],
             then: Callable[[Any], Any]) -> Callable[..., Any]:
        """The op computing `then(inner(*args))`: `fused` itself, or, when this trace wants the
        intermediate `name`, `fused` with `inner(*args)` recomputed beside it for the record;
        `then(replacement)` when a hook replaces it. For a fused op that rounds differently from its
        halves (the attention scores inside a Numba `attention_probs`): reading never changes the output.

            probs = trace.peek("scores", ops.attention_probs, attention_scores, softmax)(q, k, alibi, bias)
        """
        if not self.wants(name):
            return fused

        def run(*args):
            value = inner(*args)
            patched = self.record(name, value)
            return fused(*args) if patched is value else then(patched)
        return run


class _NoTrace(Trace):
    def __init__(self):
        super().__init__({}, "")

    def scope(self, name: str) -> "Trace":
        return self

    def record(self, name: str, value: np.ndarray) -> np.ndarray:
        return value

    def wants(self, name: str) -> bool:
        return False


NO_TRACE = _NoTrace()
