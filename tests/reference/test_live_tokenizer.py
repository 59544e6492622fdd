"""Live tests of the tokenizer against HF tokenizers and transformers' BloomTokenizerFast."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibloom.tokenizer import BloomTokenizer
from minibloom.tokenizer.train import tokenizer_json, train_bpe
from tests.tokenizer_utils import TOKENIZER_JSON, VARIANTS, texts, variant_data

tokenizers = pytest.importorskip("tokenizers", reason="the live tokenizer tests need HF tokenizers")
transformers = pytest.importorskip("transformers", reason="the live tokenizer tests need transformers")

PAIRS = {v: (BloomTokenizer(variant_data(v)), tokenizers.Tokenizer.from_str(json.dumps(variant_data(v))))
         for v in VARIANTS}


@given(texts, st.sampled_from(VARIANTS))
def test_ids_offsets_and_decode_equal_hf(text, variant):
    ours, theirs = PAIRS[variant]
    expected = theirs.encode(text)
    ids, offsets = ours.encode_with_offsets(text)
    assert ids == expected.ids
    assert ours.encode_ids(text) == expected.ids
    assert offsets == expected.offsets
    assert ours.decode(ids) == theirs.decode(expected.ids, skip_special_tokens=False)


WITH_ADDED = st.lists(st.one_of(texts, texts.map(lambda t: (t + " ") * 40), st.sampled_from(
    ["<unk>", "<pad>", "</s>", "<s>", "<s", "s>"])), min_size=1, max_size=7).map("".join)


@given(WITH_ADDED, st.sampled_from(VARIANTS))
def test_texts_with_added_tokens_anywhere_equal_hf(text, variant):
    """Added-token strings at random places, stretches long enough for the compiled scanner: the
    split-then-compile path (issue 24), the general path and the offsets equal HF's."""
    ours, theirs = PAIRS[variant]
    expected = theirs.encode(text)
    assert ours.encode_ids(text) == expected.ids
    assert ours._encode_ids_general(text) == expected.ids
    assert ours.encode_with_offsets(text) == (expected.ids, expected.offsets)


@given(st.lists(st.integers(0, 8191), max_size=12), st.booleans())
def test_decode_of_any_ids_equals_hf(ids, skip):
    """Arbitrary ids cut characters anywhere: invalid UTF-8 must be replaced exactly as HF does."""
    ours, theirs = PAIRS["bloom"]
    assert ours.decode(ids, skip_special_tokens=skip) == theirs.decode(ids, skip_special_tokens=skip)


def hf_fast(**kwargs):
    return transformers.BloomTokenizerFast(tokenizer_file=TOKENIZER_JSON, **kwargs)


@given(st.lists(texts, min_size=1, max_size=4), st.sampled_from(["left", "right"]),
       st.sampled_from([(True, False, None), ("max_length", True, 6), ("longest", True, 3), (True, False, 5)]),
       st.booleans())
def test_batch_call_equals_transformers(batch, side, pad_trunc_len, add_prefix_space):
    padding, truncation, max_length = pad_trunc_len
    theirs = hf_fast(padding_side=side, add_prefix_space=add_prefix_space)
    ours = BloomTokenizer.from_file(TOKENIZER_JSON, padding_side=side, add_prefix_space=add_prefix_space)
    kwargs = dict(padding=padding, truncation=truncation, max_length=max_length, return_offsets_mapping=True)
    expected = theirs(batch, return_tensors="np", **kwargs)
    got = ours(batch, return_tensors="np", **kwargs)
    for key in ("input_ids", "attention_mask", "offset_mapping"):
        want = expected[key]
        if want.size == 0:  # transformers cannot shape an empty offsets array: [B, 0] instead of [B, 0, 2]
            want = want.reshape(got[key].shape)
        np.testing.assert_array_equal(got[key], want, err_msg=key)
    assert ours.batch_decode(got["input_ids"], skip_special_tokens=True) == theirs.batch_decode(
        expected["input_ids"], skip_special_tokens=True)


def test_single_text_equals_transformers_lists():
    theirs, ours = hf_fast(), BloomTokenizer.from_file(TOKENIZER_JSON)
    for text in ["Hello world", " Hello world", "The quick brown fox</s>", ""]:
        expected = theirs(text)
        got = ours(text)
        assert got["input_ids"] == expected["input_ids"]
        assert got["attention_mask"] == expected["attention_mask"]
        assert ours.convert_ids_to_tokens(expected["input_ids"]) == theirs.convert_ids_to_tokens(expected["input_ids"])


@given(st.lists(texts, min_size=1, max_size=30), st.integers(260, 420))
def test_trainer_equals_hf_trainer(corpus, vocab_size):
    from tests.reference.make_tokenizer import train

    vocab, merges = train_bpe(corpus, vocab_size, progress=False)
    expected = json.loads(train(corpus, vocab_size).to_str())["model"]
    assert vocab == expected["vocab"]
    assert [list(m) for m in merges] == expected["merges"]


def test_saved_and_trained_files_load_in_hf_to_the_same_ids(tmp_path):
    ours = BloomTokenizer.from_file(TOKENIZER_JSON)
    ours.save(tmp_path)
    again = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    text = "Ελληνικά κείμενα… και 日本語のテキスト。<s>"
    assert again(text)["input_ids"] == ours.encode(text) and again.padding_side == ours.padding_side
    vocab, merges = train_bpe(["one two three, one two.", "trois deux un"] * 3, 280, progress=False)
    hf = tokenizers.Tokenizer.from_str(json.dumps(tokenizer_json(vocab, merges)))
    mine = BloomTokenizer(tokenizer_json(vocab, merges))
    assert hf.encode("one two trois!").ids == mine.encode("one two trois!")


def test_trainer_equals_hf_on_the_whole_training_corpus():
    """The committed tokenizer's own recipe: ~3.5 MB, vocab 8192 (about 5 s for each trainer)."""
    from tests.reference.make_tokenizer import VOCAB, glibc_strings, train, translations

    corpus = glibc_strings() + translations()
    if sum(map(len, corpus)) < 1_000_000:
        pytest.skip("this machine lacks the locale data the test tokenizer was trained on")
    vocab, merges = train_bpe(corpus, VOCAB, progress=False)
    expected = json.loads(train(corpus, VOCAB).to_str())["model"]
    assert vocab == expected["vocab"]
    assert [list(m) for m in merges] == expected["merges"]
