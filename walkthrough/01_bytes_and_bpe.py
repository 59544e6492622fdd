"""01 - Bytes and the BPE merge loop (about 1 s).

Byte-level BPE starts from UTF-8 bytes, each shown as one printable character, and merges adjacent
pairs in the order a trainer learnt them. We learn merges from a few lines, then encode by hand.
"""

from minibloom.tokenizer.bpe import bpe_merge
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
while True:  # the merge loop, one step at a time: the lowest-ranked adjacent pair wins
    pairs = [(ranks.get(p, 10**9), i) for i, p in enumerate(zip(symbols, symbols[1:]))]
    rank, i = min(pairs, default=(10**9, -1))
    if rank == 10**9:
        break
    symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
    print(f"merge rank {rank:2d} -> {symbols}")
assert symbols == bpe_merge(list(to_byte_level(" the cat")), ranks)
print("ids:", [vocab[s] for s in symbols])
