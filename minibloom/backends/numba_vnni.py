"""int8 x int8 decode products through AVX512-VNNI's `vpdpbusd`: the int8 storage's fast, inexact path.

What it computes: LLM.int8()'s product without its outlier columns (`llm_int8.llm_int8_linear` with
`threshold=inf`, the NumPy reference it is tested equal to): each input row is quantised to int8
with its own absmax (`llm_int8.quantize_rows`), the int8 x int8 products are summed exactly in
int32, and the sum is rescaled by the two absmax scales. The exact path (`numba_backend._gemv`)
widens the int8 weights to float32 instead and keeps the activations in float32; which one the
backend uses is `numba_backend.INT8_ACTIVATIONS` (speed and accuracy of both: docs/performance.md).

Why it is faster: one `vpdpbusd` multiplies 64 pairs of bytes and adds them, in groups of four, to
16 int32 sums: one instruction for 64 weights of one input row, where widening needs a load, two
conversions and four 16-wide fused multiply-adds. Decoding is then bound by reading the weights,
also at batch 8.

subtle: `vpdpbusd` multiplies an *unsigned* byte by a signed one. The activations are stored as
x + 128 (in [1, 255]), and the 128 * sum(w) that adds is taken off again: the same instruction with
a vector of ones sums the weight row (`_vnni_dots`' last result).

Geometry: tasks of GEMV_ROWS weight rows (`prange`); per weight row, eight input rows at once
(the row's 64-byte chunks loaded once for all eight) when there are eight, else one at a time; the
last K mod 64 columns in a plain loop. Sums stay exact in int32 for K <= 65536 (255 * 127 * K < 2^31);
`gemv_int8` is used only then, on CPUs whose features include avx512vnni (`available`).
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from llvmlite import binding, ir
from numba import prange
from numba.core import cgutils, types
from numba.extending import intrinsic

from ..llm_int8 import quantize_rows
from .numba_backend import GEMV_ROWS, PARALLEL, PREFETCH_BYTES, _prefetch_row

MAX_K = 65536  # longest row whose sums cannot overflow int32
CHUNK = 64  # bytes per vpdpbusd


@functools.cache
def available() -> bool:
    """Whether the CPU Numba compiles for has AVX512-VNNI (NUMBA_CPU_NAME / NUMBA_CPU_FEATURES respected;
    asked once: LLVM's answer takes ~0.4 ms)."""
    if numba.config.CPU_NAME not in (None, "host"):
        features = numba.config.CPU_FEATURES or ""
    else:
        features = numba.config.CPU_FEATURES or binding.get_host_cpu_features().flatten()
    return "+avx512vnni" in features.split(",")


@intrinsic
def _vnni_dots(typingctx, x8, m0, w, r, chunks, rows):
    """(sum_k x8[m0 + j, k] * w[r, k] for j < rows) + (sum_k w[r, k],) over k < 64 * chunks, in int32:
    `rows` (a constant) input rows of unsigned bytes against one row of signed weights."""
    if not isinstance(rows, types.IntegerLiteral):
        return None
    n = rows.literal_value

    def codegen(context, builder, signature, args):
        i8, i32 = ir.IntType(8), ir.IntType(32)
        v16 = ir.VectorType(i32, 16)  # 64 bytes

        def row_start(array_type, value, row):
            array = context.make_array(array_type)(context, builder, value)
            pointer = cgutils.get_item_pointer2(context, builder, array.data, cgutils.unpack_tuple(builder, array.shape, 2),
                                                cgutils.unpack_tuple(builder, array.strides, 2), array_type.layout,
                                                [row, ir.Constant(row.type, 0)])
            return builder.bitcast(pointer, i8.as_pointer())

        m0_, r_, chunks_ = args[1], args[3], args[4]
        w_row = row_start(signature.args[2], args[2], r_)
        x_rows = [row_start(signature.args[0], args[0], builder.add(m0_, ir.Constant(m0_.type, j))) for j in range(n)]
        dpbusd = cgutils.get_or_insert_function(builder.module, ir.FunctionType(v16, [v16, v16, v16]),
                                                "llvm.x86.avx512.vpdpbusd.512")
        sums = [cgutils.alloca_once_value(builder, ir.Constant(v16, None)) for _ in range(n + 1)]
        ones = ir.Constant(v16, [0x01010101] * 16)
        with cgutils.for_range(builder, chunks_) as loop:
            offset = builder.mul(loop.index, ir.Constant(loop.index.type, CHUNK))

            def load(start):
                return builder.load(builder.bitcast(builder.gep(start, [offset]), v16.as_pointer()), align=1)

            weights = load(w_row)
            for j in range(n):
                builder.store(builder.call(dpbusd, [builder.load(sums[j]), load(x_rows[j]), weights]), sums[j])
            builder.store(builder.call(dpbusd, [builder.load(sums[n]), ones, weights]), sums[n])
        add = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i32, [v16]), "llvm.vector.reduce.add.v16i32")
        return context.make_tuple(builder, signature.return_type, [builder.call(add, [builder.load(s)]) for s in sums])

    return types.UniTuple(types.int32, n + 1)(x8, m0, w, r, chunks, rows), codegen


@numba.njit(inline="always")
def _tail(x8, m, w, r, k0):
    """The columns after the last whole chunk: (sum x8[m, k] * w[r, k], sum w[r, k]) over k >= k0."""
    dot = np.int32(0)
    total = np.int32(0)
    for k in range(k0, w.shape[1]):
        dot += np.int32(x8[m, k]) * np.int32(w[r, k])
        total += np.int32(w[r, k])
    return dot, total


@numba.njit(inline="always")
def _finish(dot, tail, w_sum, x_scale):
    """An exact int32 sum of (x + 128) * w, less 128 * sum(w), scaled back to float32."""
    return np.float32(dot + tail - np.int32(128) * w_sum) * x_scale


@numba.njit(**PARALLEL)
def _gemv_vnni(x8, x_scale, w, out, ahead):
    """out [M, N] = (x8 [M, K] - 128) @ w [N, K]^T * x_scale [M, None]; x8 uint8, w int8 codes (rows contiguous)."""
    M, K = x8.shape
    N = w.shape[0]
    chunks = K // CHUNK
    k0 = chunks * CHUNK
    for task in prange((N + GEMV_ROWS - 1) // GEMV_ROWS):
        for r in range(task * GEMV_ROWS, min(N, task * GEMV_ROWS + GEMV_ROWS)):
            _prefetch_row(w, r + ahead, CHUNK)
            m = 0
            if M == 8:
                d0, d1, d2, d3, d4, d5, d6, d7, s = _vnni_dots(x8, 0, w, r, chunks, 8)
                w_sum = s + _tail(x8, 0, w, r, k0)[1]
                out[0, r] = _finish(d0, _tail(x8, 0, w, r, k0)[0], w_sum, x_scale[0])
                out[1, r] = _finish(d1, _tail(x8, 1, w, r, k0)[0], w_sum, x_scale[1])
                out[2, r] = _finish(d2, _tail(x8, 2, w, r, k0)[0], w_sum, x_scale[2])
                out[3, r] = _finish(d3, _tail(x8, 3, w, r, k0)[0], w_sum, x_scale[3])
                out[4, r] = _finish(d4, _tail(x8, 4, w, r, k0)[0], w_sum, x_scale[4])
                out[5, r] = _finish(d5, _tail(x8, 5, w, r, k0)[0], w_sum, x_scale[5])
                out[6, r] = _finish(d6, _tail(x8, 6, w, r, k0)[0], w_sum, x_scale[6])
                out[7, r] = _finish(d7, _tail(x8, 7, w, r, k0)[0], w_sum, x_scale[7])
                m = 8
            while m < M:
                d0, s = _vnni_dots(x8, m, w, r, chunks, 1)
                tail, tail_sum = _tail(x8, m, w, r, k0)
                out[m, r] = _finish(d0, tail, s + tail_sum, x_scale[m])
                m += 1


def usable(codes: np.ndarray) -> bool:
    """Whether `gemv_int8` can take these int8 codes [N, K]: VNNI present, rows contiguous, K short enough."""
    return codes.shape[1] <= MAX_K and codes.strides[1] == 1 and available()


def gemv_int8(x2: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """x2 [M, K] float32 @ codes [N, K]^T with x2's rows quantised to int8 -> [M, N] float32, *before* the
    weights' row scales (the caller applies them, as for the exact path)."""
    x8, x_scale = quantize_rows(x2)  # [M, K] int8 in [-127, 127], [M] float32
    shifted = (x8.astype(np.int16) + 128).astype(np.uint8)  # [M, K] in [1, 255]: vpdpbusd's unsigned side
    out = np.empty((x2.shape[0], codes.shape[0]), np.float32)
    _gemv_vnni(shifted, x_scale, codes, out, max(1, PREFETCH_BYTES // max(1, codes.shape[1])))
    return out
