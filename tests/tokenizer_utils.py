"""Shared pieces of the tokenizer tests: the committed test tokenizer, its variants, text strategies."""

from __future__ import annotations

import json
import os

from hypothesis import strategies as st

from minibloom.tokenizer import BloomTokenizer

TOKENIZER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tokenizer")
TOKENIZER_JSON = os.path.join(TOKENIZER_DIR, "tokenizer.json")
REGENERATE = "python tests/reference/make_tokenizer.py"
VARIANTS = ("bloom", "add_prefix_space", "trim_offsets")


def load_json(name: str):
    with open(os.path.join(TOKENIZER_DIR, name), encoding="utf-8") as f:
        return json.load(f)


def variant_data(variant: str) -> dict:
    """tokenizer.json with one switch changed, exactly as tests/reference/make_tokenizer.py does."""
    data = load_json("tokenizer.json")
    if variant == "add_prefix_space":
        data["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = True
    if variant == "trim_offsets":
        data["post_processor"]["trim_offsets"] = True
    return data


def variant_tokenizer(variant: str) -> BloomTokenizer:
    return BloomTokenizer(variant_data(variant))


# Characters that stress the pipeline: the split characters, U+001C..U+001F (word characters here,
# white space to Python's re), spaces of every kind, scripts with and without spaces, combining
# marks, emoji with modifiers and joiners, RTL, and the special tokens' text.
TRICKY = [" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0",
          "\u2000", "\u200b", "\u3000", "(", ")", "|", ".", ",", "!", "?", "…", "。", "，", "、", "।", "۔", "،",
          "<s>", "</s>", "<pad>", "<unk>", "<", ">", "s", "é", "e\u0301", "日本", "中文字符", "한국어", "हिन्दी",
          "العربية", "עברית", "👍🏽", "👨‍👩‍👧", "🇫🇷", "\U0010ffff", "\x00", "Hello", " world", "ß", "ﬁ", "\ufeff"]

texts = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    st.lists(st.sampled_from(TRICKY), max_size=12).map("".join),
    st.lists(st.one_of(st.sampled_from(TRICKY), st.text(st.characters(exclude_categories=("Cs",)), max_size=5)),
             max_size=10).map("".join),
)
