"""Exercise head_distance: write mean_distance, then run

    python -m minibloom.exercises head_distance THIS_FILE.py
"""

import numpy as np


def mean_distance(probs: np.ndarray) -> np.ndarray:
    """How far back each head looks -> [N]: sum over s of probs[n, t, s] * (t - s), averaged over t.

    probs [N, T, T]: one layer's causal attention probabilities (rows sum to 1). Chapter 8 of
    docs/tutorial.md.
    """
    raise NotImplementedError
