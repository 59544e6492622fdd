"""Reading tokenizer.json, the file HF tokenizers writes, and refusing any pipeline we do not implement.

A tokenizer.json names each stage of the pipeline: normalizer, pre_tokenizer, model, post_processor,
decoder, plus the added tokens matched before everything else. minibloom implements exactly
BLOOM's choices (no normalizer; Split by BLOOM's regex then ByteLevel; BPE; ByteLevel post-processor
and decoder) and raises `TokenizerFileError` naming the first stage that differs, rather than
producing different ids without a word.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import safe_read
from ..errors import TokenizerFileError
from .bpe import BPE
from .pretokenizer import BLOOM_SPLIT_PATTERN


@dataclass(frozen=True)
class AddedToken:
    """A token matched in the raw text before pre-tokenization (BLOOM's are `<unk> <s> </s> <pad>`)."""

    id: int
    content: str
    special: bool


@dataclass
class Pipeline:
    """What minibloom needs from a tokenizer.json, checked."""

    bpe: BPE
    added_tokens: list[AddedToken]
    add_prefix_space: bool  # ByteLevel pre-tokenizer: prepend " " to pieces that lack one
    trim_offsets: bool  # ByteLevel post-processor: offsets leave out leading/trailing spaces
    post_add_prefix_space: bool  # ByteLevel post-processor: keep the first token's single space


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    data = safe_read.read_json(path, TokenizerFileError, safe_read.MAX_TOKENIZER_BYTES)
    if not isinstance(data, dict):
        raise TokenizerFileError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def parse_pipeline(data: dict[str, Any], path: str) -> Pipeline:
    """Check every stage of a tokenizer.json dict against BLOOM's pipeline and build it."""
    def fail(where: str, why: str) -> TokenizerFileError:
        return TokenizerFileError(f"{path}: {where}: {why} (minibloom implements BLOOM's pipeline only)")

    if data.get("normalizer") is not None:
        raise fail("normalizer", f"expected null, got {_short(data['normalizer'])}")
    for key in ("truncation", "padding"):  # the backend's state after a call, which transformers saves;
        if not isinstance(data.get(key), (dict, type(None))):  # its own calls reset both: ids never see them
            raise fail(key, f"expected an object or null, got {_short(data[key])}")
    add_prefix_space = _check_pre_tokenizer(data.get("pre_tokenizer"), fail)
    post = data.get("post_processor")
    if post is not None and (not isinstance(post, dict) or post.get("type") != "ByteLevel"):
        raise fail("post_processor", f"expected ByteLevel or null, got {_short(post)}")
    decoder = data.get("decoder")
    if not isinstance(decoder, dict) or decoder.get("type") != "ByteLevel":
        raise fail("decoder", f"expected ByteLevel, got {_short(decoder)}")
    limit = _id_limit(data)
    bpe = _parse_model(data.get("model"), fail, limit)
    added = _parse_added_tokens(data.get("added_tokens", []), fail, limit)
    return Pipeline(bpe=bpe, added_tokens=added, add_prefix_space=add_prefix_space,
                    trim_offsets=bool(post and post.get("trim_offsets", True)),
                    post_add_prefix_space=bool(post and post.get("add_prefix_space", True)))


def _check_pre_tokenizer(pre: Any, fail) -> bool:
    """Sequence[Split(BLOOM regex, Isolated, invert false), ByteLevel(use_regex false)] -> add_prefix_space."""
    steps = pre.get("pretokenizers") if isinstance(pre, dict) and pre.get("type") == "Sequence" else None
    if not isinstance(steps, list) or len(steps) != 2 or not all(isinstance(s, dict) for s in steps):
        raise fail("pre_tokenizer", f"expected Sequence[Split, ByteLevel], got {_short(pre)}")
    split, byte_level = steps
    if (split.get("type"), split.get("pattern"), split.get("behavior"), split.get("invert")) != (
            "Split", {"Regex": BLOOM_SPLIT_PATTERN}, "Isolated", False):
        raise fail("pre_tokenizer.pretokenizers[0]",
                   f"expected Split(Regex({BLOOM_SPLIT_PATTERN!r}), Isolated, invert=false), got {_short(split)}")
    if byte_level.get("type") != "ByteLevel" or byte_level.get("use_regex", True):
        raise fail("pre_tokenizer.pretokenizers[1]", f"expected ByteLevel(use_regex=false), got {_short(byte_level)}")
    return bool(byte_level.get("add_prefix_space", True))


def _id_limit(data: dict[str, Any]) -> int:
    """Ids are bounded by what the file holds: 4x its number of tokens, plus 1024 (ids may have
    holes, but an added token with id 2**40 must not ask for a table of 2**40 entries). The largest
    real id is one less than the number of tokens: HF tokenizers numbers BLOOM's 250,680 tokens
    densely, and transformers gives each added token the next free id."""
    model, added = data.get("model"), data.get("added_tokens")
    vocab = model.get("vocab") if isinstance(model, dict) else None
    return 4 * ((len(vocab) if isinstance(vocab, dict) else 0) + (len(added) if isinstance(added, list) else 0)) + 1024


def _parse_model(model: Any, fail, limit: int) -> BPE:
    if not isinstance(model, dict) or model.get("type", "BPE") != "BPE":
        raise fail("model", f"expected a BPE model, got {_short(model)}")
    for key, allowed in (("dropout", (None,)), ("continuing_subword_prefix", (None, "")),
                         ("end_of_word_suffix", (None, "")), ("byte_fallback", (False, None)),
                         ("fuse_unk", (False, True, None)), ("ignore_merges", (False, True, None))):
        value = model.get(key)
        if not any(value is a or (type(value) is type(a) and value == a) for a in allowed):
            raise fail(f"model.{key}", f"{value!r} is not supported")
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not all(isinstance(t, str) and type(i) is int and 0 <= i < limit
                                              for t, i in vocab.items()):
        raise fail("model.vocab", f"expected an object {{token: integer id in [0, {limit})}} "
                                  "(ids are bounded by the number of tokens in the file)")
    if not vocab:
        raise fail("model.vocab", "is empty")
    if len(set(vocab.values())) != len(vocab):
        raise fail("model.vocab", "two tokens share an id")
    listed = model.get("merges", [])
    if not isinstance(listed, list):
        raise fail("model.merges", f"expected a list of merges, got {_short(listed)}")
    merges = []
    for k, m in enumerate(listed):
        pair = m.split(" ") if isinstance(m, str) else m
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise fail(f"model.merges[{k}]", f"expected 'a b' or ['a', 'b'], got {m!r}")
        for part in (*pair, pair[0] + pair[1]):
            if part not in vocab:
                raise fail(f"model.merges[{k}]", f"{m!r} names {part!r}, which is not in the vocab")
        merges.append((pair[0], pair[1]))
    unk = model.get("unk_token")
    if unk is not None and (not isinstance(unk, str) or unk not in vocab):
        raise fail("model.unk_token", f"{unk!r} is not in the vocab")
    return BPE(vocab, merges, unk_token=unk, fuse_unk=bool(model.get("fuse_unk")),
               ignore_merges=bool(model.get("ignore_merges")))


def _parse_added_tokens(entries: Any, fail, limit: int) -> list[AddedToken]:
    if not isinstance(entries, list):
        raise fail("added_tokens", "expected a list")
    added = []
    for k, e in enumerate(entries):
        if not (isinstance(e, dict) and type(e.get("id")) is int and 0 <= e["id"] < limit
                and isinstance(e.get("content"), str) and e["content"]):
            raise fail(f"added_tokens[{k}]", f"expected {{id in [0, {limit}), content, ...}}, got {_short(e)}")
        for flag in ("single_word", "lstrip", "rstrip"):
            if e.get(flag):
                raise fail(f"added_tokens[{k}] ({e['content']!r})", f"{flag}=true is not supported")
        added.append(AddedToken(e["id"], e["content"], bool(e.get("special"))))
    return added


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."


VERY_LARGE_INTEGER = int(1e30)  # what transformers writes as model_max_length for "no limit" (31 digits)
LARGE_INTEGER = int(1e20)  # transformers truncates and pads to model_max_length only up to this


def max_length_setting(value: Any, error) -> int | None:
    """model_max_length as an int, or None for no limit: None, or anything past LARGE_INTEGER, as
    transformers treats it (its VERY_LARGE_INTEGER written as an integer, 1e30 written as a float
    by older versions, Infinity)."""
    if value is None:
        return None
    if isinstance(value, float) and value == math.inf:
        return None
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise error(f"model_max_length must be a non-negative integer or null, got {value!r}")
    return None if value > LARGE_INTEGER else int(value)


def config_settings(config: Any, path: str, skip: Any = ()) -> dict[str, Any]:
    """The settings a tokenizer_config.json gives, each checked; a bad one is blamed on the file.
    Keys in `skip` (the caller's keyword overrides) are not read from the file."""
    if not isinstance(config, dict):
        raise TokenizerFileError(f"{path}: expected a JSON object, got {type(config).__name__}")
    config = {k: v for k, v in config.items() if k not in skip}
    def fail(msg: str) -> TokenizerFileError:
        return TokenizerFileError(f"{path}: {msg}")
    settings: dict[str, Any] = {}
    for side in ("padding_side", "truncation_side"):
        if side in config:
            if config[side] not in ("left", "right"):
                raise fail(f"{side} must be 'left' or 'right', got {config[side]!r}")
            settings[side] = config[side]
    if config.get("clean_up_tokenization_spaces") is not None:
        if not isinstance(config["clean_up_tokenization_spaces"], bool):
            raise fail(f"clean_up_tokenization_spaces must be true or false, "
                       f"got {config['clean_up_tokenization_spaces']!r}")
        settings["clean_up_tokenization_spaces"] = config["clean_up_tokenization_spaces"]
    if config.get("add_prefix_space") is not None:
        if not isinstance(config["add_prefix_space"], bool):
            raise fail(f"add_prefix_space must be true or false, got {config['add_prefix_space']!r}")
        settings["add_prefix_space"] = config["add_prefix_space"]
    if "model_max_length" in config:
        settings["model_max_length"] = max_length_setting(config["model_max_length"], fail)
    return settings
