"""Recording the intermediates of a forward pass, for golden files (`golden.py`).

The model functions take a `trace` and call `trace.record(name, array)` at each step that a porter
may want to compare; `trace.scope("h.3")` prefixes the names of one layer. The default, `NO_TRACE`,
records nothing and costs one method call per step, so the readable code stays one path.
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

    def record(self, name: str, value: np.ndarray) -> None:
        self.store[self.prefix + name] = np.array(value, dtype=np.float32, copy=True)

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

    def record(self, name: str, value: np.ndarray) -> None:
        pass

    def wants(self, name: str) -> bool:
        return False


NO_TRACE = _NoTrace()
