"""Draw the pictures of the docs (needs the `docs` extra: matplotlib).

    python docs/make_figures.py            # writes docs/figures/*.png

Each figure is computed here from minibloom itself (the performance plot from the numbers that
benchmarks/cpu.py printed, kept in docs/figures/cpu-benchmark.json), so the pictures cannot drift
from the code: tests/reference/test_docs.py regenerates them and checks every referenced image.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIGURES = ("alibi.png", "attention.png", "architecture.png", "performance.png", "backprop.png")


def alibi(plt, path: str) -> None:
    from minibloom.alibi import alibi_bias
    from minibloom.masking import causal_padding_bias

    mask = np.ones((1, 12), np.int64)
    bias = alibi_bias(mask, 8)[0, :, 0]  # [N, S]
    causal = causal_padding_bias(mask, 12, 0)[0, 0] < -1e30  # [T, S]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    for ax, head in zip(axes, (0, 3, 7)):
        matrix = np.where(causal, np.nan, bias[head][None, :] - np.arange(12)[:, None] * bias[head][1])
        im = ax.imshow(matrix, cmap="viridis")
        ax.set_title(f"head {head}: slope {bias[head][1]:.4f}")
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle("ALiBi bias = -slope x distance (blank: masked future); 8 heads")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def attention(plt, path: str) -> None:
    from minibloom import EMBEDDED_CHECKPOINT, BloomModel, BloomTokenizer

    tok = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
    model = BloomModel.from_pretrained(EMBEDDED_CHECKPOINT)
    text = "ROMEO.\nBut soft, what light through yonder window breaks?"
    ids = np.array(tok(text)["input_ids"])
    labels = [tok.decode([i]).replace("\n", "\\n") for i in ids]
    probs = model(ids[None], output_attentions=True).attentions
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.6))
    for layer, ax in enumerate(axes):
        ax.imshow(probs[layer][0].mean(0), cmap="magma")
        ax.set_title(f"layer {layer}, mean over heads")
        ax.set_xticks(range(len(ids)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(ids)), labels, fontsize=7)
    fig.suptitle("Attention of the embedded model (rows: queries, columns: keys)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def architecture(plt, path: str) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 7.5))
    ax.axis("off")
    boxes = [("input_ids [B, T]", 0.95), ("word_embeddings -> [B, T, H]", 0.86),
             ("word_embeddings_layernorm", 0.77), ("input_layernorm", 0.66),
             ("self_attention: QKV, ALiBi + mask, softmax, dense", 0.57), ("+ residual", 0.49),
             ("post_attention_layernorm", 0.41), ("mlp: dense_h_to_4h, GELU, dense_4h_to_h", 0.33),
             ("+ residual", 0.25), ("ln_f", 0.14), ("lm_head (tied to word_embeddings) -> logits [B, T, V]", 0.05)]
    for text, y in boxes:
        inside = 0.22 < y < 0.7
        ax.text(0.5, y, text, ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="round", fc="#dde8f7" if inside else "#f3e6d3", ec="#555"))
    for (_, y0), (_, y1) in zip(boxes, boxes[1:]):
        ax.annotate("", xy=(0.5, y1 + 0.025), xytext=(0.5, y0 - 0.025), arrowprops=dict(arrowstyle="->"))
    ax.add_patch(plt.Rectangle((0.04, 0.21), 0.92, 0.49, fill=False, ls="--", ec="#33a"))
    ax.text(0.05, 0.68, "x n_layer blocks", color="#33a", fontsize=10)
    ax.set_title("BLOOM, as minibloom computes it")
    fig.savefig(path, dpi=90)


def performance(plt, path: str) -> None:
    with open(os.path.join(HERE, "figures", "cpu-benchmark.json")) as f:
        data = json.load(f)
    decode = data["decode_ms_per_token"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    names = list(decode)
    a.bar(names, [decode[n] for n in names], color=["#999", "#4a7", "#27a", "#c63", "#a4c"][:len(names)])
    for n in names:
        if n in data["decode_bound_ms"]:
            a.plot([names.index(n) - 0.4, names.index(n) + 0.4], [data["decode_bound_ms"][n]] * 2, "k--")
    a.set_ylabel("ms per token (lower is better)")
    a.set_title("decode after 128 tokens (dashes: bandwidth bound)")
    a.tick_params(axis="x", rotation=20)
    prefill = data["prefill_ms"]
    x = np.arange(len(prefill["torch"]))
    for k, (name, values) in enumerate(prefill.items()):
        b.bar(x + (k - 1) * 0.27, values, width=0.27, label=name)
    b.set_xticks(x, [f"B={bs}, T=128" for bs in data["prefill_batches"]])
    b.set_ylabel("ms (lower is better)")
    b.set_title("prefill, BloomModel")
    b.legend()
    fig.suptitle(f"bloom-560m shapes on {data['machine']} ({data['date']})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def backprop(plt, path: str) -> None:
    """The forward pass left to right (what it keeps), the backward pass right to left (what it sends)."""
    fig, ax = plt.subplots(figsize=(11, 3.6))
    ax.axis("off")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    steps = [("ids", "ids"), ("gather", "x"), ("LN", "x"), ("LN1", "h"), ("attention", "qkv, probs,\ncontext"),
             ("+", ""), ("LN2", "x1"), ("MLP", "pre-GELU,\nGELU"), ("+", ""), ("ln_f", "h_L"), ("head", "hidden"),
             ("loss", "logits")]
    xs = np.linspace(0.04, 0.96, len(steps))
    for (name, kept), x in zip(steps, xs):
        inside = name in ("LN1", "attention", "+", "LN2", "MLP")
        ax.text(x, 0.55, name, ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round", fc="#dde8f7" if inside else "#f3e6d3", ec="#555"))
        if kept:
            ax.text(x, 0.86, kept, ha="center", va="center", fontsize=7, color="#27a")
    for a, b in zip(xs, xs[1:]):
        ax.annotate("", xy=(b - 0.025, 0.62), xytext=(a + 0.025, 0.62), arrowprops=dict(arrowstyle="->", color="#27a"))
        ax.annotate("", xy=(a + 0.025, 0.48), xytext=(b - 0.025, 0.48), arrowprops=dict(arrowstyle="->", color="#c33"))
    for x in (xs[5], xs[8]):  # the residual adds: the gradient also skips the sub-layer
        ax.annotate("", xy=(x - 0.12, 0.3), xytext=(x, 0.3), arrowprops=dict(arrowstyle="->", color="#c33", ls="--"))
    ax.text(0.5, 0.97, "forward (blue): keeps the record shown above each op, only when gradients are wanted",
            ha="center", fontsize=9, color="#27a")
    ax.text(0.5, 0.15, "backward (red): d loss / d logits -> d hidden -> each block in reverse -> scatter-add into "
            "the embedding rows;\nat each residual + the gradient is copied to both branches (dashes); "
            "tied embeddings add the LM head's and the gather's gradients", ha="center", fontsize=9, color="#c33")
    ax.add_patch(plt.Rectangle((xs[3] - 0.04, 0.38), xs[8] - xs[3] + 0.08, 0.36, fill=False, ls="--", ec="#33a"))
    ax.text(xs[3] - 0.035, 0.40, "x n_layer", color="#33a", fontsize=8)
    ax.set_title("Backpropagation through BLOOM, as minibloom.training computes it")
    fig.savefig(path, dpi=90)


def main(out_dir: str = os.path.join(HERE, "figures")) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    for name, draw in zip(FIGURES, (alibi, attention, architecture, performance, backprop)):
        draw(plt, os.path.join(out_dir, name))
        plt.close("all")
        print("wrote", os.path.join(out_dir, name))


if __name__ == "__main__":
    main(*sys.argv[1:])
