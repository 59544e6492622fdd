"""The decoding loop: greedy decoding and sampling with a preallocated KV cache (beam search:
beam_search.py), as transformers' `GenerationMixin._sample` runs it:

    prefill: run the whole prompt once, filling the cache
    repeat:  scores = process(logits of the last position)      (repetition penalty, temperature, top-k/p)
             token  = argmax(scores) or a sample from softmax(scores)
             rows that already met EOS get pad_token_id instead
             stop when every row has met EOS or the length reaches max_length
             run the model on the one new token per row (the cache holds the rest)

Left-padded batches work because the attention mask grows by one 1 per step and ALiBi positions are
the mask's cumulative sum: each row's first real token stays at position 0. Every argument is
checked first, by `plan.plan`; the loop trusts what it is given.

Shape legend: B batch, L tokens so far, V vocab.
"""

from __future__ import annotations

import sys
from typing import Any, Iterator

import numpy as np

from ..cache import KVCache
from ..errors import InputError, NonFiniteScoresError
from ..functional import softmax
from .logits_process import process_scores
from ..outputs import GenerateDecoderOnlyOutput
from ..validation import as_generator
from .beam_search import beam_search
from .config import GenerationConfig
from .plan import continue_cache, plan
from .step_outputs import output_flags, step_outputs
from .stop_strings import StopStrings


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
                 rng: np.random.Generator, cache: KVCache | None = None, stop: StopStrings | None = None,
                 ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Any]]:
    """Greedy or sampled decoding; yields (next tokens [B], all tokens [B, L], processed scores
    [B, V], raw logits [B, V], the model's output of the step) once per step. The output holds
    hidden_states / attentions when gen.output_hidden_states / output_attentions ask for them.

    cache: a KVCache already holding the first P tokens of `ids` (continuing an earlier generate):
    the prefill then runs only the P..L0 rest.
    """
    B, L = ids.shape
    L0 = L
    tokens = np.zeros((B, max_length), np.int64)  # preallocated: no concatenation per step
    tokens[:, :L] = ids
    full_mask = np.ones((B, max_length), mask.dtype)
    full_mask[:, :L] = mask
    if cache is None:
        cache = KVCache.for_config(model.config, B, max_length)
    unfinished = np.ones(B, bool)
    eos = np.array(gen.eos_token_id, np.int64)
    # subtle: as in transformers, min_new_tokens (0 included) replaces min_length when given
    min_length = gen.min_length if gen.min_new_tokens is None else gen.min_new_tokens + L0
    P = cache.length
    extra = output_flags(gen)
    out = model(ids[:, P:], attention_mask=mask, past_key_values=cache, logits_to_keep=1, **extra)
    logits = out.logits[:, -1]  # [B, V]
    while True:
        logits = logits.astype(np.float32)
        scores = process_scores(tokens[:, :L], logits, gen.do_sample, gen.repetition_penalty, gen.temperature,
                                gen.top_k, gen.top_p, no_repeat_ngram_size=gen.no_repeat_ngram_size,
                                bad_words_ids=gen.bad_words_ids, min_length=min_length,
                                min_new_tokens=gen.min_new_tokens or 0, prompt_length=L0,
                                eos_token_id=gen.eos_token_id)  # [B, V]
        next_tokens = sample(softmax(scores), rng) if gen.do_sample else np.argmax(scores, axis=-1)  # [B]
        if eos.size:
            next_tokens = np.where(unfinished, next_tokens, gen.pad_token_id)
        tokens[:, L] = next_tokens
        L += 1
        yield next_tokens, tokens[:, :L], scores, logits, out
        if eos.size:
            unfinished &= ~np.isin(next_tokens, eos)
        if stop is not None:
            unfinished &= ~stop.matches(tokens[:, :L])
        if L >= max_length or not unfinished.any():
            return
        out = model(next_tokens[:, None], attention_mask=full_mask[:, :L], past_key_values=cache, **extra)
        logits = out.logits[:, -1]


def progress_bar(total: int, show: bool | None):
    """A tqdm bar on stderr for generations that run past 2 seconds (None: only on a terminal)."""
    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if show is None else not show
    return tqdm(total=total, unit="tok", desc="generating", delay=2.0, disable=disable, leave=False)


def generate(model, input_ids: Any, attention_mask: Any = None, generation_config: GenerationConfig | None = None,
             streamer: Any = None, seed: int | np.random.Generator | None = None, progress: bool | None = None,
             past_key_values: Any = None, tokenizer: Any = None, **kwargs: Any):
    """Generate continuations; returns prompt + new tokens, [B * num_return_sequences, L], or, with
    return_dict_in_generate=True, a `GenerateDecoderOnlyOutput` (sequences; scores: the processed
    scores [B, V] of each step, with output_scores; logits: the raw ones, with output_logits;
    past_key_values: the cache, to continue from).

    kwargs are GenerationConfig fields, applied over `generation_config` (default: the model's):
    max_new_tokens, max_length, min_length, min_new_tokens, do_sample, temperature, top_k, top_p,
    repetition_penalty, no_repeat_ngram_size, bad_words_ids, stop_strings (needs `tokenizer`),
    num_beams, length_penalty, early_stopping, num_return_sequences, eos_token_id (an id or a list),
    pad_token_id, return_dict_in_generate, output_scores, output_logits, output_hidden_states and
    output_attentions (with return_dict_in_generate: one entry per generated token, each the
    model's tuple for that step: the prompt's [B, L0, H] / [B, N, L0, L0] first, then [B, 1, H] /
    [B, N, 1, L] with the cache, as transformers gives them).

    streamer: an object with transformers' put/end protocol (`streamers.TextStreamer`): put(prompt
    [B, L0]), put(tokens [B]) per step, end(); or a callable given each step's tokens [B].
    past_key_values: the cache of an earlier call (its output's past_key_values) holding the first
    P tokens of input_ids; only the rest is run. `seed` seeds sampling.
    """
    gen, stop, ids, mask, max_length = plan(model, input_ids, attention_mask, generation_config, streamer, seed,
                                            past_key_values, tokenizer, **kwargs)
    if gen.num_beams > 1:
        result = beam_search(model, ids, mask, max_length, gen)
        return result if gen.return_dict_in_generate else result.sequences
    if gen.num_return_sequences > 1:  # sampling several continuations of each prompt
        ids, mask = (np.repeat(a, gen.num_return_sequences, axis=0) for a in (ids, mask))
    cache = continue_cache(model, past_key_values, ids, max_length) or \
        KVCache.for_config(model.config, ids.shape[0], max_length)
    steps = decode_steps(model, ids, mask, max_length, gen, as_generator(seed), cache, stop)
    tokens, kept = run_steps(steps, gen, ids, streamer, progress_bar(max_length - ids.shape[1], progress))
    if not gen.return_dict_in_generate:
        return tokens.copy()
    return GenerateDecoderOnlyOutput(sequences=tokens.copy(), **kept, past_key_values=cache)


def run_steps(steps: Iterator, gen: GenerationConfig, ids: np.ndarray, streamer: Any,
              bar: Any) -> tuple[np.ndarray, dict[str, tuple | None]]:
    """Run `decode_steps`, streaming each step's tokens and keeping what the settings ask for:
    (every token [B, L], {scores, logits, hidden_states, attentions}: one entry per step, or None
    where not asked for)."""
    put = streamer.put if hasattr(streamer, "put") else streamer
    if hasattr(streamer, "put"):
        streamer.put(ids.copy())
    tokens, scores, logits, hidden, attentions = ids, [], [], [], []
    with bar:
        for next_tokens, tokens, step_scores, step_logits, out in steps:
            bar.update(1)
            if gen.output_scores:
                scores.append(step_scores.copy())
            if gen.output_logits:
                logits.append(step_logits.copy())
            kept = step_outputs(out, tokens.shape[1] - 1)  # the keys of this step: every token but the new one
            hidden.append(kept["hidden_states"])
            attentions.append(kept["attentions"])
            if put is not None:
                put(next_tokens.copy())
    if hasattr(streamer, "end"):
        streamer.end()
    return tokens, {"scores": tuple(scores) if gen.output_scores else None,
                    "logits": tuple(logits) if gen.output_logits else None,
                    "hidden_states": tuple(hidden) if gen.output_hidden_states else None,
                    "attentions": tuple(attentions) if gen.output_attentions else None}


def stream(model, input_ids: Any, attention_mask: Any = None, seed: int | np.random.Generator | None = None,
           generation_config: GenerationConfig | None = None, tokenizer: Any = None,
           **kwargs: Any) -> Iterator[np.ndarray]:
    """Like `generate` (greedy or sampling), but yields each step's new tokens [B] as they come."""
    gen, stop, ids, mask, max_length = plan(model, input_ids, attention_mask, generation_config, seed=seed,
                                            tokenizer=tokenizer, **kwargs)
    if gen.num_beams > 1:
        raise InputError("streaming needs num_beams=1: beam search only knows its tokens at the end")
    if gen.num_return_sequences > 1:
        ids, mask = (np.repeat(a, gen.num_return_sequences, axis=0) for a in (ids, mask))
    for next_tokens, *_ in decode_steps(model, ids, mask, max_length, gen, as_generator(seed), stop=stop):
        yield next_tokens.copy()
