"""Exercise layer_norm: write layer_norm, then run

    python -m minibloom.exercises layer_norm THIS_FILE.py
"""

import numpy as np


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """Layer norm over the last axis: (x - mean) / sqrt(var + eps) * weight + bias, same shape as x.

    x [..., F], weight and bias [F]. Chapter 5 of docs/tutorial.md.
    """
    raise NotImplementedError
