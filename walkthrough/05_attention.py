"""05 - Self-attention step by step, checked against the library (about 1 s).

qkv = x W^T + b, split per head (q, k, v interleaved!), scores = q k^T / sqrt(D) + ALiBi + mask,
softmax over keys, context = probs v, heads merged, then the output dense layer.
"""

import numpy as np

from minibloom import EMBEDDED_CHECKPOINT, BloomModel
from minibloom.alibi import alibi_bias
from minibloom.attention import AttentionSpec, self_attention
from minibloom.backends import numpy_backend
from minibloom.masking import causal_padding_bias
from minibloom.storage import to_float32

model = BloomModel.from_pretrained(EMBEDDED_CHECKPOINT)
cfg = model.config
N, D = cfg.n_head, cfg.head_dim
p = {k.removeprefix("h.0.self_attention."): to_float32(v) for k, v in model.params.items()
     if k.startswith("h.0.self_attention.")}
rng = np.random.default_rng(0)
x = rng.standard_normal((1, 6, cfg.hidden_size)).astype(np.float32)  # [B, T, H]
mask = np.ones((1, 6), np.int64)

qkv = x @ p["query_key_value.weight"].T + p["query_key_value.bias"]  # [1, 6, 3H]
fused = qkv.reshape(1, 6, N, 3, D)  # subtle: per head, q k v sit side by side
q, k, v = (fused[:, :, :, i].transpose(0, 2, 1, 3) for i in range(3))  # [1, N, 6, D]
scores = alibi_bias(mask, N) + (q @ k.transpose(0, 1, 3, 2)) / np.sqrt(D)  # [1, N, 6, 6]
scores = scores + causal_padding_bias(mask, 6, 0)  # the future is masked with float32's min
probs = np.exp(scores - scores.max(-1, keepdims=True))
probs /= probs.sum(-1, keepdims=True)
print("head 0 attention (row = query, col = key):\n", np.round(probs[0, 0], 2))
assert np.allclose(np.triu(probs[0, 0], 1), 0)  # causal: nothing above the diagonal
context = (probs @ v).transpose(0, 2, 1, 3).reshape(1, 6, cfg.hidden_size)  # [1, 6, H]
out = context @ p["dense.weight"].T + p["dense.bias"]

lib, lib_probs = self_attention(x, p, alibi_bias(mask, N), causal_padding_bias(mask, 6, 0), AttentionSpec(N),
                                numpy_backend)  # the attention output; the block adds the residual
np.testing.assert_allclose(out, lib, atol=1e-5)
np.testing.assert_allclose(probs, lib_probs, atol=1e-6)
print("by hand == minibloom.attention.self_attention")
