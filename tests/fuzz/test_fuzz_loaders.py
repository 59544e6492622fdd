"""Fuzzing the loaders: safetensors files, sharded indexes, config.json, tokenizer.json, golden files."""

from __future__ import annotations

import copy
import json
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibloom import BloomConfig, BloomModel, BloomTokenizer, golden
from minibloom.safetensors_io import load_file, save_file
from minibloom.weights import load_state_dict
from tests.fuzz.fuzz_utils import fuzz_settings, json_values, only_minibloom_errors
from tests.tokenizer_utils import load_json

TINY = BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1)


def valid_safetensors(tmp_path) -> bytes:
    path = tmp_path / "valid.safetensors"
    save_file({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, np.float32)}, path)
    return path.read_bytes()


@st.composite
def corrupted_files(draw, original: bytes):
    kind = draw(st.sampled_from(["truncate", "flip", "header", "length"]))
    data = bytearray(original)
    if kind == "truncate":
        return bytes(data[:draw(st.integers(0, len(data) - 1))])
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    n = struct.unpack("<Q", data[:8])[0]
    if kind == "length":  # the header length lies (up to absurd sizes)
        return struct.pack("<Q", draw(st.integers(0, 2**64 - 1))) + bytes(data[8:])
    header = json.loads(data[8:8 + n])
    names = sorted(k for k in header if k != "__metadata__")
    entry = header[draw(st.sampled_from(names))]
    field = draw(st.sampled_from(["dtype", "shape", "data_offsets", "whole"]))
    if field == "whole":
        header[draw(st.sampled_from([*names, "__metadata__", "new"]))] = draw(json_values)
    elif field == "shape":  # huge, negative or ill-typed shapes
        entry["shape"] = draw(st.one_of(st.lists(st.integers(-5, 2**62), max_size=4), json_values))
    elif field == "data_offsets":  # out of bounds or overlapping offsets
        entry["data_offsets"] = draw(st.one_of(st.lists(st.integers(-10, 200), min_size=2, max_size=2), json_values))
    else:
        entry["dtype"] = draw(st.one_of(st.sampled_from(["F64", "F16", "BF16", "I64", "U8", "F8_E4M3", "f32"]),
                                        json_values))
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(data[8 + n:])


@fuzz_settings
@given(st.data())
def test_safetensors_reader_survives_any_corruption(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("st")
    blob = data.draw(corrupted_files(valid_safetensors(tmp)))
    path = tmp / "model.safetensors"
    path.write_bytes(blob)
    with only_minibloom_errors():
        for value in load_file(path).values():
            assert value.nbytes <= len(blob)  # never an allocation bigger than the file
    with only_minibloom_errors():
        (tmp / "config.json").write_text(json.dumps(TINY.to_dict()))
        BloomModel.from_pretrained(tmp)


@fuzz_settings
@given(st.one_of(json_values, st.fixed_dictionaries({"weight_map": json_values}),
                 st.fixed_dictionaries({"metadata": json_values, "weight_map": st.dictionaries(
                     st.text(max_size=10), st.one_of(st.text(max_size=12), json_values), max_size=3)})),
       st.booleans())
def test_sharded_index_survives_anything(tmp_path_factory, index, with_shard):
    tmp = tmp_path_factory.mktemp("idx")
    (tmp / "model.safetensors.index.json").write_text(json.dumps(index))
    if with_shard:
        save_file({"word_embeddings.weight": np.zeros((16, 8), np.float32)}, tmp / "model-00001-of-00001.safetensors")
    with only_minibloom_errors():
        load_state_dict(tmp)


CONFIG_KEYS = ["vocab_size", "hidden_size", "n_layer", "n_head", "n_embed", "num_hidden_layers",
               "num_attention_heads", "layer_norm_epsilon", "pretraining_tp", "slow_but_exact",
               "apply_residual_connection_post_layernorm", "id2label", "num_labels", "problem_type",
               "bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings", "use_cache"]


@fuzz_settings
@given(st.dictionaries(st.sampled_from(CONFIG_KEYS), st.one_of(st.integers(-3, 40), json_values), max_size=6),
       st.sampled_from(["dict", "file", "garbage"]))
def test_config_survives_wrong_types_and_values(tmp_path_factory, changes, how):
    data = {**TINY.to_dict(), **changes}
    with only_minibloom_errors():
        if how == "dict":
            config = BloomConfig.from_dict(data)
            config.validate()
            return
        tmp = tmp_path_factory.mktemp("cfg")
        (tmp / "config.json").write_text(json.dumps(data) if how == "file" else json.dumps(data)[:-3])
        config = BloomConfig.from_pretrained(tmp)
        config.validate()


def mutate_json(draw, data):
    """Delete, retype or replace a random node of a JSON document."""
    data = copy.deepcopy(data)
    node, path = data, []
    for _ in range(draw(st.integers(1, 4))):
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node)))
        elif isinstance(node, list) and node:
            key = draw(st.integers(0, min(len(node) - 1, 30)))
        else:
            break
        path.append((node, key))
        node = node[key]
    if not path:
        return draw(json_values)
    parent, key = path[-1]
    action = draw(st.sampled_from(["delete", "replace", "retype"]))
    if action == "delete" and isinstance(parent, dict):
        del parent[key]
    elif action == "retype":
        parent[key] = [node] if not isinstance(node, list) else {"x": node}
    else:
        parent[key] = draw(json_values)
    return data


TOKENIZER = load_json("tokenizer.json")
SMALL_VOCAB = {t: i for t, i in TOKENIZER["model"]["vocab"].items() if i < 400}
SMALL_TOKENIZER = {**TOKENIZER, "model": {**TOKENIZER["model"], "vocab": SMALL_VOCAB, "merges": [
    m for m in TOKENIZER["model"]["merges"][:200] if all(p in SMALL_VOCAB for p in (*m, "".join(m)))]}}


@fuzz_settings
@given(st.data())
def test_tokenizer_json_survives_mutations(data):
    mutated = mutate_json(data.draw, SMALL_TOKENIZER)
    with only_minibloom_errors():
        tok = BloomTokenizer(mutated) if isinstance(mutated, dict) else BloomTokenizer.from_file(__file__)
        ids = tok.encode("Hello, wörld <s> 日本")
        tok.decode(ids)


@pytest.mark.parametrize("merges", [None, 5, "a b", {"a": "b"}])
def test_merges_that_are_not_a_list_are_named(merges):
    """Found by the long fuzz profile: `"merges": null` escaped as a TypeError."""
    from minibloom import TokenizerFileError

    mutated = json.loads(json.dumps(SMALL_TOKENIZER))
    mutated["model"]["merges"] = merges
    with pytest.raises(TokenizerFileError, match="model.merges"):
        BloomTokenizer(mutated)


@fuzz_settings
@given(st.data())
def test_golden_loader_survives_corruption(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("gold")
    model = BloomModel(TINY, seed=1)
    path = tmp / "g.safetensors"
    golden.dump(model, path, np.array([[1, 2, 3]]))
    blob = data.draw(corrupted_files(path.read_bytes()))
    path.write_bytes(blob)
    with only_minibloom_errors():
        g = golden.load(path)
        golden.format_report(golden.compare(g, g))
