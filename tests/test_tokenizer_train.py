"""The BPE trainer: HF tokenizers' merges on committed text, a hand example, and a round trip."""

from __future__ import annotations

import lzma
import os

from minibloom.tokenizer import BloomTokenizer
from minibloom.tokenizer.train import merge_word, save_tokenizer_json, tokenizer_json, train_bpe
from tests.tokenizer_utils import REGENERATE, TOKENIZER_DIR, load_json


def glibc_strings() -> list[str]:
    with lzma.open(os.path.join(TOKENIZER_DIR, "glibc-locale-strings.txt.xz"), "rt", encoding="utf-8") as f:
        return f.read().split("\n")


def test_trainer_reproduces_hf_merges_and_vocab():
    hf = load_json("hf-trainer.json")
    vocab, merges = train_bpe(glibc_strings(), hf["vocab_size"], progress=False)
    assert vocab == hf["vocab"], f"vocab differs from HF's BpeTrainer (regenerate: {REGENERATE})"
    for k, (ours, theirs) in enumerate(zip(merges, hf["merges"])):
        assert list(ours) == theirs, f"merge {k}: {ours} != HF's {theirs}"
    assert len(merges) == len(hf["merges"])


def test_merge_word_reports_pair_count_changes():
    """HF's own example: merging ('l', 'l') in 'hello' (h=0 e=1 l=2 o=3) into 4."""
    word = [0, 1, 2, 2, 3]
    changes = merge_word(word, 2, 2, 4)
    assert word == [0, 1, 4, 3]
    assert changes == [((1, 2), -1), ((1, 4), 1), ((2, 3), -1), ((4, 3), 1)]


def test_trained_tokenizer_loads_and_round_trips(tmp_path):
    texts = ["the cat sat on the mat.", "the dog sat, the cat ran!", "日本語のテキスト。"] * 5
    vocab, merges = train_bpe(texts, 300, progress=False)
    assert list(vocab)[:5] == ["<unk>", "<s>", "</s>", "<pad>", "!"]
    path = os.path.join(tmp_path, "tokenizer.json")
    save_tokenizer_json(path, vocab, merges)
    tok = BloomTokenizer.from_file(path)
    assert tok.data == tokenizer_json(vocab, merges)
    for text in texts + ["unseen words, 見"]:
        assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode("the cat sat on the mat.")) < len("the cat sat on the mat.")  # merges were learnt
