"""Recording the intermediates of a forward pass, for golden files (`golden.py`).

The model functions take a `trace` and write `h = trace.record(name, h)` at each step that a porter
may want to compare; `trace.scope("h.3")` prefixes the names of one layer. `record` returns the value
the forward goes on with: its input here, a replacement when a hook patches it (`explain/hooks.py`,
`run_with_hooks`). The default, `NO_TRACE`, records nothing and returns its input, one method call per
step, so the readable code stays one path.
"""

from __future__ import annotations

import numpy as np


class Trace:
    """Collects named float32 copies of intermediates, in the order they are computed."""

    active = True

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
        """Whether `record(name, ...)` would keep anything: lets the model skip computing an
        intermediate that exists only for the record (the attention scores)."""
        return True


class _NoTrace(Trace):
    active = False

    def __init__(self):
        super().__init__({}, "")

    def scope(self, name: str) -> "Trace":
        return self

    def record(self, name: str, value: np.ndarray) -> np.ndarray:
        return value

    def wants(self, name: str) -> bool:
        return False


NO_TRACE = _NoTrace()
