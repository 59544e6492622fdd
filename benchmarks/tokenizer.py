"""Encode throughput (MB/s, one thread) of minibloom's BloomTokenizer against HF tokenizers and tiktoken.

    python benchmarks/tokenizer.py                        # the test tokenizer on ~3.5 MB of text
    python benchmarks/tokenizer.py --file corpus.txt --tokenizer path/to/tokenizer.json

Both load the same tokenizer.json and encode the same text in this process. HF tokenizers runs
single-threaded (RAYON_NUM_THREADS=1, set before it is imported), in its two modes: `encode` of the
whole file as one string, and `encode_batch` of its lines. minibloom encodes line by line.
"cold" is the first pass with empty piece caches (a freshly loaded tokenizer; Numba's compile of
the merge loop is done beforehand and reported on its own); "warm" is a second pass over the same
text. The ids of both are checked equal before anything is timed. Needs the `reference` extra.

tiktoken (a benchmark-only dependency: minibloom never imports it) runs the same BPE on the same
ranks: each merge's result gets rank 256 + its place in the merges list, so tiktoken's "lowest
rank first" picks the merges in HF's order, and its pattern is BLOOM's split with the gaps
between matches as a second alternative (`pretokenizer.PIECE_RE`'s). Its ids are mapped back to
the tokenizer's and the share of lines where they agree with HF's is printed. It encodes the
whole text at once (`encode_ordinary`, one thread), which is its fast path, so minibloom is also
timed on the whole text (where its compiled pre-tokenizer scanner runs) beside line by line.

The default text is the multilingual corpus the test tokenizer was trained on (glibc locale
strings and the installed programs' gettext translations, built by tests/reference/make_tokenizer.py).
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def tiktoken_encoding(path: str):
    """A tiktoken Encoding with the tokenizer.json's merges as ranks, and rank -> id."""
    import json

    import tiktoken

    from minibloom.tokenizer.bytes_unicode import from_byte_level
    from minibloom.tokenizer.pretokenizer import PIECE_RE

    with open(path, encoding="utf-8") as f:
        model = json.load(f)["model"]
    vocab = model["vocab"]
    ranks, rank_to_id = {}, {}
    for b in range(256):
        ranks[bytes([b])] = b
    for i, merge in enumerate(model["merges"]):
        left, right = merge if isinstance(merge, list) else merge.split(" ")
        ranks.setdefault(from_byte_level(left + right), 256 + i)
    for symbols, token_id in vocab.items():
        raw = from_byte_level(symbols)
        if raw in ranks:
            rank_to_id[ranks[raw]] = token_id
    enc = tiktoken.Encoding("bloom-test", pat_str=PIECE_RE.pattern, mergeable_ranks=ranks, special_tokens={})
    return enc, np.array([rank_to_id.get(r, -1) for r in range(max(ranks.values()) + 1)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", help="UTF-8 text to encode (default: the training corpus)")
    parser.add_argument("--tokenizer", default=os.path.join(ROOT, "tests", "data", "tokenizer", "tokenizer.json"))
    args = parser.parse_args()

    import tokenizers

    from minibloom.tokenizer import BloomTokenizer

    if args.file:
        with open(args.file, encoding="utf-8") as f:
            lines = f.read().split("\n")
    else:
        sys.path.insert(0, ROOT)
        from tests.reference.make_tokenizer import glibc_strings, translations

        lines = glibc_strings() + translations()
    text = "\n".join(lines)
    megabytes = len(text.encode("utf-8")) / 1e6

    start = time.perf_counter()
    ours = BloomTokenizer.from_file(args.tokenizer)
    load_s = time.perf_counter() - start
    compile_s = seconds(lambda: ours.encode_ids("warm up the jit"))  # first call: Numba compile or cache load
    hf = tokenizers.Tokenizer.from_file(args.tokenizer)
    assert [e.ids for e in hf.encode_batch(lines[:2000])] == [ours.encode_ids(t) for t in lines[:2000]]

    def run_ours(tok):
        for line in lines:
            tok.encode_ids(line)

    enc, rank_to_id = tiktoken_encoding(args.tokenizer)
    sample = lines[:2000]
    agree = sum(list(rank_to_id[enc.encode_ordinary(t)]) == e.ids for t, e in zip(sample, hf.encode_batch(sample)))

    rows = []
    for mode in ("cold", "warm"):
        tok = BloomTokenizer.from_file(args.tokenizer) if mode == "cold" else ours
        t_ours = seconds(lambda: run_ours(tok))
        hf_tok = tokenizers.Tokenizer.from_file(args.tokenizer) if mode == "cold" else hf
        t_encode = seconds(lambda: hf_tok.encode(text))
        hf_tok = tokenizers.Tokenizer.from_file(args.tokenizer) if mode == "cold" else hf
        t_batch = seconds(lambda: hf_tok.encode_batch(lines))
        tok = BloomTokenizer.from_file(args.tokenizer) if mode == "cold" else ours
        t_whole = seconds(lambda: tok.encode_ids(text))
        tik = tiktoken_encoding(args.tokenizer)[0] if mode == "cold" else enc
        t_tik = seconds(lambda: tik.encode_ordinary(text))
        if mode == "cold":
            run_ours(ours)  # fill the cache of the tokenizer used warm
            hf.encode_batch(lines)
            hf.encode(text)
            enc.encode_ordinary(text)
        rows.append((mode, t_ours, t_encode, t_batch, t_whole, t_tik))

    print(f"{megabytes:.2f} MB in {len(lines)} lines; tokenizers {tokenizers.__version__} (RAYON_NUM_THREADS=1); "
          f"minibloom load {load_s:.2f} s, first call (Numba compile or cache load) {compile_s:.2f} s")
    print(f"tiktoken {__import__('tiktoken').__version__}, same ranks: ids equal to HF's on {agree}/{len(sample)} lines")
    print(f"{'pass':>5} {'minibloom MB/s':>15} {'HF encode MB/s':>15} {'HF batch MB/s':>14} "
          f"{'vs encode':>10} {'vs batch':>9}")
    for mode, t_ours, t_encode, t_batch, t_whole, t_tik in rows:
        best_hf = min(t_encode, t_batch)
        print(f"{mode:>5} {megabytes / t_ours:>15.2f} {megabytes / t_encode:>15.2f} {megabytes / t_batch:>14.2f} "
              f"{t_encode / t_ours:>9.2f}x {t_batch / t_ours:>8.2f}x   (vs HF's best: {best_hf / t_ours:.2f}x)")
        print(f"{'':>5} whole text: minibloom {megabytes / t_whole:.2f} MB/s, tiktoken {megabytes / t_tik:.2f} MB/s "
              f"-> minibloom / tiktoken speed {t_tik / t_whole:.2f}x; line by line vs tiktoken {t_tik / t_ours:.2f}x")
    # The cliff of issue 24: one added-token string anywhere used to send the whole text down the
    # slow path. `<s>` in the middle: minibloom splits there; tiktoken (no special tokens given)
    # encodes it as text, which costs it nothing.
    marked = text[:len(text) // 2] + "<s>" + text[len(text) // 2:]
    assert ours.encode_ids(marked) == hf.encode(marked).ids
    t_marked = min(seconds(lambda: ours.encode_ids(marked)) for _ in range(2))
    t_tik_marked = min(seconds(lambda: enc.encode_ordinary(marked)) for _ in range(2))
    print(f"whole text with one <s> in the middle (warm): minibloom {megabytes / t_marked:.2f} MB/s, tiktoken "
          f"{megabytes / t_tik_marked:.2f} MB/s -> minibloom / tiktoken speed {t_tik_marked / t_marked:.2f}x")
    t_general = seconds(lambda: ours._encode_ids_general(marked))  # the path it took before issue 24
    print(f"  (the general path it took before: {megabytes / t_general:.2f} MB/s, {t_tik_marked / t_general:.2f}x tiktoken)")


if __name__ == "__main__":
    main()
