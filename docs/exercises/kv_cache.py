"""Exercise kv_cache: write kv_update, then run

    python -m minibloom.exercises kv_cache THIS_FILE.py
"""

import numpy as np


def kv_update(cache_keys: np.ndarray, cache_values: np.ndarray, start: int, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """One layer's cache step: write the new keys and values, return what the step attends to.

    cache_keys, cache_values [B, N, capacity, D], filled at positions 0 .. start - 1; keys, values
    [B, N, T, D] of the new tokens. Return np.stack([all_keys, all_values]) -> [2, B, N, start + T, D].
    Chapter 13 of docs/tutorial.md.
    """
    raise NotImplementedError
