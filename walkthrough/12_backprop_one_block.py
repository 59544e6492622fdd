"""12 - Backpropagation through one block, checked against finite differences (about 2 s).

Training needs d loss / d every weight. minibloom writes each op's backward beside its forward
(functional.py, attention.py, block.py) and chains them in reverse. Here: one block of a tiny
random BLOOM, a made-up loss L = sum(out * R), the analytic gradient from `bloom_block_backward`,
and the numerical one, (L(w + h) - L(w - h)) / 2h, for a few weights of every kind.
"""

import numpy as np

from minibloom import BloomConfig, BloomModel
from minibloom.alibi import alibi_bias
from minibloom.backends import numpy_backend, numpy_backward
from minibloom.block import bloom_block, bloom_block_backward
from minibloom.masking import causal_padding_bias
from minibloom.model import block_spec
from minibloom.training.grad import GradRecord

config = BloomConfig(vocab_size=16, hidden_size=12, n_head=3, n_layer=1)
model = BloomModel(config, seed=0)
rng = np.random.default_rng(0)
p = {k.removeprefix("h.0."): v + rng.normal(scale=0.3, size=v.shape).astype(np.float32)
     for k, v in model.params.items() if k.startswith("h.0.")}
x = rng.normal(size=(2, 5, 12)).astype(np.float32)  # [B, T, H]: the block's input
R = rng.normal(size=(2, 5, 12)).astype(np.float32)  # the loss's weights: dL/d out = R
mask = np.ones((2, 5), np.int64)
alibi, bias, spec = alibi_bias(mask, 3), causal_padding_bias(mask, 5), block_spec(config)


def loss() -> float:
    out, _ = bloom_block(x, p, alibi, bias, spec, numpy_backend)
    return float(np.sum(out.astype(np.float64) * R))


# Forward with a record: what backward needs (LN outputs, fused QKV, probs, context, pre-GELU, ...).
record = GradRecord()
out, _ = bloom_block(x, p, alibi, bias, spec, numpy_backend, trace=record.scope("h.0"))
rec = {**record.layers(1)[0], "input": x}  # (a model records the input as the layer below's output)
print("forward keeps:", ", ".join(f"{k} {tuple(v.shape)}" for k, v in rec.items()))
print(f"  {sum(v.nbytes for v in rec.values()) / 1024:.1f} KiB for this block (the input counted once)")

d_x, grads = bloom_block_backward(R, rec, p, spec, numpy_backward)  # dL/d out = R, walked back
print(f"{'weight':42} {'analytic':>10} {'numeric':>10}")
for name in ["input_layernorm.weight", "self_attention.query_key_value.weight", "self_attention.dense.bias",
             "post_attention_layernorm.bias", "mlp.dense_h_to_4h.weight", "mlp.dense_4h_to_h.weight"]:
    index = tuple(int(rng.integers(0, n)) for n in p[name].shape)
    saved, h = p[name][index], np.float32(1e-2)
    p[name][index] = saved + h
    up = loss()
    p[name][index] = saved - h
    down = loss()
    p[name][index] = saved
    numeric = (up - down) / (2 * h)
    print(f"{name + str(list(index)):42} {grads[name][index]:10.5f} {numeric:10.5f}")
    assert abs(grads[name][index] - numeric) <= 2e-2 * max(1.0, abs(numeric)), name

# The input's gradient too (it is what the block below receives).
index = (1, 3, 4)
saved = x[index]
x[index] = saved + 1e-2
up = loss()
x[index] = saved - 1e-2
down = loss()
x[index] = saved
print(f"{'d loss / d x' + str(list(index)):42} {d_x[index]:10.5f} {(up - down) / 2e-2:10.5f}")
assert abs(d_x[index] - (up - down) / 2e-2) <= 2e-2 * max(1.0, abs(d_x[index]))
print("analytic == numerical gradient for every kind of weight in the block")
