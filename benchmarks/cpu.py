"""minibloom's NumPy and Numba backends against transformers on the CPU: prefill, decode, memory.

    python benchmarks/cpu.py                    # bloom-560m shapes (needs ~6 GB of disk in --workdir)
    python benchmarks/cpu.py --n-layer 4        # a quick run

One process times everything on the same random weights, with the same thread count:
- prefill: BloomModel on B=1 and B=4 sequences of T=128 tokens (median of --repeats runs);
- decode: BloomForCausalLM, ms per new token with the KV cache after a 128-token prompt, for the
  weights stored as float32, float16 and bfloat16 (Numba backend; compute is float32 throughout);
- memory bandwidth, measured right beside each decode timing (it swings from minute to minute on
  shared machines), as the read speed of a BLAS matrix-vector product over a 512 MB matrix -- the
  fastest stream of reads we can make -- and the resulting lower bound on decode ms/token
  (the bytes of every weight matrix, which decoding must read once per token, / bandwidth);
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

import numpy as np
from common import add_model_args, bloom_sizes, median_seconds

STORAGES = ("float32", "float16", "bfloat16")


def bandwidth_gbs(matrix: np.ndarray, vector: np.ndarray) -> float:
    """GB/s of a BLAS GEMV over `matrix` (best of 3): how fast this machine streams weights now."""
    vector @ matrix.T  # warm-up
    times = []
    for _ in range(3):
        start = time.perf_counter()
        vector @ matrix.T
        times.append(time.perf_counter() - start)
    return matrix.nbytes / min(times) / 1e9


def matrix_bytes(model) -> int:
    """Bytes decoding reads per token: every weight matrix once (vectors are negligible)."""
    return sum(p.nbytes for p in model.params.values() if p.ndim == 2)


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
        model = BloomForCausalLM.from_pretrained(directory, backend=backend, storage=storage)
        weights = sum(p.nbytes for p in model.params.values())
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
    parser.add_argument("--rss-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        return rss_child(*args.rss_child)

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

    probe = rng.standard_normal((128 * 1024, 1024), dtype=np.float32)  # 512 MB
    probe_x = rng.standard_normal((1, 1024), dtype=np.float32)
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
        before = bandwidth_gbs(probe, probe_x)
        t = decode_seconds(model, prompt, args.steps, KVCache)
        bw = (before + bandwidth_gbs(probe, probe_x)) / 2  # measured on both sides of the timing
        results.append((backend, storage, t, matrix_bytes(model) / (bw * 1e9), bw))
    bw = bandwidth_gbs(probe, probe_x)
    t_torch = torch_decode()
    print(f"  torch    float32   {t_torch * 1e3:7.1f}  (bandwidth {bw:.1f} GB/s)")
    for backend, storage, t, bound, bw in results:
        print(f"  {backend:8} {storage:9} {t * 1e3:7.1f}  ({t / t_torch:.2f} of torch; bound {bound * 1e3:.1f} ms at "
              f"{bw:.1f} GB/s: {t / bound:.2f}x)")
    del probe

    print("\npeak RSS, load + generate 4 tokens after 128, each in a fresh process")
    for backend, storage in [("torch", "float32"), ("numpy", "float32"), *[("numba", s) for s in STORAGES]]:
        r = peak_rss(dirs[storage], backend, storage)
        print(f"  {backend:8} {storage:9} peak {r['peak_rss'] / 1e9:5.2f} GB, weights {r['weights'] / 1e9:5.2f} GB "
              f"-> {r['peak_rss'] / r['weights']:.2f}x")
    report_compile()


def report_compile() -> None:
    cold, warm = compile_times()
    print(f"\nNumba JIT: first forward of a new process {cold:.2f} s with an empty cache (compiling), "
          f"{warm:.2f} s in the next process (cache=True: loaded from disk)")


if __name__ == "__main__":
    main()
