"""Exercise causal_mask: write causal_mask, then run

    python -m minibloom.exercises causal_mask THIS_FILE.py
"""

import numpy as np


def causal_mask(attention_mask: np.ndarray, query_length: int, past_length: int) -> np.ndarray:
    """The additive attention mask, float32 [B, 1, T, S]: 0 where query t may see key s, else the mask value.

    attention_mask [B, S] (S = past_length + query_length; 0 marks a pad). Query t sits at absolute
    position past_length + t and sees keys s <= past_length + t that are not pads. The mask value is
    the one transformers uses (chapter 4 of docs/tutorial.md, and minibloom/masking.py).
    """
    raise NotImplementedError
