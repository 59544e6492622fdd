"""Fuzzing the checks done before work: hostile JSON in every file, huge config sizes, unbounded ids;
and each of those limits admits the largest value the reference stack really writes."""

from __future__ import annotations

import json
import os
import shutil
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibloom import (BloomConfig, BloomForSequenceClassification, BloomModel, BloomTokenizer, CheckpointError,
                       MinibloomError, safe_read)
from minibloom.config import BLOOM_FAMILY, MAX_LABELS, MAX_SIZE
from tests.fuzz.fuzz_utils import fuzz_settings, only_minibloom_errors
from tests.tokenizer_utils import TOKENIZER_DIR, TOKENIZER_JSON, load_json

TINY = BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1)
TOKENIZER = load_json("tokenizer.json")
SMALL_VOCAB = {t: i for t, i in TOKENIZER["model"]["vocab"].items() if i < 300}
SMALL_TOKENIZER = {**TOKENIZER, "model": {**TOKENIZER["model"], "vocab": SMALL_VOCAB, "merges": [
    m for m in TOKENIZER["model"]["merges"][:150] if all(p in SMALL_VOCAB for p in (*m, "".join(m)))]}}
_TEMPLATE: list = []


def checkpoint_copy(tmp_path_factory):
    """A fresh copy of one tiny checkpoint (config, weights, a small tokenizer), saved once per session."""
    if not _TEMPLATE:
        template = tmp_path_factory.mktemp("template")
        BloomModel(TINY).save_pretrained(template)
        (template / "tokenizer.json").write_text(json.dumps(SMALL_TOKENIZER))
        _TEMPLATE.append(template)
    target = tmp_path_factory.mktemp("case") / "ckpt"
    shutil.copytree(_TEMPLATE[0], target)
    return target


@st.composite
def hostile_json(draw) -> bytes:
    """A JSON document the safe loader must refuse: too deep, an integer too long, a lone surrogate."""
    kind = draw(st.sampled_from(["deep", "bigint", "surrogate"]))
    if kind == "deep":
        depth = draw(st.sampled_from([65, 100, 999, 1001, 5000, 100_000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return (opener * depth + "1" + closer * depth).encode()
    if kind == "bigint":
        digits = draw(st.integers(safe_read.MAX_INT_DIGITS + 1, 10_000))
        return ('{"n_layer": ' + draw(st.sampled_from(["", "-"])) + "9" * digits + "}").encode()
    code = draw(st.integers(0xD800, 0xDFFF))
    where = draw(st.sampled_from(['{"x": "%s"}', '{"%s": 1}', '["%s"]']))
    return (where % f"\\u{code:04x}").encode()


@fuzz_settings
@given(hostile_json(), st.sampled_from(["config.json", "tokenizer.json", "tokenizer_config.json",
                                        "model.safetensors.index.json", "model.safetensors"]))
def test_every_json_the_project_reads_refuses_hostile_documents(tmp_path_factory, doc, target):
    tmp = checkpoint_copy(tmp_path_factory)
    if target == "model.safetensors":  # the safetensors header is JSON too
        doc = struct.pack("<Q", len(doc)) + doc
    elif target == "model.safetensors.index.json":
        (tmp / "model.safetensors").unlink()
    (tmp / target).write_bytes(doc)
    try:
        if target.startswith("tokenizer"):
            BloomTokenizer.from_pretrained(tmp)
        else:
            BloomModel.from_pretrained(tmp)
    except MinibloomError as e:
        assert target in str(e) or "config.json" in str(e), str(e)  # names the file at fault
    else:
        raise AssertionError(f"a hostile {target} was accepted: {doc[:60]!r}")


SIZES = st.one_of(st.integers(1, 64), st.sampled_from([2**20, 10**9, 2**31 - 1]))


@pytest.mark.filterwarnings("ignore:BloomForSequenceClassification")  # a fresh head: expected
@fuzz_settings
@given(st.fixed_dictionaries({}, optional={"n_layer": SIZES, "hidden_size": SIZES, "vocab_size": SIZES,
                                            "n_head": SIZES, "num_labels": SIZES}))
def test_huge_config_sizes_fail_before_any_work(tmp_path_factory, sizes):
    tmp = checkpoint_copy(tmp_path_factory)
    data = {**json.loads((tmp / "config.json").read_text()), **sizes}
    if "num_labels" in sizes:
        data.pop("id2label"), data.pop("label2id")
    (tmp / "config.json").write_text(json.dumps(data))
    with only_minibloom_errors():  # the 5 s deadline of fuzz_settings catches any work on 10**9 layers
        BloomForSequenceClassification.from_pretrained(tmp)


ANY_ID = st.one_of(st.integers(-5, 2**62), st.sampled_from([2**31, 2**40, -2**40]))


@fuzz_settings
@given(st.lists(st.tuples(st.text(min_size=1, max_size=6), ANY_ID, st.booleans()), max_size=4),
       st.dictionaries(st.sampled_from(["a", "b", "Ġ", "<unk>"]), ANY_ID, max_size=3))
def test_tokenizer_ids_are_bounded_by_the_file(added, vocab_changes):
    data = {**SMALL_TOKENIZER, "added_tokens": [{"id": i, "content": c, "special": s} for c, i, s in added],
            "model": {**SMALL_TOKENIZER["model"], "vocab": {**SMALL_VOCAB, **vocab_changes}}}
    with only_minibloom_errors():
        tok = BloomTokenizer(data)
        entries = len(data["model"]["vocab"]) + len(added)
        assert tok.n_ids <= 4 * entries + 1024  # no table larger than the file's entries allow
        tok.decode(tok.encode("hello <unk> world"))


# ------------------------------------------------ every limit admits the largest real value it names

TRANSFORMERS_SAVED = os.path.join(os.path.dirname(TOKENIZER_DIR), "transformers-saved")


def test_model_max_length_as_transformers_writes_it_is_read_as_no_limit(tmp_path):
    """tokenizer_config.json as BloomTokenizerFast.save_pretrained writes it for a tokenizer without a
    limit (BLOOM's): model_max_length is VERY_LARGE_INTEGER, int(1e30), an integer of 31 digits."""
    shutil.copytree(TRANSFORMERS_SAVED, tmp_path / "tok")
    shutil.copy(TOKENIZER_JSON, tmp_path / "tok")
    assert json.loads((tmp_path / "tok" / "tokenizer_config.json").read_text())["model_max_length"] == int(1e30)
    assert BloomTokenizer.from_pretrained(tmp_path / "tok").model_max_length is None


@pytest.mark.parametrize("value, limit", [("1e30", None), ("1000000000000000019884624838656", None),
                                          ("100000000000000000001", None), ("Infinity", None),
                                          ("100000000000000000000", 10**20), ("2048", 2048), ("2048.0", 2048)])
def test_model_max_length_past_1e20_means_no_limit_as_in_transformers(tmp_path, value, limit):
    """transformers treats model_max_length > LARGE_INTEGER (1e20) as no limit when it truncates or pads."""
    shutil.copy(TOKENIZER_JSON, tmp_path)
    (tmp_path / "tokenizer_config.json").write_text('{"model_max_length": %s}' % value)
    assert BloomTokenizer.from_pretrained(tmp_path).model_max_length == limit


def test_json_limits_admit_the_largest_real_values():
    assert safe_read.loads(str(int(1e30)), "x.json") == int(1e30)  # transformers' VERY_LARGE_INTEGER: 31 digits
    digits = "9" * safe_read.MAX_INT_DIGITS  # the longest integer read
    assert safe_read.loads('{"a": -%s}' % digits, "x.json") == {"a": -int(digits)}
    with pytest.raises(CheckpointError, match="x.json"):
        safe_read.loads('{"a": %s0}' % digits, "x.json")
    deepest = "[" * safe_read.MAX_JSON_DEPTH + "]" * safe_read.MAX_JSON_DEPTH
    assert safe_read.json_depth(safe_read.loads(deepest, "x.json")) == safe_read.MAX_JSON_DEPTH
    assert os.path.getsize(TOKENIZER_JSON) < 15 * 2**20 < safe_read.MAX_TOKENIZER_BYTES  # BLOOM's: 14.5 MB


def test_config_limits_admit_bloom_176b_and_large_label_sets():
    config = BloomConfig(vocab_size=250880, **BLOOM_FAMILY["bloom"], num_labels=MAX_LABELS)
    assert config.num_labels == MAX_LABELS and max(config.vocab_size, config.hidden_size) < MAX_SIZE
    with pytest.raises(MinibloomError, match="num_labels"):
        BloomConfig(num_labels=MAX_LABELS + 1)


def test_a_file_name_holding_a_nul_is_a_typed_error():
    with pytest.raises(CheckpointError, match="NUL"):
        safe_read.read_json("config\0.json")


def test_the_padding_and_truncation_state_transformers_saves_in_tokenizer_json_is_read():
    """After a call with padding="max_length", truncation=True, max_length=8, transformers saves the
    backend's state into tokenizer.json (these objects, verbatim); its own calls reset it, so no id changes."""
    data = {**SMALL_TOKENIZER,
            "truncation": {"direction": "Right", "max_length": 8, "strategy": "LongestFirst", "stride": 0},
            "padding": {"strategy": {"Fixed": 8}, "direction": "Left", "pad_to_multiple_of": None, "pad_id": 3,
                        "pad_type_id": 0, "pad_token": "<pad>"}}
    text = "a b c d e f g h i j k l m n o p"
    assert BloomTokenizer(data).encode(text) == BloomTokenizer(SMALL_TOKENIZER).encode(text)
    with pytest.raises(MinibloomError, match="truncation"):
        BloomTokenizer({**SMALL_TOKENIZER, "truncation": 8})
