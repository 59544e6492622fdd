"""The NumPy backward ops: the readable gradients that sit beside each forward op.

    linear_backward(d_y, x, weight)               -> d_x, d_W, d_b       (functional.py)
    linear_tp_backward(d_y, x, weight, tp)         -> d_x, d_W            (functional.py)
    layer_norm_backward(d_y, x, weight, eps)       -> d_x, d_w, d_b       (functional.py)
    bloom_gelu_backward(d_y, x)                    -> d_x                 (functional.py)
    softmax_backward(d_p, p)                       -> d_s                 (functional.py)
    embedding_backward(d_x, ids, vocab_size)       -> d_table [V, H]      (functional.py)
    cross_entropy_with_grad(logits, targets)       -> loss, d_logits      (losses.py)

`numba_backward` has the same functions, compiled for the hot loops, and is tested equal to these.
"""

from __future__ import annotations

from ..functional import (bloom_gelu_backward, embedding_backward, layer_norm_backward, linear_backward,
                          linear_tp_backward, softmax_backward)
from ..losses import cross_entropy_with_grad

__all__ = ["bloom_gelu_backward", "cross_entropy_with_grad", "embedding_backward", "layer_norm_backward", "linear_backward",
           "linear_tp_backward", "softmax_backward"]
