"""Learning BPE merges from text: the trainer behind a BLOOM-format tokenizer.json.

Training is the mirror image of encoding (`bpe.py`). Start from the pieces of the corpus, each split
into byte-level symbols, and count every adjacent pair, weighted by how often its piece occurs.
Then repeat until the vocab is full:

    take the most frequent pair (on a tie: the pair of smallest ids); it becomes a new token,
    the next merge in the list; replace it in every piece that holds it; update the pair counts

Encoding later replays the merges in this order, so a piece is cut the way the corpus taught.

This follows HF tokenizers' `BpeTrainer` step for step, so that both produce the same merges:
ids 0.. are the special tokens, then the alphabet (every byte-level character, sorted by code
point: with all 256 bytes, '!' is id 4 as in BLOOM), then one id per merge. Counts are kept
incrementally: merging a pair only changes the pairs next to it, so each step touches just the
pieces that held the pair (`where`), and a max-heap hands out the next pair. Entries in the heap
may be stale; one whose count is out of date is pushed back with the current count (HF's lazy
update, reproduced on purpose: subtle, it decides ties the same way).
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections import Counter, defaultdict
from typing import Iterable

from .bytes_unicode import BYTE_TO_CHAR, to_byte_level
from .pretokenizer import BLOOM_SPLIT_PATTERN, split_pieces

Pair = tuple[int, int]
BLOOM_SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")


def count_pieces(texts: Iterable[str]) -> Counter:
    """{byte-level piece: occurrences} over the corpus, pieces cut by BLOOM's pre-tokenizer."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(split_pieces(text))
    return Counter({to_byte_level(piece): n for piece, n in counts.items()})


def merge_word(word: list[int], a: int, b: int, new_id: int) -> list[tuple[Pair, int]]:
    """Replace each (a, b) in `word`, left to right, by new_id; return the pair-count changes."""
    changes = []
    i = 0
    while i < len(word):
        if word[i] == a and i + 1 < len(word) and word[i + 1] == b:
            if i > 0:  # the pair on the left now ends in new_id
                changes += [((word[i - 1], a), -1), ((word[i - 1], new_id), 1)]
            word[i:i + 2] = [new_id]
            if i + 1 < len(word):  # and the pair on the right starts with it
                changes += [((b, word[i + 1]), -1), ((new_id, word[i + 1]), 1)]
        i += 1
    return changes


def train_bpe(texts: Iterable[str], vocab_size: int, special_tokens: Iterable[str] = BLOOM_SPECIAL_TOKENS,
              min_frequency: int = 0, progress: bool | None = None) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Learn (vocab {token: id}, merges [(left, right)]) from `texts`, as HF's BpeTrainer does."""
    from tqdm.auto import tqdm

    piece_counts = count_pieces(texts)
    id_to_token: list[str] = []
    for token in special_tokens:
        if token not in id_to_token:
            id_to_token.append(token)
    alphabet = set(BYTE_TO_CHAR.values()).union(*piece_counts)
    id_to_token += [c for c in sorted(alphabet) if c not in id_to_token]
    token_to_id = {t: i for i, t in enumerate(id_to_token)}
    words = [[token_to_id[c] for c in piece] for piece in piece_counts]  # each piece as a list of ids
    counts = list(piece_counts.values())

    pair_counts: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, set[int]] = defaultdict(set)  # pair -> indices of the words holding it
    for w, word in enumerate(words):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += counts[w]
            where[pair].add(w)
    order = itertools.count()  # heap entries: (-count, pair, insertion order, word indices)
    heap = [(-pair_counts[p], p, next(order), ws) for p, ws in where.items() if pair_counts[p] > 0]
    heapq.heapify(heap)

    merges: list[tuple[Pair, int]] = []
    with tqdm(total=vocab_size, initial=len(id_to_token), desc="training BPE", delay=2.0,
              disable=progress is False, leave=False) as bar:
        while len(token_to_id) < vocab_size and heap:
            neg_count, pair, _, ws = heapq.heappop(heap)
            if -neg_count != pair_counts[pair]:  # stale: put it back with its current count
                heapq.heappush(heap, (-pair_counts[pair], pair, next(order), ws))
                continue
            if -neg_count < 1 or min_frequency > -neg_count:
                break
            new_token = id_to_token[pair[0]] + id_to_token[pair[1]]
            new_id = token_to_id.setdefault(new_token, len(id_to_token))
            if new_id == len(id_to_token):
                id_to_token.append(new_token)
            merges.append((pair, new_id))
            touched: dict[Pair, set[int]] = defaultdict(set)
            for w in ws:
                for changed, delta in merge_word(words[w], pair[0], pair[1], new_id):
                    pair_counts[changed] += delta * counts[w]
                    if delta > 0:
                        touched[changed].add(w)
            for p, pws in touched.items():
                if pair_counts[p] > 0:
                    heapq.heappush(heap, (-pair_counts[p], p, next(order), pws))
            bar.update(1)
    return token_to_id, [(id_to_token[a], id_to_token[b]) for (a, b), _ in merges]


def tokenizer_json(vocab: dict[str, int], merges: list[tuple[str, str]],
                   special_tokens: Iterable[str] = BLOOM_SPECIAL_TOKENS) -> dict:
    """A BLOOM-format tokenizer.json dict (HF tokenizers and `BloomTokenizer` both load it)."""
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for t in special_tokens],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": BLOOM_SPLIT_PATTERN}, "behavior": "Isolated", "invert": False},
            byte_level]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [[a, b] for a, b in merges]},
    }


def save_tokenizer_json(path: str, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    """Write a trained tokenizer as tokenizer.json, atomically."""
    from ..atomic import atomic_write_bytes

    atomic_write_bytes(path, json.dumps(tokenizer_json(vocab, merges), ensure_ascii=False).encode("utf-8"))
