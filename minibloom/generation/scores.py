"""The score of each generated token, after generate (transformers' `compute_transition_scores`).

Shape legend: B sequences, V vocab.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..losses import log_softmax
from ..validation import as_array

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
    if not isinstance(scores, (tuple, list)) or not scores:
        raise InputError("scores must be generate's non-empty tuple of per-step [rows, V] arrays "
                         "(output_scores=True, return_dict_in_generate=True)")
    stacked = np.stack([np.asarray(x, np.float32) for x in scores])  # [steps, rows, V]
    if stacked.ndim != 3 or (vocab_size is not None and stacked.shape[2] != vocab_size):
        raise InputError(f"scores: expected arrays [rows, {vocab_size or 'V'}], got {stacked.shape[1:]}")
    steps, rows, V = stacked.shape
    sequences = as_array(sequences, "sequences")
    if sequences.ndim != 2 or sequences.dtype.kind not in "iu":
        raise InputError(f"sequences must be integer token ids [B, L], got {sequences.dtype} {sequences.shape}")
    if not isinstance(normalize_logits, bool):
        raise InputError(f"normalize_logits must be True or False, got {normalize_logits!r}")
    if beam_indices is None:
        beam_indices = np.broadcast_to(np.arange(rows)[:, None], (rows, steps))
    beam_indices = np.asarray(beam_indices)
    if beam_indices.ndim != 2 or beam_indices.dtype.kind not in "iu" or beam_indices.shape[0] != sequences.shape[0] \
            or beam_indices.shape[1] > steps or (beam_indices >= rows).any():
        raise InputError(f"beam_indices: expected integers [{sequences.shape[0]}, <= {steps}] below {rows}, "
                         f"got {beam_indices.dtype} {beam_indices.shape}")
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
