"""Exercise bfloat16: write bfloat16_bits, then run

    python -m minibloom.exercises bfloat16 THIS_FILE.py
"""

import numpy as np


def bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16, same shape), as storage="bfloat16" and torch round them.

    bfloat16 is float32's top 16 bits, rounded to nearest with ties to even; NaN -> 0x7FC0.
    Chapter 16 of docs/tutorial.md.
    """
    raise NotImplementedError
