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


def test_a_model_applies_the_default_of_one_thread_unless_set():
    threads_module._threads = None
    BloomForCausalLM(BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1), backend="numba")
    assert minibloom.get_num_threads() == threads_module.DEFAULT_THREADS == 1
    assert blas_threads() == {1}


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
