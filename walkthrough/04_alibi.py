"""04 - ALiBi: attention with linear biases instead of position embeddings (about 1 s).

Each head n adds slope[n] * (key position) to its scores. Softmax ignores a per-row constant, so
this is the same as -slope * distance: heads with large slopes look near, small slopes look far.
Positions are the cumulative sum of the attention mask, so left padding does not shift them.
"""

import numpy as np

from minibloom.alibi import alibi_bias, alibi_slopes



def as_power_of_two(slope: float) -> str:
    """1/64 for 2^-6; 2^-0.5 = 0.7071 for the in-between slopes of a head count that is not a power of 2."""
    e = -np.log2(slope)
    return f"1/{2 ** round(e)}" if abs(e - round(e)) < 1e-6 else f"2^-{e:g} = {slope:.4f}"


for n_head in (8, 12):
    print(f"slopes for {n_head} heads:", ", ".join(as_power_of_two(s) for s in alibi_slopes(n_head)))
print("(12 is not a power of two: the 8 slopes of 8 heads, then 4 in-between ones of 16 heads)")
slopes = alibi_slopes(8)
assert np.allclose(slopes, 2.0 ** (-np.arange(1, 9)))  # 2^(-8/N * k) for a power-of-two N

mask = np.array([[0, 0, 1, 1, 1],   # left-padded: two pad tokens first
                 [1, 1, 1, 1, 1]])
bias = alibi_bias(mask, 8)  # [B, N, 1, S]
print("positions from the mask:", (np.cumsum(mask, -1) - 1) * mask)
print("head 0 bias, padded row:", bias[0, 0, 0].tolist(), "(slope 1/2 x positions 0 0 0 1 2)")
print("head 0 bias, full row:  ", bias[1, 0, 0].tolist(), "(slope 1/2 x positions 0 1 2 3 4)")
# the real tokens of the padded row see positions 0, 1, 2, like a 3-token row would
assert np.allclose(bias[0, 0, 0, 2:], bias[1, 0, 0, :3])
