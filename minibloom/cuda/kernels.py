"""numba.cuda kernels for BLOOM's forward pass, one per op, each equal to a NumPy op.

Template of each kernel's docstring: what it computes (the NumPy op it equals), its launch
geometry and why, then a plain loop a learner can map onto the threads:

    for every (i, j) of the output:  # one CUDA thread each
        ...

Shape legend: B batch, T new tokens, P cached tokens, S = P + T keys, H hidden, N heads,
D head_dim, V vocab, C capacity of the cache.
"""

from __future__ import annotations

import math
import os

from numba import cuda, float32
from numba import int64 as numba_int64

# Numba's simulator runs every CUDA thread as a Python thread, so under it the same kernels are
# launched with small blocks (tests then also cover sizes that are not multiples of the tile).
SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
TILE = 4 if SIMULATOR else 16  # matmul tile: TILE x TILE threads, two TILE x TILE tiles in shared memory
ROW_THREADS = 8 if SIMULATOR else 128  # threads per block of the row-wise kernels (a power of two)
THREADS = 32 if SIMULATOR else 128  # threads per block of the element-wise kernels
GEMV_ROWS = 8  # the most rows (decode batch) the matrix-vector kernel takes; more go to matmul_bias
GEMV_LANES = 8 if SIMULATOR else 32  # threads that share one output column (a warp on a GPU)
GEMV_COLS = 2 if SIMULATOR else 8  # output columns per block


@cuda.jit
def matmul_bias(x, w, bias, has_bias, out):
    """out[M, N] = x[M, K] @ w[N, K]^T (+ bias[N]): `functional.linear`.

    Geometry: a 2-D grid of TILE x TILE blocks over the output, one thread per output element.
    The K axis is walked one tile at a time: each thread loads one element of the x tile and one
    of the w tile into shared memory, the block waits, then each thread adds TILE products from
    shared memory. Every loaded value is used TILE times, which is the point of tiling.

        for m, n:  out[m, n] = sum_k x[m, k] * w[n, k] + bias[n]
    """
    xs = cuda.shared.array((TILE, TILE), float32)
    ws = cuda.shared.array((TILE, TILE), float32)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    n = cuda.blockIdx.x * TILE + tx  # output column
    m = cuda.blockIdx.y * TILE + ty  # output row
    M, K = x.shape
    N = w.shape[0]
    acc = float32(0.0)
    for k0 in range(0, K, TILE):
        # pass 1: load x[m, k0 + tx] and w[block's column ty, k0 + tx] (zeros past the edges)
        xs[ty, tx] = x[m, k0 + tx] if m < M and k0 + tx < K else float32(0.0)
        wn = cuda.blockIdx.x * TILE + ty
        ws[ty, tx] = w[wn, k0 + tx] if wn < N and k0 + tx < K else float32(0.0)
        cuda.syncthreads()
        # pass 2: TILE multiply-adds from shared memory
        for kk in range(TILE):
            acc += xs[ty, kk] * ws[tx, kk]
        cuda.syncthreads()
    if m < M and n < N:
        out[m, n] = acc + (bias[n] if has_bias else float32(0.0))


@cuda.jit
def gemv(x, w, bias, has_bias, out):
    """out[R, N] = x[R, K] @ w[N, K]^T (+ bias[N]) for a few rows R <= GEMV_ROWS: decode's linears.

    Why not matmul_bias: with one row, its TILE x TILE blocks keep one thread row in TILE busy,
    and decode is bound by reading W, not by arithmetic. Here every weight is read exactly once,
    in order, by threads that sit side by side: the kernel streams W at memory bandwidth.

    Geometry: blocks of (GEMV_LANES, GEMV_COLS) threads; the GEMV_LANES threads of one column (a
    warp) read w[n, lane], w[n, lane + LANES], ... -- consecutive threads, consecutive addresses,
    so each warp load is one 128-byte transaction -- and keep R partial sums. Pass 2 adds the
    lanes' partial sums in shared memory (a tree, log2(LANES) steps, all R rows at once).

        for n:  for r < R:  out[r, n] = sum_k x[r, k] * w[n, k] + bias[n]
    """
    partial = cuda.shared.array((GEMV_ROWS, GEMV_COLS, GEMV_LANES), float32)
    acc = cuda.local.array(GEMV_ROWS, float32)
    lane, c = cuda.threadIdx.x, cuda.threadIdx.y
    n = cuda.blockIdx.x * GEMV_COLS + c  # output column
    R, K = x.shape
    for r in range(GEMV_ROWS):
        acc[r] = float32(0.0)
    if n < w.shape[0]:
        # pass 1: this lane's strided part of the K-long dot products, for every row
        for k in range(lane, K, GEMV_LANES):
            wk = w[n, k]
            for r in range(R):
                acc[r] += x[r, k] * wk
    for r in range(GEMV_ROWS):
        partial[r, c, lane] = acc[r]
    cuda.syncthreads()
    # pass 2: tree sum over the lanes (no early return above: every thread reaches each sync)
    stride = GEMV_LANES // 2
    while stride > 0:
        if lane < stride:
            for r in range(R):
                partial[r, c, lane] += partial[r, c, lane + stride]
        cuda.syncthreads()
        stride //= 2
    if lane < R and n < w.shape[0]:  # lane r writes row r
        out[lane, n] = partial[lane, c, 0] + (bias[n] if has_bias else float32(0.0))


@cuda.jit
def layer_norm(x, weight, bias, eps, out):
    """out[r] = (x[r] - mean) / sqrt(var + eps) * weight + bias: `functional.layer_norm`.

    Geometry: one block of ROW_THREADS threads per row. Pass 1: each thread sums a strided part of
    the row, then a tree reduction in shared memory gives the mean; pass 2: the same for the
    squared deviations (the biased variance); pass 3: each thread normalises its part.

        for r:  mean = x[r].mean(); var = ((x[r] - mean)**2).mean(); out[r] = ...
    """
    partial = cuda.shared.array(ROW_THREADS, float32)
    r, t = cuda.blockIdx.x, cuda.threadIdx.x
    F = x.shape[1]
    s = float32(0.0)
    for f in range(t, F, ROW_THREADS):
        s += x[r, f]
    mean = _block_sum(partial, s, t) / F
    s = float32(0.0)
    for f in range(t, F, ROW_THREADS):
        c = x[r, f] - mean
        s += c * c
    var = _block_sum(partial, s, t) / F
    std = math.sqrt(var + eps)
    for f in range(t, F, ROW_THREADS):
        out[r, f] = (x[r, f] - mean) / std * weight[f] + bias[f]


@cuda.jit(device=True, inline="always")
def _block_sum(partial, value, t):
    """Sum of one value per thread across the block (tree reduction in shared memory)."""
    partial[t] = value
    cuda.syncthreads()
    stride = ROW_THREADS // 2
    while stride > 0:
        if t < stride:
            partial[t] += partial[t + stride]
        cuda.syncthreads()
        stride //= 2
    total = partial[0]
    cuda.syncthreads()  # everyone has read partial[0] before it is reused
    return total


@cuda.jit(device=True, inline="always")
def _block_max(partial, value, t):
    partial[t] = value
    cuda.syncthreads()
    stride = ROW_THREADS // 2
    while stride > 0:
        if t < stride:
            partial[t] = max(partial[t], partial[t + stride])
        cuda.syncthreads()
        stride //= 2
    top = partial[0]
    cuda.syncthreads()
    return top


@cuda.jit
def bloom_gelu(x):
    """In place over x [R, F]: x * 0.5 * (1 + tanh(0.79788456 x (1 + 0.044715 x^2))):
    `functional.bloom_gelu`. Geometry: a 1-D grid, one thread per element (no cooperation needed).
    """
    i = cuda.grid(1)
    F = x.shape[1]
    if i < x.shape[0] * F:
        v = x[i // F, i % F]
        inner = float32(0.79788456) * v * (float32(1.0) + float32(0.044715) * v * v)
        x[i // F, i % F] = v * float32(0.5) * (float32(1.0) + math.tanh(inner))


@cuda.jit
def add(a, b, out):
    """out = a + b for [R, F] arrays (the residual adds). One thread per element."""
    i = cuda.grid(1)
    F = a.shape[1]
    if i < a.shape[0] * F:
        out[i // F, i % F] = a[i // F, i % F] + b[i // F, i % F]


@cuda.jit
def gather(table, ids, out, bad):
    """out[i] = table[ids[i]] (embedding lookup). One block per id, threads over H. An id outside
    the table is not read: its index goes to bad[0] and the row is left as it is."""
    i, t = cuda.blockIdx.x, cuda.threadIdx.x
    token = ids[i]
    if token < 0 or token >= table.shape[0]:
        if t == 0:
            bad[0] = i
        return
    for h in range(t, table.shape[1], cuda.blockDim.x):
        out[i, h] = table[token, h]


@cuda.jit
def alibi_and_mask(mask, slopes, T, P, alibi, mask_bias):
    """ALiBi bias [B, N, S] and the causal + padding additive mask [B, T, S] from mask [B, S]:
    `alibi.alibi_bias` and `masking.causal_padding_bias` (float32's min where masked).

    Geometry: one thread per batch row b (the positions are a running sum along the row, a
    sequential scan; S is at most a few thousand).

        pos = (cumsum(mask[b]) - 1) * mask[b];  alibi[b, n, s] = slopes[n] * pos[s]
        mask_bias[b, t, s] = min if (s > P + t or mask[b, s] == 0) else 0
    """
    b = cuda.grid(1)
    if b >= mask.shape[0]:
        return
    S = mask.shape[1]
    running = 0
    for s in range(S):
        running += mask[b, s]
        pos = float32((running - 1) * mask[b, s])
        for n in range(slopes.shape[0]):
            alibi[b, n, s] = slopes[n] * pos
        for t in range(T):
            masked = s > P + t or mask[b, s] == 0
            mask_bias[b, t, s] = float32(-3.4028234663852886e38) if masked else float32(0.0)


@cuda.jit
def split_qkv(fused, n_head, P, q, k_cache, v_cache):
    """fused [B, T, 3H] -> q [B, N, T, D], and k, v written into the caches [B, N, C, D] at
    positions P..P+T-1: `attention.split_heads` + `KVCache.update` (q, k, v interleaved per head).

    Geometry: one thread per element of q (b, n, t, d); it moves the three values of that slot.
    """
    i = cuda.grid(1)
    B, N, T, D = q.shape
    if i >= B * N * T * D:
        return
    d = i % D
    t = (i // D) % T
    n = (i // (D * T)) % N
    b = i // (D * T * N)
    base = n * 3 * D + d
    q[b, n, t, d] = fused[b, t, base]
    k_cache[b, n, P + t, d] = fused[b, t, base + D]
    v_cache[b, n, P + t, d] = fused[b, t, base + 2 * D]


@cuda.jit
def scores(q, k_cache, alibi, mask_bias, inv_norm, out):
    """out [B, N, T, S] = alibi + inv_norm * q @ k^T, then + mask: `attention.attention_scores`.

    Geometry: one thread per score (b*n, t, s), a D-long dot product each (D = 64 in BLOOM).
    """
    i = cuda.grid(1)
    B, N, T, S = out.shape
    if i >= B * N * T * S:
        return
    s = i % S
    t = (i // S) % T
    n = (i // (S * T)) % N
    b = i // (S * T * N)
    acc = float32(0.0)
    for d in range(q.shape[3]):
        acc += q[b, n, t, d] * k_cache[b, n, s, d]
    out[b, n, t, s] = (alibi[b, n, s] + inv_norm * acc) + mask_bias[b, t, s]


@cuda.jit
def softmax_rows(x):
    """In place softmax over the last axis of x [B, N, T, S]: `functional.softmax`.

    Geometry: one block of ROW_THREADS threads per row (b, n, t). Pass 1: the row max (block
    reduction); pass 2: exponentiate the shifted values and sum them; pass 3: divide.
    """
    partial = cuda.shared.array(ROW_THREADS, float32)
    row, t = cuda.blockIdx.x, cuda.threadIdx.x
    B, N, T, S = x.shape
    b, n, q = row // (N * T), (row // T) % N, row % T
    top = float32(-math.inf)
    for s in range(t, S, ROW_THREADS):
        top = max(top, x[b, n, q, s])
    top = _block_max(partial, top, t)
    total = float32(0.0)
    for s in range(t, S, ROW_THREADS):
        e = math.exp(x[b, n, q, s] - top)
        x[b, n, q, s] = e
        total += e
    total = _block_sum(partial, total, t)
    for s in range(t, S, ROW_THREADS):
        x[b, n, q, s] = x[b, n, q, s] / total


@cuda.jit
def context(probs, v_cache, out):
    """out [B, T, H] = merge_heads(probs @ v): `attention.merge_heads(ops.context(probs, v))`.

    Geometry: one thread per output element (b, t, n*D + d), an S-long dot product each; writing
    straight into the merged [B, T, H] layout saves the transpose.
    """
    i = cuda.grid(1)
    B, N, T, S = probs.shape
    D = v_cache.shape[3]
    if i >= B * T * N * D:
        return
    h = i % (N * D)
    t = (i // (N * D)) % T
    b = i // (N * D * T)
    n, d = h // D, h % D
    acc = float32(0.0)
    for s in range(S):
        acc += probs[b, n, t, s] * v_cache[b, n, s, d]
    out[b, t, h] = acc


@cuda.jit
def argmax_rows(x, out):
    """out[r] = argmax(x[r]) for x [R, V] (the lowest index on ties, as NumPy). One block per row:
    each thread scans a strided part, then thread 0 combines the ROW_THREADS candidates."""
    best_v = cuda.shared.array(ROW_THREADS, float32)
    best_i = cuda.shared.array(ROW_THREADS, dtype=numba_int64)
    r, t = cuda.blockIdx.x, cuda.threadIdx.x
    v, idx = float32(-math.inf), -1
    for j in range(t, x.shape[1], ROW_THREADS):
        if x[r, j] > v or idx < 0:
            v, idx = x[r, j], j
    best_v[t], best_i[t] = v, idx
    cuda.syncthreads()
    if t == 0:
        bv, bi = best_v[0], best_i[0]
        for k in range(1, ROW_THREADS):
            if best_i[k] >= 0 and (best_v[k] > bv or (best_v[k] == bv and best_i[k] < bi) or bi < 0):
                bv, bi = best_v[k], best_i[k]
        out[r] = bi


def signatures() -> dict[str, tuple]:
    """The argument types each kernel is launched with (for ahead-of-time PTX compilation)."""
    from numba import boolean, int64

    f1, f2, f3, f4 = float32[:], float32[:, :], float32[:, :, :], float32[:, :, :, :]
    return {
        "matmul_bias": (f2, f2, f1, boolean, f2),
        "gemv": (f2, f2, f1, boolean, f2),
        "layer_norm": (float32[:, :], f1, f1, float32, f2),
        "bloom_gelu": (f2,),
        "add": (f2, f2, f2),
        "gather": (f2, int64[:], f2, int64[:]),
        "alibi_and_mask": (int64[:, :], f1, int64, int64, f3, f3),
        "split_qkv": (f3, int64, int64, f4, f4, f4),
        "scores": (f4, f4, f3, f3, float32, f4),
        "softmax_rows": (f4,),
        "context": (f4, f4, f3),
        "argmax_rows": (f2, int64[:]),
    }
