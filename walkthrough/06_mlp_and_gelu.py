"""06 - The MLP and BLOOM's GELU (about 1 s).

The feed-forward layer widens to 4H, applies GELU, and narrows back. BLOOM's GELU is the tanh
approximation with Megatron's rounded constants; it differs from the exact erf form by < 1e-3.
"""

import math

import numpy as np

from minibloom import EMBEDDED_CHECKPOINT, BloomModel
from minibloom.backends import numpy_backend
from minibloom.block import mlp
from minibloom.attention import AttentionSpec
from minibloom.functional import bloom_gelu
from minibloom.storage import to_float32

xs = np.linspace(-4, 4, 9, dtype=np.float32)
exact = np.array([0.5 * x * (1 + math.erf(x / math.sqrt(2))) for x in xs])
row = lambda values: " ".join(f"{v:8.4f}" for v in values)  # 4 decimals: float32 noise hidden
print("x         ", row(xs))
print("bloom tanh", row(bloom_gelu(xs)))
print("exact erf ", row(exact))
gap = np.abs(bloom_gelu(xs) - exact)
print(f"largest gap {gap.max():.1e} at x = {xs[gap.argmax()]:g}: small, but a port using erf fails a golden compare")
assert gap.max() < 1e-3

model = BloomModel.from_pretrained(EMBEDDED_CHECKPOINT)
p = {k.removeprefix("h.1.mlp."): to_float32(v) for k, v in model.params.items() if k.startswith("h.1.mlp.")}
x = np.random.default_rng(1).standard_normal((1, 3, model.config.hidden_size)).astype(np.float32)
wide = bloom_gelu(x @ p["dense_h_to_4h.weight"].T + p["dense_h_to_4h.bias"])  # [1, 3, 4H]
by_hand = wide @ p["dense_4h_to_h.weight"].T + p["dense_4h_to_h.bias"]  # [1, 3, H]
print("widths:", x.shape[-1], "->", wide.shape[-1], "->", by_hand.shape[-1])
np.testing.assert_allclose(by_hand, mlp(x, p, AttentionSpec(model.config.n_head), numpy_backend), atol=1e-5)
print("by hand == minibloom.block.mlp")
