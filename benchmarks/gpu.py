"""minibloom's CUDA backend against torch CUDA on the same GPU: prefill and decode ms/token.

    python benchmarks/gpu.py                   # bloom-560m shapes, on an NVIDIA GPU
    python benchmarks/gpu.py --n-layer 4

Both run in this process on the same random float32 weights. Prefill: the last-position logits
of B=1 and B=4 prompts of T=128 (a fresh device cache each time). Decode: ms per new token with
the device KV cache after a 128-token prompt (greedy; minibloom returns one id per row per step,
torch runs its own cache), prefill subtracted; and the floor a decode step cannot beat, weight
bytes over the rate of a streaming read on the same GPU. Times are taken after torch.cuda.synchronize / numba's synchronize.
Needs the `cuda` and `reference` extras and a GPU.
"""

from __future__ import annotations

import argparse

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

    # Decode: the time of `steps` more greedy tokens after the same prompt, so prefill cancels out.
    prompt = rng.integers(0, sizes["vocab_size"], size=(1, 128))

    def ours_run(n):
        ours.generate(prompt, max_new_tokens=n)
        sync()

    def torch_run(n):
        with torch.no_grad():
            theirs.generate(torch.from_numpy(prompt).cuda(), max_new_tokens=n, min_new_tokens=n, do_sample=False)
        sync()

    per_token = {}
    for name, run in (("minibloom", ours_run), ("torch", torch_run)):
        short = median_seconds(lambda: run(2), 3)
        long = median_seconds(lambda: run(2 + args.steps), 3)
        per_token[name] = (long - short) / args.steps
    t_ours, t_torch = per_token["minibloom"], per_token["torch"]
    print(f"{'decode ms/token (ctx 128)':24} {t_ours * 1e3:13.2f} {t_torch * 1e3:9.2f} {t_ours / t_torch:6.2f}")

    # The floor of a decode step: every weight byte read once, at the rate of a streaming read
    # (torch's sum over 1 GiB on the same GPU, measured now).
    probe = torch.ones(2**28, device="cuda")
    read_s = median_seconds(lambda: (probe.sum().item(), sync()), 10)
    gbps = probe.numel() * 4 / read_s / 1e9
    weight_bytes = sum(w.nbytes for w in ours.weights.values())
    floor = weight_bytes / (gbps * 1e9)
    print(f"streaming-read probe {gbps:.0f} GB/s; weights {weight_bytes / 1e9:.2f} GB; floor {floor * 1e3:.2f} ms/token; "
          f"minibloom {t_ours / floor:.1f}x floor, torch {t_torch / floor:.1f}x floor")


if __name__ == "__main__":
    main()
