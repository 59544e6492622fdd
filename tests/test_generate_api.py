"""generate's transformers surface without torch: return_dict_in_generate, the new processors as
properties, stop strings, streamers, continuing from a cache, generation_config.json, warnings,
typed errors for wrong keyword types; and the output / cache / model helpers."""

from __future__ import annotations

import contextlib
import io
import json
import warnings

import numpy as np
import pytest

from minibloom import (EMBEDDED_CHECKPOINT, BloomConfig, BloomForCausalLM, BloomModel, BloomTokenizer,
                       GenerationConfig, InputError)
from minibloom.generation.streamers import TextStreamer
from tests.conftest import assert_close

MODEL = BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT)
TOK = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
PROMPT = np.array([TOK.encode("ROMEO.\nBut soft")])


def test_scores_are_what_the_tokens_were_chosen_from_and_logits_are_the_models():
    out = MODEL.generate(PROMPT, max_new_tokens=6, return_dict_in_generate=True, output_scores=True,
                         output_logits=True, repetition_penalty=1.3)
    new = out.sequences[:, PROMPT.shape[1]:]
    assert len(out.scores) == len(out.logits) == new.shape[1]
    np.testing.assert_array_equal(np.stack([s.argmax(-1) for s in out.scores], 1), new)
    for step, logits in enumerate(out.logits):  # the raw logits: one full forward over the prefix
        prefix = out.sequences[:, :PROMPT.shape[1] + step]
        assert_close(logits, MODEL(prefix).logits[:, -1], f"logits[{step}]")
        assert not np.allclose(logits, out.scores[step])  # the penalty was applied to the scores only


def test_plain_generate_still_returns_the_array():
    out = MODEL.generate(PROMPT, max_new_tokens=3)
    assert isinstance(out, np.ndarray)
    assert MODEL.generate(PROMPT, max_new_tokens=3, return_dict_in_generate=True).scores is None


def test_continuing_from_the_returned_cache_equals_one_longer_call():
    first = MODEL.generate(PROMPT, max_new_tokens=4, return_dict_in_generate=True)
    assert first.past_key_values.get_seq_length() == first.sequences.shape[1] - 1
    np.testing.assert_array_equal(MODEL.generate(first.sequences, past_key_values=first.past_key_values,
                                                 max_new_tokens=5), MODEL.generate(PROMPT, max_new_tokens=9))


def test_a_cache_holding_the_whole_input_is_refused():
    first = MODEL.generate(PROMPT, max_new_tokens=2, return_dict_in_generate=True)
    with pytest.raises(InputError, match="past_key_values"):
        MODEL.generate(first.sequences[:, :-1], past_key_values=first.past_key_values, max_new_tokens=2)


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("text", ["the the the", "O Romeo, Romeo"])
def test_no_repeat_ngram_size_leaves_no_repeated_ngram(n, text):
    prompt = np.array([TOK.encode(text)])
    seq = MODEL.generate(prompt, max_new_tokens=25, no_repeat_ngram_size=n, eos_token_id=None)[0].tolist()
    grams = [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]
    new = [tuple(seq[i:i + n]) for i in range(max(0, prompt.shape[1] - n + 1), len(seq) - n + 1)]
    assert all(grams.count(g) == 1 for g in new)


def test_bad_words_never_appear_and_min_new_tokens_holds_eos_back():
    free = MODEL.generate(PROMPT, max_new_tokens=12)[0, PROMPT.shape[1]:].tolist()
    bad = [[free[0]], free[2:4]]
    got = MODEL.generate(PROMPT, max_new_tokens=12, bad_words_ids=bad)[0].tolist()
    assert free[0] not in got[PROMPT.shape[1]:]
    assert not any(got[i:i + 2] == free[2:4] for i in range(PROMPT.shape[1] - 1, len(got) - 1))
    eos = free[1]  # the token chosen second: with min_new_tokens=5 it cannot end the text before 5 tokens
    held = MODEL.generate(PROMPT, max_new_tokens=12, eos_token_id=eos, min_new_tokens=5)[0, PROMPT.shape[1]:]
    assert eos not in held[:5].tolist() and len(held) >= 5
    early = MODEL.generate(PROMPT, max_new_tokens=12, eos_token_id=eos)[0, PROMPT.shape[1]:]
    assert early.tolist() == free[:2]


@pytest.mark.parametrize("stop", ["\n", "e", ", ", "ROMEO"])
def test_stop_strings_end_the_text_at_the_first_occurrence(stop):
    got = MODEL.generate(PROMPT, max_new_tokens=40, stop_strings=stop, tokenizer=TOK)[0]
    free = MODEL.generate(PROMPT, max_new_tokens=40)[0]
    np.testing.assert_array_equal(got, free[:len(got)])  # a prefix of the free run
    texts = [TOK.decode(got[PROMPT.shape[1]:k]) for k in range(PROMPT.shape[1], len(got) + 1)]
    if len(got) < len(free):
        assert stop in TOK.decode(got[PROMPT.shape[1] - 2:]) and stop not in TOK.decode(got[PROMPT.shape[1]:-1])
    else:
        assert stop not in texts[-1]


def test_stop_strings_need_the_tokenizer():
    with pytest.raises(InputError, match="tokenizer"):
        MODEL.generate(PROMPT, max_new_tokens=3, stop_strings="\n")


def test_text_streamer_prints_the_decoded_generation():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ids = MODEL.generate(PROMPT, max_new_tokens=20, streamer=TextStreamer(TOK, skip_prompt=True))
    assert out.getvalue() == TOK.decode(ids[0, PROMPT.shape[1]:]) + "\n"


def test_streamer_protocol_gets_the_prompt_then_each_step_then_end():
    calls = []

    class Recorder:
        def put(self, value):
            calls.append(("put", np.array(value)))

        def end(self):
            calls.append(("end", None))

    ids = MODEL.generate(PROMPT, max_new_tokens=4, streamer=Recorder())
    assert [c[0] for c in calls] == ["put"] * 5 + ["end"]
    np.testing.assert_array_equal(calls[0][1], PROMPT)
    np.testing.assert_array_equal(np.stack([c[1] for c in calls[1:5]], 1), ids[:, PROMPT.shape[1]:])


def test_generation_config_round_trips_and_drives_a_saved_checkpoint(tmp_path):
    config = GenerationConfig(max_new_tokens=5, no_repeat_ngram_size=2, eos_token_id=[2, 9], pad_token_id=3)
    config.save_pretrained(tmp_path / "g")
    assert GenerationConfig.from_pretrained(tmp_path / "g") == config
    assert json.loads((tmp_path / "g" / "generation_config.json").read_text())["eos_token_id"] == [2, 9]
    MODEL.save_pretrained(tmp_path / "m")
    assert GenerationConfig.from_pretrained(tmp_path / "m") == GenerationConfig.from_model_config(MODEL.config)
    config.save_pretrained(tmp_path / "m")
    loaded = BloomForCausalLM.from_pretrained(tmp_path / "m")
    assert loaded.generation_config == config
    np.testing.assert_array_equal(loaded.generate(PROMPT), MODEL.generate(PROMPT, generation_config=config))
    np.testing.assert_array_equal(loaded.generate(PROMPT, max_new_tokens=2), MODEL.generate(PROMPT, max_new_tokens=2,
                                                                                           no_repeat_ngram_size=2))


def test_greedy_with_sampling_settings_warns_and_right_padding_warns():
    with pytest.warns(UserWarning, match=r"not valid and may be ignored: \['temperature'\]"):
        MODEL.generate(PROMPT, max_new_tokens=1, temperature=0.5)
    padded = np.array([[40, 50, 3], [40, 50, 60]])
    with pytest.warns(UserWarning, match="right-padding was detected"):
        MODEL.generate(padded, attention_mask=(padded != 3).astype(int), max_new_tokens=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MODEL.generate(padded[:, ::-1].copy(), attention_mask=(padded[:, ::-1] != 3).astype(int), max_new_tokens=1)
        MODEL.generate(PROMPT, max_new_tokens=1, temperature=0.5, do_sample=True, seed=0)


# issue 13 item 12: wrong keyword types are typed errors naming the keyword; NumPy integers are ints
@pytest.mark.parametrize("name, value", [
    ("max_new_tokens", "5"), ("max_new_tokens", 2.0), ("max_length", None), ("num_beams", 2.0),
    ("num_return_sequences", 2.5), ("num_return_sequences", None), ("top_k", "3"), ("temperature", "hot"),
    ("temperature", None), ("top_p", None), ("repetition_penalty", "1"), ("do_sample", "yes"),
    ("do_sample", None), ("length_penalty", None), ("min_new_tokens", 1.5), ("no_repeat_ngram_size", "2"),
    ("eos_token_id", "2"), ("eos_token_id", 2.0), ("pad_token_id", 3.0), ("bad_words_ids", [5]),
    ("bad_words_ids", "x"), ("stop_strings", 5), ("early_stopping", 1.5), ("output_scores", 1),
    ("temperature", float("nan")), ("max_new_tokens", True),
])
def test_a_keyword_of_the_wrong_type_is_an_input_error_naming_it(name, value):
    with pytest.raises(InputError, match=name) as info:
        MODEL.generate(PROMPT, **{"max_new_tokens": 2, name: value})
    assert isinstance(info.value, ValueError)


def test_numpy_integer_scalars_are_accepted_wherever_ints_are():
    np_kwargs = dict(max_new_tokens=np.int64(4), top_k=np.int32(3), num_return_sequences=np.int64(2),
                     eos_token_id=np.int64(2), pad_token_id=np.int16(3), no_repeat_ngram_size=np.uint8(2),
                     min_new_tokens=np.int64(1), temperature=np.float32(0.8), seed=0, do_sample=np.bool_(True))
    py_kwargs = {k: v.item() if isinstance(v, np.generic) else v for k, v in np_kwargs.items()}
    np.testing.assert_array_equal(MODEL.generate(PROMPT, **np_kwargs), MODEL.generate(PROMPT, **py_kwargs))
    beams = MODEL.generate(PROMPT, max_new_tokens=np.int64(3), num_beams=np.int64(2), num_return_sequences=np.int8(2))
    assert beams.shape[0] == 2


def test_outputs_index_like_transformers():
    out = MODEL(PROMPT)
    assert len(out) == 2 and out[0] is out.logits and out["logits"] is out.logits and out[1] is out.past_key_values
    assert out.to_tuple() == (out.logits, out.past_key_values) and list(out.keys()) == ["logits", "past_key_values"]
    labelled = MODEL(PROMPT, labels=PROMPT)
    assert labelled[0] is labelled.loss and labelled[0:2] == (labelled.loss, labelled.logits)
    with pytest.raises(KeyError):
        out["loss"]
    past = out.past_key_values
    assert len(past) == MODEL.config.n_layer
    np.testing.assert_array_equal(past[1][0], past.to_legacy()[1][0])
    np.testing.assert_array_equal(past[-1][1], past.to_legacy()[-1][1])
    assert [k.shape for k, _ in past] == [(1, MODEL.config.n_head, PROMPT.shape[1], MODEL.config.head_dim)] * len(past)
    with pytest.raises(InputError, match="layer"):
        past[len(past)]


def test_embeddings_can_be_read_replaced_and_resized():
    model = BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT)
    V, H = model.get_input_embeddings().shape
    before = model(PROMPT).logits
    grown = model.resize_token_embeddings(V + 10, pad_to_multiple_of=8)
    assert grown.shape == (V + 16, H) and model.config.vocab_size == V + 16
    np.testing.assert_allclose(grown[-1], grown[:V].mean(0), atol=1e-6)
    np.testing.assert_allclose(model(PROMPT).logits[..., :V], before, atol=1e-5)  # old tokens unaffected
    assert model.generate(PROMPT, max_new_tokens=2).shape == (1, PROMPT.shape[1] + 2)
    model.set_input_embeddings(np.zeros((V, H), np.float32))
    assert model.config.vocab_size == V and not model(PROMPT).logits.any()
    with pytest.raises(InputError, match="embeddings"):
        model.set_input_embeddings(np.zeros((V, H + 1), np.float32))
    with pytest.raises(InputError, match="new_num_tokens"):
        model.resize_token_embeddings(0)


def test_num_parameters_counts_tied_weights_once_and_can_generate():
    model = BloomModel.from_pretrained(EMBEDDED_CHECKPOINT)
    assert MODEL.num_parameters() == model.num_parameters() == sum(v.size for v in model.params.values())
    assert MODEL.num_parameters(exclude_embeddings=True) == model.num_parameters() - model.get_input_embeddings().size
    assert BloomForCausalLM.can_generate() and not BloomModel.can_generate()


def test_config_to_json_file_round_trips(tmp_path):
    config = BloomConfig(vocab_size=77, hidden_size=12, n_head=3, n_layer=2)
    config.to_json_file(tmp_path / "c.json")
    assert BloomConfig.from_json_file(tmp_path / "c.json") == config
    assert json.loads((tmp_path / "c.json").read_text()) == config.to_dict()


@pytest.mark.parametrize("storage", ["float16", "bfloat16", "float32"])
def test_resized_embeddings_stay_in_the_models_storage(storage):
    lm = BloomForCausalLM(BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1), storage=storage)
    before = lm.get_input_embeddings().dtype
    lm.resize_token_embeddings(20)
    assert lm.get_input_embeddings().dtype == before and lm.get_input_embeddings().shape == (20, 8)
    assert lm.transformer.params["word_embeddings.weight"] is lm.get_input_embeddings()


def test_a_passed_cache_grows_only_within_the_memory_budget(monkeypatch):
    from minibloom.cache import KVCache
    from minibloom.errors import MemoryBudgetError

    cache = KVCache(n_layer=2, batch=1, n_head=2, head_dim=4, capacity=8)
    monkeypatch.setenv("MINIBLOOM_MEMORY_BUDGET", str(1 << 20))
    with pytest.raises(MemoryBudgetError, match="capacity=1000000"):
        cache.reserve(10**6)  # 2 layers x keys+values x 4 bytes x 2 x 4 x 10**6 = 64 MB > 1 MiB
    cache.reserve(16)
    assert cache.capacity == 16


# issue 23: a seed of the wrong type is an InputError naming it, before any work
@pytest.mark.parametrize("seed", [1.5, "7", np.array([1, 2]), [1, 2], -1, True, np.float64(3.0)])
def test_a_seed_of_the_wrong_type_is_an_input_error_naming_it(seed):
    for do_sample in (True, False):
        with pytest.raises(InputError, match="seed"):
            MODEL.generate(PROMPT, max_new_tokens=1, do_sample=do_sample, seed=seed)
    with pytest.raises(InputError, match="seed"):
        next(MODEL.stream(PROMPT, max_new_tokens=1, do_sample=True, seed=seed))
    np.testing.assert_array_equal(MODEL.generate(PROMPT, max_new_tokens=3, do_sample=True, seed=np.int64(4)),
                                  MODEL.generate(PROMPT, max_new_tokens=3, do_sample=True, seed=4))


def test_settings_minibloom_does_not_implement_are_kept_to_be_refused():
    read = GenerationConfig.from_dict({"typical_p": 0.9, "min_p": None, "guidance_scale": 1.0, "use_cache": False,
                                       "num_beam_groups": 2, "eta_cutoff": 0.0, "do_sample": True})
    assert read.unsupported() == {"typical_p": 0.9, "num_beam_groups": 2}
    assert read.update(max_new_tokens=3).unsupported() == read.unsupported()
    assert GenerationConfig().unsupported() == {}


def test_generate_warns_at_the_caller_of_settings_it_ignores():
    """A generation_config.json may set what transformers applies and minibloom does not implement
    (typical_p, ...): generate decodes without it, as before, but no longer silently."""
    import warnings

    model = BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT)
    model.generation_config = GenerationConfig.from_dict({**model.generation_config.to_dict(), "typical_p": 0.9})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.generate(PROMPT, max_new_tokens=2)
    [w] = [w for w in caught if "typical_p=0.9" in str(w.message)]
    assert w.filename == __file__
