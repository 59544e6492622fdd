"""Decode ms/token: minibloom with its KV cache, minibloom without, and transformers with its cache.

    python benchmarks/decode.py                       # bloom-560m shapes, contexts 32, 256, 1024
    python benchmarks/decode.py --n-layer 4 --steps 4 # a quick run

All three run in this process on the same random float32 weights (torch tensors share NumPy's
memory) with the same thread count. For each context length c:

- minibloom, cache:     prefill c tokens into a preallocated KVCache, then time `steps` one-token
                        forwards (what `generate` does per new token);
- minibloom, no cache:  time one full forward over c + 1 tokens (what a token costs without a cache);
- transformers, cache:  the same prefill + one-token steps with its DynamicCache.

The ratio cache / no-cache shows what the cache saves; minibloom / torch compares the two decoders.
With the cache, ms/token should stay nearly flat as c grows: only attention over the cache grows
with c, and at these sizes the weight reads (linear in parameters, not in c) dominate.
Needs the `reference` extra.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from common import add_model_args, bloom_sizes, median_seconds


def per_step_seconds(prefill, step, steps: int) -> float:
    """Median seconds of one decode step after a prefill (the prefill is not timed)."""
    state = prefill()
    return median_seconds(lambda: step(state), steps)  # one warm-up step, then the median of `steps`


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_model_args(parser)
    parser.add_argument("--contexts", type=int, nargs="+", default=[32, 256, 1024])
    parser.add_argument("--steps", type=int, default=8, help="timed decode steps per context")
    parser.add_argument("--no-cache-repeats", type=int, default=1)
    args = parser.parse_args()

    import torch
    import transformers

    from minibloom import BloomConfig, BloomForCausalLM, KVCache

    sizes = bloom_sizes(args)
    config = BloomConfig(**sizes)
    ours = BloomForCausalLM(config, seed=0)
    theirs = transformers.BloomForCausalLM(transformers.BloomConfig(**sizes)).eval()
    theirs.transformer.load_state_dict({k: torch.from_numpy(v) for k, v in ours.params.items()})
    theirs.tie_weights()
    print(f"{args.like} shapes, {config.n_layer} layers, vocab {config.vocab_size}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), numpy {np.__version__}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print(f"{'context':>7} {'cache ms/tok':>12} {'no-cache ms/tok':>15} {'torch ms/tok':>12} "
          f"{'cache/no-cache':>14} {'minibloom/torch':>15}")
    rng = np.random.default_rng(0)
    for c in args.contexts:
        ids = rng.integers(0, config.vocab_size, size=(1, c + args.steps + 2))
        token = ids[:, c:c + 1]

        def our_prefill():
            cache = KVCache.for_config(config, 1, c + args.steps + 2)
            ours(ids[:, :c], past_key_values=cache)
            return cache

        def our_step(cache):
            ours(token, past_key_values=cache)

        def torch_prefill():
            with torch.no_grad():
                return [theirs(torch.from_numpy(ids[:, :c]), use_cache=True).past_key_values]

        def torch_step(state):
            with torch.no_grad():
                state[0] = theirs(torch.from_numpy(token), past_key_values=state[0], use_cache=True).past_key_values

        t_cache = per_step_seconds(our_prefill, our_step, args.steps)
        t_torch = per_step_seconds(torch_prefill, torch_step, args.steps)
        full = ids[:, :c + 1]
        t_full = statistics.median(
            [_timed(lambda: ours(full).logits[:, -1]) for _ in range(args.no_cache_repeats)])
        print(f"{c:>7} {t_cache * 1e3:>12.1f} {t_full * 1e3:>15.1f} {t_torch * 1e3:>12.1f} "
              f"{t_cache / t_full:>14.3f} {t_cache / t_torch:>15.2f}")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
