"""Exercise headroom: write headroom, then run

    python -m minibloom.exercises headroom THIS_FILE.py
"""

import numpy as np


def headroom(expected: np.ndarray, actual: np.ndarray, tolerance: float) -> float:
    """The headroom of one tensor in a golden compare: max over elements of |actual - expected| / allowed.

    allowed = tolerance * (rms + |expected|), rms = sqrt(mean(expected ** 2)) over the whole tensor
    (the float32 bound `minibloom golden compare` applies). <= 1 passes. Chapter 15 of docs/tutorial.md.
    """
    raise NotImplementedError
