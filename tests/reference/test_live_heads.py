"""Live differential tests of the four heads and their losses against transformers 4.57.1."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minibloom
from tests.conftest import assert_close
from tests.reference.reference_utils import mirror, torch, torch_bloom, transformers

PAD = 3


@st.composite
def head_setups(draw):
    n_head = draw(st.integers(1, 6))
    config = dict(vocab_size=draw(st.integers(8, 40)), hidden_size=n_head * draw(st.integers(2, 8)), n_head=n_head,
                  n_layer=draw(st.integers(1, 2)), pad_token_id=PAD,
                  apply_residual_connection_post_layernorm=draw(st.booleans()))
    B, T = draw(st.integers(1, 4)), draw(st.integers(1, 10))
    ids = np.array(draw(st.lists(st.lists(st.integers(4, config["vocab_size"] - 1), min_size=T, max_size=T),
                                 min_size=B, max_size=B)), dtype=np.int64)
    for b in range(B):  # random left or right padding, written into the ids as the pad token
        pad = draw(st.integers(0, T))
        if draw(st.booleans()):
            ids[b, :pad] = PAD
        else:
            ids[b, T - pad:] = PAD
    return config, ids, (ids != PAD).astype(np.int64)


def compare(ref_out, our_out, fields):
    for field in fields:
        expected = getattr(ref_out, field)
        if expected is None:
            assert getattr(our_out, field) is None
        elif field == "loss":
            e, g = float(expected), float(our_out.loss)
            assert (np.isnan(e) and np.isnan(g)) or abs(g - e) <= 1e-5 * max(1.0, abs(e)), (g, e)
        else:
            assert_close(getattr(our_out, field), expected.numpy(), field)


@given(head_setups(), st.integers(0, 10**6), st.data())
def test_causal_lm_logits_and_loss(setup, seed, data):
    config, ids, mask = setup
    labels = np.where(np.array(data.draw(st.lists(st.booleans(), min_size=ids.size, max_size=ids.size)))
                      .reshape(ids.shape), -100, ids)
    ref = torch_bloom(transformers.BloomForCausalLM, seed, **config)
    with torch.no_grad():
        expected = ref(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), labels=torch.from_numpy(labels),
                       use_cache=False)
    got = mirror(ref, minibloom.BloomForCausalLM)(ids, attention_mask=mask, labels=labels)
    compare(expected, got, ["logits", "loss"])


@given(head_setups(), st.integers(0, 10**6), st.integers(1, 5),
       st.sampled_from([None, "regression", "single_label_classification", "multi_label_classification"]), st.data())
def test_sequence_classification_pooling_and_every_problem_type(setup, seed, num_labels, problem_type, data):
    config, ids, mask = setup
    B = ids.shape[0]
    if problem_type == "single_label_classification" or (problem_type is None and num_labels > 1 and
                                                         data.draw(st.booleans())):
        labels = np.array(data.draw(st.lists(st.integers(0, num_labels - 1), min_size=B, max_size=B)), np.int64)
    else:
        labels = np.array(data.draw(st.lists(st.floats(-2, 2, width=32), min_size=B * num_labels,
                                             max_size=B * num_labels)), np.float32).reshape(B, num_labels)
        if problem_type == "multi_label_classification":
            labels = (labels > 0).astype(np.float32)
    ref = torch_bloom(transformers.BloomForSequenceClassification, seed, num_labels=num_labels,
                      problem_type=problem_type, **config)
    ours = mirror(ref, minibloom.BloomForSequenceClassification)
    with torch.no_grad():
        expected = ref(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), labels=torch.from_numpy(labels),
                       use_cache=False)
    compare(expected, ours(ids, attention_mask=mask, labels=labels), ["logits", "loss"])
    assert ours.config.problem_type == ref.config.problem_type


@given(head_setups(), st.integers(0, 10**6), st.integers(1, 5), st.data())
def test_token_classification_with_ignored_labels(setup, seed, num_labels, data):
    config, ids, mask = setup
    labels = np.array(data.draw(st.lists(st.sampled_from([-100] + list(range(num_labels))), min_size=ids.size,
                                         max_size=ids.size)), np.int64).reshape(ids.shape)
    ref = torch_bloom(transformers.BloomForTokenClassification, seed, num_labels=num_labels, **config)
    with torch.no_grad():
        expected = ref(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), labels=torch.from_numpy(labels))
    got = mirror(ref, minibloom.BloomForTokenClassification)(ids, attention_mask=mask, labels=labels)
    compare(expected, got, ["logits", "loss"])


@pytest.mark.filterwarnings("ignore::FutureWarning")  # transformers' QA head always passes position_ids
@given(head_setups(), st.integers(0, 10**6), st.data())
def test_question_answering_with_out_of_range_positions(setup, seed, data):
    config, ids, mask = setup
    B, T = ids.shape
    positions = st.lists(st.integers(-3, T + 3), min_size=B, max_size=B)
    start, end = (np.array(data.draw(positions), np.int64) for _ in range(2))
    ref = torch_bloom(transformers.BloomForQuestionAnswering, seed, **config)
    with torch.no_grad():
        expected = ref(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                       start_positions=torch.from_numpy(start), end_positions=torch.from_numpy(end))
    got = mirror(ref, minibloom.BloomForQuestionAnswering)(ids, attention_mask=mask, start_positions=start,
                                                           end_positions=end)
    compare(expected, got, ["start_logits", "end_logits", "loss"])


def test_untied_lm_head_checkpoint_from_transformers(tmp_path):
    ref = torch_bloom(transformers.BloomForCausalLM, 7, vocab_size=20, hidden_size=16, n_head=4, n_layer=1,
                      tie_word_embeddings=False)
    ref.save_pretrained(tmp_path)
    ids = np.array([[4, 5, 6]])
    with torch.no_grad():
        expected = ref(torch.from_numpy(ids), use_cache=False).logits.numpy()
    assert_close(minibloom.BloomForCausalLM.from_pretrained(tmp_path)(ids).logits, expected, "logits")


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_transformers_loads_our_head_checkpoints(tmp_path):
    for name in ("BloomForCausalLM", "BloomForSequenceClassification", "BloomForTokenClassification",
                 "BloomForQuestionAnswering"):
        ours = getattr(minibloom, name)(minibloom.BloomConfig(vocab_size=20, hidden_size=16, n_head=4, n_layer=1,
                                                              num_labels=3, pad_token_id=PAD), seed=1)
        ours.save_pretrained(tmp_path / name)
        theirs = getattr(transformers, name).from_pretrained(tmp_path / name).eval()
        ids = np.array([[4, 5, 6]])
        with torch.no_grad():
            expected = theirs(torch.from_numpy(ids))
        field = "start_logits" if "Question" in name else "logits"
        assert_close(getattr(ours(ids), field), getattr(expected, field).numpy(), f"{name}.{field}")
