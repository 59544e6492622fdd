"""Defaults that are the fast path: the compiled backend where Numba works, the NumPy reference one
argument away, a timing line that says what it measured (issue 24)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from minibloom import BloomConfig, BloomForCausalLM, BloomModel, backends
from minibloom.backends import numpy_backend, resolve_backend
from minibloom.cli.timing import Timer
from minibloom.embedded import EMBEDDED_CHECKPOINT
from minibloom.storage import BF16, convert, quantize_int8

CONFIG = dict(vocab_size=40, hidden_size=24, n_head=3, n_layer=2)


def test_models_compute_with_numba_by_default_and_numpy_on_request():
    assert resolve_backend("auto") == "numba"  # the test environment has Numba
    lm = BloomForCausalLM(BloomConfig(**CONFIG))
    assert lm.backend == lm.transformer.backend == "numba"
    assert BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT).backend == "numba"
    assert BloomModel(BloomConfig(**CONFIG), backend="numpy").backend == "numpy"


def test_auto_falls_back_to_numpy_where_numba_does_not_work(monkeypatch):
    monkeypatch.setattr(backends, "_numba_works", lambda: False)
    assert BloomModel(BloomConfig(**CONFIG)).backend == "numpy"
    with pytest.raises(ValueError, match="'auto', 'numpy', 'numba'"):
        resolve_backend("fast")


@pytest.mark.parametrize("storage", ["bfloat16", "float16", "int8"])
def test_the_numpy_backend_widens_compact_weights_in_blocks_equal_to_the_whole(monkeypatch, storage):
    rng = np.random.default_rng(0)
    wide = rng.normal(size=(37, 11)).astype(np.float32)
    weight = quantize_int8(wide) if storage == "int8" else convert(wide, BF16 if storage == "bfloat16" else np.float16)
    x, bias = rng.normal(size=(2, 3, 11)).astype(np.float32), rng.normal(size=37).astype(np.float32)
    whole = numpy_backend.linear(x, weight, bias)
    monkeypatch.setattr(numpy_backend, "WIDEN_ROWS", 8)  # 5 blocks, the last one short
    np.testing.assert_allclose(numpy_backend.linear(x, weight, bias), whole, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(whole, x @ numpy_backend.widen_rows(weight, 0, 37).T + bias, rtol=1e-6, atol=1e-6)


def test_the_numpy_backend_says_it_is_slow_on_compact_weights():
    with pytest.warns(UserWarning, match="backend='numpy' widens the bfloat16 weights"):
        BloomForCausalLM(BloomConfig(**CONFIG), backend="numpy", storage="bfloat16")


def test_the_timing_line_names_the_setup_and_keeps_compilation_out_of_prompt_eval():
    timer = Timer()
    timer.marks.update(start=0.0, loaded=1.0, ready=11.0, done=13.0)
    timer.steps = [12.0, 12.5, 13.0]
    line = timer.summary(4, 3, "numba, bfloat16 weights, 2 threads")
    assert "prompt eval 4 tokens in 1.000 s" in line  # from "ready", not from "loaded"
    assert line.endswith("| numba, bfloat16 weights, 2 threads, kernels compiled in 10.0 s]")


def test_generate_defaults_to_numba_and_says_so():
    out = subprocess.run([sys.executable, "-m", "minibloom", "generate", "ROMEO.", "-n", "3"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "| numba, float16 weights, " in out.stderr.splitlines()[-1]
    ref = subprocess.run([sys.executable, "-m", "minibloom", "generate", "ROMEO.", "-n", "3", "--backend", "numpy"],
                         capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0 and ref.stdout == out.stdout, ref.stderr
    assert "| numpy, float16 weights, " in ref.stderr.splitlines()[-1]
