"""How many threads minibloom computes on: Numba's parallel kernels and NumPy's BLAS, together.

Default: one. Decoding is bound by memory bandwidth, and on the 2-core development machine one
core already reads memory about as fast as two; prefill is compute-bound and gains from more
threads on idle cores. But a parallel region ends only when its slowest thread does, and BLAS's
and OpenMP's threads spin between calls: when other processes share the cores, a thread that lost
its core stalls every call (measured: 24 decode-sized products at 1.0 GB/s on two threads against
6.6 GB/s on one; the CLI ran 4-5x slower with OpenBLAS's two threads). One thread is never far
from the best and never collapses; ask for more with `threads=` / `--threads` when the cores are
yours. docs/performance.md ("Threads") has the figures.

The setting is process-wide, like `torch.set_num_threads`: BLAS through threadpoolctl (it finds
the BLAS NumPy loaded, whichever it is), Numba through `numba.set_num_threads`, applied again by
each parallel kernel's caller because Numba keeps that setting per calling thread.
"""

from __future__ import annotations

import sys

from threadpoolctl import threadpool_limits

from .errors import InputError

DEFAULT_THREADS = 1
_threads: int | None = None  # None until the first model (or the user) sets it


def set_num_threads(threads: int) -> None:
    """Compute on `threads` threads from now on, in this process (BLAS and Numba kernels)."""
    global _threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"threads must be a positive integer, got {threads!r}")
    threadpool_limits(limits=threads, user_api="blas")
    _threads = threads
    if "numba" in sys.modules:
        numba_threads()


def get_num_threads() -> int:
    """The thread count minibloom computes on (the default until something set it)."""
    return DEFAULT_THREADS if _threads is None else _threads


def use_default_threads() -> None:
    """Apply the default once per process, unless `set_num_threads` was called already."""
    if _threads is None:
        set_num_threads(DEFAULT_THREADS)


def numba_threads() -> int:
    """Set the calling thread's Numba thread count to ours (capped at Numba's pool) and return it."""
    import numba

    n = min(get_num_threads(), numba.config.NUMBA_NUM_THREADS)
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)
    return n
