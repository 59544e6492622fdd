"""Exercise pooling: write last_non_pad_index, then run

    python -m minibloom.exercises pooling THIS_FILE.py
"""

import numpy as np


def last_non_pad_index(input_ids: np.ndarray, pad_token_id: int) -> np.ndarray:
    """The position [B] (ints) a sequence classifier reads each row at: its last token that is not a pad.

    input_ids [B, T]. Chapter 12 of docs/tutorial.md.
    """
    raise NotImplementedError
