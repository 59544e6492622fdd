"""Generation: transformers' token ids (golden), a cache-free oracle, streaming, sampling, bad input."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from minibloom import BloomConfig, BloomForCausalLM, InputError
from minibloom.cache import KVCache
from minibloom.generation.logits_process import repetition_penalty, temperature, top_k, top_p
from minibloom.safetensors_io import load_file, read_header
from tests.conftest import HF_EXPECTED_DIR

CASE = os.path.join(HF_EXPECTED_DIR, "generation")
EXPECTED = load_file(os.path.join(CASE, "expected.safetensors"))
SETTINGS = json.loads(read_header(os.path.join(CASE, "expected.safetensors"))[1]["settings"])
MODEL = BloomForCausalLM.from_pretrained(CASE)
NUMBA_MODEL = BloomForCausalLM.from_pretrained(CASE, backend="numba")
PROMPTS, MASK = EXPECTED["input/input_ids"], EXPECTED["input/attention_mask"]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_generate_matches_transformers_token_ids(name, backend):
    model = MODEL if backend == "numpy" else NUMBA_MODEL
    got = model.generate(PROMPTS, attention_mask=MASK, **SETTINGS[name])
    np.testing.assert_array_equal(got, EXPECTED[f"{name}/sequences"])


def test_golden_generations_exercise_eos_and_padding():
    assert (EXPECTED["greedy/sequences"][:, 5:] == 2).any()  # someone stops
    assert (EXPECTED["greedy_two_eos_repetition/sequences"][:, 5:] == 9).any()  # the second EOS id
    assert any(s.startswith("beam") for s in SETTINGS)


def greedy_without_cache(model, ids, mask, steps, eos, pad):
    """The definition: re-run the whole sequence, take the argmax, pad finished rows."""
    done = np.zeros(len(ids), bool)
    for _ in range(steps):
        logits = model(ids, attention_mask=mask, use_cache=False).logits[:, -1]
        nxt = np.where(done, pad, logits.argmax(-1))
        done |= nxt == eos
        ids, mask = np.concatenate([ids, nxt[:, None]], 1), np.concatenate([mask, np.ones((len(ids), 1), int)], 1)
        if done.all():
            break
    return ids


def test_cached_greedy_equals_recomputing_everything():
    expected = greedy_without_cache(MODEL, PROMPTS, MASK, 12, eos=2, pad=3)
    np.testing.assert_array_equal(MODEL.generate(PROMPTS, attention_mask=MASK, max_new_tokens=12), expected)


def test_streaming_yields_the_generated_tokens_in_order():
    full = MODEL.generate(PROMPTS, attention_mask=MASK, max_new_tokens=6)
    streamed = list(MODEL.stream(PROMPTS, attention_mask=MASK, max_new_tokens=6))
    np.testing.assert_array_equal(np.stack(streamed, axis=1), full[:, 5:])
    seen = []
    MODEL.generate(PROMPTS, attention_mask=MASK, max_new_tokens=6, streamer=seen.append)
    np.testing.assert_array_equal(np.stack(seen, axis=1), full[:, 5:])


def test_seeded_sampling_is_reproducible_and_top_k_1_is_greedy():
    kwargs = dict(attention_mask=MASK, max_new_tokens=8, do_sample=True, temperature=1.5)
    a = MODEL.generate(PROMPTS, seed=7, **kwargs)
    assert np.array_equal(a, MODEL.generate(PROMPTS, seed=7, **kwargs))
    assert not all(np.array_equal(a, MODEL.generate(PROMPTS, seed=s, **kwargs)) for s in range(8, 12))
    np.testing.assert_array_equal(MODEL.generate(PROMPTS, seed=1, top_k=1, **kwargs),
                                  MODEL.generate(PROMPTS, attention_mask=MASK, max_new_tokens=8))


def test_sampling_follows_the_distribution():
    """Empirical frequencies of one sampled token approach softmax(logits / t)."""
    from minibloom.generation import sample

    probs = np.array([[0.5, 0.3, 0.2]])
    draws = [sample(probs, np.random.default_rng(i))[0] for i in range(3000)]
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / 3000, probs[0], atol=0.03)


def test_processors_by_hand():
    scores = np.array([[2.0, -1.0, 0.5, 0.0]], np.float32)
    assert repetition_penalty(np.array([[0, 1, 1]]), scores, 2.0).tolist() == [[1.0, -2.0, 0.5, 0.0]]
    assert temperature(scores, 0.5).tolist() == [[4.0, -2.0, 1.0, 0.0]]
    assert top_k(scores, 2).tolist() == [[2.0, -np.inf, 0.5, -np.inf]]
    # probs = [0.71, 0.04, 0.16, 0.10]: the tail 0.04 + 0.10 <= 1 - 0.8 is dropped; 0.71 + 0.16 remain
    assert top_p(scores, 0.8).tolist() == [[2.0, -np.inf, 0.5, -np.inf]]
    assert np.isfinite(top_p(scores, 1e-9)).sum() == 1  # always keep at least one


@pytest.mark.parametrize("kwargs,message", [
    (dict(max_new_tokens=0), "max_new_tokens must be a positive integer"),
    (dict(max_new_tokens=-3), "max_new_tokens must be a positive integer"),
    (dict(do_sample=True, temperature=0.0), "temperature must be > 0 when sampling"),
    (dict(top_p=0.0), r"top_p must be in \(0, 1\]"),
    (dict(top_p=1.5), r"top_p must be in \(0, 1\]"),
    (dict(max_length=4), "the prompt has 5 tokens but max_length is 4"),
    (dict(num_beams=2, num_return_sequences=3), r"num_return_sequences must be in \[1, 2\]"),
    (dict(num_beams=2, do_sample=True), "beam sampling"),
    (dict(eos_token_id=99), r"eos_token_id \[99\] is outside the vocabulary"),
    (dict(max_new_tokens=2, bogus=1), r"unknown generation arguments: \['bogus'\]"),
])
def test_bad_generation_arguments_raise_typed_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        MODEL.generate(PROMPTS, attention_mask=MASK, **kwargs)


def test_a_prompt_longer_than_a_given_cache_is_refused():
    cache = KVCache.for_config(MODEL.config, 3, 4)
    with pytest.raises(InputError, match="holds 4 positions"):
        MODEL(PROMPTS, attention_mask=MASK, past_key_values=cache)


def test_mask_is_inferred_from_pad_tokens_like_transformers():
    config = BloomConfig(**{**MODEL.config.to_dict(), "pad_token_id": 3})
    model = BloomForCausalLM(config, MODEL.params)
    np.testing.assert_array_equal(model.generate(PROMPTS, max_new_tokens=5),
                                  model.generate(PROMPTS, attention_mask=MASK, max_new_tokens=5))


def test_min_new_tokens_takes_precedence_over_min_length_even_at_zero():
    """transformers sets min_length = min_new_tokens + prompt length whenever min_new_tokens is
    given, 0 included (found by the live suite: min_new_tokens=0, min_length=2 let EOS through there)."""
    ids = PROMPTS[:1, -3:]  # [1, 3], no padding
    L = ids.shape[1]
    eos = int(MODEL.generate(ids, max_new_tokens=1)[0, -1])  # make the greedy first token the EOS
    run = lambda **kw: MODEL.generate(ids, max_new_tokens=3, eos_token_id=eos, pad_token_id=eos, **kw)  # noqa: E731
    assert run(min_length=L + 2)[0, L] != eos  # min_length alone holds EOS back
    assert run(min_length=L + 2, min_new_tokens=0)[0, L] == eos  # min_new_tokens=0 overrides it
    np.testing.assert_array_equal(run(min_length=L + 3, min_new_tokens=1), run(min_length=L + 1))
