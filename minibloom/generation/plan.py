"""Every check a generate call makes before its first array, in one place (`plan`).

The settings (`settings.make_config`, `GenerationConfig.validate`), the seed, the stop strings,
the ids and mask, the final length, a caller's KV cache, and the memory the cache and beam search
will take: all refused here, by name, before the first forward. The CLI calls `plan` before it
prints the prompt, so a bad setting never leaves half a line on the terminal.

Shape legend: B batch, L0 prompt length.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..cache import KVCache, _check_size
from ..errors import InputError, warn_at_caller
from ..validation import as_generator, check_attention_mask, check_ids
from .beam_search import check_budget
from .config import GenerationConfig
from .settings import make_config
from .stop_strings import StopStrings


def plan(model, input_ids: Any, attention_mask: Any = None, generation_config: GenerationConfig | None = None,
         streamer: Any = None, seed: Any = None, past_key_values: Any = None, tokenizer: Any = None,
         **kwargs: Any) -> tuple[GenerationConfig, StopStrings | None, np.ndarray, np.ndarray, int]:
    """Every check `generate` makes before its first array, with its arguments: (the settings,
    the stop-string matcher, ids [B, L0], mask [B, L0], max_length). A caller that prints before
    generating (the CLI) runs it first, so a bad setting or a length beyond the memory budget is
    reported before anything is shown."""
    gen = make_config(model, generation_config, **kwargs)
    gen.validate(model.config.vocab_size)
    unsupported = gen.unsupported()
    if unsupported:  # read from a generation_config.json: decoding goes on without them, but says so
        shown = ", ".join(f"{k}={v!r}" for k, v in unsupported.items())
        warn_at_caller(f"generation settings {shown} are not implemented by minibloom and are ignored "
                       "(transformers would apply them): the tokens may differ from transformers'")
    as_generator(seed)  # a seed of the wrong type is refused before work, greedy or not
    stop = StopStrings(gen.stop_strings, tokenizer) if gen.stop_strings else None
    ids, mask, max_length = prepare_inputs(input_ids, attention_mask, gen, model.config.vocab_size)
    cfg, rows = model.config, ids.shape[0] * (gen.num_beams if gen.num_beams > 1 else gen.num_return_sequences)
    if gen.num_beams > 1:
        check_beam_search(gen, ids.shape[0], cfg.vocab_size, max_length, past_key_values=past_key_values,
                          streamer=streamer, stop_strings=stop)
    if past_key_values is None:  # a caller's cache is checked (and grown) by continue_cache
        _check_size(cfg.n_layer, (rows, cfg.n_head, max_length, cfg.head_dim),
                    f"prompt + new tokens; keys and values of {cfg.n_layer} layers [B={rows}, N, S, D]")
    return gen, stop, ids, mask, max_length


def check_beam_search(gen: GenerationConfig, batch: int, vocab_size: int, max_length: int, **given: Any) -> None:
    """What beam search cannot do yet (a caller's cache, a streamer, stop strings, the constraints),
    refused by name; then its score arrays against the memory budget."""
    constraints = {"no_repeat_ngram_size": gen.no_repeat_ngram_size, "bad_words_ids": gen.bad_words_ids,
                   "min_length": gen.min_length, "min_new_tokens": gen.min_new_tokens}
    unsupported = [name for name, value in {**given, **constraints}.items() if value]
    if unsupported:
        raise InputError(f"{', '.join(unsupported)}: not supported with beam search (num_beams > 1) yet")
    check_budget(batch, gen.num_beams, max(2, 1 + len(gen.eos_token_id)) * gen.num_beams, vocab_size, max_length)


def prepare_inputs(input_ids: Any, attention_mask: Any, gen: GenerationConfig,
                   vocab_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Checked ids [B, L0], mask [B, L0] and the final length.

    Without a mask, as transformers: pad ids are masked out when pad_token_id is set and is not an
    EOS id, else every token counts. A batch whose last column holds a pad id gets transformers'
    right-padding warning: a decoder-only model continues from the last column, pad or not.
    """
    ids = check_ids(input_ids, vocab_size)
    B, L0 = ids.shape
    if attention_mask is not None:
        mask = check_attention_mask(attention_mask, B, L0)
    elif gen.pad_token_id is not None and gen.pad_token_id not in gen.eos_token_id and (ids == gen.pad_token_id).any():
        mask = (ids != gen.pad_token_id).astype(np.int64)
    else:
        mask = np.ones((B, L0), np.int64)
    if gen.pad_token_id is not None and B > 1 and (ids[:, -1] == gen.pad_token_id).any():
        warn_at_caller("A decoder-only architecture is being used, but right-padding was detected! For correct "
                       "generation results, please set `padding_side='left'` when initializing the tokenizer.")
    max_length = L0 + gen.max_new_tokens if gen.max_new_tokens is not None else gen.max_length
    if gen.max_new_tokens is None and getattr(gen, "max_length_is_default", False) and gen.max_length == 20:
        max_length = L0 + 20  # subtle: transformers' "by default let's always generate 20 new tokens"
    if L0 >= max_length:
        raise InputError(f"the prompt has {L0} tokens but max_length is {max_length}: set max_new_tokens "
                         "to the number of tokens to generate")
    return ids, mask, max_length


def continue_cache(model, past_key_values: Any, ids: np.ndarray, max_length: int) -> KVCache | None:
    """The caller's cache (a KVCache or transformers' legacy per-layer (key, value) pairs), checked
    against the prompt and given room for max_length positions. It is updated in place, as
    transformers updates a passed DynamicCache."""
    if past_key_values is None:
        return None
    cache = past_key_values if isinstance(past_key_values, KVCache) else KVCache.from_legacy(past_key_values)
    B, L0 = ids.shape
    if cache.batch_size != B:
        raise InputError(f"past_key_values holds {cache.batch_size} rows, input_ids has {B}")
    if len(cache.keys) != model.config.n_layer or cache.keys[0].shape[1] != model.config.n_head \
            or cache.keys[0].shape[3] != model.config.head_dim:
        raise InputError("past_key_values does not fit this model (layers, heads or head_dim differ)")
    if not cache.length < L0:
        raise InputError(f"past_key_values already holds {cache.length} positions; input_ids must hold those "
                         f"and at least one more (it has {L0}): pass the whole sequence so far")
    cache.reserve(max_length)
    return cache
