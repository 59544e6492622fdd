"""Hub names (`from_pretrained("org/name")`) read offline from a cache laid out as huggingface_hub lays it out."""

from __future__ import annotations

import os
import shutil
import sys
from contextlib import nullcontext

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minibloom import (EMBEDDED_CHECKPOINT, BloomConfig, BloomForCausalLM, BloomForSequenceClassification,
                       BloomModel, BloomTokenizer, CheckpointError, GenerationConfig)
from minibloom import hub
from tests.hub_utils import make_hub_cache

huggingface_hub = pytest.importorskip("huggingface_hub", reason="hub names need the `hub` extra")

REPO = "bigscience-test/tiny-bloom"
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
TOKENIZER_DIR = os.path.join(DATA, "tokenizer")
TRANSFORMERS_SAVED = os.path.join(DATA, "transformers-saved")  # tests/reference/test_live_artifacts.py writes it


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """HF_HUB_CACHE pointing at a cache holding REPO (the embedded checkpoint, saved by save_pretrained)."""
    saved = tmp_path / "saved"
    BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT).save_pretrained(saved, dtype="float16")  # as shipped
    BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT).save_pretrained(saved)
    cache = tmp_path / "hf-cache"
    snapshot = make_hub_cache(str(cache), REPO, str(saved))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return snapshot


@pytest.mark.parametrize("cls", [BloomModel, BloomForCausalLM, BloomForSequenceClassification])
def test_every_model_class_loads_a_hub_name_from_the_cache(hub_cache, cls):
    expect_warning = pytest.warns(UserWarning) if cls is BloomForSequenceClassification else nullcontext()
    with expect_warning:  # the embedded checkpoint has no classification head: a fresh one, seeded
        local = cls.from_pretrained(EMBEDDED_CHECKPOINT)
    with expect_warning:
        named = cls.from_pretrained(REPO)
    assert named.config == local.config
    assert named.params.keys() == local.params.keys()
    for name in local.params:
        np.testing.assert_array_equal(np.asarray(named.params[name]), np.asarray(local.params[name]), err_msg=name)


def test_tokenizer_and_config_load_a_hub_name_from_the_cache(hub_cache):
    tok = BloomTokenizer.from_pretrained(REPO)
    local = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
    text = "ROMEO.\nBut soft, what light through yonder window breaks?"
    assert tok.encode(text) == local.encode(text)
    assert BloomConfig.from_pretrained(REPO) == BloomConfig.from_pretrained(EMBEDDED_CHECKPOINT)


def test_the_resolved_directory_is_the_snapshot(hub_cache):
    assert os.path.realpath(hub.resolve(REPO)) == os.path.realpath(hub_cache)


def test_offline_and_not_cached_is_a_checkpoint_error_naming_the_setting(hub_cache):
    with pytest.raises(CheckpointError, match="HF_HUB_OFFLINE") as info:
        BloomForCausalLM.from_pretrained("bigscience-test/not-cached")
    assert isinstance(info.value, OSError)
    assert "not-cached" in str(info.value)


def test_without_huggingface_hub_the_error_says_to_install_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails as if not installed
    with pytest.raises(CheckpointError, match=r"minibloom\[hub\]"):
        BloomModel.from_pretrained("bigscience/bloom-560m")
    with pytest.raises(CheckpointError, match=r"minibloom\[hub\]"):
        BloomTokenizer.from_pretrained("bigscience/bloom-560m")


@pytest.mark.parametrize("path", ["./no/such/dir", "/no/such/dir", "../x", "a/b/c"])
def test_paths_that_are_not_repo_ids_keep_the_local_not_found_error(path):
    with pytest.raises(CheckpointError, match="not found"):
        BloomModel.from_pretrained(path)


def test_only_the_files_minibloom_reads_are_downloaded():
    """bloom-560m's file list, filtered by huggingface_hub's own pattern matcher with our allow_patterns."""
    from huggingface_hub.utils import filter_repo_objects

    files = [".gitattributes", "LICENSE", "README.md", "config.json", "flax_model.msgpack", "model.safetensors",
             "pytorch_model.bin", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json",
             "onnx/decoder_model.onnx", "onnx/config.json"]
    model = set(filter_repo_objects(files, allow_patterns=list(hub.MODEL_FILES)))
    tokenizer = set(filter_repo_objects(files, allow_patterns=list(hub.TOKENIZER_FILES)))
    assert model == {"config.json", "model.safetensors"}
    assert tokenizer == {"tokenizer.json", "tokenizer_config.json"}


def test_a_snapshot_missing_the_weights_is_downloaded_when_online(tmp_path, monkeypatch):
    """A cache holding only config.json (an earlier BloomConfig.from_pretrained) is not taken as complete:
    the online call goes to snapshot_download with the allow_patterns (recorded, not sent)."""
    saved = tmp_path / "saved"
    BloomModel.from_pretrained(EMBEDDED_CHECKPOINT).config.save_pretrained(saved)
    make_hub_cache(str(tmp_path / "cache"), REPO, str(saved))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    calls = []
    real = huggingface_hub.snapshot_download

    def recording(**options):
        calls.append(options)
        if options.get("local_files_only"):
            return real(**options)
        return EMBEDDED_CHECKPOINT

    monkeypatch.setattr(huggingface_hub, "snapshot_download", recording)
    assert hub.resolve(REPO) == EMBEDDED_CHECKPOINT
    assert [c.get("local_files_only", False) for c in calls] == [True, False]
    assert calls[1]["allow_patterns"] == list(hub.MODEL_FILES) and calls[1]["cache_dir"] == str(tmp_path / "cache")
    assert hub.resolve(REPO, hub.CONFIG_FILES) != EMBEDDED_CHECKPOINT  # config.json alone: the cache suffices


REJECTED_BY_THE_HUB = ["-a", "a-", "a.git", "org/a.git", "a-/b", "org/-x", "a/.b", "a/b.", "a" * 97, "o/" + "a" * 97]


@pytest.mark.parametrize("name", REJECTED_BY_THE_HUB)
@pytest.mark.parametrize("load", [BloomModel.from_pretrained, BloomTokenizer.from_pretrained,
                                  BloomConfig.from_pretrained, GenerationConfig.from_pretrained],
                         ids=["model", "tokenizer", "config", "generation_config"])
def test_names_huggingface_hub_rejects_are_a_checkpoint_error_naming_them(tmp_path, monkeypatch, name, load):
    """Names that look like repo ids but break the hub's rules (96 characters, no leading or trailing
    '-' or '.', no '.git' ending): huggingface_hub's HFValidationError became one CheckpointError."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    with pytest.raises(HFValidationError):
        validate_repo_id(name)  # the hub refuses it: the case is real
    monkeypatch.chdir(tmp_path)  # no such local directory
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="not a valid hub repo id") as info:
        load(name)
    assert repr(name) in str(info.value) and "\n" not in str(info.value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="ab-_./é0", max_size=100))
def test_any_name_resolves_or_is_a_checkpoint_error(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        assert hub.resolve(name) == name  # a path (possibly missing): the caller's "not found" names it
    except CheckpointError as e:
        assert repr(name) in str(e)


def test_a_tokenizer_transformers_saved_loads_from_the_hub_cache(tmp_path, monkeypatch):
    """tests/data/transformers-saved holds what BloomTokenizerFast.save_pretrained writes beside
    tokenizer.json (model_max_length: its 31-digit VERY_LARGE_INTEGER, "no limit")."""
    saved = tmp_path / "saved"
    shutil.copytree(TRANSFORMERS_SAVED, saved)
    shutil.copy(os.path.join(TOKENIZER_DIR, "tokenizer.json"), saved)
    make_hub_cache(str(tmp_path / "cache"), REPO, str(saved))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tok = BloomTokenizer.from_pretrained(REPO)
    assert tok.model_max_length is None and tok.padding_side == "left"
    text = "ROMEO.\nBut soft, what light through yonder window breaks? " * 40
    assert tok(text, truncation=True)["input_ids"] == BloomTokenizer.from_pretrained(TOKENIZER_DIR).encode(text)
