"""Live tests of what a transformers user reaches for (issue 28), each value compared with transformers
4.57.1: hidden states and attentions from generate, compute_transition_scores, beam search's
sequences_scores / beam_indices / scores, TextIteratorStreamer's text, the generation_config rules,
and the Auto classes."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import minibloom
from minibloom import EMBEDDED_CHECKPOINT
from tests.reference.reference_utils import embedded_pair, mirror, torch, torch_bloom, transformers

PAD = 3
CONFIG = dict(vocab_size=40, hidden_size=12, n_head=3, n_layer=2, pad_token_id=PAD, eos_token_id=2)


@pytest.fixture(scope="module")
def pair():
    theirs = torch_bloom(transformers.BloomForCausalLM, 7, **CONFIG)
    return theirs, mirror(theirs, minibloom.BloomForCausalLM)


def left_padded():
    ids = np.array([[PAD, PAD, 5, 9, 11], [6, 7, 8, 12, 30]], np.int64)
    return ids, (ids != PAD).astype(np.int64)


def run_theirs(theirs, ids, mask, **kwargs):
    with torch.no_grad():
        return theirs.generate(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), **kwargs)


def close(got, expected, name, tol=1e-5):
    expected = expected.numpy() if hasattr(expected, "numpy") else np.asarray(expected)
    assert got.shape == expected.shape, f"{name}: {got.shape} vs {expected.shape}"
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(np.isfinite(got), finite, err_msg=name)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=tol, atol=tol, err_msg=name)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generate_hidden_states_and_attentions_match_transformers(pair, num_beams):
    theirs, ours = pair
    ids, mask = left_padded()
    kwargs = dict(max_new_tokens=4, num_beams=num_beams, do_sample=False, eos_token_id=None,
                  return_dict_in_generate=True, output_hidden_states=True, output_attentions=True)
    expected = run_theirs(theirs, ids, mask, **kwargs)
    got = ours.generate(ids, mask, **kwargs)
    np.testing.assert_array_equal(got.sequences, expected.sequences.numpy())
    assert len(got.hidden_states) == len(expected.hidden_states) == 4
    assert len(got.attentions) == len(expected.attentions) == 4
    for step, (g, e) in enumerate(zip(got.hidden_states, expected.hidden_states)):
        assert len(g) == len(e) == CONFIG["n_layer"] + 1
        for layer, (a, b) in enumerate(zip(g, e)):
            close(a, b, f"hidden_states[{step}][{layer}]")
    for step, (g, e) in enumerate(zip(got.attentions, expected.attentions)):
        assert len(g) == len(e) == CONFIG["n_layer"]
        for layer, (a, b) in enumerate(zip(g, e)):
            close(a, b, f"attentions[{step}][{layer}]")  # [rows, N, L0, L0], then [rows, N, 1, L0 + step]


@pytest.mark.parametrize("length_penalty, early_stopping, n", [(1.0, False, 1), (0.5, True, 2), (-0.5, "never", 3)])
def test_beam_search_scores_indices_and_transition_scores_match_transformers(pair, length_penalty, early_stopping, n):
    theirs, ours = pair
    ids, mask = left_padded()
    kwargs = dict(max_new_tokens=6, num_beams=3, num_return_sequences=n, length_penalty=length_penalty,
                  early_stopping=early_stopping, do_sample=False, return_dict_in_generate=True,
                  output_scores=True, output_logits=True, repetition_penalty=1.2)
    expected = run_theirs(theirs, ids, mask, **kwargs)
    got = ours.generate(ids, mask, **kwargs)
    np.testing.assert_array_equal(got.sequences, expected.sequences.numpy())
    np.testing.assert_array_equal(got.beam_indices, expected.beam_indices.numpy())
    close(got.sequences_scores, expected.sequences_scores, "sequences_scores")
    assert len(got.scores) == len(expected.scores) and len(got.logits) == len(expected.logits)
    for step, (g, e) in enumerate(zip(got.scores, expected.scores)):
        close(g, e, f"scores[{step}]")
    for step, (g, e) in enumerate(zip(got.logits, expected.logits)):
        close(g, e, f"logits[{step}]")
    for normalize in (False, True):
        want = theirs.compute_transition_scores(expected.sequences, expected.scores, expected.beam_indices,
                                                normalize_logits=normalize)
        close(ours.compute_transition_scores(got.sequences, got.scores, got.beam_indices, normalize_logits=normalize),
              want, f"transition scores (normalize_logits={normalize})")
    without_scores = ours.generate(ids, mask, **{**kwargs, "output_scores": False})
    assert without_scores.sequences_scores is None and without_scores.scores is None  # as transformers
    assert run_theirs(theirs, ids, mask, **{**kwargs, "output_scores": False}).sequences_scores is None


@pytest.mark.parametrize("sample", [False, True])
def test_transition_scores_of_greedy_and_sampling_match_transformers(pair, sample):
    theirs, ours = pair
    ids, mask = left_padded()
    kwargs = dict(max_new_tokens=5, return_dict_in_generate=True, output_scores=True)
    if sample:  # top_k=1: a draw both libraries make alike, scored by the warped (temperature) scores
        kwargs.update(do_sample=True, top_k=1, temperature=0.7)
    expected = run_theirs(theirs, ids, mask, **kwargs)
    got = ours.generate(ids, mask, seed=0, **kwargs)
    np.testing.assert_array_equal(got.sequences, expected.sequences.numpy())
    for normalize in (False, True):
        want = theirs.compute_transition_scores(expected.sequences, expected.scores, normalize_logits=normalize)
        mine = ours.compute_transition_scores(got.sequences, got.scores, normalize_logits=normalize)
        close(mine, want, f"normalize_logits={normalize}")


@pytest.fixture(scope="module")
def embedded():
    return embedded_pair()


@pytest.mark.parametrize("skip_prompt", [False, True])
def test_text_iterator_streamer_yields_what_transformers_streamer_yields(embedded, skip_prompt):
    theirs, their_tok, ours, tok = embedded
    ids = np.array([tok.encode("JULIET.\nO Romeo,")])

    def drain(generate, streamer):
        worker = threading.Thread(target=generate, kwargs=dict(streamer=streamer))
        worker.start()
        items = list(streamer)
        worker.join(timeout=60)
        return items

    def their_generate(streamer):
        with torch.no_grad():
            theirs.generate(torch.from_numpy(ids), max_new_tokens=30, do_sample=False, streamer=streamer)

    expected = drain(their_generate, transformers.TextIteratorStreamer(their_tok, skip_prompt=skip_prompt, timeout=30))
    got = drain(lambda streamer: ours.generate(ids, max_new_tokens=30, streamer=streamer),
                minibloom.TextIteratorStreamer(tok, skip_prompt=skip_prompt, timeout=30))
    assert got == expected and "".join(got)


def test_generation_config_follows_the_model_config_as_transformers(pair):
    """A change to config.eos_token_id alone reaches neither library's generate; with a generation
    setting in the config too (max_length), both rebuild the generation config from it, with a warning."""
    theirs_template, _ = pair
    theirs = torch_bloom(transformers.BloomForCausalLM, 7, **CONFIG)
    ours = mirror(theirs, minibloom.BloomForCausalLM)
    ids, mask = left_padded()
    for step in ("eos only", "eos and max_length"):
        for model in (theirs, ours):
            model.config.eos_token_id = 13
            if step != "eos only":
                model.config.max_length = 9
        with warnings.catch_warnings(record=True) as ours_warned:
            warnings.simplefilter("always")
            got = ours.generate(ids, mask)
        with warnings.catch_warnings(record=True) as theirs_warned:
            warnings.simplefilter("always")
            expected = run_theirs(theirs, ids, mask)
        np.testing.assert_array_equal(got, expected.numpy())
        assert ours.generation_config.eos_token_id == [theirs.generation_config.eos_token_id]
        modified = [w for w in theirs_warned if "modified the pretrained model configuration" in str(w.message)]
        mine = [w for w in ours_warned if "modified the pretrained model configuration" in str(w.message)]
        assert len(mine) == len(modified) == (step != "eos only")
        assert all(w.filename == __file__ for w in mine)


def test_explicit_generation_config_takes_the_models_settings_as_transformers(pair):
    theirs, ours = pair
    ids, mask = left_padded()
    theirs.generation_config.repetition_penalty = ours.generation_config.repetition_penalty = 1.5
    try:
        expected = run_theirs(theirs, ids, mask, generation_config=transformers.GenerationConfig(max_new_tokens=6))
        got = ours.generate(ids, mask, generation_config=minibloom.GenerationConfig(max_new_tokens=6))
    finally:
        theirs.generation_config.repetition_penalty = ours.generation_config.repetition_penalty = 1.0
    np.testing.assert_array_equal(got, expected.numpy())


@pytest.mark.parametrize("auto, cls", [("AutoModel", "BloomModel"), ("AutoModelForCausalLM", "BloomForCausalLM"),
                                       ("AutoModelForSequenceClassification", "BloomForSequenceClassification"),
                                       ("AutoModelForTokenClassification", "BloomForTokenClassification"),
                                       ("AutoModelForQuestionAnswering", "BloomForQuestionAnswering")])
def test_auto_classes_load_what_transformers_auto_classes_load(tmp_path, auto, cls):
    saved = torch_bloom(getattr(transformers, cls), 3, **CONFIG)
    saved.save_pretrained(tmp_path)
    theirs = getattr(transformers, auto).from_pretrained(tmp_path).eval()
    ours = getattr(minibloom, auto).from_pretrained(tmp_path)
    assert type(theirs).__name__ == type(ours).__name__ == cls
    ids, mask = left_padded()
    with torch.no_grad():
        expected = theirs(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    got = ours(input_ids=ids, attention_mask=mask)
    name = {"BloomModel": "last_hidden_state", "BloomForQuestionAnswering": "start_logits"}.get(cls, "logits")
    close(getattr(got, name), getattr(expected, name), name, tol=1e-4)
    assert minibloom.AutoConfig.from_pretrained(tmp_path).to_dict()["n_layer"] == \
        transformers.AutoConfig.from_pretrained(tmp_path).n_layer


def test_auto_tokenizer_encodes_as_transformers_auto_tokenizer():
    theirs = transformers.AutoTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
    ours = minibloom.AutoTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
    text = "ROMEO.\nBut soft, what light through yonder window breaks?"
    assert ours(text)["input_ids"] == theirs(text)["input_ids"]
    assert ours.decode(theirs(text)["input_ids"]) == theirs.decode(theirs(text)["input_ids"])


def test_model_attributes_match_transformers(pair):
    theirs, ours = pair
    assert ours.training == theirs.training is False
    assert ours.train() is ours and ours.training is True and theirs.train().training is True
    assert ours.eval() is ours and ours.training is False and theirs.eval().training is False
    assert str(theirs.device) == ours.device == "cpu"
    assert str(theirs.dtype).removeprefix("torch.") == str(ours.dtype) == "float32"
    assert ours.to("cpu") is ours and ours.to(np.float32) is ours and ours.to(torch.device("cpu")) is ours
    assert ours.to(torch.float32) is ours
