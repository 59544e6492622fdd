"""BloomTokenizer against HF tokenizers' committed outputs, hand examples and properties (no torch).

tests/data/tokenizer/hf-encodings.json holds HF tokenizers' ids, offsets and decodes for fixed texts with the committed
BLOOM-format tokenizer in three variants; tests/reference/test_live_tokenizer.py compares live.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import regex
from hypothesis import given
from hypothesis import strategies as st

from minibloom import InputError, MinibloomError
from minibloom.errors import TokenizerFileError
from minibloom.tokenizer import BloomTokenizer
from minibloom.tokenizer.bpe import bpe_merge, bpe_merge_ids, bpe_merge_naive
from minibloom.tokenizer.bytes_unicode import BYTE_TO_CHAR, from_byte_level, to_byte_level
from minibloom.tokenizer.pretokenizer import WORD, split_pieces, split_with_offsets
from tests.tokenizer_utils import (REGENERATE, TOKENIZER_DIR, VARIANTS, load_json, texts,
                                   variant_tokenizer)

TOK = BloomTokenizer.from_pretrained(TOKENIZER_DIR)


# ----------------------------------------------------------------------------- bytes and pieces

def test_byte_table_maps_256_bytes_to_distinct_printable_chars():
    chars = list(BYTE_TO_CHAR.values())
    assert len(set(chars)) == 256 and all(c.isprintable() and not c.isspace() for c in chars)
    assert BYTE_TO_CHAR[ord(" ")] == "Ġ" and BYTE_TO_CHAR[ord("\n")] == "Ċ" and BYTE_TO_CHAR[ord("A")] == "A"


@given(st.text())
def test_byte_level_round_trips(text):
    assert from_byte_level(to_byte_level(text)) == text.encode("utf-8", errors="surrogatepass")


def test_separator_set_is_hf_tokenizers_over_every_code_point():
    word = regex.compile(WORD)
    ours = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF and word.fullmatch(chr(cp)) is None]
    assert ours == load_json("separators.json"), f"regenerate with {REGENERATE} if the regex changed"


def test_pieces_keep_gaps_between_matches():
    assert split_pieces("a.b,c (x)|y  z") == ["a", ".", "b", ",", "c", " (", "x", ")|", "y", " ", " z"]
    assert split_pieces(" Hello  world") == [" Hello", " ", " world"]
    assert split_pieces("x\x1cy") == ["x\x1cy"]  # subtle: U+001C is a word character for Oniguruma
    assert split_pieces("") == []


@given(texts)
def test_pieces_cover_the_text_exactly(text):
    pieces = split_with_offsets(text)
    assert "".join(p for p, _ in pieces) == text
    assert all(text[s:s + len(p)] == p for p, s in pieces)


# ------------------------------------------------------------------------------------ BPE merges

@pytest.mark.parametrize("merge", [bpe_merge_naive, bpe_merge], ids=["naive", "heap"])
def test_merge_loop_by_hand(merge):
    ranks = {("l", "l"): 0, ("e", "ll"): 1, ("h", "ell"): 2}
    assert merge(list("hello"), ranks) == ["hell", "o"]
    assert merge(list("lll"), ranks) == ["ll", "l"]  # leftmost first on a tie
    assert merge(list("ab"), ranks) == ["a", "b"]
    assert merge(list("ba"), {("a", "b"): 0}) == ["b", "a"]  # a pair is ordered


@given(texts)
def test_naive_and_heap_merges_give_identical_ids(text):
    """The rescan (`bpe_merge_naive`, the rule as written) and the heap (`bpe_merge`) on the real
    merges: the same tokens for every piece."""
    bpe = TOK.bpe
    for piece in split_pieces(text):
        symbols = list(to_byte_level(piece))
        naive = [bpe.vocab[s] for s in bpe_merge_naive(symbols, bpe.ranks)]
        assert [bpe.vocab[s] for s in bpe_merge(symbols, bpe.ranks)] == naive, piece


@given(texts)
def test_numba_merge_equals_readable_merge(text):
    bpe = TOK.bpe
    for piece in split_pieces(text):
        symbols = list(to_byte_level(piece))
        readable = [bpe.vocab[s] for s in bpe_merge(symbols, bpe.ranks)]
        start = np.array([bpe.vocab[s] for s in symbols], np.int64)
        assert bpe_merge_ids(start, bpe.pair_keys, bpe.pair_values, bpe.n_ids).tolist() == readable


# ---------------------------------------------------------------- parity with HF (hf-encodings.json)

@pytest.mark.parametrize("variant", VARIANTS)
def test_ids_offsets_and_decode_equal_hf_tokenizers(variant):
    tok = variant_tokenizer(variant)
    for case in load_json("hf-encodings.json")[variant]:
        text = case["text"]
        ids, offsets = tok.encode_with_offsets(text)
        assert ids == case["ids"], f"{variant} ids of {text[:40]!r} (regenerate: {REGENERATE})"
        assert tok.encode_ids(text) == ids
        assert [list(o) for o in offsets] == case["offsets"], f"{variant} offsets of {text[:40]!r}"
        assert tok.decode(ids) == case["decoded"]


def test_reference_notes_examples_shape():
    """BLOOM's own ids cannot be checked here (its 14 MB tokenizer.json is not reachable); its facts
    that do not depend on the vocab are: no <s>/</s> added, '!' is id 4, specials are 0..3."""
    assert TOK("!")["input_ids"] == [4]
    assert TOK.encode("The fox</s>")[-1] == 2 and TOK.encode("<s>")[0] == 1
    assert (TOK.unk_token_id, TOK.bos_token_id, TOK.eos_token_id, TOK.pad_token_id) == (0, 1, 2, 3)


# ------------------------------------------------------------------------------------ properties

@given(texts)
def test_decode_inverts_encode(text):
    assert TOK.decode(TOK.encode(text)) == text


@given(texts)
def test_offsets_point_into_the_text_in_order(text):
    ids, offsets = TOK.encode_with_offsets(text)
    assert len(ids) == len(offsets)
    assert all(0 <= s <= e <= len(text) for s, e in offsets)
    assert [s for s, _ in offsets] == sorted(s for s, _ in offsets)


@given(st.lists(texts, min_size=1, max_size=4), st.sampled_from(["left", "right"]))
def test_padding_keeps_each_rows_ids(batch, side):
    out = TOK(batch, padding=True, padding_side=side, return_offsets_mapping=True, return_tensors="np")
    for row, text in enumerate(batch):
        ids, offsets = TOK.encode_with_offsets(text)
        keep = out["attention_mask"][row].astype(bool)
        assert out["input_ids"][row][keep].tolist() == ids
        assert out["offset_mapping"][row][keep].tolist() == [list(o) for o in offsets]
        assert (out["input_ids"][row][~keep] == TOK.pad_token_id).all()
        if keep.any() and not keep.all():
            assert keep[-1 if side == "left" else 0]  # the padding sits on the asked side


def test_call_shapes_truncation_and_max_length_padding():
    single = TOK("Hello world")  # one text: lists, as transformers returns them
    assert single["input_ids"] == TOK.encode("Hello world") and single.attention_mask == [1] * len(single.input_ids)
    assert TOK("Hello world", return_tensors="np")["input_ids"].shape == (1, len(single.input_ids))
    out = TOK(["Hello world, this is long", "Hi"], padding="max_length", truncation=True, max_length=4,
              return_tensors="np")
    assert out["input_ids"].shape == (2, 4)
    assert out["input_ids"][0].tolist() == TOK.encode("Hello world, this is long")[:4]
    assert TOK.padding_side == "left" and out["attention_mask"][1].tolist()[-len(TOK.encode("Hi")):] == [1] * len(
        TOK.encode("Hi"))
    TOK.truncation_side = "left"
    try:
        assert TOK("Hello world", truncation=True, max_length=2)["input_ids"] == TOK.encode("Hello world")[-2:]
    finally:
        TOK.truncation_side = "right"


def test_save_round_trips(tmp_path):
    TOK.save(tmp_path)
    again = BloomTokenizer.from_pretrained(tmp_path)
    assert again.data == TOK.data and again.padding_side == "left"
    assert again.encode("Ελληνικά και 日本語") == TOK.encode("Ελληνικά και 日本語")


def test_batch_decode_and_tokens():
    ids = TOK(["a b", "<s>c"], padding=True)["input_ids"]
    assert TOK.batch_decode(ids, skip_special_tokens=True) == ["a b", "c"]
    assert TOK.convert_tokens_to_ids(TOK.convert_ids_to_tokens([5, 6])) == [5, 6]
    assert TOK.tokenize(" Hello")[0].startswith("Ġ")


def test_invalid_utf8_across_tokens_decodes_with_replacement():
    ids = TOK.encode("é")  # one two-byte character: decoding only its first byte is invalid UTF-8
    first_byte = TOK.bpe.vocab[BYTE_TO_CHAR["é".encode()[0]]]
    assert TOK.decode([first_byte]) == "\ufffd" and TOK.decode(ids) == "é"


# ----------------------------------------------------------------------------------- bad input

def test_bad_inputs_raise_typed_errors():
    with pytest.raises(InputError, match="text"):
        TOK(42)
    with pytest.raises(InputError, match=r"text\[1\]"):
        TOK(["ok", None])
    with pytest.raises(InputError, match="different lengths"):
        TOK(["a", "a b c d e"], return_tensors="np")
    with pytest.raises(InputError, match="return_tensors"):
        TOK("a", return_tensors="pt")
    with pytest.raises(InputError, match="max_length"):
        TOK("a", padding="max_length")
    with pytest.raises(InputError, match="padding_side"):
        TOK("a", padding=True, padding_side="middle")
    with pytest.raises(InputError, match=r"token_ids\[1\] = 999999"):
        TOK.decode([5, 999999])
    with pytest.raises(InputError, match=r"token_ids\[0\] = -1"):
        TOK.decode([-1])
    with pytest.raises(InputError, match="integers"):
        TOK.decode(["a"])


def _broken(tmp_path, change) -> str:
    data = load_json("tokenizer.json")
    change(data)
    path = os.path.join(tmp_path, "tokenizer.json")
    with open(path, "w") as f:
        json.dump(data, f)
    return path


@pytest.mark.parametrize("change, names", [
    (lambda d: d.update(normalizer={"type": "NFC"}), "normalizer"),
    (lambda d: d["pre_tokenizer"]["pretokenizers"][0].update(pattern={"Regex": "\\w+"}), r"pretokenizers\[0\]"),
    (lambda d: d["pre_tokenizer"]["pretokenizers"][1].update(use_regex=True), r"pretokenizers\[1\]"),
    (lambda d: d.update(decoder={"type": "WordPiece"}), "decoder"),
    (lambda d: d.update(post_processor={"type": "TemplateProcessing"}), "post_processor"),
    (lambda d: d["model"].update(type="WordPiece"), "model"),
    (lambda d: d["model"].update(dropout=0.1), "model.dropout"),
    (lambda d: d["model"]["merges"].__setitem__(7, ["Ġ", "nowhere-token"]), r"model.merges\[7\]"),
    (lambda d: d["model"]["merges"].__setitem__(3, 17), r"model.merges\[3\]"),
    (lambda d: d["model"].update(vocab=[1, 2]), "model.vocab"),
    (lambda d: d["added_tokens"][0].update(lstrip=True), r"added_tokens\[0\]"),
])
def test_unsupported_or_broken_pipeline_is_refused_by_name(tmp_path, change, names):
    with pytest.raises(TokenizerFileError, match=names):
        BloomTokenizer.from_file(_broken(tmp_path, change))


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(TokenizerFileError, match="no such"):
        BloomTokenizer.from_file(tmp_path / "nope.json")
    with pytest.raises(TokenizerFileError, match="no tokenizer.json"):
        BloomTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(TokenizerFileError, match="not valid JSON"):
        BloomTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text("[]")
    with pytest.raises(MinibloomError, match="JSON object"):
        BloomTokenizer.from_pretrained(tmp_path)


# issue 23: truncation and padding strategies as transformers 4.57.1 names them; unknown ones refused
def test_truncation_strategies_follow_transformers():
    text = "Hello world, this is a longer text"
    full = TOK.encode(text)
    for strategy in (True, "longest_first", "only_first"):
        assert TOK(text, truncation=strategy, max_length=3)["input_ids"] == full[:3], strategy
    for strategy in (False, "do_not_truncate"):
        assert TOK(text, truncation=strategy, max_length=3)["input_ids"] == full, strategy
    with pytest.raises(InputError, match="only_second.*second sequence"):  # transformers: "Second sequence not provided"
        TOK(text, truncation="only_second", max_length=3)
    for bad in ("bogus", "LONGEST_FIRST", 0, 1, 2.0, np.bool_(True)):  # transformers: "not a valid TruncationStrategy"
        with pytest.raises(InputError, match=r"truncation.*'longest_first'.*'do_not_truncate'"):
            TOK(text, truncation=bad, max_length=3)


def test_padding_strategies_follow_transformers():
    batch = ["Hello world", "Hi"]
    longest = TOK(batch, padding=True)["input_ids"]
    assert TOK(batch, padding="longest")["input_ids"] == longest
    for none in (False, "do_not_pad"):
        assert TOK(batch, padding=none)["input_ids"] == [TOK.encode(t) for t in batch]
        assert TOK.pad({"input_ids": [[5, 6], [5]]}, padding=none)["input_ids"] == [[5, 6], [5]]
    for bad in ("bogus", "MAX_LENGTH", None, 0, 1):  # transformers: "not a valid PaddingStrategy"
        with pytest.raises(InputError, match=r"padding.*'longest'.*'max_length'.*'do_not_pad'"):
            TOK(batch, padding=bad)
        with pytest.raises(InputError, match="padding"):
            TOK.pad({"input_ids": [[5, 6], [5]]}, padding=bad)


def test_pad_never_pads_labels_with_a_class_id():
    """Per-token labels are padded with -100 (the collators' ignore index), never 0, a real class;
    one label per row passes through, integer or float."""
    rows = [{"input_ids": [5, 6, 7], "labels": [0, 1, 2]}, {"input_ids": [5], "labels": [1]}]
    out = TOK.pad(rows, padding_side="right", return_tensors="np")
    assert out["labels"].tolist() == [[0, 1, 2], [1, -100, -100]]
    assert TOK.pad(rows, padding_side="left")["labels"] == [[0, 1, 2], [-100, -100, 1]]
    assert TOK.pad([{"input_ids": [5, 6], "label": [3, 4]}, {"input_ids": [5], "label": [0]}],
                   padding_side="right")["label"] == [[3, 4], [0, -100]]
    scalars = TOK.pad([{"input_ids": [5, 6, 7], "labels": 1}, {"input_ids": [5], "labels": 0}], return_tensors="np")
    assert scalars["labels"].tolist() == [1, 0] and scalars["input_ids"].shape == (2, 3)
    floats = TOK.pad({"input_ids": [[5, 6], [5]], "labels": [0.25, 1.5]}, return_tensors="np")
    assert floats["labels"].dtype.kind == "f" and floats["labels"].tolist() == [0.25, 1.5]
    with pytest.raises(InputError, match="labels"):
        TOK.pad([{"input_ids": [5, 6], "labels": [1]}, {"input_ids": [5], "labels": [0]}])  # not one per token


def test_a_lone_surrogate_in_tokenizer_data_is_a_typed_error():
    data = load_json("tokenizer.json")
    n = len(TOK)
    added = {"id": n, "content": "x\ud800", "special": False, "single_word": False, "lstrip": False,
             "rstrip": False, "normalized": True}
    with pytest.raises(TokenizerFileError, match="added_tokens.*surrogate"):
        BloomTokenizer({**data, "added_tokens": list(data["added_tokens"]) + [added]})
    with pytest.raises(TokenizerFileError, match="surrogate"):
        BloomTokenizer({**data, "model": {**data["model"], "vocab": {**data["model"]["vocab"], "\udc80": n}}})
    with pytest.raises(InputError, match="new_tokens"):
        TOK.add_tokens(["a\ud800"])


def test_two_added_tokens_with_one_id_are_a_typed_error():
    """Found by the fuzz suite (a KeyError while building the added-token matchers)."""
    data = load_json("tokenizer.json")
    n = len(TOK)
    added = [{"id": n, "content": c, "special": False, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": True} for c in ("00", "0")]
    with pytest.raises(TokenizerFileError, match="'00' has id .*also has"):
        BloomTokenizer({**data, "added_tokens": list(data["added_tokens"]) + added})


# Texts with added-token strings at random places: short stretches (regex scan) and long ones
# (>= SCAN_MIN_CHARS: the compiled scanner), plus a near miss ("<s" without ">").
WITH_ADDED = st.lists(st.one_of(texts, texts.map(lambda t: (t + " ") * 40), st.sampled_from(
    TOK.added_contents + ["<s", "s>", "</"])), min_size=1, max_size=7).map("".join)


@given(WITH_ADDED)
def test_a_text_with_added_tokens_takes_the_compiled_path_and_gives_the_general_paths_ids(text):
    """encode_ids splits at the added tokens and encodes the rest as plain text (issue 24: one `<s>`
    used to send a whole text down the slow path); the ids equal the general path's and the
    offsets path's."""
    ids = TOK.encode_ids(text)
    assert ids == TOK._encode_ids_general(text)
    assert ids == TOK.encode_with_offsets(text)[0]


def test_an_added_token_in_a_long_text_no_longer_sends_it_to_the_slow_path(monkeypatch):
    text = "ordinary words around it, " * 40 + "<s>" + " and after." * 40
    expected = TOK._encode_ids_general(text)
    monkeypatch.setattr(type(TOK), "_encode_ids_general", lambda self, t: pytest.fail("took the slow path"))
    assert TOK.encode_ids(text) == expected
    assert expected.count(TOK.token_to_id["<s>"]) == 1
