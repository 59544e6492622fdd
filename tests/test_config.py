"""BloomConfig: defaults, legacy hub names, unknown keys, validation, JSON round trip."""

from __future__ import annotations

import json

import pytest

from minibloom import BloomConfig, CheckpointError, ConfigError

BLOOM_560M = {  # config.json of bloom-560m as re-saved (REFERENCE_NOTES §1)
    "architectures": ["BloomForCausalLM"], "model_type": "bloom", "hidden_size": 1024, "n_head": 16,
    "n_layer": 24, "n_inner": None, "vocab_size": 250880, "apply_residual_connection_post_layernorm": False,
    "attention_dropout": 0.0, "hidden_dropout": 0.0, "attention_softmax_in_fp32": True,
    "bias_dropout_fusion": True, "masked_softmax_fusion": True, "skip_bias_add": True,
    "skip_bias_add_qkv": False, "offset_alibi": 100, "bos_token_id": 1, "eos_token_id": 2,
    "pad_token_id": 3, "unk_token_id": 0, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05,
    "pretraining_tp": 1, "slow_but_exact": False, "use_cache": True,
}


def test_defaults_are_transformers_defaults():
    c = BloomConfig()
    assert (c.vocab_size, c.hidden_size, c.n_layer, c.n_head) == (250880, 64, 2, 8)
    assert (c.hidden_dropout, c.attention_dropout, c.pad_token_id, c.num_labels) == (0.0, 0.0, None, 2)
    assert (c.bos_token_id, c.eos_token_id, c.pretraining_tp, c.slow_but_exact) == (1, 2, 1, False)
    assert c.tie_word_embeddings is True and c.problem_type is None
    assert c.id2label == {0: "LABEL_0", 1: "LABEL_1"}


def test_bloom_560m_config_reads_and_keeps_unknown_keys(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(BLOOM_560M))
    c = BloomConfig.from_pretrained(tmp_path)
    assert (c.hidden_size, c.n_layer, c.n_head, c.pad_token_id, c.head_dim) == (1024, 24, 16, 3, 64)
    assert c.offset_alibi == 100 and c.unk_token_id == 0 and c.n_inner is None
    assert c.to_dict()["masked_softmax_fusion"] is True


def test_legacy_names_n_embed_and_aliases():
    c = BloomConfig(n_embed=1024, num_attention_heads=16, num_hidden_layers=24, seq_length=2048)
    assert (c.hidden_size, c.n_head, c.n_layer) == (1024, 16, 24)
    assert c.num_attention_heads == 16 and c.num_hidden_layers == 24
    assert "n_embed" not in c.to_dict() and c.seq_length == 2048
    c.num_hidden_layers = 3
    assert c.n_layer == 3


def test_json_round_trip_is_identical(tmp_path):
    c = BloomConfig(hidden_size=48, n_head=6, num_labels=3, problem_type="regression", pad_token_id=3,
                    classifier_dropout=0.2, foo={"bar": [1, 2]})
    c.save_pretrained(tmp_path)
    back = BloomConfig.from_pretrained(tmp_path)
    assert back == c and back.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"} and back.foo == {"bar": [1, 2]}


def test_id2label_wins_over_num_labels_and_keys_become_ints():
    c = BloomConfig(id2label={"0": "neg", "1": "neu", "2": "pos"}, num_labels=5)
    assert c.num_labels == 3 and c.id2label[2] == "pos" and c.label2id == {"neg": 0, "neu": 1, "pos": 2}
    c.num_labels = 4
    assert c.id2label[3] == "LABEL_3"


@pytest.mark.parametrize("field,value", [
    ("hidden_size", 0), ("hidden_size", -8), ("n_head", 0), ("n_layer", 1.5), ("vocab_size", "big"),
    ("pretraining_tp", 0), ("layer_norm_epsilon", -1.0), ("hidden_dropout", 1.5), ("use_cache", "yes"),
    ("pad_token_id", -1), ("problem_type", "ranking"), ("n_layer", True),
])
def test_invalid_values_raise_config_error_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        BloomConfig(**{field: value})


def test_hidden_size_not_divisible_by_heads_names_both_fields():
    with pytest.raises(ConfigError, match="hidden_size.*n_head"):
        BloomConfig(hidden_size=50, n_head=8)


def test_bad_config_files_raise_typed_errors_naming_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        BloomConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json is not valid JSON"):
        BloomConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="JSON object"):
        BloomConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"n_head": 7, "hidden_size": 64}))
    with pytest.raises(ConfigError, match="config.json.*hidden_size"):
        BloomConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ConfigError, match="model_type"):
        BloomConfig.from_pretrained(tmp_path)
