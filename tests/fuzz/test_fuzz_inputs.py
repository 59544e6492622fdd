"""Fuzzing the public API's array and keyword inputs: every model class on both backends,
generate, the tokenizer. Success or a MinibloomError, nothing else (no IndexError from NumPy,
no segfault from a Numba kernel reading out of bounds)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minibloom import (BloomConfig, BloomForCausalLM, BloomForQuestionAnswering, BloomForSequenceClassification,
                       BloomForTokenClassification, BloomModel, BloomTokenizer, KVCache)
from tests.fuzz.fuzz_utils import fuzz_settings, json_values, only_minibloom_errors
from tests.tokenizer_utils import TOKENIZER_DIR, texts

CONFIG = BloomConfig(vocab_size=20, hidden_size=8, n_head=2, n_layer=2, pad_token_id=3, eos_token_id=2)
MODELS = {(cls.__name__, backend): cls(CONFIG, seed=0, backend=backend)
          for cls in (BloomModel, BloomForCausalLM, BloomForSequenceClassification, BloomForTokenClassification,
                      BloomForQuestionAnswering) for backend in ("numpy", "numba")}
TOK = BloomTokenizer.from_pretrained(TOKENIZER_DIR)
for _model in MODELS.values():  # compile the Numba kernels now, not inside a timed example
    _model(np.array([[1, 2]]))
MODELS[("BloomForCausalLM", "numba")].generate(np.array([[1, 2]]), max_new_tokens=2, progress=False)
MODELS[("BloomForCausalLM", "numba")].generate(np.array([[1, 2]]), max_new_tokens=2, num_beams=2, progress=False)

DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64, np.float32, np.float64, np.bool_]


@st.composite
def arrays(draw, fill=st.integers(-3, 25)):
    kind = draw(st.sampled_from(["array", "list", "scalar", "object", "noncontiguous", "empty"]))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=3)))
    values = np.array(draw(st.lists(fill, min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))))
    values = values.reshape(shape) if shape else values.reshape(())
    if kind == "empty":
        return np.zeros(draw(st.sampled_from([(0,), (0, 3), (2, 0), (0, 0, 8)])), draw(st.sampled_from(DTYPES)))
    if kind == "scalar":
        return draw(fill)
    if kind == "object":
        return [[1, 2], [3]] if draw(st.booleans()) else np.array(["a", "b"])
    if kind == "list":
        return values.tolist()
    array = values.astype(draw(st.sampled_from(DTYPES)))
    if kind == "noncontiguous" and array.ndim >= 2:
        return np.repeat(array, 2, axis=-1)[..., ::2]  # the same values through a strided view
    return array


@fuzz_settings
@given(st.sampled_from(sorted(MODELS)), arrays(), st.one_of(st.none(), arrays(st.integers(-1, 2))),
       st.one_of(st.none(), arrays(st.floats(-2, 2))), st.one_of(st.none(), arrays(st.floats(-1e3, 1e3))),
       st.sampled_from([None, "cache", "junk"]))
def test_every_model_forward_accepts_or_names_the_bad_argument(key, ids, mask, head_mask, embeds, past):
    model = MODELS[key]
    kwargs = dict(attention_mask=mask)
    if head_mask is not None:
        kwargs["head_mask"] = head_mask
    if key[0] != "BloomForQuestionAnswering":
        kwargs["past_key_values"] = {"cache": KVCache.for_config(CONFIG, 1, 4), "junk": [[1, 2]], None: None}[past]
    with only_minibloom_errors():
        model(ids, **kwargs)
    with only_minibloom_errors():
        model(inputs_embeds=embeds)
    with only_minibloom_errors():
        model(ids, inputs_embeds=embeds)


GENERATE_KWARGS = st.fixed_dictionaries({}, optional={
    "max_new_tokens": st.one_of(st.integers(-2, 6), st.floats(0, 3), st.text(max_size=2)),
    "max_length": st.integers(-1, 12), "do_sample": st.booleans(), "temperature": st.floats(-1, 3),
    "top_k": st.one_of(st.none(), st.integers(-2, 30)), "top_p": st.floats(-0.5, 1.5),
    "repetition_penalty": st.floats(-1, 3), "num_beams": st.integers(-1, 4), "length_penalty": st.floats(-2, 2),
    "early_stopping": st.sampled_from([True, False, "never", "sometimes", 3]),
    "num_return_sequences": st.integers(-1, 5), "eos_token_id": st.one_of(st.integers(-2, 25), st.lists(
        st.integers(-2, 25), max_size=3), st.none()), "pad_token_id": st.one_of(st.none(), st.integers(-1, 25)),
    "seed": st.integers(0, 5)})


@fuzz_settings
@given(arrays(st.integers(-2, 22)), st.one_of(st.none(), arrays(st.integers(-1, 2))), GENERATE_KWARGS,
       st.sampled_from(["numpy", "numba"]))
def test_generate_accepts_or_names_the_bad_argument(ids, mask, kwargs, backend):
    with only_minibloom_errors():
        MODELS[("BloomForCausalLM", backend)].generate(ids, mask, progress=False, **kwargs)


@fuzz_settings
@given(st.one_of(texts, st.lists(texts, max_size=3), json_values, st.binary(max_size=5)),
       st.fixed_dictionaries({}, optional={
           "padding": st.sampled_from([True, False, "longest", "max_length", "do_not_pad", "sideways", 2]),
           "truncation": st.sampled_from([True, False, "longest_first", None]),
           "max_length": st.one_of(st.none(), st.integers(-2, 8), st.floats(0, 3)),
           "return_offsets_mapping": st.booleans(), "padding_side": st.sampled_from([None, "left", "right", "up"]),
           "return_tensors": st.sampled_from([None, "np", "pt"])}),
       st.one_of(arrays(st.integers(-2, 9000)), st.lists(st.integers(-5, 10_000), max_size=4), json_values))
def test_tokenizer_accepts_or_names_the_bad_argument(text, kwargs, ids):
    with only_minibloom_errors():
        TOK(text, **kwargs)
    with only_minibloom_errors():
        TOK.encode(text)
    with only_minibloom_errors():
        TOK.decode(ids)
    with only_minibloom_errors():
        TOK.batch_decode(ids if isinstance(ids, list) else [ids])
    with only_minibloom_errors():
        TOK.convert_ids_to_tokens(ids)
