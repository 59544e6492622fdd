"""Model outputs: small dataclasses of NumPy arrays with transformers' field names."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np


class ModelOutput:
    """Field access by name (`out.last_hidden_state`, `out["last_hidden_state"]`) and, like
    transformers' tuple mode, `to_tuple()` with the fields that are not None."""

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None)


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
