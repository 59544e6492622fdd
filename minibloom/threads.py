"""How many threads minibloom computes on: Numba's parallel kernels and NumPy's BLAS, together.

Default: the cores this process may run on (`os.sched_getaffinity`), as torch and llama.cpp do:
prefill is compute-bound and scales with cores, and decode gains too on a quiet machine. What
used to make more threads dangerous is waiting, not threads: a parallel region ends only when its
slowest thread does, and OpenBLAS's threads and Numba's OpenMP threads *spin* between calls, so on
shared cores a waiting thread burns the core the working one needs (measured on 2 cores with one
busy rival: 2 spinning threads decoded 7.6x and prefilled 11x slower than 1). Told to sleep
instead (OMP_WAIT_POLICY=PASSIVE, OPENBLAS_THREAD_TIMEOUT=4: `minibloom/__init__.py` sets both
before NumPy or Numba load, unless the user set them), 2 threads beside the rival decode at 1.0x
and prefill at 1.4x one thread's time, and alone at 0.87x and 0.54x: more threads now degrade
gracefully. docs/performance.md ("Threads") has the figures; benchmarks/threads.py repeats them.
Where NumPy was imported before minibloom its BLAS already spins: `threads=1` / `--threads 1`
is the safe choice on a machine other programs keep busy.

The setting is process-wide, like `torch.set_num_threads`: BLAS through threadpoolctl (it finds
the BLAS NumPy loaded, whichever it is), Numba through `numba.set_num_threads`, applied again by
each parallel kernel's caller because Numba keeps that setting per calling thread.
"""

from __future__ import annotations

import os
import sys

from threadpoolctl import threadpool_limits

from .errors import InputError

DEFAULT_THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
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
