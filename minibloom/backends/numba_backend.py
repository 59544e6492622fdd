"""The Numba backend: the NumPy reference ops as fused, compiled loops (parallel where they replace BLAS).

What it changes, op by op (each kernel is tested equal to its NumPy op):

- linear: a few rows of input (decoding, batch <= 8) go through `_gemv` in every weight storage
  (float32, bfloat16, float16, int8): each weight is read once, widened to float32 in a register
  as it is read, and multiplied into up to eight rows at a time, so a decoded token costs about
  the weights' bytes / the machine's read bandwidth (`_gemv_plain` is the same product as three
  plain loops). int8 weights may instead meet activations quantised to int8 through AVX512-VNNI
  (`INT8_ACTIVATIONS`, `numba_vnni`). Many rows (prefill) are compute-bound:
  float32 goes to BLAS (NumPy's matmul); compact weights are widened in blocks, each handed to BLAS.
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
from llvmlite import ir
from numba import prange
from numba.core import cgutils, types
from numba.extending import intrinsic

from .. import functional
from ..errors import InputError
from ..storage import BF16, Int8Matrix, to_float32
from ..threads import numba_threads

__all__ = ["attention_probs", "bloom_gelu", "context", "embed", "layer_norm", "linear", "linear_gelu", "linear_tp"]

GEMV_MAX_ROWS = 8  # up to this many input rows (decoding), every weight storage is multiplied by `_gemv`
WIDEN_BLOCK = 2048  # weight rows widened per BLAS call when more input rows come

# subtle: threads. NumPy's OpenBLAS threads spin for a while after each matmul, and so do the
# threads of Numba's OpenMP layer after each parallel kernel; alternating the two on few cores
# made every op ~3x slower (Numba's sleeping "workqueue" layer avoids that but costs ~100 us per
# launch). So the cheap element-wise kernels run on one thread (SERIAL) between BLAS calls, and
# only the kernels that replace BLAS -- the matrix-vector products of decoding and the widening
# of compact weights -- are parallel (PARALLEL), on as many threads as `minibloom.set_num_threads`
# says: by default the cores this process may run on, with both libraries' waiting threads told to
# sleep, not spin (`minibloom.threads`; docs/performance.md, "Threads").
# error_model="numpy": a float division by zero gives inf/NaN, as in NumPy, instead of Python's
# ZeroDivisionError; that check is a branch in every division and kept LLVM from vectorising any
# loop that divides (the GELU's tanh, measured 2-4x slower).
SERIAL = dict(cache=True, nogil=True, error_model="numpy")
PARALLEL = dict(cache=True, nogil=True, parallel=True, error_model="numpy")
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


# ------------------------------------------------ weight widening, matrix-vector products (decoding)

@intrinsic
def _as_float32(typingctx, v):
    """One stored weight -> float32, chosen by the integer type that holds its bits:

    - float32: itself;
    - uint16, bfloat16 bits: the top half of a float32 (shift, then reinterpret the bits);
    - int16, float16 bits: LLVM's `fpext half to float`, which is one vcvtph2ps instruction per
      8 weights on x86 with F16C (and its equivalent on ARM), so the widening vectorises with the
      dot product instead of costing shifts, a multiply and selects per weight (NaN payloads
      come out quieted; every other pattern exactly as NumPy's astype);
    - int8 (the int8 storage's codes): converted exactly; the row's scale is applied by the caller.

    One intrinsic, not a function per storage passed in as an argument: Numba cannot cache a
    kernel compiled for a function argument, and would recompile it (seconds) in every process.
    """
    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        if v == types.float32:
            return args[0]
        if v == types.uint16:
            return builder.bitcast(builder.shl(builder.zext(args[0], ir.IntType(32)), ir.Constant(ir.IntType(32), 16)), f32)
        if v == types.int16:
            return builder.fpext(builder.bitcast(args[0], ir.HalfType()), f32)
        return builder.sitofp(args[0], f32)

    if v not in (types.float32, types.uint16, types.int16, types.int8):
        return None
    return types.float32(v), codegen


def _codes(weight: np.ndarray) -> np.ndarray:
    """A stored weight matrix as the array type `_as_float32` reads (no copy). For an int8 matrix,
    the codes: the caller multiplies the products by its row scales."""
    if isinstance(weight, Int8Matrix):
        return weight.codes()
    if weight.dtype == BF16:
        return weight.view(np.uint16)
    if weight.dtype == np.float16:
        return weight.view(np.int16)
    if weight.dtype == np.float32:
        return weight
    raise InputError(f"weights stored as {weight.dtype} are not supported by the numba backend")


@numba.njit(**PARALLEL)
def _widen(codes, out):
    """out [N, K] float32 <- codes [N, K] (`_codes` of a stored matrix); rows in parallel.
    Prefill widens blocks of a compact matrix with this and hands each block to BLAS."""
    N, K = codes.shape
    for r in prange(N):
        for k in range(K):
            out[r, k] = _as_float32(codes[r, k])


# How decoding multiplies int8 weights: "float32" widens them exactly (activations stay float32);
# "int8" quantises each input row to int8 too and multiplies int8 x int8 with AVX512-VNNI where the
# CPU has it (`numba_vnni`; LLM.int8()'s product without outlier columns), else widens. Speed and
# accuracy of both: docs/performance.md ("int8 through VNNI").
INT8_ACTIVATIONS = "float32"
GEMV_ROWS = 16  # weight rows per parallel task: 16-64 KB of weights, a few microseconds of work
PREFETCH_BYTES = 4096  # how far ahead of the row being multiplied `_gemv` asks for the weights
CACHE_LINE = 64


@intrinsic
def _prefer_512_bit_vectors(typingctx):
    """Let LLVM vectorise the calling kernel with 512-bit registers where the CPU has them.

    subtle: LLVM's tuning for Intel's AVX-512 cores (Sapphire/Emerald Rapids, ...) says "prefer 256-bit
    vectors" (512-bit instructions once lowered the clock of older cores), so the decode loops were
    compiled to ymm registers: half the weights per instruction. The function attribute
    "prefer-vector-width"="512" lifts that for this kernel alone (clang's -mprefer-vector-width=512);
    on a CPU without AVX-512 it changes nothing. llvmlite checks attribute names against a fixed list
    that lacks this one, hence `set.add`. Emits no instruction.
    """
    def codegen(context, builder, signature, args):
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return types.none(), codegen


@intrinsic
def _prefetch(typingctx, w, row, col):
    """Ask the memory system for the cache line holding w[row, col] (LLVM's `llvm.prefetch`: a hint,
    never a fault, no result)."""
    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        pointer = cgutils.get_item_pointer2(context, builder, array.data, cgutils.unpack_tuple(builder, array.shape, 2),
                                            cgutils.unpack_tuple(builder, array.strides, 2), "A", [args[1], args[2]])
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        hint = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                              "llvm.prefetch.p0")
        builder.call(hint, [builder.bitcast(pointer, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    if not (isinstance(w, types.Array) and w.ndim == 2):
        return None
    return types.none(w, row, col), codegen


@numba.njit(inline="always")
def _prefetch_row(w, row, step):
    """Prefetch every cache line of weight row `row` (`step` weights per line), if there is such a row."""
    if row < w.shape[0]:
        for k in range(0, w.shape[1], step):
            _prefetch(w, row, k)


@numba.njit(**PARALLEL)
def _gemv_plain(x, w, out):
    """out [M, N] = x [M, K] @ widen(w [N, K])^T: the plain loops `_gemv` computes faster, to read first
    (and the reference the tests hold `_gemv` to). Each weight is widened (`_as_float32`) as it is read."""
    M, K = x.shape
    for n in prange(w.shape[0]):  # output columns split over the threads
        for m in range(M):
            total = np.float32(0.0)
            for k in range(K):
                total += x[m, k] * _as_float32(w[n, k])
            out[m, n] = total


@numba.njit(**PARALLEL, fastmath=FAST)
def _gemv(x, w, out, rows4, ahead):
    """out [M, N] = x [M, K] @ widen(w [N, K])^T for a few rows M (decoding: M = batch size):
    `_gemv_plain`'s product, arranged so that a decoded token costs about the weights' bytes / the
    machine's read bandwidth. What each arrangement is for (measurements: docs/performance.md,
    "Decode against the streaming-read floor"):

    - tasks of GEMV_ROWS weight rows (`prange`, split over `minibloom.set_num_threads`' threads);
    - each weight is read from memory once per call and widened (`_as_float32`) once per group of
      input rows, in a register: the bytes read, not the multiplies, set the speed;
    - before a row is multiplied, the row `ahead` rows on (PREFETCH_BYTES of weights) is prefetched:
      a widening loop spends several instructions per cache line, so the out-of-order core alone
      keeps too few reads in flight;
    - with `rows4` (float32 and 2-byte weights) one input row (batch 1) goes into four weight rows
      at a time: four independent sums and four streams of reads in flight;
    - otherwise the input rows go eight at once (two weight rows at a time: 16 sums, each x[m, k]
      loaded once for both rows, so loads no longer outnumber the multiplies), else four, two, one;
    - 512-bit vectors where the CPU has them (`_prefer_512_bit_vectors`); fastmath lets the sums
      vectorise (reassociated: the last bits differ from BLAS's, as two BLAS builds do).
    """
    M, K = x.shape
    N = w.shape[0]
    step = max(1, CACHE_LINE // w.itemsize)
    for task in prange((N + GEMV_ROWS - 1) // GEMV_ROWS):
        _prefer_512_bit_vectors()
        lo, hi = task * GEMV_ROWS, min(N, task * GEMV_ROWS + GEMV_ROWS)
        if M == 1 and rows4:  # one input row: four weight rows at a time, four independent sums in flight
            r = lo
            while r + 4 <= hi:
                for j in range(4):
                    _prefetch_row(w, r + j + ahead, step)
                a0 = a1 = a2 = a3 = np.float32(0.0)
                for k in range(K):
                    xk = x[0, k]
                    a0 += xk * _as_float32(w[r, k])
                    a1 += xk * _as_float32(w[r + 1, k])
                    a2 += xk * _as_float32(w[r + 2, k])
                    a3 += xk * _as_float32(w[r + 3, k])
                out[0, r], out[0, r + 1], out[0, r + 2], out[0, r + 3] = a0, a1, a2, a3
                r += 4
            lo = r  # the last rows of a matrix whose row count is not a multiple of 4: below
        if M == 8:  # two weight rows x eight input rows: 16 sums, each weight and each x[m, k] loaded once
            r = lo
            while r + 2 <= hi:
                _prefetch_row(w, r + ahead, step)
                _prefetch_row(w, r + 1 + ahead, step)
                a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = np.float32(0.0)
                b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = np.float32(0.0)
                for k in range(K):
                    v, u = _as_float32(w[r, k]), _as_float32(w[r + 1, k])
                    x0, x1, x2, x3 = x[0, k], x[1, k], x[2, k], x[3, k]
                    x4, x5, x6, x7 = x[4, k], x[5, k], x[6, k], x[7, k]
                    a0 += x0 * v
                    a1 += x1 * v
                    a2 += x2 * v
                    a3 += x3 * v
                    a4 += x4 * v
                    a5 += x5 * v
                    a6 += x6 * v
                    a7 += x7 * v
                    b0 += x0 * u
                    b1 += x1 * u
                    b2 += x2 * u
                    b3 += x3 * u
                    b4 += x4 * u
                    b5 += x5 * u
                    b6 += x6 * u
                    b7 += x7 * u
                out[0, r], out[1, r], out[2, r], out[3, r] = a0, a1, a2, a3
                out[4, r], out[5, r], out[6, r], out[7, r] = a4, a5, a6, a7
                out[0, r + 1], out[1, r + 1], out[2, r + 1], out[3, r + 1] = b0, b1, b2, b3
                out[4, r + 1], out[5, r + 1], out[6, r + 1], out[7, r + 1] = b4, b5, b6, b7
                r += 2
            lo = r  # an odd last row: below, four input rows at a time
        for r in range(lo, hi):
            _prefetch_row(w, r + ahead, step)
            m = 0
            while m + 4 <= M:
                a0 = a1 = a2 = a3 = np.float32(0.0)
                for k in range(K):
                    v = _as_float32(w[r, k])
                    a0 += x[m, k] * v
                    a1 += x[m + 1, k] * v
                    a2 += x[m + 2, k] * v
                    a3 += x[m + 3, k] * v
                out[m, r], out[m + 1, r], out[m + 2, r], out[m + 3, r] = a0, a1, a2, a3
                m += 4
            if m + 2 <= M:
                a0 = a1 = np.float32(0.0)
                for k in range(K):
                    v = _as_float32(w[r, k])
                    a0 += x[m, k] * v
                    a1 += x[m + 1, k] * v
                out[m, r], out[m + 1, r] = a0, a1
                m += 2
            if m < M:
                a0 = np.float32(0.0)
                for k in range(K):
                    a0 += x[m, k] * _as_float32(w[r, k])
                out[m, r] = a0


def gemv(x2: np.ndarray, weight: np.ndarray, plain: bool = False) -> np.ndarray:
    """x2 [M, K] float32 @ weight [N, K]^T -> [M, N] with `_gemv` (`plain`: `_gemv_plain`), for any stored weight."""
    out = np.empty((x2.shape[0], weight.shape[0]), np.float32)
    numba_threads()
    codes = _codes(weight)
    if plain:
        _gemv_plain(x2, codes, out)
    elif isinstance(weight, Int8Matrix) and INT8_ACTIVATIONS == "int8" and numba_vnni.usable(codes):
        out = numba_vnni.gemv_int8(x2, codes)  # activations quantised per row, int8 x int8 through VNNI
    else:
        row_bytes = max(1, codes.shape[1] * codes.itemsize)
        rows4 = codes.itemsize >= 2  # float32 and 2-byte weights; int8 measured faster one row at a time
        _gemv(x2, codes, out, rows4, max(1, PREFETCH_BYTES // row_bytes))
    if isinstance(weight, Int8Matrix):
        out *= weight.row_scales()  # [M, N] * [N]: each output row's absmax / 127, once per product
    return out


def _matmul_t(x2: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """x2 [M, K] @ weight[N, K]^T -> [M, N] in float32, for any stored weight."""
    M, N = x2.shape[0], weight.shape[0]
    if M <= GEMV_MAX_ROWS:
        return gemv(x2, weight)  # decoding: memory-bound, every storage through `_gemv`
    if weight.dtype == np.float32:
        return x2 @ weight.T  # BLAS
    codes = _codes(weight)
    out = np.empty((M, N), np.float32)
    numba_threads()
    block = np.empty((min(WIDEN_BLOCK, N), weight.shape[1]), np.float32)
    for lo in range(0, N, WIDEN_BLOCK):  # widen a block of rows, then one BLAS call on it
        hi = min(lo + WIDEN_BLOCK, N)
        _widen(codes[lo:hi], block[:hi - lo])
        np.matmul(x2, block[:hi - lo].T, out=out[:, lo:hi])
    if isinstance(weight, Int8Matrix):
        out *= weight.row_scales()  # int8 codes were widened as integers: apply the row scales once
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


def bloom_gelu(x: np.ndarray) -> np.ndarray:
    """GELU alone, for training's forward, which keeps the pre-GELU values: the fused kernel with a
    zero bias (v + 0 is v) on a copy."""
    y = np.array(x, np.float32, copy=True).reshape(-1, x.shape[-1])  # [R, F]
    _bias_gelu(y, np.zeros(y.shape[1], np.float32))
    return y.reshape(x.shape)


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
    # subtle: NumPy's stacked matmul with a transposed *view* as its right operand ran 5x slower than
    # with a contiguous copy (its per-slice loop skips BLAS); the copy of k^T costs N * S * D floats,
    # so it is made when several query rows share it (prefill, training), not for decode's one.
    k_t = k.transpose(0, 1, 3, 2) if q.shape[2] == 1 else np.ascontiguousarray(k.transpose(0, 1, 3, 2))  # [B, N, D, S]
    scores = np.ascontiguousarray(q @ k_t, np.float32)  # [B, N, T, S], BLAS
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
    raw = _codes(table)  # the stored bits: float32, uint16 (bfloat16), int16 (float16) or int8 codes
    rows = np.empty((flat.size, table.shape[1]), raw.dtype)
    bad = _gather(raw, flat, rows)
    if bad >= 0:
        raise InputError(f"input_ids (flat position {bad}) = {flat[bad]} is outside the vocabulary [0, {table.shape[0]})")
    if isinstance(table, Int8Matrix):
        rows = rows.astype(np.float32) * table.row_scales()[flat][:, None]  # each row with its own scale
    elif table.dtype != np.float32:
        rows = to_float32(rows.view(table.dtype))
    return rows.reshape(*ids.shape, table.shape[1])


from . import numba_vnni  # noqa: E402  (it imports this module's GEMV_ROWS, PARALLEL and prefetch)
