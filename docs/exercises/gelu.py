"""Exercise gelu: write bloom_gelu, then run

    python -m minibloom.exercises gelu THIS_FILE.py
"""

import numpy as np


def bloom_gelu(x: np.ndarray) -> np.ndarray:
    """BLOOM's GELU, elementwise, float32 in and out.

    Chapter 9 of docs/tutorial.md: which GELU, and which constants, BLOOM was trained with.
    """
    raise NotImplementedError
