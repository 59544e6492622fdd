"""Backends: the same ops, computed by NumPy (the readable reference) or by Numba kernels.

A backend is a module with these functions, every one of them taking and returning NumPy arrays,
all float32 except the weights, which may be stored in 2 bytes (`minibloom.storage`):

    embed(table [V, H], ids [B, T])                  -> [B, T, H]
    layer_norm(x [..., F], weight, bias, eps)         -> [..., F]
    linear(x [..., I], weight [O, I], bias [O]|None)  -> [..., O]
    linear_gelu(x [..., I], weight [O, I], bias [O])  -> bloom_gelu(linear(x, weight, bias))
    linear_tp(x, weight, pretraining_tp)              -> the `slow_but_exact` projection, no bias
    attention_probs(q [B,N,T,D], k [B,N,S,D], alibi [B,N,1,S], mask_bias [B,1,T,S]) -> [B, N, T, S]
    context(probs [B,N,T,S], v [B,N,S,D])             -> [B, N, T, D]

The model code calls `ops.layer_norm(...)` and never asks which backend it has. Pick one with
`backend="numpy" | "numba"` on a model class or `from_pretrained`.
"""

from __future__ import annotations

from types import ModuleType

from ..errors import InputError

BACKENDS = ("numpy", "numba")


def get_backend(name: str) -> ModuleType:
    """The ops module of backend `name`."""
    if name == "numpy":
        from . import numpy_backend

        return numpy_backend
    if name == "numba":
        from . import numba_backend

        return numba_backend
    hint = " (the GPU backend is a separate class: minibloom.cuda.CudaBloomForCausalLM)" if name == "cuda" else ""
    raise InputError(f"backend must be one of {BACKENDS}, got {name!r}{hint}")
