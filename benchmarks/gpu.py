"""minibloom's CUDA backend against torch CUDA on the same GPU: prefill and decode ms/token.

    python benchmarks/gpu.py                   # bloom-560m shapes, on an NVIDIA GPU
    python benchmarks/gpu.py --n-layer 4

Both run in this process on the same random float32 weights. Prefill: the last-position logits
of B=1 and B=4 prompts of T=128 (a fresh device cache each time). Decode: ms per new token with
the device KV cache after a 128-token prompt (greedy; minibloom returns one id per row per step,
torch runs its own cache). Times are taken after torch.cuda.synchronize / numba's synchronize.
Needs the `cuda` and `reference` extras and a GPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import add_model_args, bloom_sizes, median_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_model_args(parser)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=32, help="tokens generated for the decode timing")
    args = parser.parse_args()

    import torch
    import transformers
    from numba import cuda

    from minibloom import BloomConfig, BloomForCausalLM
    from minibloom.cuda import CudaBloomForCausalLM

    sizes = bloom_sizes(args)
    ours_cpu = BloomForCausalLM(BloomConfig(**sizes, eos_token_id=None), seed=0)
    ours = CudaBloomForCausalLM(ours_cpu)
    theirs = transformers.BloomForCausalLM(transformers.BloomConfig(**sizes)).eval()
    theirs.transformer.load_state_dict({k: torch.from_numpy(v) for k, v in ours_cpu.params.items()})
    theirs.tie_weights()
    theirs = theirs.cuda()
    device = cuda.get_current_device()
    print(f"{args.like} shapes, {sizes['n_layer']} layers, on {device.name.decode() if isinstance(device.name, bytes) else device.name}; "
          f"torch {torch.__version__}")
    rng = np.random.default_rng(0)

    def sync():
        cuda.synchronize()
        torch.cuda.synchronize()

    print(f"{'':24} {'minibloom ms':>13} {'torch ms':>9} {'ratio':>6}")
    for B in (1, 4):
        ids = rng.integers(0, sizes["vocab_size"], size=(B, 128))
        t_ours = median_seconds(lambda: (ours.last_logits(ids), sync()), args.repeats)
        with torch.no_grad():
            t_torch = median_seconds(lambda: (theirs(torch.from_numpy(ids).cuda()).logits[:, -1].cpu(), sync()),
                                     args.repeats)
        print(f"{'prefill B=%d T=128' % B:24} {t_ours * 1e3:13.2f} {t_torch * 1e3:9.2f} {t_ours / t_torch:6.2f}")

    prompt = rng.integers(0, sizes["vocab_size"], size=(1, 128))
    ours.generate(prompt, max_new_tokens=2)  # warm-up: compiles every kernel
    start = time.perf_counter()
    ours.generate(prompt, max_new_tokens=args.steps)
    sync()
    t_ours = (time.perf_counter() - start) / args.steps
    with torch.no_grad():
        ids = torch.from_numpy(prompt).cuda()
        theirs.generate(ids, max_new_tokens=2, do_sample=False)
        sync()
        start = time.perf_counter()
        theirs.generate(ids, max_new_tokens=args.steps, min_new_tokens=args.steps, do_sample=False)
        sync()
        t_torch = (time.perf_counter() - start) / args.steps
    print(f"{'decode ms/token (ctx 128)':24} {t_ours * 1e3:13.2f} {t_torch * 1e3:9.2f} {t_ours / t_torch:6.2f}"
          "   (per token, prefill included in both)")


if __name__ == "__main__":
    main()
