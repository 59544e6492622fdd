"""LLM.int8()'s matrix product (Dettmers et al., 2022, shown on BLOOM-176B), the NumPy reference.

    y = X[:, O] @ W[:, O]^T          in 16 bits, for the outlier columns O (any |x| >= threshold)
      + dequant(X8 @ W8^T)          for the rest: int8 x int8 products summed in int32

X's rows are quantised like W's (absmax per row, to int8), and the int32 sums are rescaled by the
outer product of the two absmax vectors / 127^2. Why the split: in large models a few hidden
features carry activations 20x the rest; one such value would set a row's scale and crush every
other activation in the row to a handful of levels. Those columns go through 16 bits instead.

What minibloom's int8 storage computes by default is simpler: weight-only int8 (the weights are
widened while read, activations stay float32), which is what decoding's bandwidth rewards and is
at least as accurate, since no activation is quantised. This function is the paper's product,
for comparison (tests/test_int8.py pins what the split buys) and for prefill experiments.
"""

from __future__ import annotations

import numpy as np

from .storage import Int8Matrix, to_float32

OUTLIER_THRESHOLD = 6.0  # the paper's alpha


def quantize_rows(x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x2 [R, K] float32 -> (codes [R, K] int8 in [-127, 127], scale [R] float32): each row's absmax
    maps to 127, x ~= codes * scale (an all-zero row gets scale 1/127)."""
    x_absmax = np.abs(x2).max(axis=1, initial=0.0)  # [R]
    x_scale = (np.where(x_absmax > 0, x_absmax, np.float32(1.0)) / np.float32(127.0)).astype(np.float32)
    return np.rint(x2 / x_scale[:, None]).astype(np.int8), x_scale


def llm_int8_linear(x: np.ndarray, weight: Int8Matrix, bias: np.ndarray | None = None,
                    threshold: float = OUTLIER_THRESHOLD) -> np.ndarray:
    """x [..., K] @ weight [N, K]^T (+ bias) by LLM.int8()'s mixed-precision decomposition."""
    x2 = np.asarray(x, np.float32).reshape(-1, x.shape[-1])  # [R, K]
    outliers = np.abs(x2).max(axis=0, initial=0.0) >= threshold  # [K] columns kept in 16 bits
    w16 = to_float32(weight)[:, outliers].astype(np.float16)  # [N, |O|]
    high = x2[:, outliers].astype(np.float16).astype(np.float32) @ w16.astype(np.float32).T  # [R, N]
    rest = np.where(outliers, np.float32(0.0), x2)  # [R, K], the outlier columns zeroed
    x8, x_scale = quantize_rows(rest)  # [R, K] int8, [R]
    acc = x8.astype(np.int32) @ weight.codes().astype(np.int32).T  # [R, N], exact integer sums
    low = acc.astype(np.float32) * (x_scale[:, None] * weight.row_scales()[None, :])
    y = high + low
    if bias is not None:
        y = y + bias
    return y.reshape(*x.shape[:-1], weight.shape[0])
