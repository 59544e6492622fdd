"""Exercise logit_lens: write logit_lens, then run

    python -m minibloom.exercises logit_lens THIS_FILE.py
"""

import numpy as np


def logit_lens(h: np.ndarray, ln_f_weight: np.ndarray, ln_f_bias: np.ndarray, eps: float, embeddings: np.ndarray) -> np.ndarray:
    """One row of the logit lens: the next-token probabilities [T, V] the LM head reads from stream h.

    h [T, H]: a hidden state (the embedding layer norm's output or the stream entering a block);
    ln_f_weight, ln_f_bias [H]; embeddings [V, H] (tied: the LM head is the embedding matrix).
    Chapter 11 of docs/tutorial.md.
    """
    raise NotImplementedError
