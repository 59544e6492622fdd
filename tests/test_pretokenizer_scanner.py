"""The compiled pre-tokenizer scanner equals the `regex` reference (PIECE_RE), over text from every
plane (surrogates included), dense in spaces and separators, and at the U+001C..U+001F edge."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibloom.tokenizer import pretokenizer
from minibloom.tokenizer.pretokenizer import split_pieces, split_pieces_reference

SPECIAL = list(" ()|.,!?…。，、।۔،\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2028\u3000") + ["a", "é", "語", "😀"]
ANY = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=())  # surrogates too


@pytest.fixture(autouse=True)
def always_scan(monkeypatch):
    monkeypatch.setattr(pretokenizer, "SCAN_MIN_CHARS", 0)  # the compiled scan even on short texts


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
