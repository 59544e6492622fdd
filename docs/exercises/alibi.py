"""Exercise alibi: write alibi_bias, then run

    python -m minibloom.exercises alibi THIS_FILE.py
"""

import numpy as np


def alibi_bias(attention_mask: np.ndarray, n_head: int) -> np.ndarray:
    """BLOOM's ALiBi term: slope[n] * position[b, s] -> float32 [B, N, 1, S].

    attention_mask [B, S]: 1 for a real token, 0 for a pad. The slopes are a geometric sequence per
    head (1/2, 1/4, ..., 1/256 for 8 heads); positions count real tokens only (left padding must not
    move them). Chapter 6 of docs/tutorial.md.
    """
    raise NotImplementedError
