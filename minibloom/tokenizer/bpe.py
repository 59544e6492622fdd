"""The BPE merge loop: turn one pre-tokenized piece into token ids.

A piece starts as its UTF-8 bytes, one symbol each (shown as byte-level characters, 'Ġ' for a
space). The merge list learnt in training ranks pairs of adjacent symbols; encoding repeats

    find the adjacent pair with the lowest rank (the leftmost such pair on a tie); merge it

until no adjacent pair is in the list. Each final symbol is a token of the vocab. Example with the
merges [("l","l"), ("e","ll"), ("h","ell")]:

    h e l l o  ->  h e ll o  ->  h ell o  ->  hell o

This is exactly what HF tokenizers computes (its `Word::merge_all` keeps a min-heap ordered by
(rank, position), which pops the same pair as this scan). `bpe_merge` is the readable version over
strings; `bpe_merge_ids` is the same loop over integer ids, compiled by Numba, which the tokenizer
runs on every piece it has not seen before. Pieces repeat a lot in real text, so `BPE` keeps a
per-piece cache and most of the time skips the merge loop entirely.
"""

from __future__ import annotations

import numba
import numpy as np

from .bytes_unicode import BYTE_TO_CHAR, LATIN1_TO_BYTE_LEVEL

NO_MERGE = np.iinfo(np.int64).max


def bpe_merge(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Merge `symbols` (one per byte at first) by the lowest-ranked adjacent pair until none is left."""
    symbols = list(symbols)
    while len(symbols) > 1:
        pair_ranks = [ranks.get(pair, NO_MERGE) for pair in zip(symbols, symbols[1:])]
        best = min(range(len(pair_ranks)), key=pair_ranks.__getitem__)  # min() keeps the leftmost tie
        if pair_ranks[best] == NO_MERGE:
            break
        symbols[best:best + 2] = [symbols[best] + symbols[best + 1]]
    return symbols


@numba.njit(cache=True, nogil=True)
def bpe_merge_ids(ids: np.ndarray, pair_keys: np.ndarray, pair_values: np.ndarray, n_ids: int) -> np.ndarray:
    """`bpe_merge` over integer ids. The merge table is two sorted arrays: pair_keys[k] = left * n_ids
    + right, and pair_values[k] = rank << 32 | merged id. Lookups are binary searches."""
    symbols = ids.copy()
    n = symbols.shape[0]
    while n > 1:
        best, best_rank, best_id = -1, NO_MERGE, -1
        for i in range(n - 1):  # pass 1: the leftmost lowest-ranked pair
            key = symbols[i] * n_ids + symbols[i + 1]
            k = np.searchsorted(pair_keys, key)
            if k < pair_keys.shape[0] and pair_keys[k] == key:
                rank = pair_values[k] >> 32
                if rank < best_rank:
                    best, best_rank, best_id = i, rank, pair_values[k] & 0xFFFFFFFF
        if best < 0:
            break
        symbols[best] = best_id  # pass 2: merge it, shifting the tail left by one
        for j in range(best + 1, n - 1):
            symbols[j] = symbols[j + 1]
        n -= 1
    return symbols[:n]


class BPE:
    """A BPE model: vocab {token: id}, merges [(left, right)] in rank order, and a piece cache.

    unk_token: what a byte with no vocab entry becomes (None: it is dropped, as tokenizers does;
    byte-level vocabs hold all 256 bytes so this never happens for them). fuse_unk merges a run
    of unknowns into one. ignore_merges: a piece that is itself in the vocab is one token.
    """

    CACHE_LIMIT = 1_000_000  # pieces; the cache is emptied when it grows past this

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], unk_token: str | None = None,
                 fuse_unk: bool = False, ignore_merges: bool = False):
        self.vocab = vocab
        self.merges = merges
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}  # a repeated pair keeps its last rank
        self.unk_token, self.fuse_unk, self.ignore_merges = unk_token, fuse_unk, ignore_merges
        self.unk_id = -1 if unk_token is None else vocab[unk_token]
        self.n_ids = max(vocab.values(), default=0) + 1
        self.byte_ids = np.array([vocab.get(BYTE_TO_CHAR[b], -1) for b in range(256)], np.int64)  # [256]
        self.pair_keys, self.pair_values = self._merge_table()
        self.cache: dict[str, list[int]] = {}

    def _merge_table(self) -> tuple[np.ndarray, np.ndarray]:
        table = {self.vocab[a] * self.n_ids + self.vocab[b]: rank << 32 | self.vocab[a + b]
                 for (a, b), rank in self.ranks.items()}
        keys = np.fromiter(table.keys(), np.int64, len(table))
        order = np.argsort(keys)
        return keys[order], np.fromiter(table.values(), np.int64, len(table))[order]

    def byte_symbols(self, piece_bytes: bytes) -> np.ndarray:
        """One id per byte; bytes missing from the vocab become unk (fused if asked) or vanish."""
        ids = self.byte_ids[np.frombuffer(piece_bytes, np.uint8)]  # [n]
        if (ids >= 0).all():
            return ids
        if self.unk_id < 0:
            return ids[ids >= 0]
        unknown = ids < 0
        if self.fuse_unk:  # keep only the first of each run of unknowns
            keep = ~unknown | np.r_[True, ~unknown[:-1]]
            ids, unknown = ids[keep], unknown[keep]
        return np.where(unknown, self.unk_id, ids)

    def encode_piece(self, piece: str) -> list[int]:
        """Token ids of one pre-tokenized piece (its text, before the byte-level mapping)."""
        ids = self.cache.get(piece)
        if ids is None:
            raw = piece.encode("utf-8")
            whole = self.vocab.get(raw.decode("latin-1").translate(LATIN1_TO_BYTE_LEVEL)) if self.ignore_merges else None
            if whole is not None:
                ids = [whole]
            else:
                ids = bpe_merge_ids(self.byte_symbols(raw), self.pair_keys, self.pair_values, self.n_ids).tolist()
            if len(self.cache) >= self.CACHE_LIMIT:
                self.cache.clear()
            self.cache[piece] = ids
        return ids

