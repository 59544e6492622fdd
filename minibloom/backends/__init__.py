"""Backends: the same ops, computed by NumPy (the readable reference) or by Numba kernels.

A backend is a module with these functions, every one of them taking and returning NumPy arrays,
all float32 except the weights, which may be stored in 2 bytes (`minibloom.storage`):

    embed(table [V, H], ids [B, T])                  -> [B, T, H]
    layer_norm(x [..., F], weight, bias, eps)         -> [..., F]
    linear(x [..., I], weight [O, I], bias [O]|None)  -> [..., O]
    linear_gelu(x [..., I], weight [O, I], bias [O])  -> bloom_gelu(linear(x, weight, bias))
    bloom_gelu(x [..., F])                            -> [..., F] (unfused: training keeps both sides)
    linear_tp(x, weight, pretraining_tp)              -> the `slow_but_exact` projection, no bias
    attention_probs(q [B,N,T,D], k [B,N,S,D], alibi [B,N,1,S], mask_bias [B,1,T,S]) -> [B, N, T, S]
    context(probs [B,N,T,S], v [B,N,S,D])             -> [B, N, T, D]

The model code calls `ops.layer_norm(...)` and never asks which backend it has. Pick one with
`backend="numpy" | "numba"` on a model class or `from_pretrained`; the default, "auto", is the
fast one this machine can run: "numba" where Numba imports, else "numpy" (`resolve_backend`).

`get_backend(name)` gives the ops *checked*: each call first checks ranks, matching widths, dtypes
and eps against the signatures above and raises `InputError` naming the argument (a Numba kernel
given a weight shorter than the row would otherwise read past its end). The models, which build
every argument themselves, use the unchecked modules (`get_backend(name, checked=False)`).
"""

from __future__ import annotations

import functools
import math
from types import ModuleType, SimpleNamespace

import numpy as np

from ..errors import InputError

BACKENDS = ("numpy", "numba")
BACKEND_CHOICES = ("auto",) + BACKENDS  # what a user may pass: "auto" resolves to one of BACKENDS
OPS = ("embed", "layer_norm", "linear", "linear_gelu", "bloom_gelu", "linear_tp", "attention_probs", "context")


def resolve_backend(name: str) -> str:
    """"auto" -> "numba" where its kernels import (Numba and llvmlite installed), else "numpy"; a
    named backend is checked and returned as it is. Why the compiled one by default: it is the
    same arithmetic (each kernel is tested equal to its NumPy op) at 2-14x the speed; the NumPy
    backend stays one argument away as the readable reference."""
    if name == "auto":
        return "numba" if _numba_works() else "numpy"
    _module(name)
    return name


@functools.cache
def _numba_works() -> bool:
    try:
        from . import numba_backend  # noqa: F401  (imports numba and llvmlite, builds the intrinsics)
    except Exception:  # not installed, or installed but broken (an llvmlite that does not match)
        return False
    return True


def get_backend(name: str, checked: bool = True) -> ModuleType | SimpleNamespace:
    """The ops of backend `name` ("auto": see `resolve_backend`), each checking its arguments first
    (`checked=False`: the raw module)."""
    module = _module(resolve_backend(name) if name == "auto" else name)
    if not checked:
        return module
    return SimpleNamespace(__name__=module.__name__, **{op: functools.wraps(getattr(module, op))(
        functools.partial(_checked_call, op, getattr(module, op))) for op in OPS})


def _checked_call(op: str, fn, *args, **kwargs):
    CHECKS[op](*args, **kwargs)
    return fn(*args, **kwargs)


def _module(name: str) -> ModuleType:
    if name == "numpy":
        from . import numpy_backend

        return numpy_backend
    if name == "numba":
        from . import numba_backend

        return numba_backend
    hint = " (the GPU backend is a separate class: minibloom.cuda.CudaBloomForCausalLM)" if name == "cuda" else ""
    raise InputError(f"backend must be one of {BACKEND_CHOICES}, got {name!r}{hint}")


# -- argument checks, one per op --------------------------------------------------------------------
def _array(value, name: str, ndim: int | None = None, kinds: str = "f") -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise InputError(f"{name} must be a NumPy array, got {type(value).__name__}")
    from ..storage import BF16  # 2-byte weights: float16, or bfloat16 bit patterns

    if value.dtype.kind not in kinds and not (kinds == "f" and value.dtype == BF16):
        raise InputError(f"{name} must hold {'floats' if kinds == 'f' else 'integers'}, got dtype {value.dtype}")
    if ndim is not None and value.ndim != ndim:
        raise InputError(f"{name} must have {ndim} dimensions, got shape {value.shape}")
    if ndim is None and value.ndim < 1:
        raise InputError(f"{name} must have at least one dimension, got a scalar")
    return value


def _weight(value, name: str, ndim: int) -> np.ndarray:
    """A weight matrix as a model stores it (`storage.STORAGE_DTYPES`): float32, float16, bfloat16, or
    int8 codes as an `Int8Matrix`, which carries the per-row scales a bare int8 array lacks."""
    from ..storage import STORAGE_DTYPES, Int8Matrix

    if isinstance(value, Int8Matrix):
        _array(value, name, ndim, "i")
        if value.absmax is None:
            raise InputError(f"{name} is a slice of an int8 matrix, which has no row scales; pass the whole matrix")
        return value
    if isinstance(value, np.ndarray) and value.dtype == np.int8:
        raise InputError(f"{name} holds bare int8 codes; int8 weights come as storage.Int8Matrix (codes with "
                         "their per-row absmax: storage.quantize_int8)")
    _array(value, name, ndim)
    if value.dtype not in STORAGE_DTYPES.values():
        raise InputError(f"{name} must be stored as one of {sorted(STORAGE_DTYPES)}, got dtype {value.dtype}")
    return value


def _same(name: str, got: tuple, expected: tuple, why: str) -> None:
    if tuple(got) != tuple(expected):
        raise InputError(f"{name} has shape {tuple(got)}, expected {tuple(expected)} ({why})")


def _check_embed(table, ids):
    _weight(table, "table", 2)
    ids = _array(ids, "ids", None, "iu")
    bad = np.flatnonzero((ids.reshape(-1) < 0) | (ids.reshape(-1) >= table.shape[0]))
    if bad.size:
        raise InputError(f"ids holds {ids.reshape(-1)[bad[0]]}, outside the vocabulary [0, {table.shape[0]})")


def _check_layer_norm(x, weight, bias, eps):
    _array(x, "x")
    F = x.shape[-1]
    _same("weight", _array(weight, "weight", 1).shape, (F,), "one per feature of x's last axis")
    _same("bias", _array(bias, "bias", 1).shape, (F,), "one per feature of x's last axis")
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not (math.isfinite(eps) and eps > 0):
        raise InputError(f"eps must be a positive finite number, got {eps!r}")


def _check_linear(x, weight, bias=None, bias_required=False):
    _array(x, "x")
    _weight(weight, "weight", 2)
    _same("weight", weight.shape, (weight.shape[0], x.shape[-1]), "[out, in] with in = x's last axis")
    if bias is not None or bias_required:
        _same("bias", _array(bias, "bias", 1).shape, (weight.shape[0],), "one per output of weight [out, in]")


def _check_linear_tp(x, weight, pretraining_tp):
    _check_linear(x, weight)
    if isinstance(pretraining_tp, bool) or not isinstance(pretraining_tp, (int, np.integer)) \
            or not 1 <= pretraining_tp <= x.shape[-1]:
        raise InputError(f"pretraining_tp must be an integer in [1, {x.shape[-1]}], got {pretraining_tp!r}")


def _check_attention_probs(q, k, alibi, mask_bias):
    B, N, T, D = _array(q, "q", 4).shape
    S = _array(k, "k", 4).shape[2]
    _same("k", k.shape, (B, N, S, D), "[B, N, S, D] with q's B, N, D")
    _same("alibi", _array(alibi, "alibi", 4).shape, (B, N, 1, S), "[B, N, 1, S]")
    _same("mask_bias", _array(mask_bias, "mask_bias", 4).shape, (B, 1, T, S), "[B, 1, T, S]")


def _check_context(probs, v):
    B, N, T, S = _array(probs, "probs", 4).shape
    _same("v", _array(v, "v", 4).shape, (B, N, S, v.shape[-1]), "[B, N, S, D] with probs' B, N, S")


CHECKS = {"embed": _check_embed, "layer_norm": _check_layer_norm, "linear": _check_linear,
          "linear_gelu": functools.partial(_check_linear, bias_required=True), "linear_tp": _check_linear_tp,
          "bloom_gelu": lambda x: _array(x, "x"),
          "attention_probs": _check_attention_probs, "context": _check_context}
