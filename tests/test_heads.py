"""Task-head behaviour that needs no reference: pooling, weight tying, loading, saving, bad labels."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibloom import (BloomConfig, BloomForCausalLM, BloomForQuestionAnswering, BloomForSequenceClassification,
                       BloomForTokenClassification, BloomModel, InputError, WeightsMismatchError)
from minibloom.heads import last_non_pad_index
from minibloom.safetensors_io import load_file, read_header, save_file
from tests.conftest import HF_EXPECTED_DIR

TINY = dict(vocab_size=30, hidden_size=16, n_head=4, n_layer=2, pad_token_id=3)


def test_last_non_pad_index_follows_transformers_rule():
    ids = np.array([[8, 3, 10, 3, 12], [3, 3, 5, 6, 7], [5, 6, 7, 3, 3], [3, 3, 3, 3, 3], [1, 2, 4, 5, 6]])
    assert last_non_pad_index(ids, 3, 5).tolist() == [4, 4, 2, 0, 4]  # all-pad row -> 0
    assert last_non_pad_index(None, 3, 2).tolist() == [-1, -1]  # inputs_embeds: the last position
    with pytest.raises(InputError, match="batch sizes > 1 if no padding token"):
        last_non_pad_index(ids, None, 5)


@given(st.integers(1, 6), st.integers(0, 4), st.integers(0, 10**6))
def test_sequence_pooling_picks_the_same_token_left_or_right_padded(T, pad, seed):
    model = BloomForSequenceClassification(BloomConfig(**TINY, num_labels=3), seed=seed % 100)
    rng = np.random.default_rng(seed)
    real = rng.integers(4, 30, size=T)
    right = np.concatenate([real, np.full(pad, 3)])[None]
    left = np.concatenate([np.full(pad, 3), real])[None]
    r = model(right, attention_mask=(right != 3).astype(int)).logits
    l_ = model(left, attention_mask=(left != 3).astype(int)).logits
    np.testing.assert_allclose(r, l_, atol=1e-5)
    np.testing.assert_allclose(r, model(real[None]).logits, atol=1e-5)


def test_causal_lm_ties_lm_head_to_the_embeddings_and_saves_no_lm_head(tmp_path):
    model = BloomForCausalLM(BloomConfig(**TINY), seed=1)
    ids = np.array([[1, 2, 3]])
    hidden = model.transformer(ids).last_hidden_state
    np.testing.assert_allclose(model(ids).logits, hidden @ model.params["word_embeddings.weight"].T, atol=1e-5)
    model.save_pretrained(tmp_path)
    names, _ = read_header(tmp_path / "model.safetensors")
    assert "lm_head.weight" not in names and all(n.startswith("transformer.") for n in names)


def test_tied_model_ignores_a_stored_lm_head_untied_uses_it(tmp_path):
    model = BloomForCausalLM(BloomConfig(**TINY), seed=2)
    model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    state["lm_head.weight"] = np.zeros((30, 16), np.float32)
    save_file(state, tmp_path / "model.safetensors")
    ids = np.array([[4, 5]])
    np.testing.assert_array_equal(BloomForCausalLM.from_pretrained(tmp_path)(ids).logits, model(ids).logits)
    untied = BloomForCausalLM.from_pretrained(tmp_path, tie_word_embeddings=False)
    assert np.all(untied(ids).logits == 0)


def test_loss_with_labels_equals_hand_shifted_cross_entropy():
    model = BloomForCausalLM(BloomConfig(**TINY), seed=3)
    ids = np.array([[5, 6, 7, 8]])
    out = model(ids, labels=ids)
    logp = out.logits[0] - np.log(np.exp(out.logits[0]).sum(-1, keepdims=True))
    by_hand = -np.mean([logp[t, ids[0, t + 1]] for t in range(3)])
    assert out.loss == pytest.approx(by_hand, rel=1e-5)


def test_base_checkpoint_loads_into_a_head_with_a_fresh_head_and_a_warning():
    case = os.path.join(HF_EXPECTED_DIR, "heads8")
    with pytest.warns(UserWarning, match=r"\['score.weight'\] not in .*newly initialised"):
        model = BloomForSequenceClassification.from_pretrained(case, num_labels=5, pad_token_id=0)
    assert model.params["score.weight"].shape == (5, 32)
    base = BloomModel.from_pretrained(case)
    ids = np.array([[1, 2, 3]])
    np.testing.assert_array_equal(model.transformer(ids).last_hidden_state, base(ids).last_hidden_state)


def test_num_labels_mismatching_the_checkpoint_head_is_named(tmp_path):
    shutil.copytree(os.path.join(HF_EXPECTED_DIR, "seq_cls_single_label"), tmp_path / "ck")
    with pytest.raises(WeightsMismatchError, match=r"num_labels.*'score.weight' has shape \(3, 24\), the config needs \(5, 24\)"):
        BloomForSequenceClassification.from_pretrained(tmp_path / "ck", num_labels=5)


def test_problem_type_is_inferred_once_and_written_to_the_config():
    model = BloomForSequenceClassification(BloomConfig(**TINY, num_labels=3))
    ids = np.array([[5, 6], [7, 8]])
    model(ids, labels=np.array([0, 2]))
    assert model.config.problem_type == "single_label_classification"
    with pytest.raises(InputError, match="labels must hold integers"):
        model(ids, labels=np.array([[0.0, 1.0, 0.0]] * 2))


@pytest.mark.parametrize("cls,kwargs,message", [
    (BloomForCausalLM, dict(labels=np.array([[1, 2]])), r"labels has shape \(1, 2\), expected \(2, 3\)"),
    (BloomForCausalLM, dict(labels=np.ones((2, 3))), "labels must hold integers"),
    (BloomForCausalLM, dict(labels=np.full((2, 3), 30)), "labels holds 30"),
    (BloomForTokenClassification, dict(labels=np.full((2, 3), 2)), "labels holds 2"),
    (BloomForTokenClassification, dict(labels=np.zeros(3, int)), "labels has shape"),
    (BloomForSequenceClassification, dict(labels=np.array([0, 1, 1])), r"labels has shape \(3,\), expected \(2,\)"),
    (BloomForQuestionAnswering, dict(start_positions=np.array([0.5, 1]), end_positions=np.array([1, 2])),
     "start_positions must hold integers"),
    (BloomForQuestionAnswering, dict(start_positions=np.array([0]), end_positions=np.array([1, 2])),
     r"start_positions has shape \(1,\), expected \(2,\)"),
])
def test_bad_labels_raise_input_errors_naming_the_argument(cls, kwargs, message):
    model = cls(BloomConfig(**TINY, num_labels=2))
    with pytest.raises(InputError, match=message):
        model(np.array([[5, 6, 7], [8, 9, 10]]), **kwargs)


def test_multi_label_float_labels_with_wrong_width_are_named():
    model = BloomForSequenceClassification(BloomConfig(**TINY, num_labels=3))
    with pytest.raises(InputError, match=r"labels has shape \(2, 2\), expected \(2, 3\)"):
        model(np.array([[5, 6], [7, 8]]), labels=np.ones((2, 2), np.float32))


def test_question_answering_ignores_positions_past_the_end_but_counts_negative_ones():
    model = BloomForQuestionAnswering(BloomConfig(**TINY), seed=4)
    ids = np.array([[5, 6, 7, 8], [9, 10, 11, 12]])
    ends = np.array([2, 3])
    out = model(ids, start_positions=np.array([0, 1]), end_positions=ends)
    negative = model(ids, start_positions=np.array([-5, 1]), end_positions=ends)
    assert negative.loss == pytest.approx(out.loss)  # -5 clamps to 0 and counts
    past_end = model(ids, start_positions=np.array([9, 1]), end_positions=ends)  # row 0's start is ignored
    logp = out.start_logits - np.log(np.exp(out.start_logits).sum(-1, keepdims=True))
    end_loss = 2 * out.loss + (logp[0, 0] + logp[1, 1]) / 2  # total = (start + end) / 2
    assert past_end.loss == pytest.approx((-logp[1, 1] + end_loss) / 2, rel=1e-5)


def test_every_head_round_trips_through_save_pretrained(tmp_path):
    ids = np.array([[5, 6, 7]])
    for cls in (BloomForCausalLM, BloomForSequenceClassification, BloomForTokenClassification,
                BloomForQuestionAnswering):
        model = cls(BloomConfig(**TINY, num_labels=3), seed=5)
        model.save_pretrained(tmp_path / cls.__name__)
        back = cls.from_pretrained(tmp_path / cls.__name__)
        a, b = model(ids), back(ids)
        for field in ("logits", "start_logits"):
            if hasattr(a, field) and getattr(a, field) is not None:
                np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_logits_to_keep_returns_the_last_positions_only():
    config = BloomConfig(vocab_size=30, hidden_size=16, n_head=4, n_layer=2)
    lm = BloomForCausalLM(config, seed=1)
    ids = np.array([[3, 4, 5, 6, 7]])
    full = lm(ids).logits
    kept = lm(ids, logits_to_keep=2).logits
    assert kept.shape == (1, 2, 30)
    np.testing.assert_allclose(kept, full[:, -2:], rtol=1e-6, atol=1e-6)  # BLAS may sum in another order
    with pytest.raises(InputError, match="labels=None"):
        lm(ids, labels=ids, logits_to_keep=1)
    with pytest.raises(InputError, match="logits_to_keep"):
        lm(ids, logits_to_keep=-1)
