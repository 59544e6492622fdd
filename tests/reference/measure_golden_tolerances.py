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


def hooked(model, ids, mask):
    """transformers' tensors under the golden names (scores are internal: not recorded)."""
    found, handles = {}, []

    def keep(name, what="output"):
        def hook(module, inputs, output):
            value = inputs[0] if what == "input" else (output[0] if isinstance(output, tuple) else output)
            found[name] = value.detach().float().numpy().copy()
        return hook

    t = model.transformer
    handles.append(t.word_embeddings.register_forward_hook(keep("embeddings")))
    handles.append(t.word_embeddings_layernorm.register_forward_hook(keep("embeddings_layernorm")))
    for i, block in enumerate(t.h):
        p, a = f"h.{i}.", block.self_attention
        handles += [block.input_layernorm.register_forward_hook(keep(p + "input_layernorm")),
                    a.query_key_value.register_forward_hook(keep(p + "self_attention.qkv")),
                    a.dense.register_forward_hook(keep(p + "self_attention.context", "input")),
                    a.dense.register_forward_hook(keep(p + "self_attention.dense")),
                    block.post_attention_layernorm.register_forward_hook(keep(p + "post_attention_layernorm")),
                    block.mlp.dense_h_to_4h.register_forward_hook(keep(p + "mlp.dense_h_to_4h")),
                    block.mlp.gelu_impl.register_forward_hook(keep(p + "mlp.gelu")),
                    block.mlp.dense_4h_to_h.register_forward_hook(keep(p + "mlp.dense_4h_to_h")),
                    block.register_forward_hook(keep(p + "output"))]
    handles.append(t.ln_f.register_forward_hook(keep("ln_f")))
    with torch.no_grad():
        out = model(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), output_attentions=True,
                    use_cache=False)
    for h in handles:
        h.remove()
    for i, probs in enumerate(out.attentions):
        found[f"h.{i}.self_attention.probs"] = probs.float().numpy()
    found["logits"] = out.logits.float().numpy()
    return found


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
        port = hooked(theirs.to(getattr(torch, dtype)), ids, mask)
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
