"""Beam search, ported step for step from transformers 4.57.1's vectorised `_beam_search`.

Each prompt keeps `num_beams` running hypotheses. Per step:

1. every running beam proposes every token: score = beam score + log p(token)       [B, beams * V]
2. keep the top K = max(2, 1 + #eos) * beams candidates (extra ones so that, even if some end in
   EOS, `beams` candidates remain to continue)
3. candidates that hit EOS or max_length leave the running set (score - 1e9) ...
4. ... and, if among the top `beams`, compete for the `beams` finished slots with score
   sum log p / (generated length ** length_penalty)
5. stop when no running beam can beat the worst finished one (early_stopping rules), when every
   slot is finished and early_stopping is True, or when every candidate hit a stopping criterion.

The -1e9 offsets are transformers' way of masking without branching; they are reproduced exactly,
float32 arithmetic included, so ties break the same way.

Shape legend: B prompts, K candidates kept, V vocab, L max_length, L0 prompt length.
"""

from __future__ import annotations

import numpy as np

from ..cache import KVCache
from .logits_process import repetition_penalty
from ..losses import log_softmax
from ..outputs import GenerateBeamDecoderOnlyOutput
from ..validation import check_allocation
from .step_outputs import output_flags, step_outputs

NEG = np.float32(-1.0e9)


def topk_indices(x: np.ndarray, k: int) -> np.ndarray:
    """Indices [B, k] of the k largest entries of each row, largest first (ties: lower index first)."""
    if x.shape[-1] > 4 * k:  # partition first: the full sort of beams * V entries is the slow part
        part = np.argpartition(-x, k - 1, axis=-1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(x.shape[-1]), x.shape)
    values = np.take_along_axis(x, part, axis=-1)
    order = np.lexsort((part, -values), axis=-1)
    return np.take_along_axis(part, order, axis=-1)[:, :k]


def gather_beams(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """x [B, K, ...] -> x[b, idx[b, j], ...] as [B, k, ...] (transformers' `_gather_beams`)."""
    return np.take_along_axis(x, idx.reshape(idx.shape + (1,) * (x.ndim - 2)), axis=1)


def update_finished(state: dict, topk_log_probs: np.ndarray, topk_sequences: np.ndarray,
                    topk_beam_indices: np.ndarray, hits: np.ndarray, cur_len: int, L0: int, gen) -> None:
    """Step 4: candidates that just finished compete with the finished beams (in place on `state`)."""
    nb = gen.num_beams
    just_finished = hits & (np.arange(hits.shape[1]) < nb)[None, :]  # only the top `beams` may finish
    scores = topk_log_probs / np.float32((cur_len + 1 - L0) ** gen.length_penalty)
    full = state["is_sent_finished"].all(axis=-1, keepdims=True) & (gen.early_stopping is True)
    scores = scores + full.astype(np.float32) * NEG
    scores = scores + (~state["improvable"]).astype(np.float32) * NEG
    scores = scores + (~just_finished).astype(np.float32) * NEG
    merged = {
        "sequences": np.concatenate([state["sequences"], topk_sequences], axis=1),
        "beam_scores": np.concatenate([state["beam_scores"], scores], axis=1),
        "beam_indices": np.concatenate([state["beam_indices"], topk_beam_indices], axis=1),
        "is_sent_finished": np.concatenate([state["is_sent_finished"], just_finished], axis=1),
    }
    keep = topk_indices(merged["beam_scores"], nb)
    state.update({name: gather_beams(value, keep) for name, value in merged.items()})


def still_improvable(state: dict, running_scores: np.ndarray, cur_len: int, max_length: int, L0: int,
                     gen) -> np.ndarray:
    """Step 5's heuristic [B, 1]: can the best running beam still beat a finished one?"""
    if gen.early_stopping == "never" and gen.length_penalty > 0.0:
        best_length = max_length - L0
    else:
        best_length = cur_len - L0
    best_possible = running_scores[:, :1] / np.float32(best_length ** gen.length_penalty)  # [B, 1]
    worst_finished = np.where(state["is_sent_finished"], state["beam_scores"].min(axis=1, keepdims=True), NEG)
    return state["improvable"] & (best_possible > worst_finished).any(axis=-1, keepdims=True)


def check_budget(B: int, nb: int, K: int, V: int, max_length: int) -> None:
    """Refuse, before the first array, a search whose working set cannot fit the memory budget.

    Per prompt it keeps sequences and beam indices for the running and finished beams and for the K
    candidates, plus the attention mask (int64 [beams + K, L] x 5 arrays, roughly), and each step
    scores every token of every beam: log-probabilities, their sum with the beam scores and the
    top-K partition's indices ([beams * V] x 16 bytes). The KV cache is checked by `KVCache`.
    """
    sequences = 8 * B * max_length * (5 * nb + 2 * K)
    scores = 16 * B * nb * V
    check_allocation(sequences + scores, f"num_beams={nb} with max_length={max_length} and vocab_size={V} "
                                         f"(beam search's sequences and per-step scores for {B} prompt(s))")


def beam_search(model, ids: np.ndarray, mask: np.ndarray, max_length: int, gen) -> GenerateBeamDecoderOnlyOutput:
    """Run beam search; returns, as transformers' `_beam_search` with return_dict_in_generate, the best
    `num_return_sequences` per prompt, sequences [B * n, L0 + generated], with beam_indices [B * n,
    generated] (the flat row, b * num_beams + beam, each token came from; -1 after the beam ended)
    and the cache; with output_scores the sequences_scores [B * n] (sum of log-probs / length **
    length_penalty) and scores (each step's processed log-probs [B * num_beams, V]); with
    output_logits the raw logits; hidden_states / attentions per step when asked.
    The arguments are checked by `plan.plan` (the memory budget included)."""
    B, L0 = ids.shape
    nb, V = gen.num_beams, model.config.vocab_size
    eos = np.array(gen.eos_token_id, np.int64)
    K = max(2, 1 + eos.size) * nb
    running, state = start(ids, gen, max_length)
    flat_mask = np.ones((B * nb, max_length), mask.dtype)
    flat_mask[:, :L0] = np.repeat(mask, nb, axis=0)
    cache = KVCache.for_config(model.config, B * nb, max_length)
    extra = output_flags(gen)
    out = model(np.repeat(ids, nb, axis=0), attention_mask=flat_mask[:, :L0], past_key_values=cache,
                logits_to_keep=1, **extra)
    cur_len = L0
    kept = {"scores": [], "logits": [], "hidden_states": [], "attentions": []}
    while True:
        # 1. every running beam proposes every token
        logits = out.logits[:, -1].astype(np.float32)  # [B * nb, V]
        log_probs = log_softmax(logits)  # [B * nb, V]
        if gen.repetition_penalty != 1.0:
            log_probs = repetition_penalty(running["sequences"][:, :, :cur_len].reshape(B * nb, cur_len), log_probs,
                                           gen.repetition_penalty)
        if gen.return_dict_in_generate:
            keep_step(kept, gen, log_probs, logits, out, cur_len)
        log_probs = (log_probs.reshape(B, nb, V) + running["scores"][:, :, None]).reshape(B, nb * V)

        # 2. top-K continuations over all beams
        top = top_candidates(log_probs, running, K, V, cur_len, L0)

        # 3. which candidates stop; the best `nb` others keep running
        hits = np.isin(top["ids"], eos) | (cur_len + 1 >= max_length)  # [B, K]
        running = best_running(top, hits, nb)

        # 4. finished hypotheses
        update_finished(state, top["log_probs"], top["sequences"], top["beam_indices"], hits, cur_len, L0, gen)

        # 5. each surviving beam continues from its parent's cache rows
        cache.reorder(running["beam_indices"][:, :, cur_len - L0].reshape(-1))
        cur_len += 1
        state["improvable"] = still_improvable(state, running["scores"], cur_len, max_length, L0, gen)
        all_done = state["is_sent_finished"].all() and gen.early_stopping is True
        if not (state["improvable"].any() and not all_done and not hits.all()):
            break
        step_ids = running["sequences"][:, :, cur_len - 1].reshape(B * nb, 1)  # [B * nb, 1]
        out = model(step_ids, attention_mask=flat_mask[:, :cur_len], past_key_values=cache, **extra)
    return beam_output(state, kept, gen, cache, L0)


def start(ids: np.ndarray, gen, max_length: int) -> tuple[dict, dict]:
    """The running beams (every beam the prompt; only beam 0 may propose at the first step, as all
    start equal) and the empty finished set: sequences [B, nb, L], scores [B, nb], beam_indices
    [B, nb, L - L0]."""
    B, L0 = ids.shape
    nb = gen.num_beams
    fill = (gen.pad_token_id or gen.eos_token_id[0]) if gen.eos_token_id else -1  # transformers' output fill value
    sequences = np.full((B, nb, max_length), fill, np.int64)
    sequences[:, :, :L0] = ids[:, None, :]
    scores = np.zeros((B, nb), np.float32)
    scores[:, 1:] = NEG  # all beams start equal: only beam 0 may propose at the first step
    beam_indices = np.full((B, nb, max_length - L0), -1, np.int64)
    state = {"sequences": sequences.copy(), "beam_scores": np.full((B, nb), NEG, np.float32),
             "beam_indices": beam_indices.copy(), "is_sent_finished": np.zeros((B, nb), bool),
             "improvable": np.ones((B, 1), bool)}
    return {"sequences": sequences, "scores": scores, "beam_indices": beam_indices}, state


def keep_step(kept: dict, gen, log_probs: np.ndarray, logits: np.ndarray, out, cur_len: int) -> None:
    """Keep what return_dict_in_generate asks for of this step (each only when asked: a step's
    scores are [B * nb, V])."""
    kept["scores"].append(log_probs.copy() if gen.output_scores else None)
    kept["logits"].append(logits.copy() if gen.output_logits else None)
    for name, value in step_outputs(out, cur_len).items():
        kept[name].append(value)


def top_candidates(log_probs: np.ndarray, running: dict, K: int, V: int, cur_len: int, L0: int) -> dict:
    """Step 2: the K best (beam, token) pairs of log_probs [B, nb * V], each with its sequence
    [B, K, L] (the parent's, plus the token) and beam indices [B, K, L - L0]."""
    B, nb = running["scores"].shape
    top = topk_indices(log_probs, K)  # [B, K]
    parent, ids = top // V, top % V
    sequences = gather_beams(running["sequences"], parent)  # [B, K, L] (a copy)
    sequences[:, :, cur_len] = ids
    beam_indices = gather_beams(running["beam_indices"], parent)
    beam_indices[:, :, cur_len - L0] = parent + np.arange(B)[:, None] * nb  # flat row of the parent
    return {"log_probs": np.take_along_axis(log_probs, top, axis=-1), "ids": ids, "sequences": sequences,
            "beam_indices": beam_indices}


def best_running(top: dict, hits: np.ndarray, nb: int) -> dict:
    """Step 3: the `nb` best candidates that did not stop (those that did score -1e9) run on."""
    running_log_probs = top["log_probs"] + hits.astype(np.float32) * NEG
    keep = topk_indices(running_log_probs, nb)
    return {"sequences": gather_beams(top["sequences"], keep), "scores": gather_beams(running_log_probs, keep),
            "beam_indices": gather_beams(top["beam_indices"], keep)}


def beam_output(state: dict, kept: dict, gen, cache: KVCache, L0: int) -> GenerateBeamDecoderOnlyOutput:
    """The best `num_return_sequences` finished beams per prompt, cut to the longest one generated."""
    B, _, max_length = state["sequences"].shape
    n = gen.num_return_sequences
    sequences = state["sequences"][:, :n].reshape(B * n, max_length)
    beam_indices = state["beam_indices"][:, :n].reshape(B * n, -1)
    generated = (beam_indices != -1).sum(axis=1).max()
    wanted = {"scores": gen.output_scores, "logits": gen.output_logits,
              "hidden_states": gen.output_hidden_states, "attentions": gen.output_attentions}
    return GenerateBeamDecoderOnlyOutput(
        sequences=sequences[:, :L0 + generated].copy(), beam_indices=beam_indices[:, :generated].copy(),
        sequences_scores=state["beam_scores"][:, :n].reshape(B * n).copy() if gen.output_scores else None,
        past_key_values=cache, **{k: tuple(v) if wanted[k] else None for k, v in kept.items()})
