"""The merge trace (minibloom/explain/tokens.py): the readable rule gives the tokenizer's ids on
many texts, on the committed test tokenizer (three variants) and the embedded checkpoint's."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibloom import EMBEDDED_CHECKPOINT, InputError
from minibloom.explain.tokens import Merge, format_trace, merge_trace, naive_merge
from minibloom.tokenizer import BloomTokenizer
from minibloom.tokenizer.bpe import bpe_merge
from minibloom.tokenizer.bytes_unicode import from_byte_level
from tests.tokenizer_utils import TOKENIZER_DIR, VARIANTS, texts, variant_tokenizer

TOKENIZERS = {"embedded": BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT),
              "test": BloomTokenizer.from_pretrained(TOKENIZER_DIR),
              **{v: variant_tokenizer(v) for v in VARIANTS}}


def test_naive_merge_by_hand():
    ranks = {("l", "l"): 0, ("e", "ll"): 1, ("h", "ell"): 2}
    assert naive_merge(list("hello"), ranks) == (["hell", "o"], [Merge("l", "l", 0, 2), Merge("e", "ll", 1, 1),
                                                                 Merge("h", "ell", 2, 0)])
    assert naive_merge(list("lll"), ranks) == (["ll", "l"], [Merge("l", "l", 0, 0)])  # leftmost on a tie


@pytest.mark.parametrize("name", list(TOKENIZERS))
@given(text=texts | st.sampled_from(["To be, or not to be</s>", "ROMEO.\n  Hello  world!", "<unk><s>x"]))
def test_trace_gives_the_tokenizers_ids(name, text):
    tok = TOKENIZERS[name]
    traces = merge_trace(tok, text)
    assert [i for t in traces for i in t.ids] == tok.encode_ids(text)
    for t in traces:
        if t.added:
            continue
        assert from_byte_level("".join(t.symbols)) == t.piece.encode("utf-8")  # one symbol per byte
        assert t.tokens == bpe_merge(t.symbols, tok.bpe.ranks)  # the heap loop agrees step for step's end
        assert len(t.symbols) - len(t.merges) == len(t.tokens)  # each merge joins two symbols into one
        assert all(tok.bpe.ranks[m.left, m.right] == m.rank for m in t.merges)


def test_trace_of_a_word_on_the_embedded_tokenizer():
    tok = TOKENIZERS["embedded"]
    (t,) = merge_trace(tok, " lovers")
    assert t.symbols == ["Ġ", "l", "o", "v", "e", "r", "s"]
    assert [m.merged for m in t.merges][-1] in t.tokens
    ranks = [m.rank for m in t.merges]
    assert t.merges and all(r == tok.bpe.ranks[m.left, m.right] for r, m in zip(ranks, t.merges))
    text = format_trace([t])
    assert "bytes: Ġ l o v e r s" in text and f"rank {t.merges[0].rank:>7}" in text


def test_added_tokens_are_matched_whole():
    traces = merge_trace(TOKENIZERS["embedded"], "a</s>")
    assert traces[-1].added and traces[-1].ids == [2] and not traces[-1].merges
    assert "added token, id 2" in format_trace(traces)


@pytest.mark.parametrize("text, message", [("a\ud800b", "lone surrogate U\\+D800"), (b"bytes", "must be a str")])
def test_bad_text_is_one_input_error(text, message):
    with pytest.raises(InputError, match=message):
        merge_trace(TOKENIZERS["embedded"], text)
