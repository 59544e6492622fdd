"""Checkpoint directories: single and sharded layouts, the `transformer.` prefix, dtypes on save,
and typed errors for missing, unexpected and mis-shaped tensors."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from tests.conftest import HF_EXPECTED_DIR

from minibloom import BloomConfig, BloomModel, CheckpointError, WeightsMismatchError
from minibloom.safetensors_io import load_file, read_header, save_file
from minibloom.storage import to_float32
from minibloom.weights import bloom_param_shapes, load_state_dict, parse_size, save_state_dict

TINY = dict(vocab_size=40, hidden_size=16, n_head=4, n_layer=2)


def test_param_table_has_twelve_tensors_per_layer_plus_five():
    shapes = bloom_param_shapes(BloomConfig(**TINY))
    assert len(shapes) == 12 * 2 + 5
    assert shapes["h.1.self_attention.query_key_value.weight"] == (48, 16)
    assert shapes["h.0.mlp.dense_4h_to_h.weight"] == (16, 64)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("shard", [None, "3KB"])
def test_save_then_load_round_trips_every_layout(tmp_path, dtype, shard):
    model = BloomModel(BloomConfig(**TINY), seed=3)
    model.save_pretrained(tmp_path, dtype=dtype, max_shard_size=shard)
    files = sorted(os.listdir(tmp_path))
    assert ("model.safetensors.index.json" in files) == (shard is not None)
    back = BloomModel.from_pretrained(tmp_path)
    tol = {"float32": 0, "float16": 1e-3, "bfloat16": 1e-2}[dtype]
    for name, value in model.params.items():
        assert np.allclose(to_float32(back.params[name]), value, atol=tol, rtol=tol), name  # auto: kept as saved
    assert back.config.architectures == ["BloomModel"]


def test_sharded_index_lists_every_tensor_and_the_total_size(tmp_path):
    model = BloomModel(BloomConfig(**TINY))
    model.save_pretrained(tmp_path, max_shard_size=4000)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(model.params)
    assert index["metadata"]["total_size"] == sum(v.size * 4 for v in model.params.values())
    for name, shard in index["weight_map"].items():
        assert name in read_header(tmp_path / shard)[0]


def test_switching_layout_removes_the_stale_files(tmp_path):
    model = BloomModel(BloomConfig(**TINY))
    model.save_pretrained(tmp_path, max_shard_size=4000)
    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]


def test_prefixed_and_unprefixed_names_load_the_same(tmp_path):
    model = BloomModel(BloomConfig(**TINY), seed=1)
    model.save_pretrained(tmp_path / "plain")
    os.makedirs(tmp_path / "prefixed")
    shutil.copy(tmp_path / "plain" / "config.json", tmp_path / "prefixed")
    prefixed = {"transformer." + k: v for k, v in model.params.items()}
    prefixed["lm_head.weight"] = model.params["word_embeddings.weight"]  # another head's tensor: ignored
    save_file(prefixed, tmp_path / "prefixed" / "model.safetensors")
    a, b = BloomModel.from_pretrained(tmp_path / "plain"), BloomModel.from_pretrained(tmp_path / "prefixed")
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


def _rewrite(directory, mutate):
    state = load_file(directory / "model.safetensors")
    mutate(state)
    save_file(state, directory / "model.safetensors")


def test_missing_unexpected_and_misshaped_tensors_are_named_with_shapes(tmp_path):
    BloomModel(BloomConfig(**TINY)).save_pretrained(tmp_path)
    _rewrite(tmp_path, lambda s: s.pop("h.1.mlp.dense_4h_to_h.bias"))
    with pytest.raises(WeightsMismatchError, match=r"missing tensor 'h.1.mlp.dense_4h_to_h.bias' \(expected shape \(16,\)\)"):
        BloomModel.from_pretrained(tmp_path)
    _rewrite(tmp_path, lambda s: s.update({"h.1.mlp.dense_4h_to_h.bias": np.zeros(16, np.float32),
                                           "h.7.extra.weight": np.zeros(2, np.float32)}))
    with pytest.raises(WeightsMismatchError, match=r"unexpected tensor 'h.7.extra.weight' \(shape \(2,\)\)"):
        BloomModel.from_pretrained(tmp_path)
    _rewrite(tmp_path, lambda s: (s.pop("h.7.extra.weight"), s.update({"ln_f.weight": np.ones(17, np.float32)})))
    with pytest.raises(WeightsMismatchError, match=r"'ln_f.weight' has shape \(17,\), the config needs \(16,\)"):
        BloomModel.from_pretrained(tmp_path)


def test_integer_weights_are_rejected_naming_the_tensor(tmp_path):
    BloomModel(BloomConfig(**TINY)).save_pretrained(tmp_path)
    from safetensors.numpy import save_file as st_save
    state = load_file(tmp_path / "model.safetensors")
    state["ln_f.bias"] = np.zeros(16, np.int32)
    st_save(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="'ln_f.bias' is stored as I32"):
        BloomModel.from_pretrained(tmp_path)


def test_directory_problems_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_state_dict(tmp_path / "nowhere")
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match="pytorch_model.bin: convert them to safetensors"):
        load_state_dict(tmp_path)


def test_index_pointing_at_a_missing_shard_names_tensor_and_shard(tmp_path):
    shutil.copytree(os.path.join(HF_EXPECTED_DIR, "sharded"), tmp_path / "ck")
    index = json.loads((tmp_path / "ck" / "model.safetensors.index.json").read_text())
    name, shard = sorted(index["weight_map"].items())[0]
    os.remove(tmp_path / "ck" / shard)
    with pytest.raises(CheckpointError, match=f"'{name}' is in shard '{shard}', which is missing"):
        BloomModel.from_pretrained(tmp_path / "ck")


def test_index_with_path_traversal_is_refused(tmp_path):
    save_state_dict({"a": np.ones(2, np.float32)}, tmp_path)
    os.remove(tmp_path / "model.safetensors")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "../x.safetensors"}}))
    with pytest.raises(CheckpointError, match="not a plain file name"):
        load_state_dict(tmp_path)


def test_truncated_weights_file_is_a_checkpoint_error(tmp_path):
    BloomModel(BloomConfig(**TINY)).save_pretrained(tmp_path)
    raw = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        BloomModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("text,expected", [("5GB", 5 * 10**9), ("20KiB", 20 * 1024), ("1.5MB", 1_500_000), (7, 7)])
def test_parse_size_uses_transformers_units(text, expected):
    assert parse_size(text) == expected


def test_saved_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        BloomModel(BloomConfig(vocab_size=8, hidden_size=4, n_head=1, n_layer=1)).save_pretrained(tmp_path)
    finally:
        os.umask(old)
    assert {oct(os.stat(tmp_path / f).st_mode & 0o777) for f in os.listdir(tmp_path)} == {"0o644"}


def test_a_memory_mapped_model_can_save_over_its_own_checkpoint(tmp_path):
    """Loading maps the files; saving replaces them (new inodes), so the open model keeps working."""
    BloomModel(BloomConfig(vocab_size=50, hidden_size=16, n_head=2, n_layer=2), seed=1).save_pretrained(tmp_path)
    model = BloomModel.from_pretrained(tmp_path)
    ids = np.array([[1, 2, 3]])
    before = model(ids).last_hidden_state
    model.save_pretrained(tmp_path, max_shard_size="5KB")  # sharded: the single file goes away
    model.save_pretrained(tmp_path)  # and back: the shards go away
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]
    np.testing.assert_array_equal(model(ids).last_hidden_state, before)
    np.testing.assert_array_equal(BloomModel.from_pretrained(tmp_path)(ids).last_hidden_state, before)
