"""One training step (forward + backward + AdamW) of minibloom against torch on the CPU.

    python benchmarks/train.py                        # embedded shape at 8 x 128, bloom-560m shape at 1 x 128
    python benchmarks/train.py --skip-560m --repeats 5

Each framework runs in its own child process (so each peak RSS is its own), with the same thread
count, on the same random weights and tokens: a BloomForCausalLM whose labels are its inputs,
torch's model in train mode with torch.optim.AdamW, minibloom's `value_and_grad` + `AdamW`.
Prints the median step time, tokens/s, CPU seconds per step (all threads; the fairer figure on a
shared machine), peak RSS of each and the ratio minibloom / torch in tokens/s (> 1: minibloom is
faster). Needs the `reference` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
from common import median_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMBEDDED_CONFIG = os.path.join(ROOT, "minibloom", "data", "shakespeare", "config.json")


def shape_config(shape: str) -> dict:
    if shape == "embedded":
        with open(EMBEDDED_CONFIG) as f:
            cfg = json.load(f)
        return {k: cfg[k] for k in ("vocab_size", "hidden_size", "n_head", "n_layer")}
    from minibloom.config import BLOOM_FAMILY

    return dict(BLOOM_FAMILY["bloom-560m"], vocab_size=250880)


def worker(args: argparse.Namespace) -> None:
    """Time one framework's training step; print a JSON line."""
    sys.path.insert(0, ROOT)
    sizes = shape_config(args.shape)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, sizes["vocab_size"], size=(args.batch, args.seq_len))
    from minibloom import BloomConfig, BloomForCausalLM

    ours = BloomForCausalLM(BloomConfig(**sizes), seed=0, backend=args.backend, threads=args.threads)
    if args.framework == "torch":
        import torch
        import transformers

        torch.set_num_threads(args.threads)
        model = transformers.BloomForCausalLM(transformers.BloomConfig(**sizes)).train()
        model.load_state_dict({("transformer." + k): torch.from_numpy(v.copy()) for k, v in ours.params.items()},
                              strict=False)
        del ours
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        tids = torch.from_numpy(ids)

        def step():
            opt.zero_grad(set_to_none=True)
            model(tids, labels=tids, use_cache=False).loss.backward()
            opt.step()
    else:
        from minibloom.training import AdamW, value_and_grad

        opt = AdamW(ours.params, lr=1e-4)

        def step():
            _, grads = value_and_grad(ours, input_ids=ids, labels=ids)
            opt.step(grads)

    seconds = median_seconds(step, args.repeats)
    cpu = []  # CPU seconds per step (all threads): what a step costs when the machine is shared
    for _ in range(args.repeats):
        start = time.process_time()
        step()
        cpu.append(time.process_time() - start)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "cpu_seconds": statistics.median(cpu), "rss_mb": rss_mb}))


def run(framework: str, shape: str, batch: int, args: argparse.Namespace) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "NUMBA_NUM_THREADS": str(args.threads)}
    cmd = [sys.executable, __file__, "--worker", framework, "--shape", shape, "--batch", str(batch),
           "--seq-len", str(args.seq_len), "--repeats", str(args.repeats), "--threads", str(args.threads),
           "--backend", args.backend]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", choices=["minibloom", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--framework", help=argparse.SUPPRESS)
    parser.add_argument("--shape", default="embedded")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--backend", default="numba", choices=["numpy", "numba"])
    parser.add_argument("--skip-560m", action="store_true")
    parser.add_argument("--only-560m", action="store_true")
    args = parser.parse_args()
    if args.worker:
        args.framework = args.worker
        return worker(args)
    print(f"{args.threads} threads, backend {args.backend}, median of {args.repeats} steps after a warm-up")
    cases = ([] if args.only_560m else [("embedded", args.batch)]) + ([] if args.skip_560m else [("bloom-560m", 1)])
    for shape, batch in cases:
        res = {fw: run(fw, shape, batch, args) for fw in ("minibloom", "torch")}
        tokens = batch * args.seq_len
        for fw, r in res.items():
            print(f"{shape:>10} {batch} x {args.seq_len}  {fw:>9}: {r['seconds'] * 1e3:8.1f} ms/step "
                  f"{tokens / r['seconds']:9.0f} tokens/s  {r['cpu_seconds']:6.2f} CPU s/step  "
                  f"peak RSS {r['rss_mb']:7.0f} MB")
        ratio = res["torch"]["seconds"] / res["minibloom"]["seconds"]
        cpu_ratio = res["torch"]["cpu_seconds"] / res["minibloom"]["cpu_seconds"]
        print(f"{shape:>10}: minibloom / torch tokens/s = {ratio:.2f} (per CPU second: {cpu_ratio:.2f}); "
              f"peak RSS minibloom / torch = {res['minibloom']['rss_mb'] / res['torch']['rss_mb']:.2f}")


if __name__ == "__main__":
    main()
