"""Typed errors blamed on the right source: config assignment, tokenizer settings, save arguments."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from minibloom import (BloomConfig, BloomModel, BloomTokenizer, ConfigError, InputError, TokenizerFileError)
from tests.tokenizer_utils import TOKENIZER_DIR


@pytest.mark.parametrize("field, value", [("hidden_size", 0), ("n_layer", -1), ("n_head", 2.5),
                                          ("num_hidden_layers", 0), ("layer_norm_epsilon", 0.0),
                                          ("use_cache", "yes"), ("hidden_dropout", 2.0), ("pad_token_id", -3),
                                          ("problem_type", "ranking"), ("vocab_size", 2**40)])
def test_assigning_a_config_field_is_checked_like_the_constructor(field, value):
    with pytest.raises(ConfigError, match=field if field != "num_hidden_layers" else "n_layer"):
        BloomConfig(**{field: value})
    config = BloomConfig()
    with pytest.raises(ConfigError, match=field if field != "num_hidden_layers" else "n_layer"):
        setattr(config, field, value)


def test_pretraining_tp_wider_than_the_hidden_size_is_refused_with_slow_but_exact():
    with pytest.raises(ConfigError, match="pretraining_tp"):
        BloomConfig(hidden_size=8, n_head=2, pretraining_tp=9, slow_but_exact=True)
    BloomConfig(hidden_size=8, n_head=2, pretraining_tp=9, slow_but_exact=False)  # unused then: allowed
    config = BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1, pretraining_tp=8, slow_but_exact=True)
    assert np.isfinite(BloomModel(config)(np.array([[1, 2]])).last_hidden_state).all()  # the widest allowed runs


def test_padding_side_errors_are_blamed_on_their_source(tmp_path):
    with pytest.raises(InputError, match="padding_side"):  # a keyword: the caller's fault
        BloomTokenizer.from_pretrained(TOKENIZER_DIR, padding_side="middle")
    with pytest.raises(InputError, match="padding_side"):  # checked at construction, not at the first call
        BloomTokenizer.from_file(f"{TOKENIZER_DIR}/tokenizer.json", padding_side="bad")
    shutil.copy(f"{TOKENIZER_DIR}/tokenizer.json", tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"padding_side": "middle"}))
    with pytest.raises(TokenizerFileError, match="tokenizer_config.json: padding_side"):  # the file's fault
        BloomTokenizer.from_pretrained(tmp_path)
    assert BloomTokenizer.from_pretrained(tmp_path, padding_side="left").padding_side == "left"  # keyword wins


def test_model_max_length_1e30_means_no_limit(tmp_path):
    shutil.copy(f"{TOKENIZER_DIR}/tokenizer.json", tmp_path)
    (tmp_path / "tokenizer_config.json").write_text('{"model_max_length": 1e30}')  # transformers' sentinel
    tok = BloomTokenizer.from_pretrained(tmp_path)
    assert tok.model_max_length is None
    assert len(tok("hello world " * 10, truncation=True)["input_ids"]) == len(tok("hello world " * 10)["input_ids"])
    (tmp_path / "tokenizer_config.json").write_text('{"model_max_length": 4.0}')
    assert len(BloomTokenizer.from_pretrained(tmp_path)("hello world " * 10, truncation=True)["input_ids"]) == 4
    for bad in ("-1", '"long"', "1.5", "NaN"):
        (tmp_path / "tokenizer_config.json").write_text('{"model_max_length": %s}' % bad)
        with pytest.raises(TokenizerFileError, match="model_max_length"):
            BloomTokenizer.from_pretrained(tmp_path)
    with pytest.raises(InputError, match="model_max_length"):
        BloomTokenizer.from_pretrained(TOKENIZER_DIR, model_max_length="x")


@pytest.mark.parametrize("size", ["x", "", "-5GB", 0, -1, 2.5, None.__class__, True, "5" * 100 + "GB"])
def test_a_bad_max_shard_size_is_an_input_error_and_writes_nothing(tmp_path, size):
    model = BloomModel(BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1))
    with pytest.raises(InputError, match="max_shard_size"):
        model.save_pretrained(tmp_path / "out", max_shard_size=size)
    assert not (tmp_path / "out").exists()
    model.save_pretrained(tmp_path / "np", max_shard_size=np.int64(400))  # NumPy integers are integers


def test_sampling_on_non_finite_scores_is_a_typed_error():
    from minibloom import BloomForCausalLM
    from minibloom.errors import NonFiniteScoresError

    model = BloomForCausalLM(BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1), seed=0)
    with pytest.raises(NonFiniteScoresError, match="row 0"):
        model.generate(np.array([[1, 2]]), do_sample=True, temperature=1e-45, max_new_tokens=2, seed=0)
    model.params["ln_f.weight"][:] = np.nan  # a NaN weight
    with pytest.raises(NonFiniteScoresError):
        model.generate(np.array([[1, 2]]), do_sample=True, max_new_tokens=2, seed=0)
    assert issubclass(NonFiniteScoresError, ValueError)


@pytest.mark.parametrize("what", ["forward", "cache", "padding", "generate"])
def test_sizes_beyond_the_memory_budget_are_refused_by_name(what, monkeypatch):
    from minibloom import BloomForCausalLM, KVCache
    from minibloom.errors import MemoryBudgetError

    monkeypatch.setenv("MINIBLOOM_MEMORY_BUDGET", str(50 * 2**20))  # 50 MB
    config = BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1)
    with pytest.raises(MemoryBudgetError) as caught:
        if what == "forward":  # 3000 tokens: attention scores of 2 x 3000 x 3000 floats = 72 MB
            BloomModel(config)(np.ones((1, 3000), np.int64))
        elif what == "cache":
            KVCache.for_config(config, batch=4, capacity=10**7)
        elif what == "padding":
            BloomTokenizer.from_pretrained(TOKENIZER_DIR)(["a", "b"], padding="max_length", max_length=10**8)
        else:
            BloomForCausalLM(config).generate(np.array([[1, 2]]), max_new_tokens=10**8)
    assert isinstance(caught.value, MemoryError) and isinstance(caught.value, ValueError)
    assert {"forward": "3000 tokens", "cache": "capacity=10000000", "padding": "max_length=100000000",
            "generate": "capacity=100000002"}[what] in str(caught.value)


def test_beam_search_is_refused_by_name_before_it_allocates(monkeypatch):
    from minibloom import BloomForCausalLM
    from minibloom.errors import MemoryBudgetError

    model = BloomForCausalLM(BloomConfig(vocab_size=200_000, hidden_size=8, n_head=2, n_layer=1))
    monkeypatch.setenv("MINIBLOOM_MEMORY_BUDGET", str(50 * 2**20))  # 50 MB; the KV cache needs 20 KB
    with pytest.raises(MemoryBudgetError, match="num_beams=64"):  # 64 beams x 200k scores x 16 bytes = 205 MB
        model.generate(np.array([[1, 2]]), num_beams=64, max_new_tokens=2, progress=False)
    model.generate(np.array([[1, 2]]), num_beams=4, max_new_tokens=2, progress=False)  # 13 MB: within


def test_lone_surrogates_are_input_errors_in_text_and_tokenizer_errors_in_files(tmp_path):
    tok = BloomTokenizer.from_pretrained(TOKENIZER_DIR)
    for call in (lambda: tok("ok \udc80"), lambda: tok.encode_ids("x\ud800y"), lambda: tok.encode_with_offsets("\udfff"),
                 lambda: tok(["fine", "bad \ud800"]), lambda: tok.encode("\udc00")):
        with pytest.raises(InputError, match="lone surrogate"):
            call()
    text = open(f"{TOKENIZER_DIR}/tokenizer.json", encoding="utf-8").read()
    (tmp_path / "tokenizer.json").write_text(text.replace('"<unk>"', '"<unk\\ud800>"', 1))
    with pytest.raises(TokenizerFileError, match="lone surrogate"):
        BloomTokenizer.from_file(tmp_path / "tokenizer.json")


def test_numpy_integer_scalars_are_integers_in_the_config():
    config = BloomConfig(n_layer=np.int64(3), hidden_size=np.int32(16), n_head=np.uint8(2))
    config.vocab_size = np.int16(100)
    assert (config.n_layer, config.vocab_size) == (3, 100) and type(config.vocab_size) is int
    assert json.loads(config.to_json_string())["hidden_size"] == 16


def test_numpy_booleans_are_booleans_in_the_config():
    config = BloomConfig(use_cache=np.bool_(False), slow_but_exact=np.True_)
    config.tie_word_embeddings = np.bool_(False)
    assert (config.use_cache, config.slow_but_exact, config.tie_word_embeddings) == (False, True, False)
    assert type(config.use_cache) is bool and type(config.tie_word_embeddings) is bool
    assert json.loads(config.to_json_string())["slow_but_exact"] is True
    with pytest.raises(ConfigError, match="use_cache"):
        BloomConfig(use_cache=np.int64(1))  # an integer is not a boolean, NumPy's or Python's
