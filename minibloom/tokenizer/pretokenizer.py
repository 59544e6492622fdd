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
flat and scan for "a match, or else one gap" with one compiled pattern, `PIECE_RE`: the readable
reference. The hot path, `split_pieces`, is the same scan compiled with Numba over the text's code
points with the class precomputed as a table of 0x110000 booleans (`word_table`); the `regex`
scan alone took about half of a warm encode's time (docs/performance.md). Tests check the two equal
over text from every plane, surrogates and U+001C..U+001F included.

`ByteLevel` then maps each piece to its UTF-8 bytes shown as printable characters
(`bytes_unicode.py`). With `add_prefix_space=True` it first prepends a space to *every* piece that
does not start with one (subtle: every piece, not only the first -- tokenizers applies ByteLevel to
each split the regex made).
"""

from __future__ import annotations

import numpy as np
import regex

# The pattern exactly as BLOOM's tokenizer.json stores it (Oniguruma syntax).
BLOOM_SPLIT_PATTERN = " ?[^(\\s|[.,!?…。，、।۔،])]+"

# The same class in `regex` syntax: a word character is anything outside SEPARATORS.
SEPARATORS = r"()|\s.,!?…。，、।۔،"
WORD = rf"[^{SEPARATORS}]"
# Alternative 1: a match (optional space + word characters). Alternative 2: a gap, i.e. a run of
# characters at none of which a match could start.
PIECE_RE = regex.compile(rf" ?{WORD}+|(?:(?! ?{WORD}).)+", regex.DOTALL)


def split_pieces_reference(text: str) -> list[str]:
    """'Hello, world' -> ['Hello', ',', ' world']: matches and the gaps between them, in order."""
    return PIECE_RE.findall(text)


_WORD_TABLE: np.ndarray | None = None


def word_table() -> np.ndarray:
    """is_word [0x110000] bool: True where `WORD` matches the code point (built once, on first use)."""
    global _WORD_TABLE
    if _WORD_TABLE is None:
        table = np.ones(0x110000, np.bool_)
        every = "".join(map(chr, range(0x110000)))
        for m in regex.finditer(rf"[{SEPARATORS}]", every):  # the few separators, by the same class
            table[m.start()] = False
        _WORD_TABLE = table
    return _WORD_TABLE


def _scan_kernel():
    import numba

    @numba.njit(cache=True, nogil=True)
    def scan(cps, is_word, ends):
        """Piece end offsets of code points `cps` into `ends`; returns their count.

        One pass, as `PIECE_RE` scans: at i, a match starts if cps[i] is a word character, or a
        space followed by one; it runs to the end of the word characters. Whatever lies between
        two matches is one gap piece."""
        n, count, last, i = cps.shape[0], 0, 0, 0
        while i < n:
            if cps[i] == 32 and i + 1 < n and is_word[cps[i + 1]]:
                start, j = i, i + 1
            elif is_word[cps[i]]:
                start, j = i, i
            else:
                i += 1
                continue
            while j < n and is_word[cps[j]]:
                j += 1
            if start > last:  # the gap before this match
                ends[count] = start
                count += 1
            ends[count] = j
            count += 1
            last = i = j
        if last < n:
            ends[count] = n
            count += 1
        return count

    @numba.njit(cache=True, nogil=True)
    def byte_starts(cps, ends, count, starts):
        """starts[p] = the UTF-8 byte offset where piece p begins (starts[count] = the length):
        each code point takes 1, 2, 3 or 4 bytes by its range."""
        starts[0] = 0
        i, b = 0, 0
        for p in range(count):
            while i < ends[p]:
                c = cps[i]
                b += 1 if c < 0x80 else 2 if c < 0x800 else 3 if c < 0x10000 else 4
                i += 1
            starts[p + 1] = b

    return scan, byte_starts


_SCAN = None
SCAN_MIN_CHARS = 256  # below this, one regex call costs less than the scanner's per-call setup (docs/performance.md)


def _scan(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(code points [n], piece end offsets in code points [count]) by the compiled scanner."""
    global _SCAN
    if _SCAN is None:
        _SCAN = _scan_kernel()
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)  # [n] code points
    ends = np.empty(cps.shape[0], np.int64)
    count = _SCAN[0](cps, word_table(), ends)
    return cps, ends[:count]


def split_byte_starts(text: str) -> np.ndarray:
    """The pieces of `text` as UTF-8 byte offsets [P + 1]: piece p is utf8[starts[p]:starts[p + 1]].
    What the tokenizer's compiled path needs: no Python string per piece."""
    cps, ends = _scan(text)
    starts = np.empty(ends.shape[0] + 1, np.int64)
    _SCAN[1](cps, ends, ends.shape[0], starts)
    return starts


def split_pieces(text: str) -> list[str]:
    """'Hello, world' -> ['Hello', ',', ' world']: as `split_pieces_reference`, compiled."""
    if len(text) < SCAN_MIN_CHARS:
        return PIECE_RE.findall(text)
    _, ends = _scan(text)
    bounds = ends.tolist()
    return [text[a:b] for a, b in zip([0, *bounds[:-1]], bounds)]


def split_with_offsets(text: str, start: int = 0) -> list[tuple[str, int]]:
    """Like `split_pieces`, with each piece's character offset in the caller's text (+ start)."""
    return [(m.group(), start + m.start()) for m in PIECE_RE.finditer(text)]
