"""The attention mask: which keys each query may look at, as an additive bias on the scores.

A query at absolute position p (counting cached tokens) may see key s if s <= p (causality) and
the key is not padding (attention_mask[b, s] != 0). Allowed pairs get 0, the others get the most
negative float32, `finfo(float32).min`, which softmax turns into a weight of exactly 0.

subtle: transformers uses `finfo.min`, **not -inf**. A query whose every key is masked (a left-pad
position) then sees a row of equal values, and softmax makes it uniform, 1/S over all S keys,
instead of the NaN that -inf would give. We reproduce that, uniform rows included.

Shape legend: B batch, T query length (new tokens), S key length (past + new), P past length.
"""

from __future__ import annotations

import numpy as np

MASK_VALUE = np.finfo(np.float32).min


def causal_padding_bias(attention_mask: np.ndarray, query_length: int, past_length: int = 0) -> np.ndarray:
    """Additive mask [B, 1, T, S]: 0 where query t may attend key s, `finfo(float32).min` elsewhere.

    Query t sits at absolute position P + t, so it may see keys s <= P + t. Only a mask value of
    exactly 0 hides a key (transformers tests `causal + mask == 0`).
    """
    key_length = attention_mask.shape[-1]
    query_pos = np.arange(past_length, past_length + query_length)  # [T]
    future = np.arange(key_length)[None, :] > query_pos[:, None]  # [T, S]
    padding = np.asarray(attention_mask) == 0  # [B, S]
    blocked = future[None, :, :] | padding[:, None, :]  # [B, T, S]
    return np.where(blocked, MASK_VALUE, np.float32(0.0))[:, None, :, :].astype(np.float32)  # [B, 1, T, S]
