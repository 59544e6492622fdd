"""Exercise top_p: write top_p, then run

    python -m minibloom.exercises top_p THIS_FILE.py
"""

import numpy as np


def top_p(scores: np.ndarray, p: float) -> np.ndarray:
    """Nucleus filtering: scores [B, V] with every token outside the nucleus set to -inf.

    The nucleus is the smallest set of most likely tokens (probabilities softmax(scores)) whose total
    probability reaches p. Chapter 14 of docs/tutorial.md.
    """
    raise NotImplementedError
