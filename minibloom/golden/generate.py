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

A sampling golden (`sample=True`) adds the draws and, per step, what turned the logits into a token:

    gen.draws                          int64 [B, N]: the uniform draw u of each row and step, as
                                       u * 2**53 (exact: numpy's Generator.random is a multiple of 2**-53)
    gen.{s}.scores                     float32 [B, V]: the logits after temperature, top-k, top-p
                                       (logits_process.process_scores); removed tokens hold -inf
    gen.{s}.probs                      float32 [B, V]: softmax(gen.{s}.scores)
    gen.{s}.token                      int64 [B]: the token the draw chose (`replay`), = gen.tokens[:, s]

Its tokens are `model.generate(..., do_sample=True, seed=seed)`'s with the same settings (as long
as no row samples the EOS token before the last step: the golden does not stop or pad).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ..errors import InputError
from ..functional import softmax
from ..validation import as_generator, is_int
from ..heads import BloomForCausalLM
from ..generation.logits_process import process_scores
from ..safetensors_io import save_file
from ..validation import check_attention_mask, check_ids
from .record import metadata_of

__all__ = ["dump_generate", "generate_record", "replay"]

DRAW_SCALE = 2.0 ** 53  # gen.draws holds u * 2**53: numpy's random doubles are k / 2**53, k < 2**53


def replay(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The token each row's uniform draw u [B] in [0, 1) chooses from probs [B, V]: inverse-CDF
    sampling exactly as `generation.sample` does it, so the golden's tokens are generate's.

    The cumulative sum runs in float64, left to right in vocabulary order, over the float32
    probabilities; the target is u times the row's total (not 1: the float32 probabilities need not
    sum to 1); the token is the number of cumulative sums <= the target, i.e. the first index whose
    cumulative sum exceeds it, capped at V - 1 (rounding can leave the target at the total).
    """
    cumulative = np.cumsum(probs.astype(np.float64), axis=-1)  # [B, V]
    target = u * cumulative[:, -1]  # [B]
    return np.minimum((cumulative <= target[:, None]).sum(axis=-1), probs.shape[-1] - 1)


def check_sampling(temperature: float, top_k: int, top_p: float, seed: int) -> None:
    """The sampling settings, checked before any work (naming the flag, as `golden dump` spells it)."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.number)) \
            or not 0 < temperature < float("inf"):
        raise InputError(f"--temperature must be a finite number > 0, got {temperature!r}")
    if not is_int(top_k) or top_k < 0:
        raise InputError(f"--top-k must be an integer >= 0 (0: no top-k), got {top_k!r}")
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float, np.number)) or not 0 < top_p <= 1:
        raise InputError(f"--top-p must be a number in (0, 1], got {top_p!r}")
    if not is_int(seed) or seed < 0:
        raise InputError(f"--seed must be an integer >= 0, got {seed!r}")


def generate_record(model: BloomForCausalLM, input_ids: Any, attention_mask: Any = None, steps: int = 4,
                    sample: bool = False, temperature: float = 1.0, top_k: int = 50, top_p: float = 1.0,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """The generation golden's tensors, in order, for `steps` greedy steps from this prompt, or
    sampled ones (`sample`: temperature, top_k (0: off), top_p and seed as generate takes them)."""
    if not isinstance(model, BloomForCausalLM):
        raise InputError(f"a generation golden needs a BloomForCausalLM, got {type(model).__name__}")
    if not isinstance(steps, int) or not 1 <= steps <= 1000:
        raise InputError(f"--generate must be an integer from 1 to 1000, got {steps!r}")
    if sample:
        check_sampling(temperature, top_k, top_p, seed)
    ids = check_ids(input_ids, model.config.vocab_size)
    mask = np.ones_like(ids) if attention_mask is None else check_attention_mask(attention_mask, *ids.shape)
    B, T = ids.shape
    record = {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)}
    steps_rec, tokens, draws, cache, step_ids = {}, [], [], None, ids
    rng = as_generator(seed)  # generate's: one rng.random(B) per step, in step order
    for s in range(steps):
        out = model(step_ids, attention_mask=mask, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        start = cache.length - step_ids.shape[1]
        for i in range(model.config.n_layer):  # the rows this step wrote: [B, heads, T_s, D]
            steps_rec[f"gen.{s}.h.{i}.k"] = cache.keys[i][:, :, start:cache.length].copy()
            steps_rec[f"gen.{s}.h.{i}.v"] = cache.values[i][:, :, start:cache.length].copy()
        steps_rec[f"gen.{s}.logits"] = np.asarray(out.logits[:, -1], np.float32)  # [B, V]
        if sample:
            so_far = np.concatenate([ids, np.stack(tokens, 1)], 1) if tokens else ids  # [B, T + s]
            scores = process_scores(so_far, steps_rec[f"gen.{s}.logits"], True, temp=temperature, k=top_k, p=top_p)
            steps_rec[f"gen.{s}.scores"], steps_rec[f"gen.{s}.probs"] = scores, softmax(scores)  # [B, V]
            u = rng.random(B)  # [B]
            draws.append(u * DRAW_SCALE)
            steps_rec[f"gen.{s}.token"] = replay(steps_rec[f"gen.{s}.probs"], u).astype(np.int64)
            tokens.append(steps_rec[f"gen.{s}.token"])
        else:
            tokens.append(np.argmax(steps_rec[f"gen.{s}.logits"], axis=-1))  # greedy: [B]
        step_ids = tokens[-1][:, None]  # [B, 1]
        mask = np.concatenate([mask, np.ones((B, 1), mask.dtype)], axis=1)
    record["gen.tokens"] = np.stack(tokens, axis=1).astype(np.int64)  # [B, N]
    if sample:
        draws = np.stack(draws, axis=1)  # [B, N]
        if not (draws == np.floor(draws)).all():  # fail closed: u * 2**53 must be exact to replay
            raise InputError("the random generator's draws are not multiples of 2**-53: they cannot be stored exactly")
        record["gen.draws"] = draws.astype(np.int64)
    record.update(steps_rec)
    return record


def dump_generate(model: BloomForCausalLM, path: str | os.PathLike, input_ids: Any, attention_mask: Any = None,
                  steps: int = 4, text: str | None = None, sample: bool = False, temperature: float = 1.0,
                  top_k: int = 50, top_p: float = 1.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Write a generation golden (atomically); returns the recorded tensors. The settings go in the
    metadata's `generate` entry: {"steps", "decoding": "greedy"} or "sample" with the others."""
    record = generate_record(model, input_ids, attention_mask, steps, sample, temperature, top_k, top_p, seed)
    metadata = metadata_of(model, record, "float32", text)
    settings = {"steps": steps, "decoding": "sample" if sample else "greedy"}
    if sample:
        settings.update(temperature=float(temperature), top_k=int(top_k), top_p=float(top_p), seed=int(seed),
                        replay="docs/golden.md, Sampling goldens")
    metadata["generate"] = json.dumps(settings)
    save_file(record, path, dtype="float32", metadata=metadata)
    return record
