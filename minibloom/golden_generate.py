"""Generation goldens: greedy decoding with the KV cache, step by step, so a port of *generation*
(its cache, its positions under the cache) can be checked op by op (docs/golden.md).

One .safetensors file, in this order:

    input_ids, attention_mask          int64 [B, T]: the prompt (left-padded for a batch)
    gen.tokens                         int64 [B, N]: the greedy choice at each step (a port feeds these)
    gen.{s}.h.{i}.k, gen.{s}.h.{i}.v   float32 [B, heads, T_s, D]: the keys / values step s wrote into
                                       layer i's cache (step 0: the T prompt rows; then 1 row a step)
    gen.{s}.logits                     float32 [B, V]: the logits of step s's last position, which
                                       choose gen.tokens[:, s]

Step 0 runs the prompt; step s >= 1 runs gen.tokens[:, s - 1] alone against the cache, the mask
grown by a 1 per row. A port replays the golden's tokens, so a near-tie in the argmax cannot send
two correct ports down different continuations.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .errors import InputError
from .golden import metadata_of
from .heads import BloomForCausalLM
from .safetensors_io import save_file
from .validation import check_attention_mask, check_ids

__all__ = ["dump_generate", "generate_record"]


def generate_record(model: BloomForCausalLM, input_ids: Any, attention_mask: Any = None,
                    steps: int = 4) -> dict[str, np.ndarray]:
    """The generation golden's tensors, in order, for `steps` greedy steps from this prompt."""
    if not isinstance(model, BloomForCausalLM):
        raise InputError(f"a generation golden needs a BloomForCausalLM, got {type(model).__name__}")
    if not isinstance(steps, int) or not 1 <= steps <= 1000:
        raise InputError(f"--generate must be an integer from 1 to 1000, got {steps!r}")
    ids = check_ids(input_ids, model.config.vocab_size)
    mask = np.ones_like(ids) if attention_mask is None else check_attention_mask(attention_mask, *ids.shape)
    B, T = ids.shape
    record = {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)}
    steps_rec, tokens, cache, step_ids = {}, [], None, ids
    for s in range(steps):
        out = model(step_ids, attention_mask=mask, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        start = cache.length - step_ids.shape[1]
        for i in range(model.config.n_layer):  # the rows this step wrote: [B, heads, T_s, D]
            steps_rec[f"gen.{s}.h.{i}.k"] = cache.keys[i][:, :, start:cache.length].copy()
            steps_rec[f"gen.{s}.h.{i}.v"] = cache.values[i][:, :, start:cache.length].copy()
        steps_rec[f"gen.{s}.logits"] = np.asarray(out.logits[:, -1], np.float32)  # [B, V]
        tokens.append(np.argmax(steps_rec[f"gen.{s}.logits"], axis=-1))  # greedy: [B]
        step_ids = tokens[-1][:, None]  # [B, 1]
        mask = np.concatenate([mask, np.ones((B, 1), mask.dtype)], axis=1)
    record["gen.tokens"] = np.stack(tokens, axis=1).astype(np.int64)  # [B, N]
    record.update(steps_rec)
    return record


def dump_generate(model: BloomForCausalLM, path: str | os.PathLike, input_ids: Any, attention_mask: Any = None,
                  steps: int = 4, text: str | None = None) -> dict[str, np.ndarray]:
    """Write a generation golden (atomically); returns the recorded tensors."""
    record = generate_record(model, input_ids, attention_mask, steps)
    metadata = metadata_of(model, record, "float32", text)
    metadata["generate"] = f'{{"steps": {steps}, "decoding": "greedy"}}'
    save_file(record, path, dtype="float32", metadata=metadata)
    return record
