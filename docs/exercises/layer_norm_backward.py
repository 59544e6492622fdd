"""Exercise layer_norm_backward: write layer_norm_backward, then run

    python -m minibloom.exercises layer_norm_backward THIS_FILE.py
"""

import numpy as np


def layer_norm_backward(d_y: np.ndarray, x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """The gradient d_x [..., F] of y = layer_norm(x) * weight + bias, given d_y [..., F].

    x [..., F], weight [F]. Chapter 17 of docs/tutorial.md.
    """
    raise NotImplementedError
