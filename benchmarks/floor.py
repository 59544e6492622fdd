"""Decode against the streaming-read floor: every storage, batch 1 and 8, the same bytes, the same threads.

    python benchmarks/floor.py                       # bloom-560m widths, 6 layers (issue 24's shape)
    python benchmarks/floor.py --n-layer 2 --rounds 3 --storages bfloat16

The rule: memory-bound work is judged against a plain streaming read of the same bytes, not
against another library. For each storage (float32, float16, bfloat16, int8) one model is built
on the same random weights, and for each batch B:

- decode: one step of B new tokens with the KV cache after a 16-token prompt (ms per step);
- kernels: the decode's matrix-vector products alone (`numba_backend.gemv` on every weight matrix
  once, B input rows), i.e. decode minus attention, layer norms and Python;
- int8+vnni: int8 storage with the activations quantised too, through VNNI (`numba_vnni`);
- probe: a parallel sum over *the same weight arrays* (their bytes read as uint32 words, four rows
  at a time, rows split over the same threads as the kernels): the floor of a step is the time of that read.

Probe and timed step alternate round by round (`--rounds`), each round giving a ratio; the median
and the range are printed, so a minute of busy neighbours moves both sides. Target (issue 24):
decode <= 1.1x the floor at batch 1, <= 1.5x at batch 8. No peer library is needed.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numba
import numpy as np
from common import add_model_args, bloom_sizes

PROBE_ROWS = 16  # rows per parallel task, as `_gemv`'s GEMV_ROWS


@numba.njit(parallel=True, cache=True, nogil=True)
def _stream_words(words, out):
    """out[task] = sum of words[rows of task] (uint32, wrapping): a plain streaming read of a matrix's
    bytes, four rows at a time (four streams: 5-14 % faster than one row at a time, measured on 1 and
    2 threads; the floor must be the fastest plain read, or the kernels look better than they are)."""
    N, W = words.shape
    for task in numba.prange((N + PROBE_ROWS - 1) // PROBE_ROWS):
        t0 = t1 = t2 = t3 = np.uint32(0)
        r, hi = task * PROBE_ROWS, min(N, task * PROBE_ROWS + PROBE_ROWS)
        while r + 4 <= hi:
            for k in range(W):
                t0 += words[r, k]
                t1 += words[r + 1, k]
                t2 += words[r + 2, k]
                t3 += words[r + 3, k]
            r += 4
        for rest in range(r, hi):
            for k in range(W):
                t0 += words[rest, k]
        out[task] = t0 + t1 + t2 + t3


def as_words(matrix: np.ndarray) -> np.ndarray:
    """A weight matrix's bytes as uint32 words [N, bytes per row / 4] (no copy)."""
    raw = matrix.view(np.ndarray) if isinstance(matrix, np.ndarray) else np.asarray(matrix)
    return raw.view(np.uint8).reshape(raw.shape[0], -1).view(np.uint32)


def weight_matrices(model) -> list[np.ndarray]:
    """The distinct weight matrices a decode step reads (tied embeddings once), in model order."""
    seen, out = set(), []
    for name, p in model.params.items():
        if p.ndim == 2 and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def weight_bytes(matrix: np.ndarray) -> int:
    absmax = getattr(matrix, "absmax", None)
    return matrix.nbytes + (absmax.nbytes if absmax is not None else 0)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(fn, floor_fn, rounds: int) -> list[tuple[float, float]]:
    """[(seconds of fn, seconds of floor_fn)] per round, the two taking turns (after a warm-up of each)."""
    fn(), floor_fn()
    return [(timed(fn), timed(floor_fn)) for _ in range(rounds)]


def summary(rows: list[tuple[float, float]], nbytes: int) -> str:
    ratios = sorted(t / f for t, f in rows)
    ms = sorted(t for t, _ in rows)
    floor = sorted(f for _, f in rows)
    mid = len(rows) // 2
    return (f"{ms[mid] * 1e3:7.2f} ms  floor {floor[mid] * 1e3:6.2f} ms ({nbytes / floor[mid] / 1e9:5.1f} GB/s)  "
            f"-> {ratios[mid]:.2f}x (range {ratios[0]:.2f}-{ratios[-1]:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_model_args(parser)
    parser.set_defaults(n_layer=6)
    parser.add_argument("--storages", nargs="+", default=["float32", "float16", "bfloat16", "int8", "int8+vnni"],
                        help="int8+vnni: int8 weights with activations quantised to int8 (numba_vnni)")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="default: minibloom's default")
    parser.add_argument("--prompt", type=int, default=16)
    args = parser.parse_args()

    import minibloom
    from minibloom import BloomConfig, BloomForCausalLM, KVCache
    from minibloom.backends import numba_backend

    minibloom.set_num_threads(args.threads or minibloom.get_num_threads())
    config = BloomConfig(**bloom_sizes(args))
    base = BloomForCausalLM(config, seed=0, backend="numba", storage="float32").params
    print(f"{args.like} widths, {config.n_layer} layers, vocab {config.vocab_size}; "
          f"{minibloom.get_num_threads()} thread(s); numba {numba.__version__}, numpy {np.__version__}; "
          f"{cpu_name()}; load {os.getloadavg()[0]:.1f}")
    rng = np.random.default_rng(0)
    for storage in args.storages:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "converting ... to int8": on purpose
            model = BloomForCausalLM(config, dict(base), backend="numba", storage=storage.split("+")[0])
        numba_backend.INT8_ACTIVATIONS = "int8" if storage.endswith("+vnni") else "float32"
        mats = weight_matrices(model)
        nbytes = sum(weight_bytes(m) for m in mats)
        words = [as_words(m) for m in mats]
        sinks = [np.empty((w.shape[0] + PROBE_ROWS - 1) // PROBE_ROWS, np.uint32) for w in words]

        def probe():
            numba_backend.numba_threads()
            for w, s in zip(words, sinks):
                _stream_words(w, s)

        for B in args.batches:
            ids = rng.integers(0, config.vocab_size, size=(B, args.prompt + 1))
            cache = KVCache.for_config(config, B, args.prompt + args.rounds + 4)
            model(ids[:, :args.prompt], past_key_values=cache)
            token = ids[:, -1:]

            def step():
                model(token, past_key_values=cache, logits_to_keep=1)

            xs = {m.shape[1]: rng.standard_normal((B, m.shape[1]), dtype=np.float32) for m in mats}

            def kernels():
                for m in mats:
                    numba_backend.gemv(xs[m.shape[1]], m)

            dec = alternate(step, probe, args.rounds)
            ker = alternate(kernels, probe, args.rounds)
            print(f"{storage:9} B={B}  {nbytes / 1e9:.3f} GB  decode {summary(dec, nbytes)}", flush=True)
            print(f"{'':9} B={B}  {'':8}  gemvs  {summary(ker, nbytes)}", flush=True)
        del model, mats, words


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            info = dict((k.strip(), v) for k, v in (line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line))
        return (f"{info['model name'].strip()} (family {info['cpu family'].strip()} model {info['model'].strip()}, "
                f"{len(os.sched_getaffinity(0))} CPUs)")
    except (OSError, KeyError):
        return "unknown CPU"


if __name__ == "__main__":
    main()
