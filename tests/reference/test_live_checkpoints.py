"""Checkpoint and config files exchanged with transformers in both directions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minibloom import BloomConfig, BloomModel
from tests.conftest import assert_close
from tests.reference.reference_utils import mirror, torch, torch_bloom, transformers

TINY = dict(vocab_size=30, hidden_size=24, n_head=6, n_layer=2)


@pytest.mark.parametrize("dtype,torch_dtype", [("float32", torch.float32), ("float16", torch.float16),
                                               ("bfloat16", torch.bfloat16)])
@pytest.mark.parametrize("shard", [None, "4KB"])
def test_transformers_loads_what_minibloom_saves(tmp_path, dtype, torch_dtype, shard):
    ours = mirror(torch_bloom(transformers.BloomModel, 1, **TINY))
    ours.save_pretrained(tmp_path, dtype=dtype, max_shard_size=shard)
    loaded = transformers.BloomModel.from_pretrained(tmp_path, dtype=torch_dtype)
    for name, value in loaded.state_dict().items():
        expected = torch.from_numpy(ours.params[name]).to(torch_dtype)  # torch's own rounding
        assert torch.equal(value, expected), name
    ids = np.array([[1, 2, 3, 4]])
    with torch.no_grad():
        theirs = loaded.float()(torch.from_numpy(ids), use_cache=False).last_hidden_state.numpy()
    assert_close(BloomModel.from_pretrained(tmp_path)(ids).last_hidden_state, theirs, "last_hidden_state")


def test_transformers_reads_our_config_identically(tmp_path):
    ours = BloomConfig(hidden_size=48, n_head=6, n_layer=3, vocab_size=99, pad_token_id=3, num_labels=4,
                       problem_type="single_label_classification", apply_residual_connection_post_layernorm=True,
                       pretraining_tp=2, slow_but_exact=True, seq_length=2048, classifier_dropout=0.3)
    ours.save_pretrained(tmp_path)
    theirs = transformers.BloomConfig.from_pretrained(tmp_path)
    for key, value in ours.to_dict().items():
        got = getattr(theirs, key)
        if key == "id2label":
            got = {str(k): v for k, v in got.items()}
        assert got == value, key
    assert theirs.num_labels == 4 and theirs.num_attention_heads == 6


def test_we_read_transformers_configs_including_legacy_names(tmp_path):
    theirs = transformers.BloomConfig(n_embed=40, num_attention_heads=5, num_hidden_layers=3, pad_token_id=3,
                                      id2label={0: "a", 1: "b", 2: "c"})
    theirs.save_pretrained(tmp_path)
    ours = BloomConfig.from_pretrained(tmp_path)
    assert (ours.hidden_size, ours.n_head, ours.n_layer, ours.pad_token_id) == (40, 5, 3, 3)
    assert ours.id2label == {0: "a", 1: "b", 2: "c"}
    saved = json.loads((tmp_path / "config.json").read_text())
    for key in ("vocab_size", "layer_norm_epsilon", "bos_token_id", "eos_token_id", "initializer_range"):
        assert getattr(ours, key) == saved[key]


def test_head_checkpoint_with_prefix_loads_into_the_base_model(tmp_path):
    ref = torch_bloom(transformers.BloomForSequenceClassification, 2, num_labels=3, **TINY)
    ref.save_pretrained(tmp_path)
    ours = BloomModel.from_pretrained(tmp_path)
    ids = np.array([[5, 6, 7]])
    with torch.no_grad():
        expected = ref.transformer(torch.from_numpy(ids), use_cache=False).last_hidden_state.numpy()
    assert_close(ours(ids).last_hidden_state, expected, "last_hidden_state")
