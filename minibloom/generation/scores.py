"""The score of each generated token, after generate (transformers' `compute_transition_scores`).

Shape legend: B sequences, V vocab.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..losses import log_softmax
from ..validation import check_transition_inputs


def compute_transition_scores(sequences: Any, scores: Any, beam_indices: Any = None, normalize_logits: bool = False,
                              vocab_size: int | None = None) -> np.ndarray:
    """The score of each generated token, [B, steps], as transformers' `compute_transition_scores`.

    sequences [B, L] and scores (one [rows, V] per step) from generate with output_scores=True;
    the generated tokens are the last `steps` columns. Without beam_indices (greedy, sampling) row
    b's token at step t is scored by scores[t][b]; with beam search's beam_indices [B, steps] by
    the row of the beam it came from, and steps after a beam finished (index -1) score 0.
    normalize_logits: log-softmax the scores over the vocabulary first (sampling's processed
    scores are not log-probabilities).
    """
    stacked, sequences, beam_indices = check_transition_inputs(sequences, scores, beam_indices, normalize_logits,
                                                               vocab_size)  # [steps, rows, V], [B, L], [B, steps]
    V = stacked.shape[2]
    if normalize_logits:
        stacked = log_softmax(stacked)
    finished = beam_indices < 0  # [B, steps]: the beam had ended
    length = int((~finished).sum(axis=-1).max())
    beam_indices, finished = np.where(finished, 0, beam_indices)[:, :length], finished[:, :length]
    if sequences.shape[1] < length:
        raise InputError(f"sequences has {sequences.shape[1]} columns, fewer than the {length} generated steps")
    tokens = np.where(finished, 0, sequences[:, sequences.shape[1] - length:])  # [B, length]
    if ((tokens < 0) | (tokens >= V)).any():
        raise InputError(f"sequences: a generated token is outside the scores' vocabulary [0, {V})")
    picked = stacked[np.arange(length)[None, :], beam_indices, tokens]  # [B, length]
    return np.where(finished, np.float32(0), picked).astype(np.float32)
