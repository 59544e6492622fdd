"""Nothing the reference stack writes is refused: transformers 4.57.1 and huggingface_hub write every
file they write for BLOOM, and minibloom reads each and agrees with transformers on what it says.

The corpus: tokenizers through `BloomTokenizerFast.save_pretrained` (with and without
model_max_length, whose absence transformers writes as its 31-digit VERY_LARGE_INTEGER; with added
and additional special tokens; after a call that left padding and truncation in tokenizer.json; both
`legacy_format` settings it accepts), generation_config.json (defaults, a model config's, and
non-defaults), a sharded safetensors checkpoint with its index, the config.json of every released
size (written from the hub's own spellings), fine-tuned classifiers' configs (labels, problem_type),
and a hub cache holding all of it, read offline by hub name.

`python -m tests.reference.test_live_artifacts` rewrites tests/data/transformers-saved/, the files
transformers writes beside tokenizer.json, which the plain suite loads without torch.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from minibloom import (BloomConfig, BloomForCausalLM, BloomForSequenceClassification, BloomForTokenClassification,
                       BloomTokenizer, GenerationConfig)
from tests.hub_utils import make_hub_cache
from tests.reference.reference_utils import torch, torch_bloom, transformers

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
TOKENIZER_DIR = os.path.join(DATA, "tokenizer")
SAVED_DIR = os.path.join(DATA, "transformers-saved")  # tokenizer_config.json, special_tokens_map.json
SAVED_FILES = ("tokenizer_config.json", "special_tokens_map.json")
VERY_LARGE_INTEGER = 1000000000000000019884624838656  # int(1e30): transformers' "no limit"
TEXTS = ["Hello world", "ROMEO.\nBut soft, what light <extra> through yonder window breaks?",
         "  two  spaces\tand a tab", "日本語のテキストと한국어", "<s>special</s><pad> <sp1>wordy", ""]
TINY = dict(vocab_size=8192, hidden_size=32, n_layer=2, n_head=4, pad_token_id=3)


def their_tokenizer(**kwargs):
    return transformers.BloomTokenizerFast.from_pretrained(TOKENIZER_DIR, **kwargs)


def assert_same_tokenizer(ours, theirs, texts=TEXTS):
    """Equal ids text by text and in a padded batch, and the settings that change them."""
    assert (ours.padding_side, ours.truncation_side) == (theirs.padding_side, theirs.truncation_side)
    assert ours.pad_token == theirs.pad_token and len(ours) == len(theirs)
    for text in texts:
        assert ours.encode(text) == theirs(text)["input_ids"], text
        assert ours.decode(ours.encode(text)) == theirs.decode(theirs(text)["input_ids"]), text
    batch_ours, batch_theirs = ours(texts, padding=True), theirs(texts, padding=True)
    assert batch_ours["input_ids"] == batch_theirs["input_ids"]
    assert batch_ours["attention_mask"] == batch_theirs["attention_mask"]


def write_committed_files(out: str = SAVED_DIR) -> None:
    """What `BloomTokenizerFast.save_pretrained` writes beside tokenizer.json for the test tokenizer
    (its tokenizer.json is tests/data/tokenizer/tokenizer.json's content, re-indented)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        their_tokenizer().save_pretrained(tmp)
        os.makedirs(out, exist_ok=True)
        for name in SAVED_FILES:
            shutil.copyfile(os.path.join(tmp, name), os.path.join(out, name))


def test_the_committed_files_are_what_transformers_writes(tmp_path):
    their_tokenizer().save_pretrained(tmp_path)
    for name in SAVED_FILES:
        with open(os.path.join(SAVED_DIR, name), "rb") as committed:
            assert (tmp_path / name).read_bytes() == committed.read(), f"rerun write_committed_files: {name}"
    with open(os.path.join(TOKENIZER_DIR, "tokenizer.json")) as f:
        assert json.loads((tmp_path / "tokenizer.json").read_text()) == json.load(f)


# ------------------------------------------------------------------------------------- tokenizers

@pytest.mark.parametrize("legacy_format", [None, False])
@pytest.mark.parametrize("model_max_length", [None, 2048, 5])
def test_a_tokenizer_saved_by_transformers_loads(tmp_path, model_max_length, legacy_format):
    kwargs = {} if model_max_length is None else {"model_max_length": model_max_length}
    their_tokenizer(**kwargs).save_pretrained(tmp_path, legacy_format=legacy_format)
    written = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert written["model_max_length"] == (VERY_LARGE_INTEGER if model_max_length is None else model_max_length)
    ours, theirs = BloomTokenizer.from_pretrained(tmp_path), transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert ours.model_max_length == model_max_length  # 1e30 is "no limit", as transformers treats it
    assert_same_tokenizer(ours, theirs)
    long_text = "hello world " * 20
    assert ours(long_text, truncation=True)["input_ids"] == theirs(long_text, truncation=True)["input_ids"]


def test_transformers_writes_no_legacy_files_for_bloom(tmp_path):
    """legacy_format=True would write added_tokens.json and a slow vocabulary; BLOOM has no slow
    tokenizer, so transformers refuses, and a fast tokenizer's added tokens live in tokenizer.json."""
    with pytest.raises(ValueError, match="legacy"):
        their_tokenizer().save_pretrained(tmp_path, legacy_format=True)
    assert not (tmp_path / "added_tokens.json").exists()


@pytest.mark.parametrize("pad_token", [None, "</s>"])
def test_added_and_special_tokens_saved_by_transformers_load(tmp_path, pad_token):
    theirs = their_tokenizer()
    theirs.add_tokens(["<extra>", "wordy"])
    theirs.add_special_tokens({"additional_special_tokens": ["<sp1>", "<sp2>"]})
    if pad_token:
        theirs.pad_token = pad_token
    files = {os.path.basename(f) for f in theirs.save_pretrained(tmp_path)}
    assert {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} <= files
    added = json.loads((tmp_path / "tokenizer.json").read_text())["added_tokens"]
    assert [t["content"] for t in added][-4:] == ["<extra>", "wordy", "<sp1>", "<sp2>"]
    ours, reloaded = BloomTokenizer.from_pretrained(tmp_path), transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert ours.get_vocab() == reloaded.get_vocab()
    assert_same_tokenizer(ours, reloaded)
    ids = reloaded("<sp1>wordy <extra></s>")["input_ids"]
    assert ours.decode(ids, skip_special_tokens=True) == reloaded.decode(ids, skip_special_tokens=True)


def test_a_tokenizer_saved_after_a_padded_truncated_call_loads(tmp_path):
    """transformers leaves the last call's padding and truncation in the backend, and save_pretrained
    writes them into tokenizer.json; its own __call__ resets both per call, so they change no ids."""
    theirs = their_tokenizer()
    theirs(["a b c d e f g h i j k l m n"], padding="max_length", truncation=True, max_length=8)
    theirs.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    assert data["truncation"] is not None and data["padding"] is not None  # the case is real
    ours, reloaded = BloomTokenizer.from_pretrained(tmp_path), transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert_same_tokenizer(ours, reloaded, TEXTS + ["a b c d e f g h i j k l m n o p"])


# ------------------------------------------------------------------------------ generation configs

def assert_same_generation_config(ours: GenerationConfig, theirs) -> None:
    for name in ours.__dataclass_fields__:
        value = getattr(theirs, name)
        if name == "eos_token_id":
            value = [] if value is None else [value] if isinstance(value, int) else list(value)
        elif name == "output_logits" and value is None:  # transformers' default: unset, i.e. off
            value = False
        assert getattr(ours, name) == value, name


@pytest.mark.parametrize("settings", [
    {},
    dict(max_new_tokens=40, do_sample=True, temperature=0.7, top_k=20, top_p=0.9, repetition_penalty=1.3,
         no_repeat_ngram_size=3, min_new_tokens=2, eos_token_id=[2, 3], pad_token_id=3, bos_token_id=1),
    dict(num_beams=4, length_penalty=0.5, early_stopping=True, num_return_sequences=2, max_length=64,
         bad_words_ids=[[5], [6, 7]], eos_token_id=2),
    dict(early_stopping="never", num_beams=2, stop_strings=["\n\n"], min_length=3),
], ids=["defaults", "sampling", "beams", "never"])
def test_generation_configs_saved_by_transformers_load(tmp_path, settings):
    theirs = transformers.GenerationConfig(**settings)
    theirs.save_pretrained(tmp_path)
    assert_same_generation_config(GenerationConfig.from_pretrained(tmp_path), theirs)


def test_a_models_generation_config_saved_by_transformers_loads(tmp_path):
    theirs = torch_bloom(transformers.BloomForCausalLM, 0, **TINY)
    theirs.save_pretrained(tmp_path)
    assert (tmp_path / "generation_config.json").exists()
    ours = BloomForCausalLM.from_pretrained(tmp_path)
    assert_same_generation_config(ours.generation_config, theirs.generation_config)


# ----------------------------------------------------------------------------------- checkpoints

def test_a_sharded_checkpoint_saved_by_transformers_loads(tmp_path):
    theirs = torch_bloom(transformers.BloomForCausalLM, 1, **TINY)
    theirs.save_pretrained(tmp_path, max_shard_size="100KB", safe_serialization=True)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    ours = BloomForCausalLM.from_pretrained(tmp_path)
    state = theirs.state_dict()
    for name, value in ours.params.items():
        np.testing.assert_array_equal(np.asarray(value), state["transformer." + name].numpy(), err_msg=name)
    ids = np.array([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        expected = theirs(torch.from_numpy(ids)).logits.numpy()
    assert np.abs(ours(ids).logits - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())


# The released configs as the hub spells them (REFERENCE_NOTES §1, minibloom.config.BLOOM_FAMILY):
# bloom-560m re-saved; bloomz-560m and bloom (176B) with the legacy n_embed / num_attention_heads.
COMMON = dict(vocab_size=250880, layer_norm_epsilon=1e-5, initializer_range=0.02, bos_token_id=1, eos_token_id=2,
              pad_token_id=3, unk_token_id=0, apply_residual_connection_post_layernorm=False, use_cache=True,
              attention_dropout=0.0, hidden_dropout=0.0, slow_but_exact=False, architectures=["BloomForCausalLM"])
RELEASED = {
    "bloom-560m": dict(hidden_size=1024, n_layer=24, n_head=16, pretraining_tp=1, n_inner=None, offset_alibi=100,
                       attention_softmax_in_fp32=True, masked_softmax_fusion=True, skip_bias_add=True),
    "bloomz-560m": dict(n_embed=1024, n_layer=24, num_attention_heads=16, seq_length=2048, pretraining_tp=1),
    "bloom-1b1": dict(n_embed=1536, n_layer=24, num_attention_heads=16, pretraining_tp=1),
    "bloom-1b7": dict(hidden_size=2048, n_layer=24, n_head=16, pretraining_tp=2),
    "bloom-3b": dict(n_embed=2560, n_layer=30, num_attention_heads=32, pretraining_tp=4),
    "bloom-7b1": dict(hidden_size=4096, n_layer=30, n_head=32, pretraining_tp=4),
    "bloom": dict(n_embed=14336, n_layer=70, num_attention_heads=112, pretraining_tp=4, seq_length=2048),
}


@pytest.mark.parametrize("size", sorted(RELEASED))
def test_the_released_configs_saved_by_transformers_load(tmp_path, size):
    theirs = transformers.BloomConfig(**COMMON, **RELEASED[size])
    theirs.save_pretrained(tmp_path)
    ours = BloomConfig.from_pretrained(tmp_path)
    for name in ("vocab_size", "hidden_size", "n_layer", "n_head", "pretraining_tp", "layer_norm_epsilon",
                 "bos_token_id", "eos_token_id", "pad_token_id", "num_labels", "tie_word_embeddings"):
        assert getattr(ours, name) == getattr(theirs, name), name
    with torch.device("meta"):  # transformers' parameter shapes, without allocating 176B parameters
        model = transformers.BloomForCausalLM(theirs)
    shapes = {k.removeprefix("transformer."): tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v) for k, v in BloomForCausalLM.param_shapes(ours).items()} == \
        {k: v for k, v in shapes.items() if k != "lm_head.weight"}  # tied to word_embeddings


CLASSIFIERS = {
    "sentiment": (BloomForSequenceClassification, transformers.BloomForSequenceClassification,
                  dict(id2label={0: "negative", 1: "neutral", 2: "positive"},
                       label2id={"negative": 0, "neutral": 1, "positive": 2},
                       problem_type="single_label_classification")),
    "regression": (BloomForSequenceClassification, transformers.BloomForSequenceClassification,
                   dict(num_labels=1, problem_type="regression")),
    "multi_label": (BloomForSequenceClassification, transformers.BloomForSequenceClassification,
                    dict(id2label={0: "toxic", 1: "obscene"}, label2id={"toxic": 0, "obscene": 1},
                         problem_type="multi_label_classification")),
    "ner": (BloomForTokenClassification, transformers.BloomForTokenClassification,
            dict(id2label={0: "O", 1: "B-PER", 2: "I-PER"}, label2id={"O": 0, "B-PER": 1, "I-PER": 2},
                 classifier_dropout=0.1)),
}


@pytest.mark.parametrize("task", sorted(CLASSIFIERS))
def test_a_fine_tuned_classifier_saved_by_transformers_loads(tmp_path, task):
    ours_cls, their_cls, labels = CLASSIFIERS[task]
    theirs = torch_bloom(their_cls, 2, **TINY, **labels)
    theirs.save_pretrained(tmp_path)
    ours = ours_cls.from_pretrained(tmp_path)
    assert ours.config.id2label == theirs.config.id2label and ours.config.label2id == theirs.config.label2id
    assert ours.config.num_labels == theirs.config.num_labels
    assert ours.config.problem_type == theirs.config.problem_type
    ids, mask = np.array([[5, 6, 7, 8], [3, 3, 9, 10]]), np.array([[1, 1, 1, 1], [0, 0, 1, 1]])
    with torch.no_grad():
        expected = theirs(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
    got = ours(ids, attention_mask=mask).logits
    assert np.abs(got - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())


# ------------------------------------------------------------------------------------- hub cache

def test_a_hub_cache_of_transformers_files_loads_by_name_offline(tmp_path, monkeypatch):
    """The checkpoint and tokenizer as transformers saves them, in huggingface_hub's cache layout;
    minibloom and transformers read the same repo name offline and agree."""
    saved = tmp_path / "saved"
    torch_bloom(transformers.BloomForCausalLM, 3, **TINY).save_pretrained(saved)
    their_tokenizer().save_pretrained(saved)
    cache, repo = str(tmp_path / "cache"), "bigscience-test/transformers-saved"
    make_hub_cache(cache, repo, str(saved))
    monkeypatch.setenv("HF_HUB_CACHE", cache)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ours = BloomTokenizer.from_pretrained(repo)
    theirs = transformers.AutoTokenizer.from_pretrained(repo, cache_dir=cache, local_files_only=True)
    assert ours.model_max_length is None and theirs.model_max_length == VERY_LARGE_INTEGER
    assert_same_tokenizer(ours, theirs)
    model = transformers.BloomForCausalLM.from_pretrained(repo, cache_dir=cache, local_files_only=True).eval()
    ids = np.array([ours.encode("ROMEO.\nBut soft")])
    with torch.no_grad():
        expected = model(torch.from_numpy(ids)).logits.numpy()
    got = BloomForCausalLM.from_pretrained(repo)(ids).logits
    assert np.abs(got - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())


if __name__ == "__main__":
    write_committed_files()
    print(f"wrote {', '.join(SAVED_FILES)} into {SAVED_DIR}")
