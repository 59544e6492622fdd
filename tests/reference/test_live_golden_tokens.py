"""The tokenizer golden equals HF tokenizers: every record's ids, offsets and decoded text, for the
embedded model's tokenizer.json and the test tokenizer (tests/data/tokenizer)."""

from __future__ import annotations

import os

import pytest

from minibloom.golden import tokens as golden_tokens
from minibloom.embedded import EMBEDDED_CHECKPOINT
from minibloom.tokenizer import BloomTokenizer

tokenizers = pytest.importorskip("tokenizers", reason="the live tokenizer-golden test needs HF tokenizers")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("directory", [EMBEDDED_CHECKPOINT, os.path.join(ROOT, "tests", "data", "tokenizer")])
def test_the_tokenizer_golden_equals_hf_tokenizers(directory, tmp_path):
    path = tmp_path / "golden.jsonl"
    golden_tokens.dump_tokens(BloomTokenizer.from_pretrained(directory), path, ["user text (x|y) …", ""])
    theirs = tokenizers.Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
    records = golden_tokens.read_records(path, golden=True)
    assert len(records) == len(golden_tokens.builtin_corpus()) + 2
    for r in records:
        enc = theirs.encode(r["text"])
        assert r["ids"] == enc.ids, r["name"]
        assert r["offsets"] == [list(o) for o in enc.offsets], r["name"]
        assert r["tokens"] == enc.tokens, r["name"]
        assert r["decoded"] == theirs.decode(enc.ids, skip_special_tokens=False), r["name"]
