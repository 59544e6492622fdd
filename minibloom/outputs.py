"""Model outputs: small dataclasses of NumPy arrays with transformers' field names."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np


class ModelOutput:
    """transformers' ModelOutput: field access by name (`out.logits`, `out["logits"]`) or by
    position among the fields that are set (`out[0]`, `out[:2]`), `to_tuple()`, `len(out)`, and the
    mapping methods `keys()`, `values()`, `items()`, `in`.

    subtle: as in transformers, only fields that are not None count: `out[0]` of a causal LM output
    without labels is the logits, with labels the loss.
    """

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(key)
            return getattr(self, key)
        return self.to_tuple()[key]

    def keys(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def values(self) -> list[Any]:
        return [getattr(self, k) for k in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(self.values())


@dataclass
class BaseModelOutputWithPast(ModelOutput):
    """What BloomModel returns.

    - last_hidden_state [B, T, H]: ln_f of the last block's output.
    - hidden_states: n_layer + 1 arrays [B, T, H]: the embedding LayerNorm output, the outputs of
      blocks 1 .. n_layer-1, then ln_f(final) -- transformers never returns the raw last block.
    - attentions: n_layer arrays [B, N, T, S], after softmax and head_mask.
    """

    last_hidden_state: np.ndarray
    past_key_values: Any = None
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


@dataclass
class CausalLMOutputWithCrossAttentions(ModelOutput):
    """BloomForCausalLM: logits [B, T, V]; loss (float32 scalar) when labels are given."""

    loss: np.float32 | None = None
    logits: np.ndarray | None = None
    past_key_values: Any = None
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


@dataclass
class SequenceClassifierOutputWithPast(ModelOutput):
    """BloomForSequenceClassification: logits [B, C], pooled at each row's last non-pad token."""

    loss: np.float32 | None = None
    logits: np.ndarray | None = None
    past_key_values: Any = None
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


@dataclass
class TokenClassifierOutput(ModelOutput):
    """BloomForTokenClassification: logits [B, T, C]."""

    loss: np.float32 | None = None
    logits: np.ndarray | None = None
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


@dataclass
class QuestionAnsweringModelOutput(ModelOutput):
    """BloomForQuestionAnswering: start_logits and end_logits [B, T]."""

    loss: np.float32 | None = None
    start_logits: np.ndarray | None = None
    end_logits: np.ndarray | None = None
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


@dataclass
class GenerateDecoderOnlyOutput(ModelOutput):
    """`generate(..., return_dict_in_generate=True)` with greedy decoding or sampling.

    - sequences [B, L]: prompt + generated tokens.
    - scores: one [B, V] float32 array per generated token, the *processed* scores the token was
      chosen from (after repetition penalty, temperature, top-k/p, ...); with output_scores=True.
    - logits: one [B, V] per step, the raw logits of the model; with output_logits=True.
    - hidden_states / attentions: with output_hidden_states / output_attentions, one entry per
      step, the model's tuple: [B, L0, H] / [B, N, L0, L0] for the prompt, then [B, 1, H] /
      [B, N, 1, L] for each new token.
    - past_key_values: the KV cache, holding every token but the last; pass it back to `generate`
      with `sequences` to continue.
    """

    sequences: np.ndarray | None = None
    scores: tuple[np.ndarray, ...] | None = None
    logits: tuple[np.ndarray, ...] | None = None
    attentions: Any = None
    hidden_states: Any = None
    past_key_values: Any = None


@dataclass
class GenerateBeamDecoderOnlyOutput(ModelOutput):
    """`generate(..., num_beams > 1, return_dict_in_generate=True)`, as transformers fills it.

    - sequences [B * n, L]: the best n = num_return_sequences hypotheses of each prompt.
    - beam_indices [B * n, generated]: the flat beam row (b * num_beams + beam) each token came
      from, -1 after the hypothesis ended (for `compute_transition_scores`); always set.
    - sequences_scores [B * n]: sum of log-probs / generated length ** length_penalty; with
      output_scores, as scores: each step's processed log-probs [B * num_beams, V].
    - logits (output_logits), hidden_states / attentions (per step, the model's tuples).
    """

    sequences: np.ndarray | None = None
    sequences_scores: np.ndarray | None = None
    scores: tuple[np.ndarray, ...] | None = None
    logits: tuple[np.ndarray, ...] | None = None
    beam_indices: np.ndarray | None = None
    attentions: Any = None
    hidden_states: Any = None
    past_key_values: Any = None
