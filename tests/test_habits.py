"""What a transformers user reaches for (issue 28), where no reference value is needed: the Auto
classes' refusals, eval/train/to/dtype/device, BatchEncoding.to, TextIteratorStreamer in a thread
and its timeout, generation_config's life cycle, the stale generation_config.json, compute_transition_scores'
checks, and warnings that point at the caller's line."""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
import warnings

import numpy as np
import pytest

import minibloom
from minibloom import (EMBEDDED_CHECKPOINT, AutoConfig, AutoModel, AutoModelForCausalLM,
                       AutoModelForSequenceClassification, AutoTokenizer, BloomConfig, BloomForCausalLM, BloomModel,
                       CheckpointError, ConfigError, InputError, TextIteratorStreamer)

SMALL = dict(vocab_size=32, hidden_size=8, n_head=2, n_layer=1)


def recorded(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, caught


# ------------------------------------------------------------------------------------ Auto classes

def test_auto_classes_return_the_bloom_class_of_each_task(tmp_path):
    BloomForCausalLM(BloomConfig(**SMALL)).save_pretrained(tmp_path)
    assert type(AutoModelForCausalLM.from_pretrained(tmp_path)) is BloomForCausalLM
    assert type(AutoModel.from_pretrained(tmp_path)) is BloomModel
    head, _ = recorded(lambda: AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=3))
    assert head.config.num_labels == 3
    assert AutoConfig.from_pretrained(tmp_path, pad_token_id=0).pad_token_id == 0
    assert type(AutoModelForCausalLM.from_config(BloomConfig(**SMALL))) is BloomForCausalLM
    assert AutoTokenizer.from_pretrained(EMBEDDED_CHECKPOINT).encode("ROMEO") == \
        minibloom.BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT).encode("ROMEO")


def test_a_config_of_another_model_type_is_a_config_error_naming_the_file(tmp_path):
    BloomModel(BloomConfig(**SMALL)).save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**data, "model_type": "gpt2"}))
    for load in (AutoConfig.from_pretrained, AutoModel.from_pretrained, AutoModelForCausalLM.from_pretrained):
        with pytest.raises(ConfigError, match=r"config.json.*model_type.*'gpt2'"):
            load(tmp_path)
    with pytest.raises(InputError, match="BloomConfig"):
        AutoModelForCausalLM.from_config({"n_layer": 1})
    with pytest.raises(TypeError, match="from_pretrained"):
        AutoModel()


# -------------------------------------------------------------------------- model attributes

def test_eval_train_to_dtype_and_device():
    lm = BloomForCausalLM(BloomConfig(**SMALL))
    assert lm.training is False and lm.eval() is lm
    trained, caught = recorded(lm.train)
    assert trained is lm and lm.training and lm.transformer.training and caught == []  # dropout 0.0: nothing to say
    assert lm.train(False) is lm and not lm.training
    ids = np.array([[1, 2, 3]])
    before = lm(ids).logits
    lm.train()
    np.testing.assert_array_equal(lm(ids).logits, before)  # no dropout: the same forward in both modes
    assert lm.device == "cpu" and lm.dtype == np.float32
    assert lm.to("cpu") is lm and lm.to(np.float32) is lm and lm.to("cpu", dtype="float32") is lm
    with pytest.raises(InputError, match="CudaBloomForCausalLM"):
        lm.to("cuda")
    with pytest.raises(InputError, match="storage="):
        lm.to(np.float16)
    with pytest.raises(InputError, match="mode"):
        lm.train("yes")


def test_train_with_dropout_says_dropout_is_not_implemented():
    lm = BloomForCausalLM(BloomConfig(**SMALL, hidden_dropout=0.1))
    _, caught = recorded(lm.train)
    assert len(caught) == 1 and "dropout is not implemented" in str(caught[0].message)
    assert caught[0].filename == __file__


def test_batch_encoding_to_cpu_returns_itself():
    tok = minibloom.BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
    enc = tok(["ROMEO.", "O"], padding=True, return_tensors="np")
    assert enc.to("cpu") is enc and enc.to("cpu")["input_ids"] is enc["input_ids"]
    with pytest.raises(InputError, match="cuda"):
        enc.to("cuda:0")
    with pytest.raises(AttributeError, match="input_ids"):
        enc.nothing


# ------------------------------------------------------------------------------ streaming

def test_text_iterator_streamer_gives_the_generated_text_from_another_thread():
    lm = BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT)
    tok = minibloom.BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
    ids = np.array([tok.encode("ROMEO.\n")])
    streamer = TextIteratorStreamer(tok, skip_prompt=True, timeout=60)
    result = {}
    worker = threading.Thread(target=lambda: result.update(out=lm.generate(ids, max_new_tokens=12,
                                                                           streamer=streamer)))
    worker.start()
    text = "".join(streamer)
    worker.join(60)
    assert text == tok.decode(result["out"][0, ids.shape[1]:]) and text


def test_text_iterator_streamer_times_out_with_queue_empty():
    tok = minibloom.BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
    streamer = TextIteratorStreamer(tok, timeout=0.05)
    with pytest.raises(queue.Empty):
        next(streamer)  # nothing is generating
    streamer.put(np.array([[5, 6]]))  # the prompt, not skipped: its text up to the last space
    streamer.end()
    assert "".join(streamer) == tok.decode([5, 6])
    with pytest.raises(InputError, match="timeout"):
        TextIteratorStreamer(tok, timeout=-1)


# ------------------------------------------------------------------------ generation_config

def test_generation_config_is_made_at_init_and_a_later_config_change_does_not_reach_it():
    lm = BloomForCausalLM(BloomConfig(**SMALL, eos_token_id=2))
    lm.config.eos_token_id = 7
    assert lm.generation_config.eos_token_id == [2]
    lm.config.max_length = 6  # a generation setting in the config: transformers' legacy rule re-reads it
    out, caught = recorded(lambda: lm.generate(np.array([[1, 4]])))
    assert lm.generation_config.eos_token_id == [7] and lm.generation_config.max_length == 6
    assert [w.filename for w in caught if "modified the pretrained model configuration" in str(w.message)] == [__file__]
    assert out.shape[1] <= 6


def test_a_base_model_saved_over_a_causal_lm_removes_its_generation_config(tmp_path):
    lm = BloomForCausalLM(BloomConfig(**SMALL))
    lm.generation_config = lm.generation_config.update(max_new_tokens=3)
    lm.save_pretrained(tmp_path)
    assert (tmp_path / "generation_config.json").exists()
    BloomModel(BloomConfig(**SMALL)).save_pretrained(tmp_path)
    assert not (tmp_path / "generation_config.json").exists()
    assert BloomForCausalLM.from_pretrained(tmp_path).generation_config.max_new_tokens is None


def test_compute_transition_scores_checks_its_arguments():
    lm = BloomForCausalLM(BloomConfig(**SMALL))
    out = lm.generate(np.array([[1, 4]]), max_new_tokens=3, eos_token_id=None, return_dict_in_generate=True,
                      output_scores=True)
    scores = lm.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
    assert scores.shape == (1, 3) and (scores <= 0).all()
    expected = [np.log(np.exp(s[0] - s[0].max()) / np.exp(s[0] - s[0].max()).sum())[t]
                for s, t in zip(out.scores, out.sequences[0, 2:])]
    np.testing.assert_allclose(scores[0], expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="scores"):
        lm.compute_transition_scores(out.sequences, ())
    with pytest.raises(InputError, match="beam_indices"):
        lm.compute_transition_scores(out.sequences, out.scores, beam_indices=np.zeros((1, 9), np.int64))


# ------------------------------------------------------------------------------- warnings

def test_a_fresh_heads_warning_points_at_the_callers_line(tmp_path):
    BloomModel(BloomConfig(**SMALL)).save_pretrained(tmp_path)
    for cls, overrides in ((minibloom.BloomForSequenceClassification, {}), (minibloom.BloomForQuestionAnswering, {}),
                           (BloomForCausalLM, {"tie_word_embeddings": False})):  # the last via heads.py's override
        _, caught = recorded(lambda: cls.from_pretrained(tmp_path, **overrides))
        assert [w.filename for w in caught] == [__file__]  # not heads.py or pretrained.py
        assert "\n" not in str(caught[0].message)


def test_no_warning_where_nothing_is_wrong(tmp_path):
    minibloom.BloomForSequenceClassification(BloomConfig(**SMALL, pad_token_id=0)).save_pretrained(tmp_path)
    _, caught = recorded(lambda: minibloom.BloomForSequenceClassification.from_pretrained(tmp_path))
    assert caught == []
    _, caught = recorded(lambda: BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT).generate(
        np.array([[1, 4]]), max_new_tokens=2))
    assert caught == []


def test_a_storage_conversion_warning_points_at_the_callers_line(tmp_path):
    BloomForCausalLM(BloomConfig(**SMALL)).save_pretrained(tmp_path)
    _, caught = recorded(lambda: BloomForCausalLM.from_pretrained(tmp_path, storage="float16"))
    assert [w.filename for w in caught] == [__file__]
