"""Text generation: greedy decoding and sampling with a preallocated KV cache (beam search: beam_search.py).

The loop, as transformers' `GenerationMixin._sample` runs it:

    prefill: run the whole prompt once, filling the cache
    repeat:  scores = process(logits of the last position)      (repetition penalty, temperature, top-k/p)
             token  = argmax(scores) or a sample from softmax(scores)
             rows that already met EOS get pad_token_id instead
             stop when every row has met EOS or the length reaches max_length
             run the model on the one new token per row (the cache holds the rest)

Left-padded batches work because the attention mask grows by one 1 per step and ALiBi positions are
the mask's cumulative sum: each row's first real token stays at position 0.

Shape legend: B batch, L tokens so far, V vocab.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .cache import KVCache
from .errors import InputError, NonFiniteScoresError
from .functional import softmax
from .logits_process import process_scores
from .validation import check_attention_mask, check_ids


@dataclass
class GenerationConfig:
    """Decoding settings, with transformers' defaults (greedy, max_length 20, top_k 50 when sampling)."""

    max_new_tokens: int | None = None
    max_length: int = 20
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = 50
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    num_return_sequences: int = 1
    eos_token_id: list[int] = field(default_factory=list)
    pad_token_id: int | None = None

    def validate(self, vocab_size: int) -> None:
        """Raise `InputError` naming the first setting that cannot work."""
        if self.max_new_tokens is not None and (not isinstance(self.max_new_tokens, int) or self.max_new_tokens <= 0):
            raise InputError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}")
        if self.do_sample and not self.temperature > 0:
            raise InputError(f"temperature must be > 0 when sampling, got {self.temperature!r} "
                             "(for greedy decoding set do_sample=False)")
        if not 0 < self.top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 0):
            raise InputError(f"top_k must be a non-negative integer or None, got {self.top_k!r}")
        if not self.repetition_penalty > 0:
            raise InputError(f"repetition_penalty must be > 0, got {self.repetition_penalty!r}")
        if not isinstance(self.num_beams, int) or self.num_beams < 1:
            raise InputError(f"num_beams must be a positive integer, got {self.num_beams!r}")
        if self.num_beams > 1 and self.do_sample:
            raise InputError("beam sampling (num_beams > 1 with do_sample=True) is not supported; "
                             "use num_beams=1 to sample or do_sample=False for beam search")
        if self.early_stopping not in (True, False, "never"):
            raise InputError(f"early_stopping must be True, False or 'never', got {self.early_stopping!r}")
        limit = self.num_beams if self.num_beams > 1 else (None if self.do_sample else 1)
        if self.num_return_sequences < 1 or (limit is not None and self.num_return_sequences > limit):
            raise InputError(f"num_return_sequences must be in [1, {limit or 'any'}] here, "
                             f"got {self.num_return_sequences!r}")
        for name, ids in (("eos_token_id", self.eos_token_id),
                          ("pad_token_id", [] if self.pad_token_id is None else [self.pad_token_id])):
            if any(not 0 <= i < vocab_size for i in ids):
                raise InputError(f"{name} {ids} is outside the vocabulary [0, {vocab_size})")


def eos_list(eos: int | Sequence[int] | None) -> list[int]:
    """One EOS id or several -> a list of ids."""
    return [] if eos is None else [int(eos)] if np.isscalar(eos) else [int(e) for e in eos]


def make_config(model_config, **kwargs: Any) -> GenerationConfig:
    """GenerationConfig from the model's config (eos, pad) and the caller's keyword arguments."""
    unknown = set(kwargs) - set(GenerationConfig.__dataclass_fields__)
    if unknown:
        raise InputError(f"unknown generation arguments: {sorted(unknown)}")
    eos = eos_list(kwargs.pop("eos_token_id", model_config.eos_token_id))
    pad = kwargs.pop("pad_token_id", model_config.pad_token_id)
    if pad is None and eos:
        pad = eos[0]  # transformers does the same (with a warning): finished rows are filled with EOS
    return GenerationConfig(eos_token_id=eos, pad_token_id=pad, **kwargs)


def prepare_inputs(input_ids: Any, attention_mask: Any, gen: GenerationConfig,
                   vocab_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Checked ids [B, L0], mask [B, L0] and the final length.

    Without a mask, as transformers: pad ids are masked out when pad_token_id is set and is not an
    EOS id, else every token counts.
    """
    ids = check_ids(input_ids, vocab_size)
    B, L0 = ids.shape
    if attention_mask is not None:
        mask = check_attention_mask(attention_mask, B, L0)
    elif gen.pad_token_id is not None and gen.pad_token_id not in gen.eos_token_id and (ids == gen.pad_token_id).any():
        mask = (ids != gen.pad_token_id).astype(np.int64)
    else:
        mask = np.ones((B, L0), np.int64)
    max_length = L0 + gen.max_new_tokens if gen.max_new_tokens is not None else gen.max_length
    if L0 >= max_length:
        raise InputError(f"the prompt has {L0} tokens but max_length is {max_length}: set max_new_tokens "
                         "to the number of tokens to generate")
    return ids, mask, max_length


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def sample(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One token per row from probs [B, V], by inverting the cumulative distribution."""
    cumulative = np.cumsum(probs.astype(np.float64), axis=-1)  # [B, V]
    usable = np.isfinite(cumulative[:, -1]) & (cumulative[:, -1] > 0)  # NaN/inf scores give NaN probs
    if not usable.all():
        raise NonFiniteScoresError(f"sampling: the scores of batch row {int(np.argmin(usable))} are NaN or infinite "
                                   "(a NaN weight, or a temperature so small the scores overflow)")
    u = rng.random(probs.shape[0]) * cumulative[:, -1]  # [B]
    picked = (cumulative <= u[:, None]).sum(axis=-1)
    return np.minimum(picked, probs.shape[-1] - 1)


def decode_steps(model, ids: np.ndarray, mask: np.ndarray, max_length: int, gen: GenerationConfig,
                 rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Greedy or sampled decoding; yields (next tokens [B], all tokens [B, L]) once per step."""
    B, L = ids.shape
    tokens = np.zeros((B, max_length), np.int64)  # preallocated: no concatenation per step
    tokens[:, :L] = ids
    full_mask = np.ones((B, max_length), mask.dtype)
    full_mask[:, :L] = mask
    cache = KVCache.for_config(model.config, B, max_length)
    unfinished = np.ones(B, bool)
    eos = np.array(gen.eos_token_id, np.int64)
    logits = model(ids, attention_mask=mask, past_key_values=cache, logits_to_keep=1).logits[:, -1]  # prefill: [B, V]
    while True:
        scores = process_scores(tokens[:, :L], logits.astype(np.float32), gen.do_sample, gen.repetition_penalty,
                                gen.temperature, gen.top_k, gen.top_p)  # [B, V]
        next_tokens = sample(softmax(scores), rng) if gen.do_sample else np.argmax(scores, axis=-1)  # [B]
        if eos.size:
            next_tokens = np.where(unfinished, next_tokens, gen.pad_token_id)
        tokens[:, L] = next_tokens
        L += 1
        yield next_tokens, tokens[:, :L]
        if eos.size:
            unfinished &= ~np.isin(next_tokens, eos)
        if L >= max_length or not unfinished.any():
            return
        logits = model(next_tokens[:, None], attention_mask=full_mask[:, :L], past_key_values=cache).logits[:, -1]


def progress_bar(total: int, show: bool | None):
    """A tqdm bar on stderr for generations that run past 2 seconds (None: only on a terminal)."""
    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if show is None else not show
    return tqdm(total=total, unit="tok", desc="generating", delay=2.0, disable=disable, leave=False)


def generate(model, input_ids: Any, attention_mask: Any = None, streamer: Callable[[np.ndarray], Any] | None = None,
             seed: int | np.random.Generator | None = None, progress: bool | None = None,
             **kwargs: Any) -> np.ndarray:
    """Generate continuations; returns prompt + new tokens, [B * num_return_sequences, L].

    kwargs are GenerationConfig fields (max_new_tokens, do_sample, temperature, top_k, top_p,
    repetition_penalty, num_beams, length_penalty, early_stopping, num_return_sequences,
    eos_token_id (an id or a list), pad_token_id). `streamer(tokens [B])` is called with each
    step's new tokens as they are chosen (greedy and sampling). `seed` seeds sampling.
    """
    from .beam_search import beam_search

    gen = make_config(model.config, **kwargs)
    gen.validate(model.config.vocab_size)
    ids, mask, max_length = prepare_inputs(input_ids, attention_mask, gen, model.config.vocab_size)
    if gen.num_beams > 1:
        return beam_search(model, ids, mask, max_length, gen)
    if gen.num_return_sequences > 1:  # sampling several continuations of each prompt
        ids, mask = (np.repeat(a, gen.num_return_sequences, axis=0) for a in (ids, mask))
    tokens = ids
    with progress_bar(max_length - ids.shape[1], progress) as bar:
        for next_tokens, tokens in decode_steps(model, ids, mask, max_length, gen, as_generator(seed)):
            bar.update(1)
            if streamer is not None:
                streamer(next_tokens)
    return tokens.copy()


def stream(model, input_ids: Any, attention_mask: Any = None, seed: int | np.random.Generator | None = None,
           **kwargs: Any) -> Iterator[np.ndarray]:
    """Like `generate` (greedy or sampling), but yields each step's new tokens [B] as they come."""
    gen = make_config(model.config, **kwargs)
    gen.validate(model.config.vocab_size)
    if gen.num_beams > 1:
        raise InputError("streaming needs num_beams=1: beam search only knows its tokens at the end")
    ids, mask, max_length = prepare_inputs(input_ids, attention_mask, gen, model.config.vocab_size)
    if gen.num_return_sequences > 1:
        ids, mask = (np.repeat(a, gen.num_return_sequences, axis=0) for a in (ids, mask))
    for next_tokens, _ in decode_steps(model, ids, mask, max_length, gen, as_generator(seed)):
        yield next_tokens.copy()

