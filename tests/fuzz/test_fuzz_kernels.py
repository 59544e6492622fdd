"""Out-of-range ids into every jitted path that indexes with them: no crash, no read out of bounds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibloom import InputError
from minibloom.backends import numba_backend
from minibloom.storage import BF16, from_float32
from minibloom.tokenizer.bpe import bpe_merge_ids
from tests.fuzz.fuzz_utils import fuzz_settings
from tests.tokenizer_utils import variant_tokenizer

BPE = variant_tokenizer("bloom").bpe
ANY_ID = st.integers(-2**40, 2**40)


@fuzz_settings
@given(st.lists(ANY_ID, max_size=12))
def test_bpe_merge_kernel_takes_any_ids(ids):
    out = bpe_merge_ids(np.array(ids, np.int64), BPE.pair_keys, BPE.pair_values, BPE.n_ids)
    assert len(out) <= len(ids)


@fuzz_settings
@given(st.lists(st.lists(ANY_ID, min_size=1, max_size=4), min_size=1, max_size=3).filter(
    lambda rows: len({len(r) for r in rows}) == 1), st.sampled_from([np.float32, np.float16, "bf16"]))
def test_gather_kernel_refuses_any_out_of_range_id(ids, storage):
    table = np.arange(24, dtype=np.float32).reshape(6, 4)
    table = from_float32(table, BF16) if storage == "bf16" else table.astype(storage)
    ids = np.array(ids, np.int64)
    if ((ids < 0) | (ids >= 6)).any():
        with pytest.raises(InputError, match="outside the vocabulary"):
            numba_backend.embed(table, ids)
    else:
        assert numba_backend.embed(table, ids).shape == (*ids.shape, 4)


OP_ARGS = {  # op -> a valid call's arguments (shapes B=2, N=2, T=3, S=4, D=5, F=6, O=7)
    "embed": lambda r: (r.standard_normal((10, 6), dtype=np.float32), np.array([[1, 2, 3]])),
    "layer_norm": lambda r: (r.standard_normal((2, 3, 6), dtype=np.float32), np.ones(6, np.float32),
                             np.zeros(6, np.float32), 1e-5),
    "linear": lambda r: (r.standard_normal((2, 3, 6), dtype=np.float32), r.standard_normal((7, 6), dtype=np.float32),
                         np.zeros(7, np.float32)),
    "linear_gelu": lambda r: (r.standard_normal((2, 3, 6), dtype=np.float32),
                              r.standard_normal((7, 6), dtype=np.float32), np.zeros(7, np.float32)),
    "linear_tp": lambda r: (r.standard_normal((2, 3, 6), dtype=np.float32), r.standard_normal((7, 6), dtype=np.float32), 2),
    "attention_probs": lambda r: (r.standard_normal((2, 2, 3, 5), dtype=np.float32),
                                  r.standard_normal((2, 2, 4, 5), dtype=np.float32),
                                  np.zeros((2, 2, 1, 4), np.float32), np.zeros((2, 1, 3, 4), np.float32)),
    "context": lambda r: (np.full((2, 2, 3, 4), 0.25, np.float32), r.standard_normal((2, 2, 4, 5), dtype=np.float32)),
}


@fuzz_settings
@given(st.sampled_from(sorted(OP_ARGS)), st.sampled_from(["numpy", "numba"]), st.data())
def test_backend_ops_refuse_mismatched_shapes_by_name(op, backend, data):
    """Each documented op, from get_backend, given one argument of another shape, dtype or rank:
    an InputError naming an argument, or a finite result (never a crash, a NaN or a NumPy error)."""
    from minibloom.backends import get_backend
    from minibloom.storage import from_float32

    args = list(OP_ARGS[op](np.random.default_rng(0)))
    k = data.draw(st.integers(0, len(args) - 1))
    if isinstance(args[k], np.ndarray):
        how = data.draw(st.sampled_from(["shrink", "grow", "rank", "dtype", "half"]))
        a = args[k]
        if how == "shrink" and a.shape[-1] > 1:
            args[k] = a[..., :-1]
        elif how == "grow":
            args[k] = np.concatenate([a, a[..., :1]], axis=-1)
        elif how == "rank":
            args[k] = a[None]
        elif how == "dtype":
            args[k] = a.astype(data.draw(st.sampled_from([np.int32, np.float64, np.bool_, np.complex64])))
        elif a.ndim == 2 and a.dtype == np.float32:  # a 2-byte weight of the wrong width
            args[k] = from_float32(a[:, :-1], data.draw(st.sampled_from([np.dtype(np.float16), BF16])))
    else:
        args[k] = data.draw(st.sampled_from([0, -1, 10**6, 1.5, None, float("nan")]))
    try:
        out = getattr(get_backend(backend), op)(*args)
    except InputError as e:
        assert str(e)
        return
    assert np.isfinite(out).all()
