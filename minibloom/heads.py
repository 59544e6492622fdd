"""The four task heads on top of BloomModel, as transformers 4.57.1 defines them.

| class | head tensors | output |
| --- | --- | --- |
| BloomForCausalLM | lm_head = word_embeddings (tied) | logits [B, T, V] |
| BloomForSequenceClassification | score.weight [C, H], no bias | logits [B, C] at the last non-pad token |
| BloomForTokenClassification | classifier.weight [C, H] + bias | logits [B, T, C] |
| BloomForQuestionAnswering | qa_outputs.weight [2, H] + bias | start_logits, end_logits [B, T] |

Each head runs the shared BloomModel (`self.transformer`) and adds one linear layer; losses come from
`losses.py`. Dropout layers are identity at inference and are left out.

Shape legend: B batch, T sequence length, H hidden, V vocab, C classes (num_labels).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .cache import KVCache
from .config import BloomConfig
from .errors import InputError
from .losses import IGNORE_INDEX, bce_with_logits, cross_entropy, mse
from .model import BloomModel
from .outputs import (CausalLMOutputWithCrossAttentions, QuestionAnsweringModelOutput,
                      SequenceClassifierOutputWithPast, TokenClassifierOutput)
from .pretrained import PreTrainedBloom
from .trace import NO_TRACE, Trace
from .validation import as_array, check_ids
from .weights import bloom_param_shapes


class BloomWithHead(PreTrainedBloom):
    """A BloomModel plus a head. Saved, as transformers saves heads, with the `transformer.` prefix."""

    save_prefix = True

    def __init__(self, config: BloomConfig, params: dict[str, np.ndarray] | None = None, seed: int = 0,
                 backend: str = "numpy", storage: str = "auto", threads: int | None = None):
        super().__init__(config, params, seed, backend, storage, threads)
        base = {name: self.params[name] for name in bloom_param_shapes(config)}  # shared, not copied
        self.transformer = BloomModel(config, base, backend=backend, storage=self.storage)


class BloomForCausalLM(BloomWithHead):
    """Next-token prediction: logits over the vocabulary at every position.

    The output projection is the word-embedding matrix itself (weight tying), so hub checkpoints
    store no `lm_head.weight`; a stored one is ignored while `tie_word_embeddings` is true, as in
    transformers, and is required when it is false.
    """

    @classmethod
    def head_shapes(cls, config: BloomConfig) -> dict[str, tuple[int, ...]]:
        return {} if config.tie_word_embeddings else {"lm_head.weight": (config.vocab_size, config.hidden_size)}

    @property
    def lm_head_weight(self) -> np.ndarray:
        """[V, H]: the tied embedding matrix, or the separate lm_head when untied."""
        return self.params["word_embeddings.weight" if self.config.tie_word_embeddings else "lm_head.weight"]

    def forward(self, input_ids: Any = None, past_key_values: KVCache | None = None, attention_mask: Any = None,
                head_mask: Any = None, inputs_embeds: Any = None, labels: Any = None, use_cache: bool | None = None,
                output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                logits_to_keep: int = 0, trace: Trace = NO_TRACE) -> CausalLMOutputWithCrossAttentions:
        """labels [B, T]: usually input_ids; shifted inside (position t predicts token t+1), -100 ignored.
        logits_to_keep > 0: compute logits for the last that many positions only (generation needs
        one; a 128-token prompt's full logits take 128 MB at BLOOM's vocab). 0 keeps all, as transformers'
        BloomForCausalLM, which has no such argument, always does."""
        out = self.transformer(input_ids=input_ids, past_key_values=past_key_values,
                               attention_mask=attention_mask, head_mask=head_mask, inputs_embeds=inputs_embeds, use_cache=use_cache,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               trace=trace)
        if not isinstance(logits_to_keep, (int, np.integer)) or logits_to_keep < 0:
            raise InputError(f"logits_to_keep must be a non-negative integer, got {logits_to_keep!r}")
        if logits_to_keep and labels is not None:
            raise InputError("logits_to_keep needs labels=None: the loss needs every position's logits")
        hidden = out.last_hidden_state[:, -logits_to_keep:] if logits_to_keep else out.last_hidden_state
        logits = self.ops.linear(hidden, self.lm_head_weight)  # [B, T, H] -> [B, T, V]
        loss = None if labels is None else causal_lm_loss(logits, labels)
        return CausalLMOutputWithCrossAttentions(loss=loss, logits=logits, past_key_values=out.past_key_values,
                                                 hidden_states=out.hidden_states,
                                                 attentions=out.attentions)

    __call__ = forward


    def generate(self, input_ids: Any, attention_mask: Any = None, **kwargs: Any) -> np.ndarray:
        """Continue each prompt; returns prompt + new tokens [B, L]. See `minibloom.generation.generate`:
        greedy by default; do_sample with temperature / top_k / top_p and `seed`; num_beams for beam
        search; max_new_tokens, eos_token_id (one or several), pad_token_id, repetition_penalty,
        a `streamer` callback, and a progress bar on a terminal."""
        from .generation import generate

        return generate(self, input_ids, attention_mask, **kwargs)

    def stream(self, input_ids: Any, attention_mask: Any = None, **kwargs: Any):
        """Yield each step's new tokens [B] as they are chosen (greedy or sampling)."""
        from .generation import stream

        return stream(self, input_ids, attention_mask, **kwargs)


def causal_lm_loss(logits: np.ndarray, labels: Any) -> np.float32:
    """Cross-entropy of logits[:, t] against labels[:, t + 1]; the last position predicts nothing."""
    B, T, V = logits.shape
    labels = check_int_labels(labels, (B, T), "labels")
    shifted = np.concatenate([labels[:, 1:], np.full((B, 1), IGNORE_INDEX)], axis=1)  # [B, T]
    return cross_entropy(logits.reshape(B * T, V), shifted.reshape(-1), name="labels")


class BloomForSequenceClassification(BloomWithHead):
    """One label per sequence, read off the last real token (the only one that has seen them all)."""

    @classmethod
    def head_shapes(cls, config: BloomConfig) -> dict[str, tuple[int, ...]]:
        return {"score.weight": (config.num_labels, config.hidden_size)}

    def forward(self, input_ids: Any = None, past_key_values: KVCache | None = None, attention_mask: Any = None,
                head_mask: Any = None, inputs_embeds: Any = None, labels: Any = None, use_cache: bool | None = None,
                output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                trace: Trace = NO_TRACE) -> SequenceClassifierOutputWithPast:
        """labels: int [B] (single-label), float [B] or [B, C] (regression), float [B, C] (multi-label)."""
        out = self.transformer(input_ids=input_ids, past_key_values=past_key_values,
                               attention_mask=attention_mask, head_mask=head_mask, inputs_embeds=inputs_embeds, use_cache=use_cache,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               trace=trace)
        logits = self.ops.linear(out.last_hidden_state, self.params["score.weight"])  # [B, T, C]
        B = logits.shape[0]
        rows = last_non_pad_index(None if input_ids is None else check_ids(input_ids, self.config.vocab_size),
                                  self.config.pad_token_id, B)  # [B]
        pooled = logits[np.arange(B), rows]  # [B, C]
        loss = None if labels is None else self.sequence_loss(pooled, labels)
        return SequenceClassifierOutputWithPast(loss=loss, logits=pooled, past_key_values=out.past_key_values,
                                                hidden_states=out.hidden_states,
                                                attentions=out.attentions)

    __call__ = forward

    def sequence_loss(self, pooled: np.ndarray, labels: Any) -> np.float32:
        """MSE, cross-entropy or BCE, by `config.problem_type`.

        subtle: as in transformers, a problem_type of None is inferred from the first labels seen
        (1 label: regression; integer labels: single-label; else multi-label) and written back
        into the config, so later calls keep it.
        """
        labels = as_array(labels, "labels")
        B, C = pooled.shape
        if self.config.problem_type is None:
            self.config.problem_type = ("regression" if C == 1 else "single_label_classification"
                                        if labels.dtype.kind in "iu" else "multi_label_classification")
        kind = self.config.problem_type
        if kind == "single_label_classification":
            return cross_entropy(pooled, check_int_labels(labels, (B,), "labels"), name="labels")
        check_float_labels(labels, [(B, C)] + ([(B,)] if C == 1 else []), "labels")
        if kind == "regression":
            return mse(pooled.reshape(-1) if C == 1 else pooled, labels.reshape(-1) if C == 1 else labels)
        return bce_with_logits(pooled, labels)


def last_non_pad_index(input_ids: np.ndarray | None, pad_token_id: int | None, batch: int) -> np.ndarray:
    """Index [B] of the token each row is classified at, by transformers' rule.

    With input_ids: the rightmost position whose id is not the pad id, `argmax(arange(T) * not_pad)`:
    T-1 for unpadded and left-padded rows, and 0 for an all-pad row. Without a pad id (batch 1 only)
    or from inputs_embeds (pads cannot be seen): the last position.
    """
    if pad_token_id is None and batch != 1:
        raise InputError("Cannot handle batch sizes > 1 if no padding token is defined "
                         "(set config.pad_token_id)")
    if pad_token_id is None or input_ids is None:
        return np.full(batch, -1)
    T = input_ids.shape[1]
    return np.argmax(np.arange(T) * (input_ids != pad_token_id), axis=-1)  # [B]


class BloomForTokenClassification(BloomWithHead):
    """One label per token (named entities, parts of speech)."""

    @classmethod
    def head_shapes(cls, config: BloomConfig) -> dict[str, tuple[int, ...]]:
        return {"classifier.weight": (config.num_labels, config.hidden_size), "classifier.bias": (config.num_labels,)}

    def forward(self, input_ids: Any = None, past_key_values: KVCache | None = None, attention_mask: Any = None,
                head_mask: Any = None, inputs_embeds: Any = None, labels: Any = None, use_cache: bool | None = None,
                output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                trace: Trace = NO_TRACE) -> TokenClassifierOutput:
        """labels [B, T] of class ids, -100 for positions that do not count."""
        out = self.transformer(input_ids=input_ids, past_key_values=past_key_values,
                               attention_mask=attention_mask, head_mask=head_mask, inputs_embeds=inputs_embeds, use_cache=use_cache,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               trace=trace)
        logits = self.ops.linear(out.last_hidden_state, self.params["classifier.weight"], self.params["classifier.bias"])
        loss = None
        if labels is not None:
            B, T, C = logits.shape
            labels = check_int_labels(labels, (B, T), "labels")
            loss = cross_entropy(logits.reshape(B * T, C), labels.reshape(-1), name="labels")
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                     attentions=out.attentions)

    __call__ = forward


class BloomForQuestionAnswering(BloomWithHead):
    """Extractive QA: a start and an end score for every token; the answer is the best span."""

    @classmethod
    def head_shapes(cls, config: BloomConfig) -> dict[str, tuple[int, ...]]:
        return {"qa_outputs.weight": (2, config.hidden_size), "qa_outputs.bias": (2,)}

    def forward(self, input_ids: Any = None, attention_mask: Any = None, head_mask: Any = None,
                inputs_embeds: Any = None, start_positions: Any = None, end_positions: Any = None,
                output_attentions: bool | None = None,
                output_hidden_states: bool | None = None, trace: Trace = NO_TRACE) -> QuestionAnsweringModelOutput:
        """start_positions, end_positions [B]: token indices of the answer span (loss needs both).

        Like transformers' QA head, it takes no cache: it always runs the whole sequence.
        """
        out = self.transformer(input_ids=input_ids, attention_mask=attention_mask, head_mask=head_mask,
                               inputs_embeds=inputs_embeds, use_cache=False, output_attentions=output_attentions,
                               output_hidden_states=output_hidden_states, trace=trace)
        logits = self.ops.linear(out.last_hidden_state, self.params["qa_outputs.weight"], self.params["qa_outputs.bias"])
        start_logits, end_logits = logits[..., 0], logits[..., 1]  # [B, T] each
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = np.float32((span_loss(start_logits, start_positions, "start_positions")
                               + span_loss(end_logits, end_positions, "end_positions")) / 2)
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits,
                                            hidden_states=out.hidden_states, attentions=out.attentions)

    __call__ = forward


def span_loss(logits: np.ndarray, positions: Any, name: str) -> np.float32:
    """Cross-entropy of one span end over the T positions.

    subtle: positions are clamped to [0, T] and T is the ignore index, so a position past the end
    is ignored while a *negative* one becomes 0 and counts (transformers' behaviour).
    """
    B, T = logits.shape
    positions = as_array(positions, name)
    if positions.ndim > 1:
        positions = positions.squeeze(-1)
    positions = check_int_labels(positions, (B,), name)
    return cross_entropy(logits, np.clip(positions, 0, T), ignore_index=T, name=name)


def check_int_labels(labels: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Integer labels of exactly `shape`, as int64."""
    arr = as_array(labels, name)
    if arr.dtype.kind not in "iu":
        raise InputError(f"{name} must hold integers (class ids), got dtype {arr.dtype}")
    if arr.shape != shape:
        raise InputError(f"{name} has shape {arr.shape}, expected {shape}")
    return arr.astype(np.int64)


def check_float_labels(labels: np.ndarray, shapes: list[tuple[int, ...]], name: str) -> None:
    """Real-valued labels (regression, multi-label) of one of `shapes`."""
    if labels.dtype.kind not in "biuf":
        raise InputError(f"{name} must be numeric, got dtype {labels.dtype}")
    if labels.shape not in shapes:
        raise InputError(f"{name} has shape {labels.shape}, expected {' or '.join(map(str, shapes))}")
