"""04 - ALiBi: attention with linear biases instead of position embeddings (about 1 s).

Each head n adds slope[n] * (key position) to its scores. Softmax ignores a per-row constant, so
this is the same as -slope * distance: heads with large slopes look near, small slopes look far.
Positions are the cumulative sum of the attention mask, so left padding does not shift them.
"""

import numpy as np

from minibloom.alibi import alibi_bias, alibi_slopes

for n_head in (8, 12):
    print(f"slopes for {n_head} heads:", np.round(alibi_slopes(n_head), 5).tolist())
slopes = alibi_slopes(8)
assert np.allclose(slopes, 2.0 ** (-np.arange(1, 9)))  # 2^(-8/N * k) for a power-of-two N

mask = np.array([[0, 0, 1, 1, 1],   # left-padded: two pad tokens first
                 [1, 1, 1, 1, 1]])
bias = alibi_bias(mask, 8)  # [B, N, 1, S]
print("positions from the mask:", (np.cumsum(mask, -1) - 1) * mask)
print("head 0 bias, padded row:", bias[0, 0, 0].tolist())
print("head 0 bias, full row:  ", bias[1, 0, 0].tolist())
# the real tokens of the padded row see positions 0, 1, 2, like a 3-token row would
assert np.allclose(bias[0, 0, 0, 2:], bias[1, 0, 0, :3])
