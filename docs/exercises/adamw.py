"""Exercise adamw: write adamw, then run

    python -m minibloom.exercises adamw THIS_FILE.py
"""

import numpy as np


def adamw(param: np.ndarray, grads: list, lr: float, weight_decay: float) -> np.ndarray:
    """The weights after one AdamW step per gradient in grads (torch.optim.AdamW, betas (0.9, 0.999), eps 1e-8).

    param [...] float32; grads: a list of arrays shaped like param; m and v start at 0.
    Chapter 18 of docs/tutorial.md.
    """
    raise NotImplementedError
