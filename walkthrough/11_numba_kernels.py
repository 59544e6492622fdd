"""11 - Numba and CUDA kernels beside the NumPy reference (about 30 s: compiling, then the simulator).

The Numba backend computes the same ops with compiled loops: fused bias + GELU, a one-pass
ALiBi + mask + softmax, and matrix-vector products that widen 2-byte weights as they read them.
Each equals its NumPy op; a model picks one with backend="numba".

The CUDA backend runs every op as a numba.cuda kernel with the weights and the KV cache on the
GPU. Without a GPU, Numba's simulator runs the same kernels on the CPU (one Python thread per
CUDA thread: slow, so a tiny model here); set MINIBLOOM_REAL_CUDA=1 to use a real GPU instead.
"""

import os

if not os.environ.get("MINIBLOOM_REAL_CUDA"):
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"  # before numba is imported

import time

import numpy as np

from minibloom import EMBEDDED_CHECKPOINT, BloomForCausalLM
from minibloom.backends import numba_backend, numpy_backend
from minibloom.storage import from_float32, BF16

rng = np.random.default_rng(0)
x = rng.standard_normal((1, 256)).astype(np.float32)
w = from_float32(rng.standard_normal((1024, 256)).astype(np.float32), BF16)  # 2-byte storage
b = rng.standard_normal(1024).astype(np.float32)
for name in ("linear", "linear_gelu"):
    ref, fast = getattr(numpy_backend, name)(x, w, b), getattr(numba_backend, name)(x, w, b)
    print(f"{name:12} max |numba - numpy| = {np.abs(ref - fast).max():.2e}")
    assert np.allclose(ref, fast, atol=1e-4)

ids = np.array([[5, 6, 7, 8]])
for backend, storage in (("numpy", "float32"), ("numba", "float32"), ("numba", "bfloat16")):
    lm = BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT, backend=backend, storage=storage)
    lm.generate(ids, max_new_tokens=2)  # warm up (compile)
    start = time.perf_counter()
    out = lm.generate(ids, max_new_tokens=20)
    print(f"{backend:6} {storage:9} {20 / (time.perf_counter() - start):7.1f} tokens/s -> {out[0, 4:10].tolist()}")

from minibloom import BloomConfig
from minibloom.cuda import CudaBloomForCausalLM
from minibloom.cuda import kernels

tiny = BloomForCausalLM(BloomConfig(vocab_size=12, hidden_size=8, n_head=2, n_layer=1, eos_token_id=None), seed=0)
gpu = CudaBloomForCausalLM(tiny)  # weights copied to the device once
ids = np.array([[1, 2, 3]])
start = time.perf_counter()
on_device = gpu.generate(ids, max_new_tokens=2)  # only one id per step comes back to the host
print(f"CUDA{' (simulator)' if kernels.SIMULATOR else ''}: {on_device[0].tolist()} in {time.perf_counter() - start:.1f} s,"
      f" tile {kernels.TILE}x{kernels.TILE}")
assert (on_device == tiny.generate(ids, max_new_tokens=2)).all()
