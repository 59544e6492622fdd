"""BLOOM's pre-tokenizer: cut text into pieces before BPE, so no token ever spans two pieces.

tokenizer.json spells it `Split(Regex(" ?[^(\\s|[.,!?…。，、।۔،])]+"), behavior=Isolated)` followed by
`ByteLevel(add_prefix_space=false, use_regex=false)`. Read the regex as Oniguruma (the Rust regex
engine of HF tokenizers) reads it: `[^(\\s|[.,!?…。，、।۔،])]` is one negated class whose members are
`(`, `)`, `|`, white space and the ten listed punctuation marks (Latin, CJK, Devanagari danda, Urdu
and Arabic stops and commas). So a *match* is an optional single space followed by a run of any
other characters: roughly a word with its leading space, as in GPT-2.

`Isolated` keeps the text *between* matches as pieces of their own, so nothing is dropped:

    "a.b,c (x)|y  z"  ->  "a" "." "b" "," "c" " (" "x" ")|" "y" " " " z"

(subtle: " (" is one piece, since "(" is not a word character and so the space before it is not
eaten by a match; the gap " " before " z" is a piece of one space.)

Python's `re` rejects the nested-class syntax, and its `\\s` also matches U+001C..U+001F, which
Oniguruma treats as word characters; the `regex` package's `\\s` is Unicode White_Space, the same
set as Oniguruma's (a test checks all 1,112,064 code points against tokenizers). We write the class
flat and scan for "a match, or else one gap" with one compiled pattern.

`ByteLevel` then maps each piece to its UTF-8 bytes shown as printable characters
(`bytes_unicode.py`). With `add_prefix_space=True` it first prepends a space to *every* piece that
does not start with one (subtle: every piece, not only the first -- tokenizers applies ByteLevel to
each split the regex made).
"""

from __future__ import annotations

import regex

# The pattern exactly as BLOOM's tokenizer.json stores it (Oniguruma syntax).
BLOOM_SPLIT_PATTERN = " ?[^(\\s|[.,!?…。，、।۔،])]+"

# The same class in `regex` syntax: a word character is anything outside SEPARATORS.
SEPARATORS = r"()|\s.,!?…。，、।۔،"
WORD = rf"[^{SEPARATORS}]"
# Alternative 1: a match (optional space + word characters). Alternative 2: a gap, i.e. a run of
# characters at none of which a match could start.
PIECE_RE = regex.compile(rf" ?{WORD}+|(?:(?! ?{WORD}).)+", regex.DOTALL)


def split_pieces(text: str) -> list[str]:
    """'Hello, world' -> ['Hello', ',', ' world']: matches and the gaps between them, in order."""
    return PIECE_RE.findall(text)


def split_with_offsets(text: str, start: int = 0) -> list[tuple[str, int]]:
    """Like `split_pieces`, with each piece's character offset in the caller's text (+ start)."""
    return [(m.group(), start + m.start()) for m in PIECE_RE.finditer(text)]
