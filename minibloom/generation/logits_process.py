"""Logits processors: how next-token scores are reshaped before a token is picked.

Applied in transformers' order (`GenerationMixin._get_logits_processor`): repetition penalty,
no-repeat n-grams, bad words, min_length, min_new_tokens (greedy and sampling); then, for sampling
only, temperature, top-k, top-p. Each is a pure function of (scores [B, V], ...) -> new scores
[B, V]; removed tokens get -inf, so softmax gives them probability 0.

Shape legend: B rows, V vocab, L tokens so far.
"""

from __future__ import annotations

import numpy as np

from ..functional import softmax


def repetition_penalty(input_ids: np.ndarray, scores: np.ndarray, penalty: float) -> np.ndarray:
    """Make every token already in the row (prompt included) less likely, once per token.

    A positive score is divided by `penalty`, a negative one multiplied (CTRL, Keskar et al. 2019).
    subtle: as in transformers, *every* id in input_ids counts -- left-padding pad ids too.
    """
    out = scores.copy()
    rows = np.arange(scores.shape[0])[:, None]  # [B, 1]
    seen = scores[rows, input_ids]  # [B, L]
    out[rows, input_ids] = np.where(seen < 0, seen * np.float32(penalty), seen / np.float32(penalty))
    return out


def no_repeat_ngram(input_ids: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    """Ban, per row, every token that would complete an n-gram already present in that row.

    The row's last n-1 tokens are a prefix; every earlier place where that prefix was followed by a
    token t bans t now. subtle: the prompt counts (pad ids of a left-padded row included), as in
    transformers, which ports fairseq's loop.
    """
    out = scores.copy()
    B, L = input_ids.shape
    if L + 1 < n:
        return out
    for b in range(B):
        row = input_ids[b].tolist()
        prefix = tuple(row[L - n + 1:])
        banned = [row[i + n - 1] for i in range(L - n + 1) if tuple(row[i:i + n - 1]) == prefix]
        out[b, banned] = -np.inf
    return out


def bad_words(input_ids: np.ndarray, scores: np.ndarray, bad_words_ids: list[list[int]],
              eos_token_id: list[int]) -> np.ndarray:
    """Ban each bad word's last token where the row ends with the rest of the word.

    One-token words are banned everywhere; a one-token word that is an EOS id is dropped (as
    transformers does: banning EOS would make generation never stop). Longer words than the row so
    far are ignored.
    """
    out = scores.copy()
    L = input_ids.shape[1]
    for word in bad_words_ids:
        if len(word) == 1 and word[0] in eos_token_id:
            continue
        prefix = word[:-1]
        if len(word) > L:
            continue
        rows = (input_ids[:, L - len(prefix):] == np.array(prefix, np.int64)).all(axis=1) if prefix else slice(None)
        out[rows, word[-1]] = -np.inf
    return out


def suppress_eos(scores: np.ndarray, eos_token_id: list[int]) -> np.ndarray:
    """EOS scores set to -inf (min_length / min_new_tokens not reached yet)."""
    out = scores.copy()
    out[:, eos_token_id] = -np.inf
    return out


def temperature(scores: np.ndarray, t: float) -> np.ndarray:
    """Divide by t: t < 1 sharpens the distribution, t > 1 flattens it."""
    return scores / np.float32(t)


def top_k(scores: np.ndarray, k: int, min_tokens_to_keep: int = 1) -> np.ndarray:
    """Keep the k highest scores (ties with the k-th included), set the rest to -inf."""
    k = min(max(k, min_tokens_to_keep), scores.shape[-1])
    kth = -np.partition(-scores, k - 1, axis=-1)[:, k - 1:k]  # [B, 1]: the k-th largest
    return np.where(scores < kth, np.float32(-np.inf), scores)


def top_p(scores: np.ndarray, p: float, min_tokens_to_keep: int = 1) -> np.ndarray:
    """Nucleus sampling: keep the smallest set of top tokens whose probability reaches p.

    As in transformers: sort ascending, drop the tokens whose cumulative probability is <= 1 - p
    (the unlikely tail), always keep the `min_tokens_to_keep` most likely.
    """
    order = np.argsort(scores, axis=-1, kind="stable")  # [B, V] ascending
    sorted_scores = np.take_along_axis(scores, order, axis=-1)
    cumulative = np.cumsum(softmax(sorted_scores), axis=-1)  # [B, V]
    remove_sorted = cumulative <= np.float32(1 - p)
    remove_sorted[:, -min_tokens_to_keep:] = False
    remove = np.zeros_like(remove_sorted)
    np.put_along_axis(remove, order, remove_sorted, axis=-1)  # back to vocabulary order
    return np.where(remove, np.float32(-np.inf), scores)


def process_scores(input_ids: np.ndarray, scores: np.ndarray, do_sample: bool, repetition: float = 1.0,
                   temp: float = 1.0, k: int | None = 50, p: float = 1.0, min_tokens_to_keep: int = 1,
                   no_repeat_ngram_size: int = 0, bad_words_ids: list[list[int]] | None = None,
                   min_length: int = 0, min_new_tokens: int = 0, prompt_length: int = 0,
                   eos_token_id: list[int] | None = None) -> np.ndarray:
    """All processors in transformers' order; each is skipped at its neutral value, as there.

    input_ids [B, L] is every token so far (prompt included); prompt_length counts the prompt's, for
    min_new_tokens. min_length / min_new_tokens / bad words need eos_token_id (as in transformers).
    """
    eos = eos_token_id or []
    if repetition != 1.0:
        scores = repetition_penalty(input_ids, scores, repetition)
    if no_repeat_ngram_size:
        scores = no_repeat_ngram(input_ids, scores, no_repeat_ngram_size)
    if bad_words_ids:
        scores = bad_words(input_ids, scores, bad_words_ids, eos)
    if eos and min_length and input_ids.shape[1] < min_length:
        scores = suppress_eos(scores, eos)
    if eos and min_new_tokens and input_ids.shape[1] - prompt_length < min_new_tokens:
        scores = suppress_eos(scores, eos)
    if do_sample:
        if temp != 1.0:
            scores = temperature(scores, temp)
        if k:
            scores = top_k(scores, k, min_tokens_to_keep)
        if p < 1.0:
            scores = top_p(scores, p, min_tokens_to_keep)
    return scores
