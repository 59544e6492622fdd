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

from types import ModuleType
from typing import Any

import numpy as np

from .backends import numpy_backward
from .cache import KVCache
from .config import BloomConfig
from .errors import InputError
from .explain.hooks import HookedRun
from .functional import linear_backward
from .losses import (IGNORE_INDEX, bce_with_logits, bce_with_logits_backward, cross_entropy, cross_entropy_backward,
                     mse, mse_backward)
from .model import BloomModel, call_params
from .outputs import (BaseModelOutputWithPast, CausalLMOutputWithCrossAttentions, QuestionAnsweringModelOutput,
                      SequenceClassifierOutputWithPast, TokenClassifierOutput)
from .pretrained import PreTrainedBloom
from .trace import NO_TRACE, Trace
from .validation import as_array, check_float_labels, check_ids, check_int_labels
from .weights import bloom_param_shapes


class BloomWithHead(HookedRun, PreTrainedBloom):
    """A BloomModel plus a head (`run_with_cache`, `run_with_hooks`: explain/hooks.py). Saved, as transformers saves heads, with the `transformer.` prefix."""

    save_prefix = True

    def __init__(self, config: BloomConfig, params: dict[str, np.ndarray] | None = None, seed: int = 0,
                 backend: str = "auto", storage: str = "auto", threads: int | None = None):
        super().__init__(config, params, seed, backend, storage, threads)
        base = {name: self.params[name] for name in bloom_param_shapes(config)}  # shared, not copied
        self.transformer = BloomModel(config, base, backend=self.backend, storage=self.storage)

    def run_transformer(self, params: dict[str, np.ndarray] | None, input_ids: Any, past_key_values: KVCache | None,
                        attention_mask: Any, head_mask: Any, inputs_embeds: Any, use_cache: bool | None,
                        output_attentions: bool | None, output_hidden_states: bool | None, trace: Trace,
                        ) -> tuple[dict[str, np.ndarray], BaseModelOutputWithPast]:
        """(the tensors this call computes with, the base model's output with them): the model's own,
        or `params` (checked: every tensor of this class, base and head) when a call passes them.
        The other arguments are BloomModel.forward's, in its order."""
        args = (input_ids, past_key_values, attention_mask, head_mask, inputs_embeds, use_cache, output_attentions,
                output_hidden_states, trace)
        if params is None:
            return self.params, self.transformer(*args)
        params = call_params(params, self.param_shapes(self.config), self.storage, type(self).__name__)
        return params, self.transformer(*args, params={name: params[name] for name in bloom_param_shapes(self.config)})


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
        return self.lm_head_of(self.params)

    def lm_head_of(self, params: dict[str, np.ndarray]) -> np.ndarray:
        """The LM head [V, H] among `params`: their word embeddings when tied."""
        return params["word_embeddings.weight" if self.config.tie_word_embeddings else "lm_head.weight"]

    def forward(self, input_ids: Any = None, past_key_values: KVCache | None = None, attention_mask: Any = None,
                head_mask: Any = None, inputs_embeds: Any = None, labels: Any = None, use_cache: bool | None = None,
                output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                logits_to_keep: int = 0, trace: Trace = NO_TRACE,
                params: dict[str, np.ndarray] | None = None) -> CausalLMOutputWithCrossAttentions:
        """labels [B, T]: usually input_ids; shifted inside (position t predicts token t+1), -100 ignored.
        logits_to_keep > 0: compute logits for the last that many positions only (generation needs
        one; a 128-token prompt's full logits take 128 MB at BLOOM's vocab). 0 keeps all, as transformers'
        BloomForCausalLM, which has no such argument, always does.
        params: other tensors to compute with (as Flax's `model(ids, params=...)`); tied, the LM head
        is their word embeddings."""
        if not isinstance(logits_to_keep, (int, np.integer)) or logits_to_keep < 0:
            raise InputError(f"logits_to_keep must be a non-negative integer, got {logits_to_keep!r}")
        if logits_to_keep and labels is not None:
            raise InputError("logits_to_keep needs labels=None: the loss needs every position's logits")
        p, out = self.run_transformer(params, input_ids, past_key_values, attention_mask, head_mask, inputs_embeds,
                                      use_cache, output_attentions, output_hidden_states, trace)
        hidden = out.last_hidden_state[:, -logits_to_keep:] if logits_to_keep else out.last_hidden_state
        logits = self.ops.linear(hidden, self.lm_head_of(p))  # [B, T, H] -> [B, T, V]
        loss = None if labels is None else causal_lm_loss(logits, labels)
        return CausalLMOutputWithCrossAttentions(loss=loss, logits=logits, past_key_values=out.past_key_values,
                                                 hidden_states=out.hidden_states,
                                                 attentions=out.attentions)

    __call__ = forward

    def __init__(self, config: BloomConfig, params: dict[str, np.ndarray] | None = None, seed: int = 0,
                 backend: str = "auto", storage: str = "auto", threads: int | None = None):
        from .generation import GenerationConfig

        super().__init__(config, params, seed, backend, storage, threads)
        # subtle: made now, from the config as it is (transformers does the same in __init__): a later
        # change to config.eos_token_id does not reach generate, unless the config also sets a
        # generation setting such as max_length (transformers' legacy path, `generation.make_config`).
        self.generation_config = GenerationConfig.from_model_config(config)

    @classmethod
    def _read_extra_files(cls, files) -> dict[str, object]:
        """The checkpoint's generation_config.json, if any, as `generation_config`."""
        import os

        from .generation import GENERATION_CONFIG_NAME, GenerationConfig

        path = files.path(GENERATION_CONFIG_NAME)
        return {"generation_config": GenerationConfig.from_pretrained(os.path.dirname(path))} \
            if os.path.isfile(path) else {}

    def _extra_files(self) -> dict[str, bytes]:
        """generation_config.json, saved with config.json and the weights in one transaction, as
        transformers writes it beside them."""
        from .generation import GENERATION_CONFIG_NAME

        return {GENERATION_CONFIG_NAME: self.generation_config.to_json_string().encode("utf-8")}

    def head_backward(self, hidden: np.ndarray, output: CausalLMOutputWithCrossAttentions,
                      batch: dict[str, Any], bops: ModuleType = numpy_backward,
                      ) -> tuple[np.float32, np.ndarray, dict[str, np.ndarray]]:
        """The loss and the backward of the LM head: (loss, d_hidden [B, T, H], {lm_head's name: d_W [V, H]}).
        Tied, the gradient is named `word_embeddings.weight` and later added to the gather's.
        `output` comes from a forward without labels: the loss and its gradient share one softmax.
        `bops`: the backward ops (`training.backward_ops`) that compute the vocabulary-wide softmax."""
        loss, d_logits = causal_lm_loss_with_grad(output.logits, batch["labels"], bops)  # [B, T, V]
        d_hidden, d_w, _ = linear_backward(d_logits, hidden, self.lm_head_weight)  # [B, T, H], [V, H]
        return loss, d_hidden, {"word_embeddings.weight" if self.config.tie_word_embeddings else "lm_head.weight": d_w}

    def generate(self, input_ids: Any, attention_mask: Any = None, **kwargs: Any) -> np.ndarray:
        """Continue each prompt; returns prompt + new tokens [B, L], or a `GenerateDecoderOnlyOutput`
        with return_dict_in_generate=True. See `minibloom.generation.generate`: greedy by default;
        do_sample with temperature / top_k / top_p and `seed`; num_beams for beam search;
        max_new_tokens, min_new_tokens, eos_token_id (one or several), pad_token_id,
        repetition_penalty, no_repeat_ngram_size, bad_words_ids, stop_strings (with tokenizer=),
        generation_config=, past_key_values= (continue an earlier call), output_scores /
        output_logits, a `streamer` (put/end objects such as `TextStreamer`, or a callable), and a
        progress bar on a terminal."""
        from .generation import generate

        return generate(self, input_ids, attention_mask, **kwargs)

    def compute_transition_scores(self, sequences: Any, scores: Any, beam_indices: Any = None,
                                  normalize_logits: bool = False) -> np.ndarray:
        """The score of each generated token, [B, generated] (transformers' method): from generate's
        `sequences` and `scores` (output_scores=True), and `beam_indices` after beam search. See
        `minibloom.generation.compute_transition_scores`."""
        from .generation import compute_transition_scores

        return compute_transition_scores(sequences, scores, beam_indices, normalize_logits, self.config.vocab_size)

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


def causal_lm_loss_with_grad(logits: np.ndarray, labels: Any, bops: ModuleType = numpy_backward,
                             ) -> tuple[np.float32, np.ndarray]:
    """`causal_lm_loss` and d loss / d logits [B, T, V] (the last position predicts nothing: 0)."""
    B, T, V = logits.shape
    labels = check_int_labels(labels, (B, T), "labels")
    shifted = np.concatenate([labels[:, 1:], np.full((B, 1), IGNORE_INDEX)], axis=1)  # [B, T]
    loss, d_logits = bops.cross_entropy_with_grad(logits.reshape(B * T, V), shifted.reshape(-1), name="labels")
    return loss, d_logits.reshape(B, T, V)


class BloomForSequenceClassification(BloomWithHead):
    """One label per sequence, read off the last real token (the only one that has seen them all)."""

    @classmethod
    def head_shapes(cls, config: BloomConfig) -> dict[str, tuple[int, ...]]:
        return {"score.weight": (config.num_labels, config.hidden_size)}

    def forward(self, input_ids: Any = None, past_key_values: KVCache | None = None, attention_mask: Any = None,
                head_mask: Any = None, inputs_embeds: Any = None, labels: Any = None, use_cache: bool | None = None,
                output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                trace: Trace = NO_TRACE, params: dict[str, np.ndarray] | None = None) -> SequenceClassifierOutputWithPast:
        """labels: int [B] (single-label), float [B] or [B, C] (regression), float [B, C] (multi-label).
        params: other tensors to compute with (as Flax's `model(ids, params=...)`)."""
        p, out = self.run_transformer(params, input_ids, past_key_values, attention_mask, head_mask, inputs_embeds,
                                      use_cache, output_attentions, output_hidden_states, trace)
        logits = self.ops.linear(out.last_hidden_state, p["score.weight"])  # [B, T, H] -> [B, T, C]
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


    def head_backward(self, hidden: np.ndarray, output: SequenceClassifierOutputWithPast,
                      batch: dict[str, Any], bops: ModuleType = numpy_backward,
                      ) -> tuple[np.float32, np.ndarray, dict[str, np.ndarray]]:
        """(loss, d_hidden, grads) of the pooled score head: only the pooled row of each sequence gets a gradient.

        pooled[b] = score(hidden[b, row_b]), so d_hidden[b, row_b] = d_pooled[b] @ W and
        d_W = sum_b d_pooled[b]^T hidden[b, row_b]; every other position receives 0 from the head.
        """
        B, T, H = hidden.shape
        ids = batch.get("input_ids")
        rows = last_non_pad_index(None if ids is None else check_ids(ids, self.config.vocab_size),
                                  self.config.pad_token_id, B)  # [B]
        loss = self.sequence_loss(output.logits, batch["labels"])  # also settles config.problem_type
        d_pooled = self.sequence_loss_backward(output.logits, batch["labels"])  # [B, C]
        d_rows, d_w, _ = linear_backward(d_pooled, hidden[np.arange(B), rows], self.params["score.weight"])
        d_hidden = np.zeros_like(hidden)  # [B, T, H]
        d_hidden[np.arange(B), rows] = d_rows
        return loss, d_hidden, {"score.weight": d_w}

    def sequence_loss_backward(self, pooled: np.ndarray, labels: Any) -> np.ndarray:
        """d sequence_loss / d pooled [B, C], for the problem type the forward settled on."""
        labels = as_array(labels, "labels")
        kind = self.config.problem_type
        if kind == "single_label_classification":
            return cross_entropy_backward(pooled, check_int_labels(labels, (pooled.shape[0],), "labels"))
        if kind == "regression":
            return mse_backward(pooled, labels.reshape(pooled.shape))
        return bce_with_logits_backward(pooled, labels)


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
                trace: Trace = NO_TRACE, params: dict[str, np.ndarray] | None = None) -> TokenClassifierOutput:
        """labels [B, T] of class ids, -100 for positions that do not count.
        params: other tensors to compute with (as Flax's `model(ids, params=...)`)."""
        p, out = self.run_transformer(params, input_ids, past_key_values, attention_mask, head_mask, inputs_embeds,
                                      use_cache, output_attentions, output_hidden_states, trace)
        logits = self.ops.linear(out.last_hidden_state, p["classifier.weight"], p["classifier.bias"])  # [B, T, C]
        loss = None
        if labels is not None:
            B, T, C = logits.shape
            labels = check_int_labels(labels, (B, T), "labels")
            loss = cross_entropy(logits.reshape(B * T, C), labels.reshape(-1), name="labels")
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                     attentions=out.attentions)

    __call__ = forward


    def head_backward(self, hidden: np.ndarray, output: TokenClassifierOutput,
                      batch: dict[str, Any], bops: ModuleType = numpy_backward,
                      ) -> tuple[np.float32, np.ndarray, dict[str, np.ndarray]]:
        """(loss, d_hidden, grads) of the per-token classifier and its cross-entropy (-100 ignored)."""
        B, T, C = output.logits.shape
        labels = check_int_labels(batch["labels"], (B, T), "labels")
        loss, d_logits = bops.cross_entropy_with_grad(output.logits.reshape(B * T, C), labels.reshape(-1))
        d_hidden, d_w, d_b = linear_backward(d_logits.reshape(B, T, C), hidden, self.params["classifier.weight"])
        return loss, d_hidden, {"classifier.weight": d_w, "classifier.bias": d_b}


class BloomForQuestionAnswering(BloomWithHead):
    """Extractive QA: a start and an end score for every token; the answer is the best span."""

    @classmethod
    def head_shapes(cls, config: BloomConfig) -> dict[str, tuple[int, ...]]:
        return {"qa_outputs.weight": (2, config.hidden_size), "qa_outputs.bias": (2,)}

    def forward(self, input_ids: Any = None, attention_mask: Any = None, head_mask: Any = None,
                inputs_embeds: Any = None, start_positions: Any = None, end_positions: Any = None,
                output_attentions: bool | None = None,
                output_hidden_states: bool | None = None, trace: Trace = NO_TRACE,
                params: dict[str, np.ndarray] | None = None) -> QuestionAnsweringModelOutput:
        """start_positions, end_positions [B]: token indices of the answer span (loss needs both).
        params: other tensors to compute with (as Flax's `model(ids, params=...)`).

        Like transformers' QA head, it takes no cache: it always runs the whole sequence.
        """
        p, out = self.run_transformer(params, input_ids, None, attention_mask, head_mask, inputs_embeds,
                                      False, output_attentions, output_hidden_states, trace)  # no cache
        logits = self.ops.linear(out.last_hidden_state, p["qa_outputs.weight"], p["qa_outputs.bias"])  # [B, T, 2]
        start_logits, end_logits = logits[..., 0], logits[..., 1]  # [B, T] each
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = np.float32((span_loss(start_logits, start_positions, "start_positions")
                               + span_loss(end_logits, end_positions, "end_positions")) / 2)
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits,
                                            hidden_states=out.hidden_states, attentions=out.attentions)

    __call__ = forward


    def head_backward(self, hidden: np.ndarray, output: QuestionAnsweringModelOutput,
                      batch: dict[str, Any], bops: ModuleType = numpy_backward,
                      ) -> tuple[np.float32, np.ndarray, dict[str, np.ndarray]]:
        """(loss, d_hidden, grads) of loss = (CE(start) + CE(end)) / 2 through the [2, H] span projection."""
        loss = np.float32((span_loss(output.start_logits, batch["start_positions"], "start_positions")
                           + span_loss(output.end_logits, batch["end_positions"], "end_positions")) / 2)
        d_start = span_loss_backward(output.start_logits, batch["start_positions"], "start_positions")  # [B, T]
        d_end = span_loss_backward(output.end_logits, batch["end_positions"], "end_positions")  # [B, T]
        d_logits = np.float32(0.5) * np.stack([d_start, d_end], axis=-1)  # [B, T, 2]
        d_hidden, d_w, d_b = linear_backward(d_logits, hidden, self.params["qa_outputs.weight"])
        return loss, d_hidden, {"qa_outputs.weight": d_w, "qa_outputs.bias": d_b}


def span_loss_backward(logits: np.ndarray, positions: Any, name: str) -> np.ndarray:
    """d span_loss / d logits [B, T], with the same clamping (T is ignored, negatives count as 0)."""
    B, T = logits.shape
    positions = as_array(positions, name)
    if positions.ndim > 1:
        positions = positions.squeeze(-1)
    positions = check_int_labels(positions, (B,), name)
    return cross_entropy_backward(logits, np.clip(positions, 0, T), ignore_index=T)


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
