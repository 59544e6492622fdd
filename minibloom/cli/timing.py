"""The timing line of `minibloom generate` (load, prompt evaluation, per token, as llama.cpp prints
it), and the kernel warm-up that keeps a first run's compilation out of those numbers."""

from __future__ import annotations

import sys
import time

import numpy as np


class Timer:
    """Times the phases llama.cpp reports: load, prompt evaluation, and each generated token."""

    def __init__(self):
        self.marks: dict[str, float] = {"start": time.perf_counter()}
        self.steps: list[float] = []

    def mark(self, name: str) -> None:
        """Record the time of a phase's end: "loaded", "ready", "done"."""
        self.marks[name] = time.perf_counter()

    def summary(self, prompt_tokens: int, new_tokens: int, setup: str = "") -> str:
        """The llama.cpp-style line; `setup` (backend, storage, threads) ends it. A first run's
        kernel compilation (between "loaded" and "ready") is named there, not billed to prompt eval."""
        load = self.marks["loaded"] - self.marks["start"]
        ready = self.marks.get("ready", self.marks["loaded"])
        if ready - self.marks["loaded"] >= 1.0:  # a compile; loading cached kernels takes ~0.1 s
            setup += f", kernels compiled in {ready - self.marks['loaded']:.1f} s"
        line = f"[load {load:.2f} s"
        if self.steps:
            prompt = self.steps[0] - ready  # the prefill, plus choosing the first token
            rest = np.diff(self.steps)
            line += f" | prompt eval {prompt_tokens} tokens in {prompt:.3f} s ({prompt_tokens / max(prompt, 1e-9):.1f} " \
                    "tokens/s)"
            if rest.size:
                per = float(rest.mean())
                line += f" | eval {rest.size} tokens, {1000 * per:.1f} ms per token ({1 / max(per, 1e-9):.1f} tokens/s)"
        total = self.marks["done"] - ready
        n = new_tokens  # beam search streams nothing, so count the output, not the steps seen
        return line + f" | {n} tokens in {total:.2f} s: {n / max(total, 1e-9):.1f} tokens/s" + \
            (f" | {setup}]" if setup else "]")


def setup_line(model) -> str:
    """What the speed depends on, for the timing line: "numba, bfloat16 weights, 2 threads"."""
    from ..threads import get_num_threads

    threads = get_num_threads()
    return f"{model.backend}, {model.storage} weights, {threads} thread{'s' if threads > 1 else ''}"


def warm_up(model) -> None:
    """Compile the Numba kernels before the clock starts (a first run: 8-17 s; later runs load them
    from Numba's cache in milliseconds) by running a tiny model of the same storage and layout: a
    9-token prefill (the BLAS path) and one cached decode step (the GEMV path). A terminal is told
    when this takes over a second, instead of a silence."""
    if model.backend != "numba":
        return
    import copy
    import threading

    from ..backends.numba_backend import GEMV_MAX_ROWS

    config = copy.deepcopy(model.config)
    config.vocab_size, config.hidden_size, config.n_head, config.n_layer = 16, 16, 2, 1
    config.pretraining_tp = min(config.pretraining_tp, 2)
    tiny = type(model)(config, backend="numba", storage=model.storage)
    for name, array in tiny.params.items():  # read-only (memory-mapped) weights compile separately
        array.setflags(write=model.params[name].flags.writeable and array.flags.writeable)
    notice = threading.Timer(1.0, lambda: print("compiling the kernels (first run only, ~10 s)...",
                                                file=sys.stderr, flush=True))
    if sys.stderr.isatty():
        notice.start()
    try:
        ids = np.zeros((1, GEMV_MAX_ROWS + 1), np.int64)  # [1, 9]
        out = tiny(ids, use_cache=True)
        tiny(ids[:, -1:], past_key_values=out.past_key_values)
    finally:
        notice.cancel()
