"""Live tests of generate's transformers surface: return_dict_in_generate scores and logits, the new
logits processors, stop strings, streamers, continuing from a cache, generation_config.json, the
warnings; and the model/output helpers (num_parameters, resize_token_embeddings, out[0])."""

from __future__ import annotations

import contextlib
import io
import json
import logging

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minibloom
from minibloom import EMBEDDED_CHECKPOINT, BloomTokenizer
from minibloom.generation import GenerationConfig
from minibloom.generation.streamers import TextStreamer
from tests.reference.reference_utils import embedded_pair, mirror, torch, torch_bloom, transformers

PAD = 3


def assert_scores_close(got, expected, name):
    """Equal -inf entries, and the finite ones within 1e-5 (scale-aware)."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, name
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected), err_msg=name)
    finite = np.isfinite(expected)
    err = np.abs(got[finite].astype(np.float64) - expected[finite]).max(initial=0.0)
    assert err <= 1e-5 * max(1.0, np.abs(expected[finite]).max(initial=0.0)), f"{name}: {err}"


@st.composite
def setups(draw):
    n_head = draw(st.integers(1, 3))
    config = dict(vocab_size=draw(st.integers(10, 24)), hidden_size=n_head * draw(st.integers(2, 5)), n_head=n_head,
                  n_layer=draw(st.integers(1, 2)), pad_token_id=PAD, eos_token_id=2)
    B, L = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    ids = np.array(draw(st.lists(st.lists(st.integers(4, config["vocab_size"] - 1), min_size=L, max_size=L),
                                 min_size=B, max_size=B)), np.int64)
    for b in range(B):
        ids[b, :draw(st.integers(0, L - 1))] = PAD
    V = config["vocab_size"]
    settings = dict(max_new_tokens=draw(st.integers(1, 8)), repetition_penalty=draw(st.sampled_from([1.0, 1.3])))
    if draw(st.booleans()):
        settings["min_new_tokens"] = draw(st.integers(0, 6))
    if draw(st.booleans()):
        settings["min_length"] = draw(st.integers(0, 10))
    if draw(st.booleans()):
        settings["no_repeat_ngram_size"] = draw(st.integers(1, 3))
    if draw(st.booleans()):
        settings["bad_words_ids"] = draw(st.lists(st.lists(st.integers(0, V - 1), min_size=1, max_size=3),
                                                  min_size=1, max_size=3))
    return config, ids, (ids != PAD).astype(np.int64), settings


@given(setups(), st.integers(0, 10**6))
def test_return_dict_scores_logits_and_new_processors_match_transformers(setup, seed):
    config, ids, mask, settings = setup
    ref = torch_bloom(transformers.BloomForCausalLM, seed, **config)
    with torch.no_grad():
        ref.transformer.word_embeddings.weight.mul_(0.3)
        expected = ref.generate(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), do_sample=False,
                                return_dict_in_generate=True, output_scores=True, output_logits=True, **settings)
    got = mirror(ref, minibloom.BloomForCausalLM).generate(ids, attention_mask=mask, return_dict_in_generate=True,
                                                          output_scores=True, output_logits=True, **settings)
    np.testing.assert_array_equal(got.sequences, expected.sequences.numpy())
    assert len(got.scores) == len(expected.scores) and len(got.logits) == len(expected.logits)
    for step, (g, e) in enumerate(zip(got.scores, expected.scores)):
        assert_scores_close(g, e.numpy(), f"scores[{step}]")
    for step, (g, e) in enumerate(zip(got.logits, expected.logits)):
        assert_scores_close(g, e.numpy(), f"logits[{step}]")


@pytest.fixture(scope="module")
def embedded():
    return embedded_pair()


@pytest.mark.parametrize("stop", [["\n"], ["he"], ["ROMEO", ", "], ["e, m"], ["."]])
@pytest.mark.parametrize("prompt", ["ROMEO.\n", "JULIET.\nO Romeo, Romeo", "KING"])
def test_stop_strings_stop_where_transformers_stops(embedded, stop, prompt):
    theirs, their_tok, ours, tok = embedded
    ids = np.array([tok.encode(prompt)])
    # subtle: transformers 4.57.1's BLOOM refuses generate(..., tokenizer=): it forwards the tokenizer to the
    # model's forward ("Got unexpected arguments"); the criterion stop_strings builds is passed directly instead.
    criteria = transformers.StoppingCriteriaList([transformers.StopStringCriteria(their_tok, stop)])
    with torch.no_grad():
        expected = theirs.generate(torch.from_numpy(ids), max_new_tokens=30, stopping_criteria=criteria,
                                   do_sample=False).numpy()
    np.testing.assert_array_equal(ours.generate(ids, max_new_tokens=30, stop_strings=stop, tokenizer=tok), expected)


def test_text_streamer_prints_what_transformers_streamer_prints(embedded):
    theirs, their_tok, ours, tok = embedded
    ids = np.array([tok.encode("ROMEO.\n")])
    for skip_prompt in (False, True):
        expected, got = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(expected), torch.no_grad():
            theirs.generate(torch.from_numpy(ids), max_new_tokens=25, do_sample=False,
                            streamer=transformers.TextStreamer(their_tok, skip_prompt=skip_prompt))
        with contextlib.redirect_stdout(got):
            ours.generate(ids, max_new_tokens=25, streamer=TextStreamer(tok, skip_prompt=skip_prompt))
        assert got.getvalue() == expected.getvalue()


def test_continuing_from_past_key_values_matches_transformers(embedded):
    theirs, _, ours, tok = embedded
    ids = np.array([tok.encode("JULIET.\nO Romeo")])
    with torch.no_grad():
        first = theirs.generate(torch.from_numpy(ids), max_new_tokens=6, do_sample=False, return_dict_in_generate=True)
        legacy = [(k.numpy().copy(), v.numpy().copy()) for k, v in first.past_key_values.to_legacy_cache()]
        cached = first.past_key_values.get_seq_length()
        expected = theirs.generate(first.sequences, past_key_values=first.past_key_values, max_new_tokens=6,
                                   do_sample=False).numpy()  # (updates first.past_key_values in place)
    mine = ours.generate(ids, max_new_tokens=6, return_dict_in_generate=True)
    np.testing.assert_array_equal(mine.sequences, first.sequences.numpy())
    assert mine.past_key_values.get_seq_length() == cached == mine.sequences.shape[1] - 1
    for (k, v), (mk, mv) in zip(legacy, mine.past_key_values, strict=True):
        np.testing.assert_allclose(mk, k, atol=1e-5)
        np.testing.assert_allclose(mv, v, atol=1e-5)
    np.testing.assert_array_equal(ours.generate(mine.sequences, past_key_values=mine.past_key_values,
                                                max_new_tokens=6), expected)
    # and from transformers' own cache, in its legacy layout
    np.testing.assert_array_equal(ours.generate(first.sequences.numpy(), past_key_values=legacy, max_new_tokens=6),
                                  expected)


def test_generation_config_json_is_read_and_written_both_ways(tmp_path):
    ours = GenerationConfig(max_new_tokens=7, do_sample=True, temperature=0.7, top_k=5, top_p=0.9,
                            no_repeat_ngram_size=2, min_new_tokens=3, eos_token_id=[2, 5], pad_token_id=3,
                            bos_token_id=1, bad_words_ids=[[4, 5]])
    ours.save_pretrained(tmp_path / "ours")
    theirs = transformers.GenerationConfig.from_pretrained(tmp_path / "ours")
    for name, value in ours.to_diff_dict().items():
        assert getattr(theirs, name) == value, name
    transformers.GenerationConfig(max_new_tokens=4, repetition_penalty=1.2, eos_token_id=2, pad_token_id=3,
                                  num_beams=3, early_stopping="never").save_pretrained(tmp_path / "theirs")
    back = GenerationConfig.from_pretrained(tmp_path / "theirs")
    assert (back.max_new_tokens, back.repetition_penalty, back.eos_token_id, back.pad_token_id, back.num_beams,
            back.early_stopping) == (4, 1.2, [2], 3, 3, "never")


def test_a_checkpoints_generation_config_drives_generate_in_both(tmp_path, embedded):
    theirs, _, ours, tok = embedded
    ours.save_pretrained(tmp_path)
    GenerationConfig.from_model_config(ours.config).update(max_new_tokens=9, no_repeat_ngram_size=2).save_pretrained(
        tmp_path)
    ids = np.array([tok.encode("ROMEO.\n")])
    with torch.no_grad():
        expected = transformers.BloomForCausalLM.from_pretrained(tmp_path).generate(torch.from_numpy(ids)).numpy()
    got = minibloom.BloomForCausalLM.from_pretrained(tmp_path).generate(ids)
    np.testing.assert_array_equal(got, expected)
    assert got.shape[1] == ids.shape[1] + 9


def test_the_same_warnings_as_transformers(embedded, caplog):
    theirs, _, ours, tok = embedded
    ids = np.array([tok.encode("ROMEO.")])
    for kwargs in (dict(temperature=0.5), dict(top_p=0.8), dict(top_k=7), dict(temperature=0.3, top_p=0.5)):
        logging.Logger.warning_once.cache_clear()  # transformers warns once per process
        caplog.clear()
        with caplog.at_level(logging.WARNING), torch.no_grad():
            theirs.generate(torch.from_numpy(ids), max_new_tokens=2, do_sample=False, **kwargs)
        expected = [r.getMessage().split(" Set `TRANSFORMERS_VERBOSITY")[0] for r in caplog.records
                    if "generation flags" in r.getMessage()]
        with pytest.warns(UserWarning) as ours_w:
            ours.generate(ids, max_new_tokens=2, **kwargs)
        assert expected and [str(w.message).split("\n")[0] for w in ours_w] == expected


def test_right_padding_warning_matches_transformers(embedded, caplog):
    theirs, _, ours, _ = embedded
    ids = np.array([[40, 50, PAD], [40, 50, 60]])
    mask = (ids != PAD).astype(np.int64)
    with caplog.at_level(logging.WARNING), torch.no_grad():
        theirs.generate(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), max_new_tokens=2, do_sample=False)
    expected = [r.getMessage() for r in caplog.records if "right-padding" in r.getMessage()]
    with pytest.warns(UserWarning) as ours_w:
        ours.generate(ids, attention_mask=mask, max_new_tokens=2)
    assert expected and [str(w.message) for w in ours_w if "right-padding" in str(w.message)] == expected


@pytest.mark.parametrize("cls_name", ["BloomModel", "BloomForCausalLM", "BloomForTokenClassification"])
def test_num_parameters_and_can_generate_match_transformers(cls_name):
    ref = torch_bloom(getattr(transformers, cls_name), 0, vocab_size=30, hidden_size=8, n_head=2, n_layer=2)
    ours = mirror(ref, getattr(minibloom, cls_name))
    for kwargs in ({}, {"exclude_embeddings": True}, {"only_trainable": True}):
        assert ours.num_parameters(**kwargs) == ref.num_parameters(**kwargs), kwargs
    assert type(ours).can_generate() == type(ref).can_generate()


@pytest.mark.parametrize("new, multiple", [(40, None), (20, None), (33, 8), (None, 16)])
def test_resize_token_embeddings_keeps_rows_and_sizes_as_transformers(new, multiple):
    ref = torch_bloom(transformers.BloomForCausalLM, 0, vocab_size=30, hidden_size=8, n_head=2, n_layer=1)
    ours = mirror(ref, minibloom.BloomForCausalLM)
    old = ref.get_input_embeddings().weight.detach().numpy().copy()
    ref.resize_token_embeddings(new, pad_to_multiple_of=multiple)
    got = ours.resize_token_embeddings(new, pad_to_multiple_of=multiple)
    expected = ref.get_input_embeddings().weight.detach().numpy()
    assert got.shape == expected.shape and ours.config.vocab_size == ref.config.vocab_size
    keep = min(len(old), len(got))
    np.testing.assert_array_equal(got[:keep], expected[:keep])
    if len(got) > len(old):  # transformers samples new rows close to the old mean; ours are the mean
        np.testing.assert_allclose(got[len(old):], expected[len(old):], atol=0.05)
    ids = np.array([[keep - 1, 0, 5]])  # rows both keep (new rows differ: a sample vs the mean)
    with torch.no_grad():
        np.testing.assert_allclose(ours(ids).logits[..., :keep], ref(torch.from_numpy(ids)).logits.numpy()[..., :keep],
                                   atol=1e-4)


def test_output_indexing_matches_transformers():
    ref = torch_bloom(transformers.BloomForCausalLM, 0, vocab_size=30, hidden_size=8, n_head=2, n_layer=2)
    ours = mirror(ref, minibloom.BloomForCausalLM)
    ids = np.array([[4, 5, 6]])
    for kwargs in ({}, {"labels": ids}, {"output_hidden_states": True}):
        with torch.no_grad():
            theirs = ref(torch.from_numpy(ids), **{k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                                                   for k, v in kwargs.items()})
        mine = ours(ids, **kwargs)
        assert len(mine) == len(theirs) and list(mine.keys()) == list(theirs.keys())
        np.testing.assert_allclose(np.asarray(mine[0]), theirs[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(mine["logits"], theirs["logits"].numpy(), atol=1e-5)
        assert len(mine.to_tuple()) == len(theirs.to_tuple())
        past_theirs, past_mine = theirs.past_key_values, mine.past_key_values
        assert len(past_mine) == len(past_theirs)
        for i in range(len(past_mine)):
            for j in range(2):
                np.testing.assert_allclose(past_mine[i][j], past_theirs[i][j].numpy(), atol=1e-5)


def test_config_to_dict_and_to_json_file_are_read_by_transformers(tmp_path):
    config = minibloom.BloomConfig(vocab_size=77, hidden_size=12, n_head=3, n_layer=2, pad_token_id=5)
    config.to_json_file(tmp_path / "c.json")
    theirs = transformers.BloomConfig.from_json_file(tmp_path / "c.json")
    expected = json.loads(theirs.to_json_string(use_diff=False))  # as JSON: label keys are strings
    for key, value in config.to_dict().items():
        if key in expected:
            assert expected[key] == value, key
    assert json.loads((tmp_path / "c.json").read_text()) == config.to_dict()


# issue 23: every field of transformers' GenerationConfig is implemented, refused by name, or one that
# changes only speed, caching or what is returned; generate on the CLI runs on the files transformers writes
DOES_NOT_CHANGE_THE_TOKENS = {
    "use_cache", "cache_implementation", "cache_config", "return_legacy_cache", "prefill_chunk_size",
    "output_attentions", "output_hidden_states", "renormalize_logits", "remove_invalid_values",
    "decoder_start_token_id", "is_assistant", "num_assistant_tokens", "num_assistant_tokens_schedule",
    "assistant_confidence_threshold", "prompt_lookup_num_tokens", "max_matching_ngram_size", "assistant_early_exit",
    "assistant_lookbehind", "target_lookbehind", "disable_compile", "low_memory", "_from_model_config",
    "transformers_version",
}


def test_every_transformers_generation_field_is_classified():
    from minibloom.generation import UNSUPPORTED_FIELDS

    defaults = transformers.GenerationConfig().to_dict()
    known = set(GenerationConfig.__dataclass_fields__)
    unclassified = set(defaults) - known - set(UNSUPPORTED_FIELDS) - DOES_NOT_CHANGE_THE_TOKENS
    assert not unclassified, unclassified
    for name, off in UNSUPPORTED_FIELDS.items():
        assert defaults[name] == off, name  # minibloom's "off" value is transformers' default


@pytest.mark.parametrize("settings, honoured", [
    (dict(return_dict_in_generate=True, output_scores=True, output_logits=True), True),
    (dict(do_sample=True, temperature=0.7, top_p=0.9, num_return_sequences=2), True),
    (dict(num_beams=3, early_stopping=True, length_penalty=0.8), True),
    (dict(stop_strings=["\n"], max_new_tokens=30), True),
    (dict(no_repeat_ngram_size=2, bad_words_ids=[[13]], min_new_tokens=2), True),
    (dict(typical_p=0.8, do_sample=True), False),
    (dict(forced_eos_token_id=2), False),
    (dict(suppress_tokens=[13]), False),
])
def test_cli_generate_on_generation_configs_transformers_writes(tmp_path, capsys, settings, honoured):
    import shutil
    import warnings

    from minibloom import cli

    target = tmp_path / "ck"
    shutil.copytree(EMBEDDED_CHECKPOINT, target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' own remarks on the settings
        transformers.GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=3, **settings).save_pretrained(
            target)
    status = cli.main(["generate", "ROMEO.", "--checkpoint", str(target), "-n", "5"])
    out, err = capsys.readouterr()
    if not honoured:
        assert status == 2 and out == "" and next(iter(settings)) in err and len(err.strip().splitlines()) == 1
        return
    assert status == 0, err
    tok = BloomTokenizer.from_pretrained(target)
    lm = minibloom.BloomForCausalLM.from_pretrained(target)
    keep = {k: v for k, v in settings.items() if k in ("stop_strings", "no_repeat_ngram_size", "bad_words_ids",
                                                         "min_new_tokens")}
    # the CLI's flags are keyword arguments: they win over the file (a generation_config= argument
    # would take the file's do_sample / num_beams for its default-valued fields, as in transformers)
    ids = lm.generate(tok("ROMEO.", return_tensors="np")["input_ids"], max_new_tokens=5, tokenizer=tok,
                      do_sample=False, num_beams=1, num_return_sequences=1, return_dict_in_generate=False,
                      generation_config=minibloom.generation.GenerationConfig(bos_token_id=1, eos_token_id=[2],
                                                                              pad_token_id=3, **keep))
    assert out == tok.decode(ids[0], skip_special_tokens=True) + "\n"
