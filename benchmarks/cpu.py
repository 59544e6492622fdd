"""minibloom's NumPy and Numba backends against transformers on the CPU: prefill, decode, memory.

    python benchmarks/cpu.py                    # bloom-560m shapes (needs ~6 GB of disk in --workdir)
    python benchmarks/cpu.py --n-layer 4        # a quick run

One process times everything on the same random weights, with the same thread count:
- prefill: BloomModel on B=1 and B=4 sequences of T=128 tokens (median of --repeats runs);
- decode: BloomForCausalLM, ms per new token with the KV cache after a 128-token prompt, for the
  weights stored as float32, float16 and bfloat16 (Numba backend; compute is float32 throughout);
- memory bandwidth, measured right beside each timing (it swings from minute to minute on shared
  machines), by a streaming-read probe: a Numba sum over 1 GiB on the same threads as the kernels,
  alternated with the timed kernel round by round; the floor of a timing is the bytes it must
  read / that bandwidth (decode reads every weight matrix once per token);
- the decode kernels alone (`--kernels`): the matrix-vector product of an LM-head-sized matrix
  [250880, 1024] in every storage at batch 1, 4 and 8, and 24 layers' matrices, each as a ratio to
  its floor (target: <= 1.05 for float32, bfloat16 and float16; <= 1.1 for int8); `--threads 2`
  for the same on two threads; and each kernel's rate on an 8 MB matrix that stays in cache, its
  compute ceiling: a kernel whose in-cache GB/s is not well above the probe's cannot reach its floor;
- peak RSS, each configuration loading its checkpoint in a fresh subprocess, next to the bytes
  of its weights.

Checkpoints are written once per storage dtype under --workdir with minibloom's save_pretrained
(transformers loads the float32 one). Needs the `reference` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

import numba
import numpy as np
from common import add_model_args, bloom_sizes, median_seconds

STORAGES = ("float32", "float16", "bfloat16")
PROBE_BYTES = 1 << 30


@numba.njit(parallel=True, fastmath=True, cache=True)
def _stream_sum(a):
    """Sum of a [R, C] float32, rows split over the threads: a pure streaming read (vectorised)."""
    parts = np.zeros(a.shape[0], np.float32)
    for r in numba.prange(a.shape[0]):
        total = np.float32(0.0)
        for c in range(a.shape[1]):
            total += a[r, c]
        parts[r] = total
    return parts.sum()


class Probe:
    """The streaming-read probe: GB/s of `_stream_sum` over 1 GiB, on minibloom's thread count."""

    def __init__(self):
        self.data = np.ones((PROBE_BYTES // 4 // 16384, 16384), np.float32)
        self()

    def __call__(self) -> float:
        from minibloom.threads import numba_threads

        numba_threads()
        start = time.perf_counter()
        _stream_sum(self.data)
        return self.data.nbytes / (time.perf_counter() - start) / 1e9


def ratio_to_floor(fn, nbytes: int, probe: Probe, rounds: int = 7) -> tuple[float, float, float]:
    """(seconds, probe GB/s, ratio to the floor) for `fn`, which reads `nbytes`: probe and `fn`
    alternate for `rounds` rounds, each round giving a ratio; the median round is reported, so a
    minute of heavy neighbours moves both sides of it."""
    fn()
    rows = []
    for _ in range(rounds):
        gbs = probe()
        start = time.perf_counter()
        fn()
        t = time.perf_counter() - start
        rows.append((t / (nbytes / (gbs * 1e9)), t, gbs))
    ratio, t, gbs = sorted(rows)[len(rows) // 2]
    return t, gbs, ratio


def bandwidth_gbs(probe: Probe) -> float:
    """The probe's GB/s, median of 3."""
    return sorted(probe() for _ in range(3))[1]


IN_CACHE_BYTES = 8 << 20  # a matrix this size stays in the last-level cache (32 MB here), and a call is long enough
# (~0.3-3 ms) that the call overhead (~20 us) does not count


def in_cache_gbs(product, matrix, seconds: float = 0.2) -> float:
    """GB/s of `product` on a weight matrix small enough to stay in cache, called over and over:
    the kernel's arithmetic rate with (almost) no memory traffic. If this is not well above the
    probe's GB/s, no memory layout can bring that kernel to its floor on this core."""
    product()
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        product()
        reps += 1
    return weight_bytes(matrix) * reps / (time.perf_counter() - start) / 1e9


def kernels(args) -> None:
    """The decode kernels alone, each storage against its floor, at batch 1, 4 and 8; and each
    kernel's in-cache rate (its compute ceiling) beside the probe."""
    from minibloom.backends import numba_backend
    from minibloom.storage import from_float32, STORAGE_DTYPES

    rng = np.random.default_rng(0)
    probe = Probe()
    print(f"decode kernels, {numba_backend.numba_threads()} thread(s) (probe: Numba sum over 1 GiB, same "
          "threads, alternated with each kernel; ratio = time / (bytes / probe's GB/s), median of 7 rounds)")
    head = rng.standard_normal((250880, 1024), dtype=np.float32) * 0.02  # [V, H] the LM head, 1.03 GB in float32
    layer_shapes = [(3072, 1024), (1024, 1024), (4096, 1024), (1024, 4096)] * 24  # bloom-560m's layers
    for storage in [s for s in args.storages]:
        dtype = STORAGE_DTYPES[storage]
        matrix = from_float32(head, dtype)
        layers = [from_float32(rng.standard_normal(shape, dtype=np.float32) * 0.02, dtype) for shape in layer_shapes]
        layer_bytes = sum(weight_bytes(w) for w in layers)
        small = from_float32(head[:IN_CACHE_BYTES // (1024 * np.dtype(dtype).itemsize)], dtype)  # [rows, 1024]
        for batch in args.batches:
            x = rng.standard_normal((batch, 1024), dtype=np.float32)
            t, gbs, ratio = ratio_to_floor(lambda: numba_backend.gemv(x, matrix), weight_bytes(matrix), probe)
            xs = {w.shape[1]: rng.standard_normal((batch, w.shape[1]), dtype=np.float32) for w in layers}
            tl, gbs_l, ratio_l = ratio_to_floor(lambda: [numba_backend.gemv(xs[w.shape[1]], w) for w in layers],
                                                layer_bytes, probe)
            cached = in_cache_gbs(lambda: numba_backend.gemv(x, small), small)
            line = (f"  {storage:9} B={batch}: LM head {weight_bytes(matrix) / 1e9:.2f} GB {t * 1e3:6.1f} ms -> {ratio:.2f}x "
                    f"floor (probe {gbs:.1f} GB/s);  96 layer matrices {layer_bytes / 1e9:.2f} GB {tl * 1e3:6.1f} ms "
                    f"-> {ratio_l:.2f}x (probe {gbs_l:.1f} GB/s);  in cache {cached:.1f} GB/s")
            if storage == "float32":
                blas = ratio_to_floor(lambda: x @ matrix.T, matrix.nbytes, probe)
                line += f";  NumPy BLAS LM head {blas[2]:.2f}x"
            print(line, flush=True)
        del matrix, layers


def weight_bytes(matrix: np.ndarray) -> int:
    """Bytes a product with `matrix` reads: its codes, plus an int8 matrix's row scales."""
    absmax = getattr(matrix, "absmax", None)
    return matrix.nbytes + (absmax.nbytes if absmax is not None else 0)


def matrix_bytes(model) -> int:
    """Bytes decoding reads per token: every weight matrix once (vectors are negligible)."""
    return sum(weight_bytes(p) for p in model.params.values() if p.ndim == 2)


def decode_seconds(model, prompt: np.ndarray, steps: int, cache_cls) -> float:
    cache = cache_cls.for_config(model.config, 1, prompt.shape[1] + steps + 2)
    model(prompt, past_key_values=cache)
    token = prompt[:, -1:]
    return median_seconds(lambda: model(token, past_key_values=cache), steps)  # one warm-up step, then the median


def rss_child(directory: str, backend: str, storage: str) -> None:
    """Load, then generate 4 tokens after a 128-token prompt: print peak RSS and weight bytes (JSON)."""
    from minibloom import BloomForCausalLM

    if backend == "torch":
        import torch
        import transformers

        model = transformers.BloomForCausalLM.from_pretrained(directory, dtype=torch.float32)
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        with torch.no_grad():
            model.generate(torch.arange(128)[None] % 1000, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    else:
        warnings.simplefilter("ignore")
        model = BloomForCausalLM.from_pretrained(directory, backend=backend, storage=storage)
        weights = sum(weight_bytes(p) for p in model.params.values())
        model.generate(np.arange(128)[None] % 1000, max_new_tokens=4, progress=False)
    print(json.dumps({"peak_rss": peak_rss_bytes(), "weights": weights}))


def peak_rss_bytes() -> int:
    """This process's peak resident set (VmHWM). Not getrusage's ru_maxrss: on Linux that keeps
    the high-water mark of the parent that forked us across exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def compile_times() -> tuple[float, float]:
    """Seconds of the Numba backend's first forward in a new process: with an empty JIT cache
    (compiling every kernel), then again in a second process (loading them from that cache)."""
    code = ("import time, numpy as np; from minibloom import BloomConfig, BloomForCausalLM; "
            "m = BloomForCausalLM(BloomConfig(vocab_size=64, hidden_size=32, n_head=4, n_layer=1), "
            "backend='numba', storage='bfloat16'); ids = np.array([[1, 2, 3]]); t = time.perf_counter(); "
            "m.generate(ids, max_new_tokens=2, progress=False); m.generate(np.ones((12, 12), int), max_new_tokens=2,"
            " progress=False); print(time.perf_counter() - t)")
    import tempfile

    with tempfile.TemporaryDirectory() as cache_dir:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
        runs = [float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                     check=True).stdout.split()[-1]) for _ in range(2)]
    return runs[0], runs[1]


def peak_rss(directory: str, backend: str, storage: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--rss-child", directory, backend, storage],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_model_args(parser)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="timed decode steps")
    parser.add_argument("--workdir", default="/tmp/minibloom-bench")
    parser.add_argument("--threads", type=int, default=None, help="minibloom's threads (default: its default)")
    parser.add_argument("--kernels", action="store_true", help="only the decode kernels against their floor")
    parser.add_argument("--storages", nargs="+", default=["float32", "bfloat16", "float16", "int8"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4, 8], help="--kernels: input rows")
    parser.add_argument("--rss-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        return rss_child(*args.rss_child)
    import minibloom

    minibloom.set_num_threads(args.threads or minibloom.get_num_threads())
    if args.kernels:
        return kernels(args)

    import torch
    import transformers

    from minibloom import BloomConfig, BloomForCausalLM, KVCache

    sizes = bloom_sizes(args)
    config = BloomConfig(**sizes)
    dirs = {s: os.path.join(args.workdir, f"{args.like}-{config.n_layer}l-{s}") for s in STORAGES}
    if not all(os.path.exists(os.path.join(d, "config.json")) for d in dirs.values()):
        print("writing random checkpoints ...", flush=True)
        source = BloomForCausalLM(config, seed=0)
        for storage, directory in dirs.items():
            source.save_pretrained(directory, dtype=storage)
        del source

    start = time.perf_counter()
    models = {("numpy", "float32"): BloomForCausalLM.from_pretrained(dirs["float32"], backend="numpy")}
    load_s = time.perf_counter() - start
    for storage in STORAGES:
        models[("numba", storage)] = BloomForCausalLM.from_pretrained(dirs[storage], backend="numba", storage=storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "converting the float32 weights to int8": on purpose
        models[("numba", "int8")] = BloomForCausalLM.from_pretrained(dirs["float32"], backend="numba", storage="int8")
    start = time.perf_counter()
    models[("numba", "float32")](np.array([[1, 2]]))  # first call: compile, or load the on-disk cache
    compile_s = time.perf_counter() - start
    theirs = transformers.BloomForCausalLM.from_pretrained(dirs["float32"], dtype=torch.float32).eval()
    threads = torch.get_num_threads()
    print(f"{args.like} shapes, {config.n_layer} layers, vocab {config.vocab_size}; torch {torch.__version__} "
          f"({threads} threads), numpy {np.__version__}, {os.cpu_count()} CPUs; minibloom load (mmap) "
          f"{load_s:.2f} s; Numba first call {compile_s:.2f} s")

    rng = np.random.default_rng(0)
    print("\nprefill, BloomModel, T=128 (ms; ratio to torch)")
    for B in (1, 4):
        ids = rng.integers(0, config.vocab_size, size=(B, 128))
        row = {}
        for backend in ("numpy", "numba"):
            base = models[(backend, "float32")].transformer
            row[backend] = median_seconds(lambda: base(ids, use_cache=False), args.repeats)
        with torch.no_grad():
            row["torch"] = median_seconds(lambda: theirs.transformer(torch.from_numpy(ids), use_cache=False),
                                          args.repeats)
        print(f"  B={B}: numpy {row['numpy'] * 1e3:7.1f} ({row['numpy'] / row['torch']:.2f})   "
              f"numba {row['numba'] * 1e3:7.1f} ({row['numba'] / row['torch']:.2f})   torch {row['torch'] * 1e3:7.1f}")

    probe = Probe()
    prompt = rng.integers(0, config.vocab_size, size=(1, 128))
    print("\ndecode after 128 tokens (ms/token; ratio to torch; ratio to the bandwidth bound)")

    def torch_decode() -> float:
        with torch.no_grad():
            state = [theirs(torch.from_numpy(prompt), use_cache=True).past_key_values]
            token = torch.from_numpy(prompt[:, -1:])

            def step() -> None:
                state[0] = theirs(token, past_key_values=state[0], use_cache=True).past_key_values

            return median_seconds(step, args.steps)  # one warm-up step, then the median

    # torch last: its OpenMP threads keep spinning a while after each call and would slow ours
    results = []
    for (backend, storage), model in models.items():
        before = bandwidth_gbs(probe)
        t = decode_seconds(model, prompt, args.steps, KVCache)
        bw = (before + bandwidth_gbs(probe)) / 2  # measured on both sides of the timing
        results.append((backend, storage, t, matrix_bytes(model) / (bw * 1e9), bw))
    bw = bandwidth_gbs(probe)
    t_torch = torch_decode()
    print(f"  torch    float32   {t_torch * 1e3:7.1f}  (bandwidth {bw:.1f} GB/s)")
    for backend, storage, t, bound, bw in results:
        print(f"  {backend:8} {storage:9} {t * 1e3:7.1f}  ({t / t_torch:.2f} of torch; bound {bound * 1e3:.1f} ms at "
              f"{bw:.1f} GB/s: {t / bound:.2f}x)")
    del probe

    print("\npeak RSS, load + generate 4 tokens after 128, each in a fresh process")
    for backend, storage in [("torch", "float32"), ("numpy", "float32"), *[("numba", s) for s in STORAGES],
                             ("numba", "int8")]:
        r = peak_rss(dirs.get(storage, dirs["float32"]), backend, storage)  # int8: converted from float32 on load
        print(f"  {backend:8} {storage:9} peak {r['peak_rss'] / 1e9:5.2f} GB, weights {r['weights'] / 1e9:5.2f} GB "
              f"-> {r['peak_rss'] / r['weights']:.2f}x")
    report_compile()


def report_compile() -> None:
    cold, warm = compile_times()
    print(f"\nNumba JIT: first forward of a new process {cold:.2f} s with an empty cache (compiling), "
          f"{warm:.2f} s in the next process (cache=True: loaded from disk)")


if __name__ == "__main__":
    main()
