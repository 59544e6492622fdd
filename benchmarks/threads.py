"""Threads on shared cores: decode and prefill at 1 and all threads, alone and beside a busy process.

    python benchmarks/threads.py [--like bloom-560m --n-layer 4 --storage bfloat16]

Each setting runs in a fresh child process (the threading layers read their environment once, at
load): threads 1 and N (the cores this process may run on), Numba's OpenMP and OpenBLAS threads
spinning after each call (the libraries' defaults) or told to sleep (OMP_WAIT_POLICY=PASSIVE,
OPENBLAS_THREAD_TIMEOUT=4, what `import minibloom` sets unless the user did), alone and with one busy-looping process competing for a core. The
settings are interleaved, round after round, so a noisy machine blurs them all alike; the median
of the rounds is printed, with each setting's ratio to one thread alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
from minibloom import BloomConfig, BloomForCausalLM
sizes, storage, threads = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
lm = BloomForCausalLM(BloomConfig(**sizes), backend="numba", storage=storage, threads=threads)
ids = np.arange(64)[None] % sizes["vocab_size"]
def decode():
    out = lm(ids[:, :8], use_cache=True)
    start = time.perf_counter()
    for t in range(16):
        out = lm(ids[:, t:t + 1], past_key_values=out.past_key_values)
    return (time.perf_counter() - start) / 16
def prefill():
    start = time.perf_counter()
    lm(ids, use_cache=False)
    return time.perf_counter() - start
decode(); prefill()  # compile / warm
print(json.dumps({"decode": min(decode() for _ in range(3)), "prefill": min(prefill() for _ in range(3))}))
"""
SLEEPY = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}  # minibloom's default since issue 24
SPINNY = {"OMP_WAIT_POLICY": "", "OPENBLAS_THREAD_TIMEOUT": ""}  # set but empty: the libraries' own defaults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--like", default="bloom-560m")
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=50000, help="a smaller vocabulary keeps the run short")
    parser.add_argument("--storage", default="bfloat16")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from minibloom.config import BLOOM_FAMILY

    sizes = dict(BLOOM_FAMILY[args.like], vocab_size=args.vocab, n_layer=args.n_layer)
    cores = len(os.sched_getaffinity(0))
    settings = [(threads, wait, busy) for busy in (False, True) for wait in ("spin", "sleep")
                for threads in sorted({1, cores})]
    results = {s: {"decode": [], "prefill": []} for s in settings}
    for _ in range(args.rounds):
        for threads, wait, busy in settings:
            env = {**os.environ, **(SLEEPY if wait == "sleep" else SPINNY)}
            rival = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(sizes), args.storage, str(threads)],
                                     env=env, capture_output=True, text=True, check=True)
            finally:
                if rival is not None:
                    rival.kill()
                    rival.wait()
            for key, value in json.loads(out.stdout.strip().splitlines()[-1]).items():
                results[(threads, wait, busy)][key].append(value)
    print(f"{args.like} shape, {args.n_layer} layers, vocab {args.vocab}, {args.storage}; {cores} cores; "
          f"median of {args.rounds} rounds")
    for busy in (False, True):
        alone = {k: statistics.median(results[(1, "spin", busy)][k]) for k in ("decode", "prefill")}
        for threads, wait, b in settings:
            if b != busy:
                continue
            med = {k: statistics.median(results[(threads, wait, busy)][k]) for k in ("decode", "prefill")}
            print(f"{'busy rival' if busy else 'alone':10s} threads {threads} {wait:5s}: decode "
                  f"{1000 * med['decode']:7.1f} ms/token ({med['decode'] / alone['decode']:.2f}x 1 thread), prefill 64 "
                  f"{1000 * med['prefill']:7.1f} ms ({med['prefill'] / alone['prefill']:.2f}x 1 thread)")


if __name__ == "__main__":
    main()
