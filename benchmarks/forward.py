"""Prefill time of minibloom's NumPy BloomModel against transformers on the same random weights.

    python benchmarks/forward.py                      # bloom-560m shapes, B=1 and B=4, T=128
    python benchmarks/forward.py --n-layer 4 --repeats 5

Both run in this process on the same float32 arrays (torch tensors share NumPy's memory) with the
same thread count. Prints the median time of each and the ratio minibloom / torch. Needs the
`reference` extra.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from common import add_model_args, bloom_sizes, median_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_model_args(parser)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch
    import transformers

    from minibloom import BloomConfig, BloomModel

    sizes = bloom_sizes(args)
    config = BloomConfig(**sizes)
    ours = BloomModel(config, seed=0)
    theirs = transformers.BloomModel(transformers.BloomConfig(**sizes)).eval()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.params.items()})
    threads = torch.get_num_threads()
    print(f"{args.like} shapes, {config.n_layer} layers, T={args.seq_len}, torch {torch.__version__} "
          f"({threads} threads), numpy {np.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print(f"{'batch':>5} {'minibloom ms':>13} {'torch ms':>9} {'ratio':>6}")
    rng = np.random.default_rng(0)
    for B in args.batch:
        ids = rng.integers(0, config.vocab_size, size=(B, args.seq_len))
        t_ours = median_seconds(lambda: ours(ids), args.repeats)
        with torch.no_grad():
            t_torch = median_seconds(lambda: theirs(torch.from_numpy(ids), use_cache=False), args.repeats)
        print(f"{B:>5} {t_ours * 1e3:>13.1f} {t_torch * 1e3:>9.1f} {t_ours / t_torch:>6.2f}")


if __name__ == "__main__":
    main()
