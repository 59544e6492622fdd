"""The heap-based BPE merge loops (readable and Numba) against the plain O(n^2) scan, `bpe_merge_naive`."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minibloom.tokenizer.bpe import BPE, bpe_merge, bpe_merge_batch, bpe_merge_ids, bpe_merge_naive
from tests.fuzz.fuzz_utils import fuzz_settings


@st.composite
def merge_tables(draw):
    """A vocab over a 3-letter alphabet and merges of existing tokens, in a random rank order."""
    vocab = ["a", "b", "c"]
    merges = []
    for _ in range(draw(st.integers(0, 25))):
        left, right = draw(st.sampled_from(vocab)), draw(st.sampled_from(vocab))
        if len(left + right) > 6:
            continue
        if left + right not in vocab:
            vocab.append(left + right)
        if (left, right) not in merges:
            merges.append((left, right))
    return {t: i for i, t in enumerate(vocab)}, merges


@fuzz_settings
@given(merge_tables(), st.text(alphabet="abc", max_size=300))
def test_heap_merge_equals_the_scan_in_both_loops(table, text):
    vocab, merges = table
    ranks = {pair: rank for rank, pair in enumerate(merges)}
    expected = bpe_merge_naive(list(text), ranks)
    assert bpe_merge(list(text), ranks) == expected
    bpe = BPE(vocab, merges)
    ids = np.array([vocab[c] for c in text], np.int64)
    assert bpe_merge_ids(ids, bpe.pair_keys, bpe.pair_values, bpe.n_ids).tolist() == [vocab[s] for s in expected]


def test_a_long_repetitive_piece_merges_like_the_scan():
    vocab = {t: i for i, t in enumerate(["t", "h", "o", "u", "th", "ou", "thou", "thouthou"])}
    merges = [("t", "h"), ("o", "u"), ("th", "ou"), ("thou", "thou")]
    ranks = {pair: rank for rank, pair in enumerate(merges)}
    text = "thou" * 501 + "th"
    expected = bpe_merge_naive(list(text), ranks)
    assert bpe_merge(list(text), ranks) == expected
    bpe = BPE(vocab, merges)
    ids = np.array([vocab[c] for c in text], np.int64)
    assert bpe_merge_ids(ids, bpe.pair_keys, bpe.pair_values, bpe.n_ids).tolist() == [vocab[s] for s in expected]


@fuzz_settings
@given(merge_tables(), st.lists(st.text(alphabet="abc", max_size=80), max_size=12))
def test_the_batch_kernel_merges_each_piece_like_the_scan(table, texts):
    """`bpe_merge_batch`: short pieces (<= SHORT_PIECE bytes) by the rescanning loop, long ones by
    the heap, all in one call; each piece's slice of the output is its scan merge."""
    vocab, merges = table
    ranks = {pair: rank for rank, pair in enumerate(merges)}
    bpe = BPE(vocab, merges)
    ids = np.array([vocab[c] for c in "".join(texts)], np.int64)
    starts = np.cumsum([0] + [len(t) for t in texts])
    merged, bounds = bpe_merge_batch(ids, starts, bpe.pair_keys, bpe.pair_values, bpe.n_ids)
    got = [merged[bounds[p]:bounds[p + 1]].tolist() for p in range(len(texts))]
    assert got == [[vocab[s] for s in bpe_merge_naive(list(t), ranks)] for t in texts]


@fuzz_settings
@given(merge_tables(), st.lists(st.text(alphabet="abcd\u00e9", max_size=50), max_size=10), st.booleans(),
       st.booleans())
def test_encode_pieces_fills_the_cache_as_encode_piece_would(table, pieces, fuse_unk, ignore_merges):
    """The tokenizer's batch path against its one-piece path: bytes outside the vocab ('d', the two
    bytes of 'é') with and without an unk token, fused or not, and ignore_merges' whole-piece hits."""
    vocab, merges = table
    vocab = {**vocab, "<unk>": len(vocab)}
    for unk in ("<unk>", None):
        batch = BPE(vocab, merges, unk, fuse_unk, ignore_merges)
        batch.encode_pieces(pieces)
        single = BPE(vocab, merges, unk, fuse_unk, ignore_merges)
        assert [batch.cache[p] for p in pieces] == [single.encode_piece(p) for p in pieces]


def test_distinct_pieces_sharing_a_hash_slot_are_not_confused():
    """bpe_merge_batch reuses the tokens of a piece met earlier in the call, found by hash slot:
    2,187 distinct 7-letter pieces (each twice) in 16,384 slots share slots ~140 times (birthday
    bound), and each must still get its own merges (the slot's piece is compared byte for byte)."""
    import itertools

    vocab = {t: i for i, t in enumerate(["a", "b", "c", "ab", "bc", "abc", "ca", "cab"])}
    merges = [("a", "b"), ("b", "c"), ("ab", "c"), ("c", "a"), ("c", "ab")]
    ranks = {pair: rank for rank, pair in enumerate(merges)}
    bpe = BPE(vocab, merges)
    texts = ["".join(t) for t in itertools.product("abc", repeat=7)] * 2  # each twice: the second is a reuse
    ids = np.array([vocab[c] for c in "".join(texts)], np.int64)
    starts = np.cumsum([0] + [len(t) for t in texts])
    merged, bounds = bpe_merge_batch(ids, starts, bpe.pair_keys, bpe.pair_values, bpe.n_ids)
    got = [merged[bounds[p]:bounds[p + 1]].tolist() for p in range(len(texts))]
    assert got == [[vocab[s] for s in bpe_merge_naive(list(t), ranks)] for t in texts]
