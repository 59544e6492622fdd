"""Helpers shared by the benchmark scripts (run them as `python benchmarks/NAME.py`)."""

from __future__ import annotations

import argparse
import statistics
import time


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of `fn()` over `repeats` runs, after one untimed warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--like", default="bloom-560m", help="the released model whose shapes to use")
    parser.add_argument("--n-layer", type=int, help="fewer layers for a quick run")


def bloom_sizes(args: argparse.Namespace) -> dict:
    """BloomConfig keyword arguments for --like / --n-layer (vocab 250880, as the hub models)."""
    from minibloom.config import BLOOM_FAMILY

    sizes = dict(BLOOM_FAMILY[args.like], vocab_size=250880)
    if args.n_layer:
        sizes["n_layer"] = args.n_layer
    return sizes
