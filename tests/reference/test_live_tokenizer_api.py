"""The tokenizer's transformers surface against BloomTokenizerFast on the BLOOM-format tokenizer in
tests/data/tokenizer: return types (lists / np), padding, pad(), special-token masks, truncation
side, decode's clean-up, convert_tokens_to_string, add_tokens, add_prefix_space."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibloom import InputError
from minibloom.tokenizer import BloomTokenizer
from tests.tokenizer_utils import texts

transformers = pytest.importorskip("transformers", reason="the live tokenizer tests need transformers")

DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "tokenizer")
THEIRS = transformers.BloomTokenizerFast.from_pretrained(DIR)
OURS = BloomTokenizer.from_pretrained(DIR)


def same(ours, theirs):
    """Equal keys, and equal values with equal types (lists vs arrays, shapes, tuples of offsets)."""
    assert list(ours.keys()) == list(theirs.keys())
    for key in theirs:
        a, b = ours[key], theirs[key]
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray) and a.shape == b.shape and (a == b).all(), key
        else:
            assert a == b, key


options = st.fixed_dictionaries({}, optional={
    "padding": st.sampled_from([True, "longest", "max_length", False]),
    "truncation": st.sampled_from([True, False, None]),
    "max_length": st.integers(1, 12),
    "return_tensors": st.sampled_from([None, "np"]),
    "pad_to_multiple_of": st.sampled_from([None, 1, 4, 8]),
    "return_special_tokens_mask": st.booleans(),
    "return_offsets_mapping": st.booleans(),
    "return_attention_mask": st.booleans(),
    "padding_side": st.sampled_from(["left", "right"]),
})


@given(st.one_of(texts, st.lists(texts, min_size=1, max_size=3)), options, st.sampled_from(["left", "right"]))
def test_call_returns_what_bloom_tokenizer_fast_returns(text, kwargs, truncation_side):
    if kwargs.get("padding") == "max_length" and "max_length" not in kwargs:
        kwargs["max_length"] = 6
    THEIRS.truncation_side = OURS.truncation_side = truncation_side
    try:
        expected = THEIRS(text, **kwargs)
        if any(isinstance(v, np.ndarray) and v.dtype == object for v in expected.values()):
            # ragged rows as arrays: transformers makes object arrays of arrays; minibloom refuses
            with pytest.raises(InputError, match="different lengths"):
                OURS(text, **kwargs)
            return
        got = OURS(text, **kwargs)
    finally:
        THEIRS.truncation_side = OURS.truncation_side = "right"
    same(got, expected)
    assert got.input_ids is got["input_ids"]


@given(st.lists(st.lists(st.integers(4, 200), min_size=1, max_size=6), min_size=1, max_size=4),
       st.sampled_from([None, "np"]), st.sampled_from([None, 4]), st.sampled_from(["left", "right"]))
def test_pad_matches_transformers(rows, return_tensors, multiple, side):
    kwargs = dict(return_tensors=return_tensors, pad_to_multiple_of=multiple, padding_side=side)
    same(OURS.pad({"input_ids": rows}, **kwargs), THEIRS.pad({"input_ids": rows}, **kwargs))
    same(OURS.pad([{"input_ids": r} for r in rows], **kwargs), THEIRS.pad([{"input_ids": r} for r in rows], **kwargs))
    same(OURS.pad({"input_ids": rows[0]}), THEIRS.pad({"input_ids": rows[0]}))


@given(texts)
def test_decode_clean_up_and_convert_tokens_to_string(text):
    ids = THEIRS.encode(text)
    for clean in (None, True, False):
        assert OURS.decode(ids, clean_up_tokenization_spaces=clean) == THEIRS.decode(
            ids, clean_up_tokenization_spaces=clean)
    tokens = THEIRS.convert_ids_to_tokens(ids)
    assert OURS.convert_tokens_to_string(tokens) == THEIRS.convert_tokens_to_string(tokens)


def test_decode_cleans_punctuation_and_contractions_as_transformers():
    text = "Hello , world . Is n't it ? I 'm here ! It 's , we 've , they 're ' ok"
    ids = THEIRS.encode(text)
    assert OURS.decode(ids, clean_up_tokenization_spaces=True) == THEIRS.decode(ids, clean_up_tokenization_spaces=True)


def test_add_tokens_matches_transformers():
    theirs = transformers.BloomTokenizerFast.from_pretrained(DIR)
    ours = BloomTokenizer.from_pretrained(DIR)
    for new, special in ((["zzq", "<extra_0>"], False), (["[SEP9]"], True), ("<extra_0>", False)):
        assert ours.add_tokens(new, special_tokens=special) == theirs.add_tokens(new, special_tokens=special)
        assert len(ours) == len(theirs)
    for text in ("a zzq<extra_0>b", "zzqzzq [SEP9] x", "plain text"):
        assert ours.encode(text) == theirs.encode(text)
        ids = theirs.encode(text)
        assert ours.decode(ids) == theirs.decode(ids)
        assert ours.decode(ids, skip_special_tokens=True) == theirs.decode(ids, skip_special_tokens=True)


def test_add_prefix_space_attribute():
    for flag in (False, True):
        assert BloomTokenizer.from_pretrained(DIR, add_prefix_space=flag).add_prefix_space == \
            transformers.BloomTokenizerFast.from_pretrained(DIR, add_prefix_space=flag).add_prefix_space


# issue 23: strategies as transformers' PaddingStrategy / TruncationStrategy take them
@pytest.mark.parametrize("truncation", [True, False, None, "longest_first", "only_first", "only_second",
                                        "do_not_truncate", "bogus", 0, 1])
@pytest.mark.parametrize("padding", [True, False, "longest", "max_length", "do_not_pad", "bogus", None, 0])
def test_strategies_are_accepted_and_refused_as_transformers(truncation, padding):
    batch = ["Hello world, this is a longer text", "Hi"]
    try:
        expected = THEIRS(batch, truncation=truncation, padding=padding, max_length=4)
    except Exception as e:  # noqa: BLE001 -- ValueError (a bad strategy) or the Rust "Truncation error"
        with pytest.raises(InputError, match="truncation|padding"):
            OURS(batch, truncation=truncation, padding=padding, max_length=4)
        assert "Truncation" in str(e) or "Strategy" in str(e)
        return
    same(OURS(batch, truncation=truncation, padding=padding, max_length=4), expected)


@pytest.mark.parametrize("side", ["left", "right"])
def test_pad_gives_token_labels_the_collators_minus_100(side):
    """What DataCollatorForTokenClassification returns for per-token labels (transformers' `pad`
    leaves them ragged; the collator pads them with -100, never a real class)."""
    features = [{"input_ids": [5, 6, 7, 8], "labels": [0, 1, 2, 0]}, {"input_ids": [5], "labels": [1]},
                {"input_ids": [9, 9], "labels": [2, 2]}]
    theirs = transformers.BloomTokenizerFast.from_pretrained(DIR, padding_side=side)
    expected = transformers.DataCollatorForTokenClassification(theirs, return_tensors="np")(features)
    got = OURS.pad(features, padding_side=side, return_tensors="np")
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_pad_passes_one_label_per_row_through_as_the_collator():
    for labels in ([1, 0], [0.5, 2.25]):
        features = [{"input_ids": [5, 6, 7], "labels": labels[0]}, {"input_ids": [5], "labels": labels[1]}]
        expected = transformers.DataCollatorWithPadding(THEIRS, return_tensors="np")(features)
        got = OURS.pad(features, return_tensors="np")
        assert sorted(got) == sorted(expected)
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
            assert got[name].dtype.kind == expected[name].dtype.kind, name


# Added tokens of any text transformers accepts: non-ASCII (a character of the byte-level table such
# as "é" decodes as its byte, one outside it as its own UTF-8, as tokenizers' ByteLevel decoder does),
# spaces inside, overlapping contents, special or not; the texts are built around them.
token_texts = st.text(st.sampled_from("ab é日☃ Ġ\n<>s"), min_size=1, max_size=4)


@given(new=st.lists(st.tuples(token_texts, st.booleans()), min_size=1, max_size=4),
       parts=st.lists(st.one_of(token_texts, st.integers(0, 3)), max_size=8))
def test_add_tokens_of_any_text_encode_offset_and_decode_as_transformers(new, parts):
    theirs = transformers.BloomTokenizerFast.from_pretrained(DIR)
    ours = BloomTokenizer.from_pretrained(DIR)
    for content, special in new:
        assert ours.add_tokens(content, special_tokens=special) == theirs.add_tokens(content, special_tokens=special)
    assert len(ours) == len(theirs) and ours.get_vocab() == theirs.get_vocab()
    text = "".join(new[p % len(new)][0] if isinstance(p, int) else p for p in parts)
    expected = theirs(text, return_offsets_mapping=True)
    got = ours(text, return_offsets_mapping=True)
    assert got["input_ids"] == expected["input_ids"], text
    assert got["offset_mapping"] == expected["offset_mapping"], text
    ids = expected["input_ids"]
    for skip in (False, True):
        assert ours.decode(ids, skip_special_tokens=skip) == theirs.decode(ids, skip_special_tokens=skip), text
    assert ours.convert_ids_to_tokens(ids) == theirs.convert_ids_to_tokens(ids)
