"""Exercise attention: write attention, then run

    python -m minibloom.exercises attention THIS_FILE.py
"""

import numpy as np


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, alibi: np.ndarray, mask_bias: np.ndarray) -> np.ndarray:
    """Scaled dot-product attention with ALiBi and a mask -> context [B, N, T, D].

    q [B, N, T, D], k and v [B, N, S, D], alibi [B, N, 1, S], mask_bias [B, 1, T, S] (0 or finfo.min).
    scores = q k^T / sqrt(D) + alibi + mask_bias; softmax over the keys; times v. Chapter 7.
    """
    raise NotImplementedError
