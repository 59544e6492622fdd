"""01 - Bytes and the BPE merge loop (about 1 s).

Byte-level BPE starts from UTF-8 bytes, each shown as one printable character, and merges adjacent
pairs in the order a trainer learnt them. We learn merges from a few lines, then encode by hand.
"""

from minibloom.explain.tokens import naive_merge
from minibloom.tokenizer.bpe import bpe_merge, bpe_merge_naive
from minibloom.tokenizer.bytes_unicode import BYTE_TO_CHAR, from_byte_level, to_byte_level
from minibloom.tokenizer.train import train_bpe

print("a space is byte", ord(" "), "shown as", repr(BYTE_TO_CHAR[ord(" ")]))
word = " héllo"
shown = to_byte_level(word)
print(f"{word!r} has {len(word.encode())} UTF-8 bytes, shown as {shown!r}")
assert shown == "ĠhÃ©llo" and from_byte_level(shown) == word.encode()

texts = ["the cat sat on the mat", "the cat ate the rat", "that hat is the cat's"] * 3
vocab, merges = train_bpe(texts, vocab_size=4 + 256 + 12, progress=False)
print("first merges learnt:", merges[:6])
from collections import Counter
from minibloom.tokenizer.pretokenizer import split_pieces

pairs = Counter()  # the first merge is the most frequent adjacent pair (ties: the smaller ids)
for text in texts:
    for piece in split_pieces(text):
        symbols = to_byte_level(piece)
        pairs.update(zip(symbols, symbols[1:]))
top = max(pairs.values())
print("most frequent pairs:", [p for p, n in pairs.items() if n == top], "seen", top, "times")
assert merges[0] == min((p for p, n in pairs.items() if n == top), key=lambda p: (vocab[p[0]], vocab[p[1]]))

ranks = {pair: rank for rank, pair in enumerate(merges)}
symbols = list(to_byte_level(" the cat"))
print("start:", symbols)
merged, steps = naive_merge(symbols, ranks)  # the merge loop, one step at a time: the lowest-ranked pair wins
for step in steps:
    print(f"merge rank {step.rank:2d}: {step.left} + {step.right}")
assert merged == bpe_merge_naive(symbols, ranks) == bpe_merge(symbols, ranks)  # the rule as written, and the heap
print("ids:", [vocab[s] for s in merged])
