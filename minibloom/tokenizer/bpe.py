"""The BPE merge loop: turn one pre-tokenized piece into token ids.

A piece starts as its UTF-8 bytes, one symbol each (shown as byte-level characters, 'Ġ' for a
space). The merge list learnt in training ranks pairs of adjacent symbols; encoding repeats

    find the adjacent pair with the lowest rank (the leftmost such pair on a tie); merge it

until no adjacent pair is in the list. Each final symbol is a token of the vocab. Example with the
merges [("l","l"), ("e","ll"), ("h","ell")]:

    h e l l o  ->  h e ll o  ->  h ell o  ->  hell o

Read `bpe_merge_naive` first: it is that rule written out, rescanning every pair after each merge
(O(n^2) for a piece of n bytes). The others compute exactly the same tokens, and tests hold them to
it (tests/test_tokenizer.py, tests/fuzz/test_fuzz_bpe.py):

- `bpe_merge` keeps the candidate pairs in a min-heap ordered by (rank, position), as HF
  tokenizers' `Word::merge_all` does, so each merge costs O(log n), not a rescan: BLOOM's split
  makes any run of non-space characters (a base64 blob, minified JSON) one piece.
- `bpe_merge_ids` is the heap loop over integer ids, compiled by Numba.
- `bpe_merge_batch` runs it over many pieces in one call (short pieces by an allocation-free
  rescan, `_merge_short`); the tokenizer gives it a long text's pieces all at once, or a short
  text's unseen ones. Pieces repeat a lot in real text, so the batch call reuses a piece's tokens
  within one text, and `BPE` keeps a per-piece cache across short texts.

Measurements of these loops: docs/performance.md.
"""
from __future__ import annotations

import heapq
import itertools

import numba
import numpy as np

from ..errors import InputError
from .bytes_unicode import BYTE_TO_CHAR, LATIN1_TO_BYTE_LEVEL

NO_MERGE = np.iinfo(np.int64).max


def bpe_merge_naive(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Merge `symbols` (one per byte at first) by the lowest-ranked adjacent pair until none is left.

    The rule as written: look at every adjacent pair, merge the one with the lowest rank (the
    leftmost on a tie), look again. O(n) per merge and up to n - 1 merges: O(n^2) per piece,
    fine for reading and for short pieces. `bpe_merge` gives the same symbols in O(n log n).
    """
    symbols = list(symbols)
    while len(symbols) > 1:
        candidates = [(ranks[pair], i) for i, pair in enumerate(zip(symbols, symbols[1:])) if pair in ranks]
        if not candidates:
            break
        _, i = min(candidates)  # the lowest rank; on a tie the lowest position, the leftmost pair
        symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]  # the pair becomes one symbol
    return symbols


def bpe_merge(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """`bpe_merge_naive` with a heap: the same symbols in O(n log n) for a piece of n bytes.

    Rescanning every pair after each merge would cost O(n) per merge, O(n^2) per piece -- and BLOOM's
    split makes any run of non-space characters (a base64 blob, minified JSON) one piece. So, as HF
    tokenizers does, keep the candidate pairs in a min-heap ordered by (rank, position): popping gives
    the leftmost lowest-ranked pair, exactly the pair the scan would pick. Symbols live in a linked
    list (`nxt`, `prv` over the starting positions); a merge changes only the two pairs around it,
    which are pushed anew. Entries made stale by earlier merges are skipped when popped: the symbol
    is gone, or its pair now has another rank.
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


EMPTY = -1  # a free slot of the merge table (keys are >= 0)


@numba.njit(cache=True, nogil=True, inline="always")
def _slot(key: int, mask: int) -> int:
    """Home slot of `key` in a table of mask + 1 slots: Fibonacci hashing (multiply by 2^64 / phi,
    keep high bits), so consecutive ids spread over the table."""
    return int((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)) & mask


@numba.njit(cache=True, nogil=True)
def _lookup(pair_keys: np.ndarray, key: int) -> int:
    """Slot of `key` in the open-addressing table `pair_keys` (linear probing), or -1.
    The table is at most half full, so a probe sequence is short and always meets a free slot."""
    mask = pair_keys.shape[0] - 1
    h = _slot(key, mask)
    while True:
        k = pair_keys[h]
        if k == key:
            return h
        if k == EMPTY:
            return -1
        h = (h + 1) & mask


@numba.njit(cache=True, nogil=True)
def _fill_table(keys: np.ndarray, values: np.ndarray, table_keys: np.ndarray, table_values: np.ndarray) -> None:
    mask = table_keys.shape[0] - 1
    for i in range(keys.shape[0]):
        h = _slot(keys[i], mask)
        while table_keys[h] != EMPTY:
            h = (h + 1) & mask
        table_keys[h], table_values[h] = keys[i], values[i]


@numba.njit(cache=True, nogil=True)
def bpe_merge_ids(ids: np.ndarray, pair_keys: np.ndarray, pair_values: np.ndarray, n_ids: int) -> np.ndarray:
    """`bpe_merge` over integer ids, the same heap-and-linked-list loop. The merge table is a hash
    table in two arrays (`BPE.pair_keys`, `BPE.pair_values`): a slot holds the key left * n_ids +
    right and the value rank << 32 | merged id (one multiply and, mostly, one probe per lookup). A heap entry packs (rank, position) into one int64, rank << 32 | position, so
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


SHORT_PIECE = 32  # bytes: below this the batch merges by rescanning, with no heap and no allocation


@numba.njit(cache=True, nogil=True, inline="always")
def _pair(left: int, right: int, pair_keys: np.ndarray, pair_values: np.ndarray, n_ids: int) -> int:
    """rank << 32 | merged id of the pair (left, right), or NO_MERGE."""
    k = _lookup(pair_keys, left * n_ids + right)
    return pair_values[k] if k >= 0 else NO_MERGE


@numba.njit(cache=True, nogil=True)
def _merge_short(sym: np.ndarray, n: int, pv: np.ndarray, pair_keys: np.ndarray, pair_values: np.ndarray,
                 n_ids: int) -> int:
    """The merge loop by rescanning, in place over sym[:n] (n <= SHORT_PIECE); returns the new n.

    pv[i] holds the pair (sym[i], sym[i + 1])'s rank << 32 | merged id, so the smallest pv is
    the lowest rank, and the first smallest the leftmost: the pair the heap would pop. A merge
    shifts the tail left by one and looks up only the two pairs it changed: O(n) per merge, which
    for a short piece costs less than building a heap."""
    for i in range(n - 1):
        pv[i] = _pair(sym[i], sym[i + 1], pair_keys, pair_values, n_ids)
    while n > 1:
        best = 0
        for i in range(1, n - 1):
            if pv[i] < pv[best]:
                best = i
        if pv[best] == NO_MERGE:
            break
        sym[best] = pv[best] & 0xFFFFFFFF  # sym[best + 1] merges into sym[best]
        for i in range(best + 1, n - 1):
            sym[i] = sym[i + 1]
            pv[i] = pv[i + 1] if i + 1 < n - 1 else NO_MERGE
        n -= 1
        if best > 0:
            pv[best - 1] = _pair(sym[best - 1], sym[best], pair_keys, pair_values, n_ids)
        if best < n - 1:
            pv[best] = _pair(sym[best], sym[best + 1], pair_keys, pair_values, n_ids)
    return n


@numba.njit(cache=True, nogil=True, inline="always")
def _same_piece(ids: np.ndarray, a: int, b: int, n: int) -> bool:
    for k in range(n):
        if ids[a + k] != ids[b + k]:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def bpe_merge_batch(ids: np.ndarray, starts: np.ndarray, pair_keys: np.ndarray, pair_values: np.ndarray,
                    n_ids: int) -> tuple[np.ndarray, np.ndarray]:
    """`bpe_merge_ids` over many pieces in one call: piece p is ids[starts[p]:starts[p + 1]].
    Returns (merged ids of every piece, one after another; out_starts [P + 1]) so that piece p's
    tokens are out[out_starts[p]:out_starts[p + 1]].

    One call instead of one per piece (each Python-to-Numba call has a fixed cost). Short pieces (most of
    them) merge by rescanning (`_merge_short`), long ones through the heap. Text repeats its
    pieces, so a piece met earlier in the same call is copied from where its tokens were written:
    a direct-mapped table of the last piece seen per hash slot (FNV-1a over its byte ids), checked
    byte for byte, so a collision only costs a merge.
    """
    P = starts.shape[0] - 1
    out = np.empty(ids.shape[0], np.int64)  # merging only shortens: never more ids than bytes
    out_starts = np.empty(P + 1, np.int64)
    out_starts[0] = 0
    sym = np.empty(SHORT_PIECE, np.int64)
    pv = np.empty(SHORT_PIECE, np.int64)
    slots = 16
    while slots < 2 * P and slots < (1 << 16):  # <= 512 KB: stays in cache
        slots <<= 1
    seen = np.full(slots, -1, np.int64)  # slot -> the piece index last stored there
    w = 0
    for p in range(P):
        lo, n = starts[p], starts[p + 1] - starts[p]
        h = np.uint64(14695981039346656037)
        for k in range(n):
            h = (h ^ np.uint64(ids[lo + k])) * np.uint64(1099511628211)
        slot = int(h & np.uint64(slots - 1))
        q = seen[slot]
        if q >= 0 and starts[q + 1] - starts[q] == n and _same_piece(ids, starts[q], lo, n):
            m = out_starts[q + 1] - out_starts[q]
            out[w:w + m] = out[out_starts[q]:out_starts[q] + m]
            n = m
        elif n <= SHORT_PIECE:
            sym[:n] = ids[lo:lo + n]
            n = _merge_short(sym, n, pv, pair_keys, pair_values, n_ids)
            out[w:w + n] = sym[:n]
            seen[slot] = p
        else:
            merged = bpe_merge_ids(ids[lo:lo + n], pair_keys, pair_values, n_ids)
            n = merged.shape[0]
            out[w:w + n] = merged
            seen[slot] = p
        w += n
        out_starts[p + 1] = w
    return out[:w], out_starts


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
        self.every_byte = bool((self.byte_ids >= 0).all())  # byte-level vocabs: no byte is ever unknown
        self.pair_keys, self.pair_values = self._merge_table()
        self.cache: dict[str, list[int]] = {}

    def _merge_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(pair_keys, pair_values): the merges as an open-addressing hash table of a power-of-two
        size at least twice their count (see `_lookup`)."""
        table = {self.vocab[a] * self.n_ids + self.vocab[b]: rank << 32 | self.vocab[a + b]
                 for (a, b), rank in self.ranks.items()}
        size = 1 << max(1, (2 * len(table)).bit_length())  # > 2 x entries: never more than half full
        pair_keys, pair_values = np.full(size, EMPTY, np.int64), np.zeros(size, np.int64)
        _fill_table(np.fromiter(table.keys(), np.int64, len(table)),
                    np.fromiter(table.values(), np.int64, len(table)), pair_keys, pair_values)
        return pair_keys, pair_values

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

    def encode_utf8(self, raw: bytes, starts: np.ndarray) -> list[int] | None:
        """Token ids of a whole text given as UTF-8 bytes cut into pieces at `starts` [P + 1]
        (`pretokenizer.split_byte_starts`): every piece merged in one call, no Python object per
        piece and no cache (merging a long text's pieces again costs about what looking them up did).
        None when a byte has no vocab entry or ignore_merges is set: use `encode_piece` then."""
        merged = None if self.ignore_merges else self._merge_bytes(raw, starts)
        return None if merged is None else merged[0].tolist()

    def _merge_bytes(self, raw: bytes, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """`bpe_merge_batch` over the pieces cut from `raw` at `starts`: (merged ids, per-piece
        bounds), or None when a byte has no vocab entry (unk handling is `encode_piece`'s)."""
        ids = self.byte_ids[np.frombuffer(raw, np.uint8)]  # [n bytes]
        if not self.every_byte and (ids < 0).any():
            return None
        return bpe_merge_batch(ids, starts, self.pair_keys, self.pair_values, self.n_ids)

    def encode_pieces(self, pieces: list[str]) -> None:
        """Put the ids of every piece of `pieces` in the cache (as `encode_piece` would, each) with
        one merge-loop call for all: their UTF-8 bytes joined, mapped to byte ids at once, merged by
        `bpe_merge_batch`. Pieces needing more than that (a lone surrogate, a byte with no vocab
        entry, a whole-piece vocab hit under ignore_merges) take `encode_piece`'s path."""
        distinct = dict.fromkeys(pieces)  # each piece once
        if len(self.cache) + len(distinct) >= self.CACHE_LIMIT:
            self.cache.clear()
        plain, raws = [], []
        for piece in distinct:
            try:
                raw = piece.encode("utf-8")
            except UnicodeEncodeError:
                self.encode_piece(piece)  # raises the InputError naming the surrogate
                continue
            if self.ignore_merges and self.vocab.get(raw.decode("latin-1").translate(LATIN1_TO_BYTE_LEVEL)) is not None:
                self.encode_piece(piece)
                continue
            plain.append(piece)
            raws.append(raw)
        if not plain:
            return
        starts = np.fromiter(itertools.accumulate(map(len, raws), initial=0), np.int64, len(raws) + 1)
        batch = self._merge_bytes(b"".join(raws), starts)
        if batch is None:  # bytes outside the vocab: unk handling, piece by piece
            for piece in plain:
                self.encode_piece(piece)
            return
        merged, bounds = batch[0].tolist(), batch[1].tolist()
        cache = self.cache
        for p, piece in enumerate(plain):
            cache[piece] = merged[bounds[p]:bounds[p + 1]]

