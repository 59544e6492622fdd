"""threads= / --threads / minibloom.set_num_threads: what they set, and what they refuse."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import minibloom
from minibloom import BloomConfig, BloomForCausalLM, InputError
from minibloom import threads as threads_module
from minibloom.backends import numba_backend


def blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


@pytest.fixture(autouse=True)
def restore():
    before = threads_module._threads
    yield
    threads_module._threads = before
    minibloom.set_num_threads(threads_module.get_num_threads())


def test_a_model_applies_the_default_of_the_cores_it_may_run_on_unless_set():
    import os

    threads_module._threads = None
    BloomForCausalLM(BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1), backend="numba")
    assert minibloom.get_num_threads() == threads_module.DEFAULT_THREADS == len(os.sched_getaffinity(0))
    assert blas_threads() == {threads_module.DEFAULT_THREADS}


def test_waiting_threads_sleep_instead_of_spinning():
    """Set before NumPy's BLAS and Numba's OpenMP load (the `minibloom` package does it first)."""
    import os
    import subprocess
    import sys

    code = "import os, minibloom, numpy; print(os.environ['OMP_WAIT_POLICY'], os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE", "4"]
    mine = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                          capture_output=True, text=True, check=True)
    assert mine.stdout.split() == ["ACTIVE", "4"]  # the user's choice stays


def test_threads_sets_blas_and_numba_and_a_model_keeps_it():
    import numba

    model = BloomForCausalLM(BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1), backend="numba",
                             threads=2)
    assert minibloom.get_num_threads() == 2 and blas_threads() == {2}
    BloomForCausalLM(BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1))  # threads=None keeps 2
    assert minibloom.get_num_threads() == 2
    numba.set_num_threads(1)  # Numba's setting is per calling thread: each kernel's caller sets it again
    model(np.array([[1, 2]]))
    assert numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
    assert numba_backend.numba_threads() == numba.get_num_threads()


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(InputError, match="threads must be a positive integer"):
        minibloom.set_num_threads(bad)
    with pytest.raises(ValueError, match="threads"):
        BloomForCausalLM(BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1), threads=bad)
