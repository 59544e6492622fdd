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
