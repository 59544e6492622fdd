"""One long piece through BPE: minibloom's heap merge loop against HF tokenizers, and the old scan.

    python benchmarks/bpe_long_piece.py     # 1 MB pieces; the old O(n^2) scans on 10-40 KB and 4 KB

BLOOM's split makes any run of non-space characters one piece, so a base64 blob or minified JSON
is one piece of megabytes. Both tokenizers load the test tokenizer.json (tests/data/tokenizer) and
encode the same text in this process (ids checked equal); HF tokenizers runs single-threaded. The
old loops (rescan every pair after each merge, as minibloom did before: `old_scan_ids` below, and
the test suite's `scan_merge` over strings) are timed on short pieces only: they are quadratic. Needs the `reference` extra.
"""

from __future__ import annotations

import base64
import os
import random
import sys
import time

import numba
import numpy as np

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    import tokenizers

    from minibloom.tokenizer import BloomTokenizer
    from minibloom.tokenizer.bpe import bpe_merge, bpe_merge_ids
    from minibloom.tokenizer.bytes_unicode import BYTE_TO_CHAR
    from tests.fuzz.test_fuzz_bpe import scan_merge

    path = os.path.join(ROOT, "tests", "data", "tokenizer", "tokenizer.json")
    ours, hf = BloomTokenizer.from_file(path), tokenizers.Tokenizer.from_file(path)
    ours.encode_ids("warm up the jit")
    rng = random.Random(0)
    texts = {"'thou' * 250000": "thou" * 250_000,
             "base64 of random bytes": base64.b64encode(rng.randbytes(750_000)).decode()}
    print(f"{'piece (1 MB)':26} {'minibloom s':>12} {'HF s':>8} {'minibloom/HF':>13}")
    for name, text in texts.items():
        ids, ours_s = timed(lambda: ours.encode_ids(text))
        hf_ids, hf_s = timed(lambda: hf.encode(text).ids)
        assert list(ids) == hf_ids, name
        print(f"{name:26} {ours_s:12.3f} {hf_s:8.3f} {ours_s / hf_s:13.2f}")
    bpe = ours.bpe
    print(f"\n{'thou * n, Numba loops':26} {'heap s':>12} {'old scan s':>11} {'scan/heap':>10}")
    for kb in (10, 20, 40):
        ids = bpe.byte_symbols(("thou" * (kb * 250)).encode())
        heap, heap_s = timed(lambda: bpe_merge_ids(ids, bpe.pair_keys, bpe.pair_values, bpe.n_ids))
        keys, values = sorted_merges(bpe)
        scan, scan_s = timed(lambda: old_scan_ids(ids, keys, values, bpe.n_ids))
        assert heap.tolist() == scan.tolist()
        print(f"{kb:>4} KB{'':20} {heap_s:12.4f} {scan_s:11.2f} {scan_s / heap_s:10.0f}")
    symbols = [BYTE_TO_CHAR[b] for b in ("thou" * 1000).encode()]
    heap, heap_s = timed(lambda: bpe_merge(symbols, bpe.ranks))
    scan, scan_s = timed(lambda: scan_merge(symbols, bpe.ranks))
    assert heap == scan
    print(f"readable loops, 4 KB{'':7}{heap_s:12.4f} {scan_s:11.2f} {scan_s / heap_s:10.0f}")


def sorted_merges(bpe):
    """The merge table as the old loop had it: keys sorted (binary search), values alongside."""
    used = bpe.pair_keys >= 0
    order = np.argsort(bpe.pair_keys[used])
    return bpe.pair_keys[used][order], bpe.pair_values[used][order]


@numba.njit(cache=True)
def old_scan_ids(ids, pair_keys, pair_values, n_ids):
    """minibloom's merge loop before the heap: rescan every pair after each merge, O(n^2)."""
    symbols = ids.copy()
    n = symbols.shape[0]
    while n > 1:
        best, best_rank, best_id = -1, np.iinfo(np.int64).max, -1
        for i in range(n - 1):
            key = symbols[i] * n_ids + symbols[i + 1]
            k = np.searchsorted(pair_keys, key)
            if k < pair_keys.shape[0] and pair_keys[k] == key:
                rank = pair_values[k] >> 32
                if rank < best_rank:
                    best, best_rank, best_id = i, rank, pair_values[k] & 0xFFFFFFFF
        if best < 0:
            break
        symbols[best] = best_id
        for j in range(best + 1, n - 1):
            symbols[j] = symbols[j + 1]
        n -= 1
    return symbols[:n]

if __name__ == "__main__":
    main()
