"""`model(ids, params=other)`, as Flax's models are called: the bare model and every head compute
with `other` exactly as a model built with `other` does, and keep their own weights."""

from __future__ import annotations

import numpy as np
import pytest

from minibloom import (BloomConfig, BloomForCausalLM, BloomForQuestionAnswering, BloomForSequenceClassification,
                       BloomForTokenClassification, BloomModel, InputError, KVCache)
from minibloom.model import bloom_forward

TINY = dict(vocab_size=30, hidden_size=16, n_head=4, n_layer=2, pad_token_id=3, num_labels=3)
CLASSES = [BloomModel, BloomForCausalLM, BloomForSequenceClassification, BloomForTokenClassification,
           BloomForQuestionAnswering]
IDS = np.array([[3, 3, 5, 6, 7, 9], [1, 2, 4, 5, 6, 8]])
MASK = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
OUTPUTS = ("last_hidden_state", "logits", "start_logits", "end_logits", "hidden_states", "attentions")


def outputs(out) -> dict[str, np.ndarray]:
    """Every array of an output, hidden states and attentions one by one, by name."""
    got = {}
    for name in OUTPUTS:
        value = getattr(out, name, None)
        if isinstance(value, tuple):
            got.update({f"{name}.{i}": v for i, v in enumerate(value)})
        elif value is not None:
            got[name] = value
    return got


def assert_same(a, b) -> None:
    a, b = outputs(a), outputs(b)
    assert a.keys() == b.keys() and a
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def pair(cls, backend="numpy", **config):
    """A model and another one of the same config with other weights."""
    cfg = BloomConfig(**{**TINY, **config})
    return cls(cfg, seed=1, backend=backend), cls(cfg, seed=2, backend=backend)


@pytest.mark.parametrize("backend", ["numpy", "auto"])
@pytest.mark.parametrize("cls", CLASSES)
def test_call_with_params_equals_a_model_built_with_them_and_keeps_its_own(cls, backend):
    model, other_model = pair(cls, backend)
    own = {name: np.array(w, copy=True) for name, w in model.params.items()}
    args = dict(attention_mask=MASK, output_hidden_states=True, output_attentions=True)
    before = model(IDS, **args)
    got = model(IDS, params=dict(other_model.params), **args)
    assert_same(got, other_model(IDS, **args))
    assert not np.array_equal(outputs(got)["hidden_states.1"], outputs(before)["hidden_states.1"])  # it did change
    assert_same(model(IDS, **args), before)  # the model's own weights, unchanged
    for name, w in model.params.items():
        np.testing.assert_array_equal(w, own[name], err_msg=name)


@pytest.mark.parametrize("tie", [True, False])
def test_causal_lm_head_comes_from_the_params_given(tie):
    model, other_model = pair(BloomForCausalLM, tie_word_embeddings=tie)
    assert ("lm_head.weight" in other_model.params) is not tie
    assert_same(model(IDS, params=other_model.params), other_model(IDS))
    if tie:  # the LM head *is* the word embeddings of the params used: changing them changes the logits
        changed = {**other_model.params, "word_embeddings.weight": other_model.params["word_embeddings.weight"] * 2}
        logits = model(IDS, params=changed).logits
        assert not np.array_equal(logits, other_model(IDS).logits)


def test_decoding_with_a_cache_uses_the_params_given_at_every_step():
    model, other_model = pair(BloomForCausalLM)

    def two_steps(run) -> np.ndarray:
        cache = KVCache.for_config(model.config, batch=2, capacity=IDS.shape[1])
        first = run(IDS[:, :4], attention_mask=MASK[:, :4], past_key_values=cache).logits
        return np.concatenate([first, run(IDS[:, 4:], attention_mask=MASK, past_key_values=cache).logits], 1)

    np.testing.assert_array_equal(two_steps(lambda *a, **k: model(*a, params=other_model.params, **k)),
                                  two_steps(other_model))


def test_run_with_cache_and_training_record_take_params_too():
    model, other_model = pair(BloomForCausalLM)
    got, cache = model.run_with_cache(IDS, attention_mask=MASK, params=other_model.params)
    want, want_cache = other_model.run_with_cache(IDS, attention_mask=MASK)
    assert_same(got, want)
    assert cache.keys() == want_cache.keys()
    for name in cache:
        np.testing.assert_array_equal(cache[name], want_cache[name], err_msg=name)


def test_bloom_forward_is_the_bare_models_math():
    model, _ = pair(BloomModel)
    out = bloom_forward(model.params, model.config, IDS, MASK)
    np.testing.assert_array_equal(out.last_hidden_state, model(IDS, attention_mask=MASK).last_hidden_state)
    assert len(out.hidden_states) == model.config.n_layer + 1 and len(out.attentions) == model.config.n_layer


@pytest.mark.parametrize("cls", CLASSES)
def test_wrong_params_are_refused_naming_the_tensor(cls):
    model, other_model = pair(cls)
    good = dict(other_model.params)
    head = next(iter(cls.head_shapes(model.config)), "ln_f.weight")
    cases = {
        "lacks .*'h.1.mlp.dense_4h_to_h.bias'": {k: v for k, v in good.items() if k != "h.1.mlp.dense_4h_to_h.bias"},
        f"lacks .*'{head}'": {k: v for k, v in good.items() if k != head},
        "unexpected .*'h.2.input_layernorm.weight'": {**good, "h.2.input_layernorm.weight": good["ln_f.weight"]},
        r"params\['h.0.self_attention.dense.weight'\] has shape \(16, 15\)":
            {**good, "h.0.self_attention.dense.weight": good["h.0.self_attention.dense.weight"][:, :15]},
        r"params\['ln_f.bias'\] must hold floats": {**good, "ln_f.bias": np.zeros(16, np.int64)},
        "must be a dict": list(good.items()),
    }
    for match, params in cases.items():
        with pytest.raises(InputError, match=match):
            model(IDS, params=params)


def test_a_tied_causal_lm_refuses_a_separate_lm_head():
    model, other_model = pair(BloomForCausalLM)
    params = {**other_model.params, "lm_head.weight": other_model.params["word_embeddings.weight"]}
    with pytest.raises(InputError, match="unexpected .*'lm_head.weight'"):
        model(IDS, params=params)
