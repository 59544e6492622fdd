"""The compiled pre-tokenizer scanner equals the `regex` reference (PIECE_RE), over text from every
plane (surrogates included), dense in spaces and separators, and at the U+001C..U+001F edge."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibloom.tokenizer import bloom_tokenizer, pretokenizer
from minibloom.tokenizer.pretokenizer import split_pieces, split_pieces_reference

SPECIAL = list(" ()|.,!?…。，、।۔،\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2028\u3000") + ["a", "é", "語", "😀"]
ANY = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=())  # surrogates too


@pytest.fixture(autouse=True)
def always_scan(monkeypatch):
    monkeypatch.setattr(pretokenizer, "SCAN_MIN_CHARS", 0)  # the compiled scan even on short texts
    monkeypatch.setattr(bloom_tokenizer, "SCAN_MIN_CHARS", 0)  # and the tokenizer's compiled path


@given(st.text(st.one_of(st.sampled_from(SPECIAL), ANY), max_size=300))
def test_scanner_equals_the_regex_reference(text):
    assert split_pieces(text) == split_pieces_reference(text)


@pytest.mark.parametrize("text", ["x\x1cy", " \x1f", "\x1c \x1d", "a \x1e.", "", " ", "  ", " a", "a ", "((( x"])
def test_scanner_edges(text):
    assert split_pieces(text) == split_pieces_reference(text)


def test_word_table_matches_the_reference_class_on_every_code_point():
    table = pretokenizer.word_table()
    separators = np.flatnonzero(~table)
    assert all(pretokenizer.regex.fullmatch(pretokenizer.WORD, chr(c)) is None for c in separators)
    assert table[0x1C:0x20].all() and not table[[0x20, 0x28, 0x29, 0x7C, 0x3002]].any()
    assert len(separators) < 64  # the rest were checked word characters by construction (finditer)


@given(st.text(st.one_of(st.sampled_from(SPECIAL), ANY.filter(lambda c: not 0xD800 <= ord(c) <= 0xDFFF)),
               max_size=300))
def test_byte_starts_cut_the_utf8_where_the_pieces_end(text):
    """`split_byte_starts`: piece p is exactly the UTF-8 bytes starts[p]:starts[p + 1]."""
    raw, starts = text.encode("utf-8"), pretokenizer.split_byte_starts(text)
    assert [raw[a:b].decode("utf-8") for a, b in zip(starts[:-1], starts[1:])] == split_pieces_reference(text)
    assert starts[0] == 0 and starts[-1] == len(raw)


@given(st.lists(st.one_of(st.sampled_from(SPECIAL + [" the", " thou", "ing", "tion"]), ANY), max_size=300).map("".join))
def test_the_compiled_encode_equals_piece_by_piece(text):
    """A long text's compiled path (one merge call, no cache) against the readable path: the
    reference split, then each piece's merges (cached, one at a time). Lone surrogates are an
    InputError on both."""
    from minibloom import BloomTokenizer, InputError
    from tests.tokenizer_utils import TOKENIZER_DIR

    tok = BloomTokenizer.from_pretrained(TOKENIZER_DIR)
    try:
        expected = [t for piece in split_pieces_reference(text) for t in tok.bpe.encode_piece(piece)]
    except InputError:
        with pytest.raises(InputError, match="lone surrogate"):
            tok.encode_ids(text)
        return
    assert tok.encode_ids(text) == expected
