"""Measure how much of the default golden tolerances correct ports use, at bloom-560m's shape.

    python tests/reference/measure_golden_tolerances.py [--layers 24] [--vocab 1000]

Builds a transformers BloomForCausalLM with bloom-560m's layer shapes (hidden 1024, 16 heads, 24
layers; a small vocab, which only changes the logits' width), transformers' own initialisation
(N(0, 0.02) matrices) with LN weights and all biases spread out, writes minibloom's float32
golden file on a left-padded batch, then runs transformers itself in float32, bfloat16 and float16
as three correct ports (forward hooks record the documented names) and prints, for each, the
largest headroom (max |diff| / allowed under the default tolerances) per depth; then the first
divergence of the independent port of tests/golden_port.py with each classic bug, in float32 and
bfloat16. The numbers in docs/golden.md ("Default tolerances") come from this script. Takes a few
minutes and ~4 GB.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np
import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from minibloom import BloomForCausalLM, golden  # noqa: E402
from tests.golden_port import BUGS, FIRST_OP, Port  # noqa: E402
from tests.reference.reference_utils import hooked_intermediates  # noqa: E402


def build(n_layer: int, vocab: int, seed: int = 0):
    config = transformers.BloomConfig(vocab_size=vocab, hidden_size=1024, n_head=16, n_layer=n_layer)
    torch.manual_seed(seed)
    model = transformers.BloomForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layernorm" in name or "ln_f" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn(p.shape))
            elif name.endswith("bias"):
                p.copy_(0.02 * torch.randn(p.shape))
    return model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--vocab", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(2)
    theirs = build(args.layers, args.vocab)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, args.vocab, size=(2, 16))
    mask = np.ones_like(ids)
    mask[1, :5] = 0
    with tempfile.TemporaryDirectory() as d:
        theirs.save_pretrained(d)
        ours = BloomForCausalLM.from_pretrained(d)
        golden.dump(ours, os.path.join(d, "g.safetensors"), ids, mask)
        expected = golden.load(os.path.join(d, "g.safetensors"))
        del ours
        bugs = [(bf16, bug, golden.compare(expected, Port(d, bugs=[bug], bf16=bf16).forward(ids, mask),
                                           port_dtype="bfloat16" if bf16 else None).first_divergence)
                for bf16 in (False, True) for bug in BUGS]
    print(f"bloom-560m shape, {args.layers} layers, vocab {args.vocab}; headroom under the default tolerances "
          f"(BASE {golden.BASE_TOLERANCE}, DEPTH_SCALE {golden.DEPTH_SCALE})")
    for dtype in ("float32", "bfloat16", "float16"):
        port = hooked_intermediates(theirs.to(getattr(torch, dtype)), ids, mask, derived=False)
        report = golden.compare(expected, port, skip_missing=True, port_dtype=dtype)
        layers = report.layers()
        worst = max(layers, key=lambda g: g["headroom"])
        picks = [g for g in layers if g["layer"] in ("embeddings", "h.0", f"h.{args.layers // 2}",
                                                   f"h.{args.layers - 1}", "head")]
        print(f"{dtype:9} ok={report.ok}  max headroom {worst['headroom']:.3f} at {worst['worst']};  "
              + "; ".join(f"{g['layer']} {g['headroom']:.3f} (rel norm {g['rel_norm']:.2g})" for g in picks))


    print("the seven bugs in the independent port of tests/golden_port.py (first divergence, headroom):")
    for bf16, bug, first in bugs:
        where = f"{first.name} ({first.headroom:.3g})" if first else "not caught"
        print(f"  {'bfloat16' if bf16 else 'float32 '} {bug:24} {where}  (expected {FIRST_OP[bug]})")


if __name__ == "__main__":
    main()
