"""How long a golden dump of a big checkpoint takes, against a streaming read of the same bytes.

    python benchmarks/golden_dump.py [--layers 26]

Writes a bfloat16 checkpoint with bloom-560m's layer shapes (hidden 1024, 16 heads; vocab 512) of
~0.65 GB, then in the same run, each from a cold page cache (posix_fadvise DONTNEED):
  probe: read every byte of model.safetensors in 16 MB chunks (the disk/page-cache bandwidth);
  dump:  `golden.dump` of BloomForCausalLM loaded with the checkpoint's storage (memory-mapped) on
         3 tokens, which reads each layer's weights once.
It prints both throughputs, their ratio, and what they mean for bloom-7b1 (14.1 GB in bf16) and
bloom-176b (352 GB): a short-input dump reads every weight once, so its time is the bytes over the
dump's throughput (the matmuls on a few tokens are small next to widening bf16 weights to float32).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from minibloom import BloomForCausalLM, golden  # noqa: E402
from tests.test_golden_streaming import CONFIG, write_bf16_checkpoint  # noqa: E402

SIZES = {"bloom-7b1": 7.07e9 * 2, "bloom-176b": 176.2e9 * 2}  # parameters x 2 bytes (bf16 / fp16 on the hub)


def drop_cache(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=CONFIG["n_layer"])
    parser.add_argument("--backend", default="numba", choices=("numpy", "numba"))
    args = parser.parse_args()
    CONFIG["n_layer"] = args.layers
    with tempfile.TemporaryDirectory() as d:
        size = write_bf16_checkpoint(d)
        path = os.path.join(d, "model.safetensors")
        drop_cache(path)
        start = time.perf_counter()
        with open(path, "rb", buffering=0) as f:
            while f.read(16 << 20):
                pass
        probe = time.perf_counter() - start
        drop_cache(path)
        start = time.perf_counter()
        model = BloomForCausalLM.from_pretrained(d, storage=golden.checkpoint_storage(d), backend=args.backend)
        if args.backend == "numba":  # compile the kernels first, on a 1-layer checkpoint of the same kind
            warm = os.path.join(d, "warm")
            os.mkdir(warm)
            layers, CONFIG["n_layer"] = CONFIG["n_layer"], 1
            write_bf16_checkpoint(warm)
            CONFIG["n_layer"] = layers
            golden.capture(BloomForCausalLM.from_pretrained(warm, storage="bfloat16", backend="numba"),
                           np.array([[1, 2, 3]]))
            drop_cache(path)
            start = time.perf_counter()
            model = BloomForCausalLM.from_pretrained(d, storage="bfloat16", backend="numba")
        golden.dump(model, os.path.join(d, "g.safetensors"), np.array([[1, 2, 3]]))
        dump = time.perf_counter() - start
    print(f"checkpoint {size / 1e9:.2f} GB (bf16, {args.layers} layers of bloom-560m's shape)")
    print(f"probe: streaming read {probe:.2f} s = {size / probe / 1e9:.2f} GB/s")
    print(f"dump:  golden.dump ({args.backend}) {dump:.2f} s = {size / dump / 1e9:.2f} GB/s  "
          f"({dump / probe:.1f}x the probe)")
    for name, nbytes in SIZES.items():
        print(f"  {name}: {nbytes / 1e9:.0f} GB -> dump ~{nbytes / (size / dump) / 60:.1f} min "
              f"(reading alone ~{nbytes / (size / probe) / 60:.1f} min)")


if __name__ == "__main__":
    main()
