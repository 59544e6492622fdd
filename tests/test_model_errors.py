"""Bad input to BloomModel: each a typed error whose message says what and where."""

from __future__ import annotations

import numpy as np
import pytest

from minibloom import BloomConfig, BloomModel, InputError, MinibloomError

MODEL = BloomModel(BloomConfig(vocab_size=20, hidden_size=8, n_head=2, n_layer=2))
IDS = np.array([[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize("kwargs,message", [
    (dict(input_ids=np.array([[1, 20, 3]])), r"input_ids\[0, 1\] = 20 is outside the vocabulary \[0, 20\)"),
    (dict(input_ids=np.array([[1, 2], [3, -1]])), r"input_ids\[1, 1\] = -1"),
    (dict(input_ids=np.array([1, 2, 3])), r"input_ids must have shape \[batch, seq_len\], got shape \(3,\)"),
    (dict(input_ids=np.zeros((1, 0), np.int64)), "must not be empty"),
    (dict(input_ids=np.zeros((0, 3), np.int64)), "must not be empty"),
    (dict(input_ids=np.array([[1.0, 2.0]])), "input_ids must hold integers"),
    (dict(input_ids=[[1, 2], [3]]), "input_ids must be a rectangular array"),
    (dict(input_ids=IDS, attention_mask=np.ones((2, 4))), r"attention_mask has shape \(2, 4\), expected \(2, 3\)"),
    (dict(input_ids=IDS, attention_mask=np.ones(3)), "attention_mask has shape"),
    (dict(input_ids=IDS, attention_mask=np.array([[1, np.nan, 1]] * 2)), "NaN"),
    (dict(input_ids=IDS, head_mask=np.ones(3)), r"head_mask has shape \(3,\), expected \(2,\) or \(2, 2\)"),
    (dict(input_ids=IDS, inputs_embeds=np.zeros((2, 3, 8))), "exactly one of input_ids and inputs_embeds"),
    (dict(), "exactly one of input_ids and inputs_embeds"),
    (dict(inputs_embeds=np.zeros((2, 3, 9), np.float32)), "last dimension 9, the config's hidden_size is 8"),
    (dict(inputs_embeds=np.zeros((2, 3), np.float32)), r"inputs_embeds must have shape \[batch, seq_len, hidden"),
    (dict(inputs_embeds=np.zeros((1, 2, 8), np.int64)), "inputs_embeds must hold floats"),
])
def test_bad_input_raises_input_error_naming_the_argument(kwargs, message):
    with pytest.raises(InputError, match=message):
        MODEL(**kwargs)


def test_every_error_is_a_minibloom_error_and_a_value_error():
    with pytest.raises(MinibloomError):
        MODEL(np.array([[99]]))
    with pytest.raises(ValueError):  # as transformers would raise
        MODEL()


def test_wrong_params_at_construction_name_the_tensor():
    params = dict(MODEL.params)
    params["ln_f.bias"] = np.zeros(3, np.float32)
    with pytest.raises(MinibloomError, match="'ln_f.bias' has shape"):
        BloomModel(MODEL.config, params)
