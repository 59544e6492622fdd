r"""An independent port of BLOOM's tokenizer for the tokenizer-golden tests, written from the
tokenizer.json format and the docs alone (not minibloom's tokenizer): special tokens matched whole,
the split regex, GPT-2's byte-to-unicode table, the BPE loop by merge rank, character offsets from
byte spans, decoding by bytes. Writes the records `minibloom golden tokenize` writes, so the tests
check the contract, not our code.

`bugs` injects the classic tokenizer-porting bugs; the tests require `compare` to name each at the
right record and token:

    split_class      "(", ")" and "|" read as word characters: the regex's `[^(\s|[.,...])]` misread as
                     a class holding a group `(\s|[.,...])`, the commonest misreading
    merge_order      the leftmost mergeable pair merged first instead of the lowest-ranked one
    special_offsets  special tokens given the offsets (0, 0), as a port that drops them does
"""

from __future__ import annotations

import json

import regex

BUGS = ("split_class", "merge_order", "special_offsets")
SEPARATORS = "()|.,!?…。，、।۔،"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table: printable bytes map to themselves, the others to U+0100 onwards, in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class TokenPort:
    def __init__(self, tokenizer_json: str, bugs=()):
        assert set(bugs) <= set(BUGS), bugs
        with open(tokenizer_json, encoding="utf-8") as f:
            data = json.load(f)
        self.bugs = set(bugs)
        self.vocab = data["model"]["vocab"]
        self.inverse = {i: t for t, i in self.vocab.items()}
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in data["model"]["merges"]]
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.special = {t["content"]: t["id"] for t in data["added_tokens"]}
        for content, i in self.special.items():
            self.inverse[i] = content
        seps = SEPARATORS.translate({ord(c): None for c in "()|"}) if "split_class" in self.bugs else SEPARATORS
        word = "[^" + regex.escape(seps) + r"\s]"
        self.piece_re = regex.compile(rf" ?{word}+|(?:(?! ?{word}).)+", regex.DOTALL)
        specials = sorted(self.special, key=len, reverse=True)
        self.special_re = regex.compile("|".join(map(regex.escape, specials))) if specials else None
        self.byte_char = bytes_to_unicode()
        self.char_byte = {c: b for b, c in self.byte_char.items()}

    def bpe(self, symbols: list[str]) -> list[str]:
        while len(symbols) > 1:
            pairs = [(self.ranks.get((a, b)), i) for i, (a, b) in enumerate(zip(symbols, symbols[1:]))]
            pairs = [(r, i) for r, i in pairs if r is not None]
            if not pairs:
                break
            _, i = min(pairs, key=(lambda p: p[1]) if "merge_order" in self.bugs else (lambda p: p))
            symbols = symbols[:i] + [symbols[i] + symbols[i + 1]] + symbols[i + 2:]
        return symbols

    def encode(self, text: str) -> tuple[list[int], list[list[int]]]:
        ids, offsets, pos = [], [], 0
        matches = list(self.special_re.finditer(text)) if self.special_re else []
        for m in matches + [None]:
            end = m.start() if m else len(text)
            self._encode_stretch(text[pos:end], pos, ids, offsets)
            if m:
                ids.append(self.special[m.group()])
                offsets.append([0, 0] if "special_offsets" in self.bugs else [m.start(), m.end()])
                pos = m.end()
        return ids, offsets

    def _encode_stretch(self, stretch: str, start: int, ids: list, offsets: list) -> None:
        for m in self.piece_re.finditer(stretch):
            raw = m.group().encode("utf-8")
            char_of_byte = [k for k, c in enumerate(m.group()) for _ in c.encode("utf-8")]
            b = 0
            for token in self.bpe([self.byte_char[x] for x in raw]):
                n = len(token)  # one character per byte
                ids.append(self.vocab[token])
                offsets.append([start + m.start() + char_of_byte[b], start + m.start() + char_of_byte[b + n - 1] + 1])
                b += n

    def decode(self, ids: list[int]) -> str:
        out = bytearray()
        for i in ids:
            token = self.inverse[i]
            out += token.encode("utf-8") if token in self.special else bytes(self.char_byte[c] for c in token)
        return out.decode("utf-8", errors="replace")

    def records(self, golden: list[dict]) -> list[dict]:
        """The port's records for the golden's texts, in order (text copied, name left out)."""
        out = []
        for r in golden:
            ids, offsets = self.encode(r["text"])
            out.append({"text": r["text"], "ids": ids, "offsets": offsets, "decoded": self.decode(ids),
                        "tokens": [self.inverse[i] for i in ids]})
        return out
