"""The Numba backend: the NumPy reference ops as fused, compiled loops (parallel where they replace BLAS).

What it changes, op by op (each kernel is tested equal to its NumPy op):

- linear: float32 weights go to BLAS (NumPy's matmul), which already streams a matrix at the
  machine's memory bandwidth. 2-byte weights: a few rows of input (decoding) go through `_gemv`,
  which widens each weight row to float32 in a small buffer as it reads it, so the bytes read per
  token are halved; many rows (prefill) widen blocks of the matrix and hand each block to BLAS.
- linear_gelu: the bias add and BLOOM's GELU fused into one pass over the matmul's output.
- layer_norm: one pass per row for the mean and variance (float64 sums), one to normalise.
- attention_probs: scale, ALiBi, mask and softmax fused into one pass per row of scores (with a
  vectorisable exp); q @ k^T stays in BLAS.
- embed: a bounds-checked row gather.

Kernel template: what it computes; geometry (`prange` splits the outer loop across threads);
then the passes over each row, as a plain loop a learner can map to the NumPy op it equals.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from .. import functional
from ..errors import InputError
from ..storage import BF16, to_float32

__all__ = ["attention_probs", "context", "embed", "layer_norm", "linear", "linear_gelu", "linear_tp"]

GEMV_MAX_ROWS = 8  # up to this many input rows, 2-byte weights are multiplied by `_gemv`
WIDEN_BLOCK = 2048  # weight rows widened per BLAS call when more input rows come

# subtle: threads. NumPy's OpenBLAS threads spin for a while after each matmul, and so do the
# threads of Numba's OpenMP layer after each parallel kernel; alternating the two on few cores
# made every op ~3x slower (Numba's sleeping "workqueue" layer avoids that but costs ~100 us per
# launch). So the cheap element-wise kernels run on one thread (SERIAL) between BLAS calls, and
# only the kernels that replace BLAS -- the 2-byte matrix-vector products of decoding and the
# widening of 2-byte weights -- run in parallel (PARALLEL).
SERIAL = dict(cache=True, nogil=True)
PARALLEL = dict(cache=True, nogil=True, parallel=True)
# LLVM's fast-math flags that let loops vectorise (reassociating sums, fused multiply-add, ...);
# "nnan" and "ninf" are left out, so NaN and inf keep their meaning (masked scores reach -inf).
FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}


# ------------------------------------------------------------------------------------ layer norm

@numba.njit(**SERIAL)
def _layer_norm(x, weight, bias, eps, out):
    """out[r] = (x[r] - mean) / sqrt(var + eps) * weight + bias for each row r of x [R, F].

    Geometry: row by row. Pass 1: mean and (biased) variance with float64 sums, so the
    result does not depend on the order of summation; pass 2: normalise in float32 as NumPy does.
    """
    R, F = x.shape
    for r in range(R):
        total = 0.0
        for f in range(F):
            total += x[r, f]
        mean = np.float32(total / F)
        sq = 0.0
        for f in range(F):
            c = np.float32(x[r, f] - mean)
            sq += c * c
        std = np.float32(math.sqrt(np.float32(sq / F) + eps))
        for f in range(F):
            out[r, f] = np.float32(x[r, f] - mean) / std * weight[f] + bias[f]


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    x2 = np.ascontiguousarray(x, np.float32).reshape(-1, x.shape[-1])  # [R, F]
    out = np.empty_like(x2)
    _layer_norm(x2, weight, bias, np.float32(eps), out)
    return out.reshape(x.shape)


# ------------------------------------------------------------------------------------- bias + GELU

@numba.njit(inline="always", fastmath=FAST)
def _exp_row(x, out, pow2_bits):
    """out[k] = exp(x[k]) over a row, in loops LLVM can vectorise (the libm call per element
    cannot be, and is ~10x slower). `out` may be `x`; `pow2_bits` is an int32 scratch row.

    Cephes' expf: write x = m ln2 + r with |r| <= ln2 / 2 (ln2 split in two constants so m ln2
    is exact), e^r = 1 + r + r^2 p(r) with a degree-5 polynomial, and e^x = 2^m e^r, 2^m built
    directly as float32 bits ((m + 127) << 23). Relative error <= 3e-7, as NumPy's own float32
    exp (2e-7). Below -87.34 the result is 0, as float32 exp underflows; inputs are clamped
    at 88 (softmax and GELU never pass more).
    """
    pow2 = pow2_bits.view(np.float32)
    for k in range(x.shape[0]):
        v = x[k]
        underflow = v < np.float32(-87.33654)
        v = min(max(v, np.float32(-87.0)), np.float32(88.0))
        m = np.floor(v * np.float32(1.44269504088896341) + np.float32(0.5))
        r = v - m * np.float32(0.693359375) - m * np.float32(-2.12194440e-4)
        p = np.float32(1.9875691500e-4)
        p = p * r + np.float32(1.3981999507e-3)
        p = p * r + np.float32(8.3334519073e-3)
        p = p * r + np.float32(4.1665795894e-2)
        p = p * r + np.float32(1.6666665459e-1)
        p = p * r + np.float32(5.0000001201e-1)
        out[k] = p * (r * r) + r + np.float32(1.0)
        pow2_bits[k] = np.int32(0) if underflow else (np.int32(m) + np.int32(127)) << np.int32(23)
    for k in range(x.shape[0]):
        out[k] = out[k] * pow2[k]


@numba.njit(**SERIAL, fastmath=FAST)
def _bias_gelu(y, bias):
    """In place: y[r, o] = bloom_gelu(y[r, o] + bias[o]) over y [R, O], with bloom_gelu's
    constants and order of operations in float32.

    Geometry: row by row. Pass 1: v = y + bias and the tanh argument u; pass 2: exp(2|u|);
    pass 3: tanh(u) = sign(u) (1 - 2 / (exp(2|u|) + 1)) and the GELU itself. (tanh through exp,
    because `_exp_row` vectorises and the libm tanh does not.)
    """
    R, O = y.shape
    for r in range(R):
        e = np.empty(O, np.float32)
        scratch = np.empty(O, np.int32)
        row = y[r]
        for o in range(O):
            v = row[o] + bias[o]
            row[o] = v
            u = np.float32(0.79788456) * v * (np.float32(1.0) + np.float32(0.044715) * v * v)
            e[o] = np.float32(2.0) * abs(u)
        _exp_row(e, e, scratch)
        for o in range(O):
            t = np.float32(1.0) - np.float32(2.0) / (e[o] + np.float32(1.0))
            t = -t if row[o] < 0 else t  # u has the sign of v, as 1 + 0.044715 v^2 > 0
            row[o] = row[o] * np.float32(0.5) * (np.float32(1.0) + t)


# --------------------------------------------------------------------------- 2-byte weight widening

@numba.njit(inline="always")
def _widen_bf16(src, dst_bits):
    """bfloat16 bit patterns -> float32 bit patterns: the 16 bits become the top half."""
    for k in range(src.shape[0]):
        dst_bits[k] = np.uint32(src[k]) << np.uint32(16)


@numba.njit(inline="always")
def _widen_f16(src, dst_bits, dst):
    """float16 bit patterns -> float32 values, branch-free so the loops vectorise.

    Pass 1 moves exponent and mantissa into float32's fields (bits << 13); the float32 exponent
    bias is 112 larger than float16's, so pass 2 multiplies by 2**112, which also turns float16
    subnormals into the right normal float32s. Pass 3 puts back the sign and, for exponent 31
    (inf, NaN), an all-ones exponent. A test checks all 65,536 patterns against NumPy.
    """
    n = src.shape[0]
    for k in range(n):
        dst_bits[k] = (np.uint32(src[k]) & np.uint32(0x7FFF)) << np.uint32(13)
    for k in range(n):
        dst[k] = dst[k] * np.float32(5.192296858534828e33)  # 2**112
    for k in range(n):
        h = np.uint32(src[k])
        bits = dst_bits[k] | ((h & np.uint32(0x8000)) << np.uint32(16))
        if (h & np.uint32(0x7C00)) == np.uint32(0x7C00):
            bits |= np.uint32(0x7F800000)
        dst_bits[k] = bits


@numba.njit(**PARALLEL)
def _widen(w_bits, is_bf16, out):
    """out [N, K] float32 <- w_bits [N, K] (uint16 patterns of bfloat16 or float16); rows in parallel."""
    N, K = w_bits.shape
    for r in prange(N):
        row_bits = out[r].view(np.uint32)
        if is_bf16:
            _widen_bf16(w_bits[r], row_bits)
        else:
            _widen_f16(w_bits[r], row_bits, out[r])


@numba.njit(**PARALLEL, fastmath=FAST)
def _gemv(x, w_bits, is_bf16, out):
    """out [M, N] = x [M, K] @ widen(w_bits [N, K])^T for a few rows M (decoding).

    Geometry: blocks of 64 weight rows in parallel, each thread with its own K-float buffer. For
    each weight row: pass 1 widens it into the buffer (it stays in L1); pass 2 takes its dot
    product with every input row. Each weight byte is read from memory once per call, which is
    what bounds the speed of decoding. fastmath lets the dot products vectorise (the sums are
    reassociated: results differ from BLAS's in the last bits, as two BLAS builds do).
    """
    M, K = x.shape
    N = w_bits.shape[0]
    for block in prange((N + 63) // 64):
        buf = np.empty(K, np.float32)
        buf_bits = buf.view(np.uint32)
        for r in range(block * 64, min(N, block * 64 + 64)):
            if is_bf16:
                _widen_bf16(w_bits[r], buf_bits)
            else:
                _widen_f16(w_bits[r], buf_bits, buf)
            for m in range(M):
                acc = np.float32(0.0)
                for k in range(K):
                    acc += x[m, k] * buf[k]
                out[m, r] = acc


def _matmul_t(x2: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """x2 [M, K] @ weight[N, K]^T -> [M, N] in float32, for any stored weight."""
    if weight.dtype == np.float32:
        return x2 @ weight.T  # BLAS
    bits = weight.view(np.uint16)
    is_bf16 = weight.dtype == BF16
    M, N = x2.shape[0], weight.shape[0]
    out = np.empty((M, N), np.float32)
    if M <= GEMV_MAX_ROWS:
        _gemv(x2, bits, is_bf16, out)
        return out
    block = np.empty((min(WIDEN_BLOCK, N), weight.shape[1]), np.float32)
    for lo in range(0, N, WIDEN_BLOCK):  # widen a block of rows, then one BLAS call on it
        hi = min(lo + WIDEN_BLOCK, N)
        _widen(bits[lo:hi], is_bf16, block[:hi - lo])
        np.matmul(x2, block[:hi - lo].T, out=out[:, lo:hi])
    return out


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    x2 = np.ascontiguousarray(x, np.float32).reshape(-1, x.shape[-1])  # [B*T, in]
    y = _matmul_t(x2, weight)  # [B*T, out]
    if bias is not None:
        y += bias
    return y.reshape(*x.shape[:-1], weight.shape[0])


def linear_gelu(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    x2 = np.ascontiguousarray(x, np.float32).reshape(-1, x.shape[-1])
    y = _matmul_t(x2, weight)  # [B*T, 4H], no bias yet
    _bias_gelu(y, bias)  # fused: one pass instead of NumPy's seven temporaries
    return y.reshape(*x.shape[:-1], weight.shape[0])


def linear_tp(x: np.ndarray, weight: np.ndarray, pretraining_tp: int) -> np.ndarray:
    return functional.linear_tp(x, to_float32(weight), pretraining_tp)  # the rare exact-TP path: NumPy's


# ---------------------------------------------------------------------- ALiBi + mask + softmax

@numba.njit(**SERIAL, fastmath=FAST)
def _scale_alibi_mask_softmax(scores, inv_norm, alibi, mask_bias):
    """In place over scores [B, N, T, S] (= q @ k^T): softmax_s(alibi + inv_norm * scores + mask).

    Geometry: one (batch, head) pair after another. Per query row t: pass 1 adds the scale,
    the head's ALiBi bias and the mask in the reference order (float32) and finds the row max;
    pass 2 exponentiates the shifted scores (`_exp_row`) and sums them (float64); pass 3 divides.
    """
    B, N, T, S = scores.shape
    for bn in range(B * N):
        b, n = bn // N, bn % N
        scratch = np.empty(S, np.int32)
        for t in range(T):
            row = scores[b, n, t]
            top = np.float32(-np.inf)
            for s in range(S):
                v = (alibi[b, n, 0, s] + inv_norm * row[s]) + mask_bias[b, 0, t, s]
                row[s] = v
                top = max(top, v)
            for s in range(S):
                row[s] = row[s] - top
            _exp_row(row, row, scratch)
            total = 0.0
            for s in range(S):
                total += row[s]
            denom = np.float32(total)
            for s in range(S):
                row[s] = row[s] / denom


def attention_probs(q: np.ndarray, k: np.ndarray, alibi: np.ndarray, mask_bias: np.ndarray) -> np.ndarray:
    scores = np.ascontiguousarray(q @ k.transpose(0, 1, 3, 2), np.float32)  # [B, N, T, S], BLAS
    alibi = np.ascontiguousarray(np.broadcast_to(alibi, (*scores.shape[:2], 1, scores.shape[3])), np.float32)
    mask_bias = np.ascontiguousarray(np.broadcast_to(mask_bias, (scores.shape[0], 1, *scores.shape[2:])),
                                     np.float32)
    _scale_alibi_mask_softmax(scores, np.float32(1.0 / math.sqrt(q.shape[-1])), alibi, mask_bias)
    return scores


def context(probs: np.ndarray, v: np.ndarray) -> np.ndarray:
    return probs @ v  # [B, N, T, S] @ [B, N, S, D] -> [B, N, T, D], BLAS


# ---------------------------------------------------------------------------------- embeddings

@numba.njit(**SERIAL)
def _gather(table, ids, out):
    """out[i] = table[ids[i]] for flat ids. Returns the first index whose id is
    outside the table, or -1: a kernel must never read out of bounds, whatever its caller checked."""
    V = table.shape[0]
    for i in range(ids.shape[0]):
        if ids[i] < 0 or ids[i] >= V:
            return i
    for i in range(ids.shape[0]):
        out[i] = table[ids[i]]
    return -1


def embed(table: np.ndarray, ids: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(ids, np.int64).reshape(-1)
    raw = table.view(np.uint16) if table.dtype != np.float32 else table
    rows = np.empty((flat.size, table.shape[1]), raw.dtype)
    bad = _gather(raw, flat, rows)
    if bad >= 0:
        raise InputError(f"input_ids (flat position {bad}) = {flat[bad]} is outside the vocabulary [0, {table.shape[0]})")
    if table.dtype != np.float32:
        rows = to_float32(rows.view(table.dtype))
    return rows.reshape(*ids.shape, table.shape[1])
