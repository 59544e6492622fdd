"""A bfloat16 decode GEMV through AVX512_BF16's `vdpbf16ps`, against the Numba backend's portable kernel.

    python benchmarks/bf16_dpbf16.py            # needs avx512_bf16 in /proc/cpuinfo's flags

A prototype for issue 24, not used by the backend: measured no faster than `_gemv` from memory
on an AMD EPYC and on an Intel Xeon (Emerald Rapids) (docs/performance.md, "bfloat16 GEMV through
vdpbf16ps" and "Machine A"). `vdpbf16ps` multiplies bf16 by bf16, so the float32 activations are split
into two bfloat16 parts, x = hi + lo (16 of float32's 24 significant bits), and each weight pair
goes through two instructions; the intrinsic is reached through `numba.extending.intrinsic` and
LLVM's `llvm.x86.avx512bf16.dpbf16ps.512` (llvmlite has no bfloat type: a small one is declared).
Four accumulators (two 32-weight chunks x hi/lo) hide the instruction's latency. Prints the error
against a float64 product and both kernels' times, interleaved, and their ratio.
"""

import os
import sys
import time

import numba
import numpy as np
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic
from llvmlite import ir
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from minibloom.storage import bfloat16_bits, convert, BF16, to_float32
from minibloom.backends import numba_backend as nb

class _BFloat(ir.Type):
    def _to_string(self):
        return "bfloat"
    def __eq__(self, other):
        return isinstance(other, _BFloat)
    def __hash__(self):
        return hash("bfloat")

V16F = ir.VectorType(ir.FloatType(), 16)
V32BF = ir.VectorType(_BFloat(), 32)
V32I16 = ir.VectorType(ir.IntType(16), 32)

@intrinsic
def _dot_bf16x2(typingctx, xh, xl, w, row, chunks):
    """sum over k < 32*chunks of (xh[k] + xl[k]) * w[row, k], bf16 pairs through vdpbf16ps"""
    def codegen(context, builder, sig, args):
        xh_a = context.make_array(sig.args[0])(context, builder, args[0])
        xl_a = context.make_array(sig.args[1])(context, builder, args[1])
        w_a = context.make_array(sig.args[2])(context, builder, args[2])
        row_v, n = args[3], args[4]
        stride0 = cgutils.unpack_tuple(builder, w_a.strides, 2)[0]
        wbase = builder.gep(builder.bitcast(w_a.data, ir.IntType(8).as_pointer()), [builder.mul(row_v, stride0)])
        wptr = builder.bitcast(wbase, ir.IntType(16).as_pointer())
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(V16F, [V16F, V32BF, V32BF]),
                                            "llvm.x86.avx512bf16.dpbf16ps.512")
        acc_h = cgutils.alloca_once_value(builder, ir.Constant(V16F, None))
        acc_l = cgutils.alloca_once_value(builder, ir.Constant(V16F, None))
        def load(ptr, i):
            p = builder.gep(ptr, [builder.mul(i, ir.Constant(i.type, 32))])
            v = builder.load(builder.bitcast(p, V32I16.as_pointer()), align=2)
            return builder.bitcast(v, V32BF)
        acc_h2 = cgutils.alloca_once_value(builder, ir.Constant(V16F, None))
        acc_l2 = cgutils.alloca_once_value(builder, ir.Constant(V16F, None))
        half = builder.udiv(n, ir.Constant(n.type, 2))
        with cgutils.for_range(builder, half) as loop:
            i = builder.mul(loop.index, ir.Constant(n.type, 2))
            j = builder.add(i, ir.Constant(n.type, 1))
            wv = load(wptr, i)
            wv2 = load(wptr, j)
            builder.store(builder.call(fn, [builder.load(acc_h), load(xh_a.data, i), wv]), acc_h)
            builder.store(builder.call(fn, [builder.load(acc_l), load(xl_a.data, i), wv]), acc_l)
            builder.store(builder.call(fn, [builder.load(acc_h2), load(xh_a.data, j), wv2]), acc_h2)
            builder.store(builder.call(fn, [builder.load(acc_l2), load(xl_a.data, j), wv2]), acc_l2)
        with builder.if_then(builder.icmp_unsigned("!=", builder.mul(half, ir.Constant(n.type, 2)), n)):
            i = builder.sub(n, ir.Constant(n.type, 1))
            wv = load(wptr, i)
            builder.store(builder.call(fn, [builder.load(acc_h), load(xh_a.data, i), wv]), acc_h)
            builder.store(builder.call(fn, [builder.load(acc_l), load(xl_a.data, i), wv]), acc_l)
        total = builder.fadd(builder.fadd(builder.load(acc_h), builder.load(acc_l)), builder.fadd(builder.load(acc_h2), builder.load(acc_l2)))
        s = ir.Constant(ir.FloatType(), 0.0)
        for j in range(16):
            s = builder.fadd(s, builder.extract_element(total, ir.Constant(ir.IntType(32), j)))
        return s
    return types.float32(xh, xl, w, row, chunks), codegen

@numba.njit(parallel=True, fastmath=nb.FAST, nogil=True, error_model="numpy")
def gemv_bf16(x, xh, xl, w, out):
    K = x.shape[1]
    N = w.shape[0]
    chunks = K // 32
    for task in prange((N + 15) // 16):
        for r in range(task * 16, min(N, task * 16 + 16)):
            a = _dot_bf16x2(xh, xl, w, r, chunks)
            for k in range(chunks * 32, K):
                a += x[0, k] * nb._as_float32(w[r, k])
            out[0, r] = a

def split(x):
    hi = bfloat16_bits(x)
    lo = bfloat16_bits(x - (hi.astype(np.uint32) << 16).view(np.float32))
    return hi, lo


def cpu_flags() -> set[str]:
    with open("/proc/cpuinfo") as f:
        return set(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))


if "avx512_bf16" not in cpu_flags():
    sys.exit("this CPU has no avx512_bf16 (flags in /proc/cpuinfo): nothing to measure")
from minibloom.threads import set_num_threads

set_num_threads(1)  # both kernels: the portable one sets this process-wide count before each call
rng = np.random.default_rng(0)
for (N, K) in [(37, 70), (4096, 1024), (16384, 4096)]:
    w32 = rng.standard_normal((N, K)).astype(np.float32) * 0.02
    wb = convert(w32, BF16)
    x = rng.standard_normal((1, K)).astype(np.float32)
    hi, lo = split(x[0])
    out = np.empty((1, N), np.float32)
    gemv_bf16(x, hi, lo, wb.view(np.uint16), out)
    ref = x.astype(np.float64) @ to_float32(wb).astype(np.float64).T
    port = nb.gemv(x, wb)
    print(f"[{N}, {K}] bf16, 1 thread: max error / max |y|: vdpbf16ps", np.abs(out - ref).max() / np.abs(ref).max(), "portable", np.abs(port - ref).max() / np.abs(ref).max())
    tn, to = [], []
    for _ in range(20):
        t = time.perf_counter(); gemv_bf16(x, hi, lo, wb.view(np.uint16), out); tn.append(time.perf_counter() - t)
        t = time.perf_counter(); nb.gemv(x, wb); to.append(time.perf_counter() - t)
    print("  vdpbf16ps %.3f ms, portable %.3f ms: vdpbf16ps takes %.2fx the portable time (%.1f vs %.1f GB/s)" % (min(tn)*1e3, min(to)*1e3, min(tn)/min(to), wb.nbytes/min(tn)/1e9, wb.nbytes/min(to)/1e9))
