"""The BPE merge loop: turn one pre-tokenized piece into token ids.

A piece starts as its UTF-8 bytes, one symbol each (shown as byte-level characters, 'Ġ' for a
space). The merge list learnt in training ranks pairs of adjacent symbols; encoding repeats

    find the adjacent pair with the lowest rank (the leftmost such pair on a tie); merge it

until no adjacent pair is in the list. Each final symbol is a token of the vocab. Example with the
merges [("l","l"), ("e","ll"), ("h","ell")]:

    h e l l o  ->  h e ll o  ->  h ell o  ->  hell o

This is exactly what HF tokenizers computes, and the way it computes it: `Word::merge_all` keeps a
min-heap of candidate pairs ordered by (rank, position), so each merge costs O(log n), not a
rescan. `bpe_merge` is the readable version over strings; `bpe_merge_ids` is the same loop over
integer ids, compiled by Numba, which the tokenizer runs on every piece it has not seen before. Pieces repeat a lot in real text, so `BPE` keeps a
per-piece cache and most of the time skips the merge loop entirely.
"""

from __future__ import annotations

import heapq

import numba
import numpy as np

from ..errors import InputError
from .bytes_unicode import BYTE_TO_CHAR, LATIN1_TO_BYTE_LEVEL

NO_MERGE = np.iinfo(np.int64).max


def bpe_merge(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Merge `symbols` (one per byte at first) by the lowest-ranked adjacent pair until none is left.

    Rescanning every pair after each merge would cost O(n) per merge, O(n^2) per piece -- and BLOOM's
    split makes any run of non-space characters (a base64 blob, minified JSON) one piece. So, as HF
    tokenizers does, keep the candidate pairs in a min-heap ordered by (rank, position): popping gives
    the leftmost lowest-ranked pair, exactly the pair the scan would pick. Symbols live in a linked
    list (`nxt`, `prv` over the starting positions); a merge changes only the two pairs around it,
    which are pushed anew. Entries made stale by earlier merges are skipped when popped: the symbol
    is gone, or its pair now has another rank. O(n log n) for a piece of n bytes.
    """
    symbols = list(symbols)  # symbols[i]: the symbol starting at byte i, or None once merged leftwards
    n = len(symbols)
    nxt, prv = list(range(1, n)) + [-1], list(range(-1, n - 1))
    heap = [(ranks[pair], i) for i, pair in enumerate(zip(symbols, symbols[1:])) if pair in ranks]
    heapq.heapify(heap)
    while heap:
        rank, i = heapq.heappop(heap)
        j = nxt[i]
        if symbols[i] is None or j < 0 or ranks.get((symbols[i], symbols[j])) != rank:
            continue  # stale: merged away, or the pair changed since it was pushed
        symbols[i], symbols[j] = symbols[i] + symbols[j], None  # merge j into i
        nxt[i] = nxt[j]
        if nxt[i] >= 0:
            prv[nxt[i]] = i
        for left, right in ((prv[i], i), (i, nxt[i])):  # the two pairs the merge changed
            if left >= 0 and right >= 0 and (symbols[left], symbols[right]) in ranks:
                heapq.heappush(heap, (ranks[symbols[left], symbols[right]], left))
    return [s for s in symbols if s is not None]


@numba.njit(cache=True, nogil=True)
def _lookup(pair_keys: np.ndarray, key: int) -> int:
    """Index of `key` in the sorted `pair_keys`, or -1."""
    k = np.searchsorted(pair_keys, key)
    if k < pair_keys.shape[0] and pair_keys[k] == key:
        return k
    return -1


@numba.njit(cache=True, nogil=True)
def bpe_merge_ids(ids: np.ndarray, pair_keys: np.ndarray, pair_values: np.ndarray, n_ids: int) -> np.ndarray:
    """`bpe_merge` over integer ids, the same heap-and-linked-list loop. The merge table is two sorted
    arrays: pair_keys[k] = left * n_ids + right, pair_values[k] = rank << 32 | merged id (binary
    searches). A heap entry packs (rank, position) into one int64, rank << 32 | position, so
    integer order is (rank, position) order; pieces are < 4 GB."""
    symbols = ids.copy()
    n = symbols.shape[0]
    if n < 2:
        return symbols
    alive = np.ones(n, np.bool_)  # False once merged into the symbol on its left
    nxt = np.arange(1, n + 1)
    nxt[n - 1] = -1
    prv = np.arange(-1, n - 1)
    heap = [np.int64(0)]  # seeded so Numba can type the list; popped at once
    heap.pop()
    for i in range(n - 1):
        k = _lookup(pair_keys, symbols[i] * n_ids + symbols[i + 1])
        if k >= 0:
            heap.append((pair_values[k] >> 32) << 32 | i)
    heapq.heapify(heap)
    while len(heap) > 0:
        entry = heapq.heappop(heap)
        rank, i = entry >> 32, entry & 0xFFFFFFFF
        j = nxt[i]
        if not alive[i] or j < 0:
            continue
        k = _lookup(pair_keys, symbols[i] * n_ids + symbols[j])
        if k < 0 or pair_values[k] >> 32 != rank:
            continue  # stale: the pair changed since it was pushed
        symbols[i], alive[j] = pair_values[k] & 0xFFFFFFFF, False
        nxt[i] = nxt[j]
        if nxt[i] >= 0:
            prv[nxt[i]] = i
        for left, right in ((prv[i], i), (i, nxt[i])):
            if left >= 0 and right >= 0:
                k = _lookup(pair_keys, symbols[left] * n_ids + symbols[right])
                if k >= 0:
                    heapq.heappush(heap, (pair_values[k] >> 32) << 32 | left)
    return symbols[alive]


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
            try:
                raw = piece.encode("utf-8")
            except UnicodeEncodeError as e:  # a lone surrogate: no UTF-8 bytes to merge
                raise InputError(f"text holds a lone surrogate U+{ord(piece[e.start]):04X} (in the piece "
                                 f"{piece[:40]!r}): not valid Unicode") from None
            whole = self.vocab.get(raw.decode("latin-1").translate(LATIN1_TO_BYTE_LEVEL)) if self.ignore_merges else None
            if whole is not None:
                ids = [whole]
            else:
                ids = bpe_merge_ids(self.byte_symbols(raw), self.pair_keys, self.pair_values, self.n_ids).tolist()
            if len(self.cache) >= self.CACHE_LIMIT:
                self.cache.clear()
            self.cache[piece] = ids
        return ids

