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
FIGURES = ("alibi.png", "attention.png", "architecture.png", "performance.png", "backprop.png", "attention_heads.png",
           "logit_lens.png", "kv_cache.png", "padding.png", "gelu.png", "sampling.png", "golden_report.png",
           "bytes.png", "bpe.png", "pretokenizer.png", "layer_norm.png", "heads_losses.png")
TEXT = "ROMEO.\nBut soft, what light through yonder window breaks?"  # the text the model figures read


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
    ids = np.array(tok(TEXT)["input_ids"])
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


def load_embedded():
    from minibloom import EMBEDDED_CHECKPOINT, BloomForCausalLM, BloomTokenizer

    tok = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
    return tok, BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT)


def token_labels(tok, ids) -> list[str]:
    return [tok.decode([int(i)]).replace("\n", "\\n") for i in ids]


def attention_heads(plt, path: str) -> None:
    """Every head of one layer, with its ALiBi slope and mean attended distance: near and far heads."""
    from minibloom.alibi import alibi_slopes

    tok, lm = load_embedded()
    ids = np.array(tok(TEXT)["input_ids"])
    T, layer = len(ids), 0
    probs = lm(ids[None], output_attentions=True).attentions[layer][0]  # [N, T, T]
    back = np.arange(T)[:, None] - np.arange(T)[None, :]  # [T, T]: how far back key s is from query t
    distance = (probs * back).sum(-1).mean(-1)  # [N]
    slopes = alibi_slopes(lm.config.n_head)
    fig, axes = plt.subplots(2, 4, figsize=(12, 6.4))
    for n, ax in enumerate(axes.flat):
        ax.imshow(probs[n], cmap="magma", vmin=0, vmax=1)
        ax.set_title(f"head {n}: slope 1/{round(1 / slopes[n])}\nmean distance {distance[n]:.1f} tokens", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks(range(T), token_labels(tok, ids), fontsize=5)
    fig.suptitle(f"Layer {layer} of the embedded model, head by head (rows: queries, columns: keys): "
                 "steep ALiBi heads look near, shallow ones far")
    fig.tight_layout()
    fig.savefig(path, dpi=72)


def logit_lens(plt, path: str) -> None:
    """The top-1 token and its probability when each layer's stream is read by ln_f and the LM head."""
    from minibloom.explain import logit_lens as lens_of

    tok, lm = load_embedded()
    ids = np.array(tok(TEXT)["input_ids"])
    lens = lens_of(lm, ids, k=1)
    L1, T = lens.top_ids.shape[:2]
    fig, ax = plt.subplots(figsize=(13, 3.8))
    ax.imshow(lens.top_probs[:, :, 0], cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for row in range(L1):
        for t in range(T):
            word = tok.decode([int(lens.top_ids[row, t, 0])]).replace("\n", "\\n")[:7]
            colour = "white" if lens.top_probs[row, t, 0] > 0.6 else "black"
            ax.text(t, row, word, ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(T), token_labels(tok, ids), rotation=60, fontsize=7)
    ax.set_yticks(range(L1), ["h_0 (embedding LN)"] + [f"entering block {i}" for i in range(1, L1 - 1)] +
                  ["the model's output"], fontsize=8)
    ax.set_xlabel("position (the token read there; each cell guesses the next one)")
    ax.set_title("Logit lens of the embedded model: top-1 of lm_head(ln_f(h_i)), colour = its probability")
    fig.tight_layout()
    fig.savefig(path, dpi=72)


def kv_cache(plt, path: str) -> None:
    """What the cache holds after a prompt and a few greedy steps, and the newest token's attention over it."""
    from minibloom.cache import KVCache

    tok, lm = load_embedded()
    ids = np.array([tok("ROMEO.\nBut soft")["input_ids"]])  # [1, P]
    cache = KVCache.for_config(lm.config, 1, 24)
    logits = lm(ids, past_key_values=cache).logits[:, -1]
    rows, prompt = [], ids.shape[1]
    for _ in range(24 - prompt):
        nxt = logits.argmax(-1)[:, None]
        ids = np.concatenate([ids, nxt], axis=1)
        out = lm(nxt, attention_mask=np.ones_like(ids), past_key_values=cache, output_attentions=True)
        rows.append(out.attentions[0][0, 0, -1])  # layer 0, head 0, the new query over S keys: [S]
        logits = out.logits[:, -1]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1.2, 1]})
    keys = cache.keys[0][0, 0]  # [capacity, D]: layer 0, head 0
    a.imshow(keys.T, cmap="coolwarm", aspect="auto", vmin=-np.abs(keys).max(), vmax=np.abs(keys).max())
    a.axvline(prompt - 0.5, color="k", ls="--")
    a.set_xticks(range(ids.shape[1]), token_labels(tok, ids[0]), rotation=70, fontsize=7)
    a.set_ylabel(f"head_dim D = {keys.shape[1]}")
    a.set_title(f"cache.keys[0][0, 0]: layer 0, head 0, one column per token\n(prompt left of the dashes; "
                f"the values and the other {lm.config.n_layer * lm.config.n_head - 1} layer-heads alike)", fontsize=9)
    steps = np.full((len(rows), ids.shape[1]), np.nan)
    for i, r in enumerate(rows):
        steps[i, :r.size] = r
    b.imshow(steps, cmap="magma", aspect="auto", vmin=0, vmax=1)
    b.set_xlabel("key position S (cached tokens + the new one)")
    b.set_ylabel("decode step")
    b.set_title("each step: one new query against every cached key\n(layer 0, head 0): the row grows, so "
                "attention's work grows with S", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=72)


def padding(plt, path: str) -> None:
    """A left-padded row's attention (layer 0, head 0): pad keys get 0, pad queries are uniform."""
    tok, lm = load_embedded()
    batch = tok(["To be, or not to be", "that is the question"], padding=True, return_tensors="np")
    probs = lm(batch["input_ids"], attention_mask=batch["attention_mask"], output_attentions=True).attentions[0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for row, ax in enumerate(axes):
        ids = batch["input_ids"][row]
        labels = [("<pad>" if m == 0 else w) for w, m in zip(token_labels(tok, ids), batch["attention_mask"][row])]
        ax.imshow(probs[row, 0], cmap="magma", vmin=0, vmax=1)
        for t in range(len(ids)):
            for s_ in range(len(ids)):
                ax.text(s_, t, f"{probs[row, 0, t, s_]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if probs[row, 0, t, s_] < 0.5 else "black")
        ax.set_xticks(range(len(ids)), labels, rotation=60, fontsize=8)
        ax.set_yticks(range(len(ids)), labels, fontsize=8)
        ax.set_title(f"row {row}: mask {batch['attention_mask'][row].tolist()}", fontsize=9)
    fig.suptitle("A left-padded batch, layer 0 head 0: no real query reads a pad key; each pad query, every key "
                 "masked, is uniform (1/S)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=72)


def gelu(plt, path: str) -> None:
    """BLOOM's tanh GELU against the exact erf one, and their difference."""
    import math

    from minibloom.functional import bloom_gelu

    xs = np.linspace(-5, 5, 401, dtype=np.float32)
    erf = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in xs.astype(np.float64)])
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    a.plot(xs, bloom_gelu(xs), label="BLOOM: tanh approximation")
    a.plot(xs, np.maximum(xs, 0), "--", color="#999", label="ReLU")
    a.legend()
    a.set_title("GELU(x) = x * Phi(x), a smooth ReLU")
    b.plot(xs, bloom_gelu(xs) - erf)
    b.set_title("tanh form - exact erf form: up to 4e-4")
    for ax in (a, b):
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=72)


def sampling(plt, path: str) -> None:
    """The embedded model's next-token distribution, reshaped by temperature, and the top-p nucleus."""
    from minibloom.functional import softmax
    from minibloom.generation.logits_process import top_p

    tok, lm = load_embedded()
    ids = np.array([tok("ROMEO.\nWhat")["input_ids"]])
    scores = lm(ids).logits[:, -1].astype(np.float32)  # [1, V]
    top = np.argsort(-scores[0])[:15]
    labels = [tok.decode([int(i)]).replace("\n", "\\n") for i in top]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 3.8))
    for k, t in enumerate((0.5, 1.0, 1.5)):
        a.bar(np.arange(15) + (k - 1) * 0.27, softmax(scores / t)[0, top], width=0.27, label=f"temperature {t}")
    a.set_xticks(range(15), labels, rotation=60, fontsize=8)
    a.legend()
    a.set_title('next token after "ROMEO.\\nWhat": temperature sharpens or flattens', fontsize=10)
    kept = np.isfinite(top_p(scores, 0.5))[0, top]
    b.bar(range(15), softmax(scores)[0, top], color=["#27a" if k else "#ccc" for k in kept])
    b.set_xticks(range(15), labels, rotation=60, fontsize=8)
    b.set_title(f"top-p 0.5 keeps {int(np.isfinite(top_p(scores, 0.5)).sum())} tokens (blue), the rest -> -inf",
                fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=72)


def golden_report(plt, path: str) -> None:
    """Headroom of every tensor in forward order: a correct port (numba) and one with a wrong GELU."""
    import tempfile

    from minibloom import EMBEDDED_CHECKPOINT, golden

    tok, lm = load_embedded()
    ids = np.array([tok("Once more unto the breach")["input_ids"]])
    with tempfile.TemporaryDirectory() as tmp:
        file = os.path.join(tmp, "golden.safetensors")
        golden.dump(lm, file, ids)
        expected = golden.load(file)
    ports = {"backend='numba' (a correct port)": golden.live_run(expected, EMBEDDED_CHECKPOINT, backend="numba")}
    broken = dict(ports["backend='numba' (a correct port)"])
    broken["h.2.mlp.gelu"] = broken["h.2.mlp.gelu"] * np.float32(1.001)
    ports["layer 2's GELU x 1.001 (a broken port)"] = broken
    fig, ax = plt.subplots(figsize=(12, 4))
    for name, port in ports.items():
        rows = [r for r in golden.compare(expected, port).rows if not r.skipped and r.headroom == r.headroom]
        ax.semilogy(range(len(rows)), [max(r.headroom, 1e-4) for r in rows], "o-", ms=3, label=name)
    ax.axhline(1.0, color="red", lw=1)
    ax.text(0, 1.3, "headroom 1: above fails", color="red", fontsize=8)
    ax.set_xticks(range(len(rows)), [r.name for r in rows], rotation=90, fontsize=6)
    ax.set_ylabel("headroom = max |diff| / allowed")
    ax.legend(loc="upper left")
    ax.set_title("golden compare, tensor by tensor in forward order: the first one above 1 names the broken op")
    fig.tight_layout()
    fig.savefig(path, dpi=72)


def byte_table(plt, path: str) -> None:
    """The 256 bytes as the byte-level alphabet shows them: kept (printable) or moved to U+0100 on."""
    from minibloom.tokenizer.bytes_unicode import BYTE_TO_CHAR

    fig, ax = plt.subplots(figsize=(9, 9))
    moved = np.array([[ord(BYTE_TO_CHAR[16 * r + c]) >= 256 for c in range(16)] for r in range(16)])
    ax.imshow(moved, cmap="Pastel1_r", vmin=0, vmax=1)
    for b in range(256):
        r, c = divmod(b, 16)
        ax.text(c, r - 0.12, BYTE_TO_CHAR[b], ha="center", va="center", fontsize=12)
        ax.text(c, r + 0.3, f"{b:02X}", ha="center", va="center", fontsize=6, color="#555")
    ax.set_xticks(range(16), [f"_{c:X}" for c in range(16)])
    ax.set_yticks(range(16), [f"{r:X}_" for r in range(16)])
    ax.set_title("The byte-level alphabet: byte (small, hex) -> character (large).\n"
                 "Red: the 68 unprintable bytes, moved in order to U+0100, U+0101, ... (space 20 -> Ġ)")
    fig.tight_layout()
    fig.savefig(path, dpi=72)


def bpe_ladder(plt, path: str) -> None:
    """The embedded tokenizer merging ' discontent', one merge per rung, lowest rank first."""
    from minibloom.explain.tokens import merge_trace

    tok, _ = load_embedded()
    trace = merge_trace(tok, " discontent")[0]
    rows, symbols = [list(trace.symbols)], list(trace.symbols)
    for m in trace.merges:
        symbols[m.position:m.position + 2] = [m.left + m.right]
        rows.append(list(symbols))
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.2))
    for y, row in enumerate(rows):
        x = 0.0
        for k, sym in enumerate(row):
            new = y > 0 and k == trace.merges[y - 1].position
            ax.text(x + 0.5 * len(sym), -y, sym, ha="center", va="center", family="monospace", fontsize=12,
                    bbox=dict(boxstyle="round", fc="#ffd27f" if new else "#e6eefa", ec="#777"))
            x += len(sym) + 0.6
        what = "the UTF-8 bytes, byte-levelled" if y == 0 else \
            f"merge {trace.merges[y - 1].left!r} + {trace.merges[y - 1].right!r}  (rank {trace.merges[y - 1].rank})"
        ax.text(19, -y, what, va="center", fontsize=10)
    ax.set_xlim(-0.5, 34)
    ax.set_ylim(-len(rows) + 0.4, 0.6)
    ax.axis("off")
    ax.set_title(f"BPE on ' discontent' with the embedded tokenizer: lowest rank anywhere first; "
                 f"result {trace.tokens}, ids {trace.ids}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=72)


def pretokenizer(plt, path: str) -> None:
    """The pre-tokenizer's pieces of a real line: matches (word, space + word) and gaps, coloured."""
    from minibloom.tokenizer.pretokenizer import split_pieces

    line = "KING HENRY.\tOnce more unto the breach, dear friends, once more;  (or close the wall)|up!"
    pieces = split_pieces(line)
    colours = {"word": "#cfe8cf", "space + word": "#cfe0f7", "gap": "#f7d6cf"}
    fig, ax = plt.subplots(figsize=(12, 2.6))
    x, y = 0.0, 0.0
    for piece in pieces:
        kind = "gap" if not piece.strip(" ") or not any(c.isalnum() for c in piece) else \
            "space + word" if piece.startswith(" ") else "word"
        shown = piece.replace(" ", "␣").replace("\t", "⇥")
        if x + len(shown) > 44:
            x, y = 0.0, y - 1
        ax.text(x + 0.5 * len(shown), y, shown, ha="center", va="center", family="monospace", fontsize=12,
                bbox=dict(boxstyle="square,pad=0.25", fc=colours[kind], ec="#777"))
        x += len(shown) + 1.2
    for k, (kind, fc) in enumerate(colours.items()):
        ax.text(k * 12, y - 1.2, kind, family="monospace", fontsize=10, bbox=dict(fc=fc, ec="#777"))
    ax.set_xlim(-1, 46)
    ax.set_ylim(y - 1.8, 0.7)
    ax.axis("off")
    ax.set_title(f"BLOOM's pre-tokenizer: {len(pieces)} pieces (␣ a space, ⇥ a tab); BPE never merges across them",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=72)


def layer_norm_stats(plt, path: str) -> None:
    """Per position, the mean and std of each layer norm's input in the embedded model, and after it."""
    tok, lm = load_embedded()
    ids = np.array([tok(TEXT)["input_ids"]])
    _, cache = lm.run_with_cache(ids, use_cache=False)
    L = lm.config.n_layer
    inputs = [("embeddings", "embeddings")] + [
        (f"into block {i}" if i < L else "into ln_f", "embeddings_layernorm" if i == 0 else f"h.{i - 1}.output")
        for i in range(L + 1)]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for label, name in inputs:
        x = cache[name][0].astype(np.float64)  # [T, H]
        axes[0].plot(x.std(-1), "o-", ms=3, label=label)
        axes[1].plot(x.mean(-1), "o-", ms=3, label=label)
    axes[0].set_yscale("log")
    axes[0].set_title("std over H of each layer norm's input, per position\n(after it: 1 before weight, bias)")
    axes[1].set_title("mean over H, per position (after the layer norm: 0)")
    for ax in axes:
        ax.set_xticks(range(ids.shape[1]), token_labels(tok, ids[0]), rotation=90, fontsize=7)
    axes[0].legend(fontsize=8)
    fig.suptitle("The residual stream of the embedded model: its scale grows block by block; each layer norm resets it")
    fig.tight_layout()
    fig.savefig(path, dpi=72)


def heads_losses(plt, path: str) -> None:
    """Left: where a classifier reads each row of a left-padded batch. Right: the LM's loss per token."""
    from minibloom.heads import last_non_pad_index
    from minibloom.losses import log_softmax

    tok, lm = load_embedded()
    texts = ["Out, damned spot!", "All the world's a stage", "To be"]
    batch = tok(texts, padding=True, return_tensors="np")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    pooled = last_non_pad_index(ids, lm.config.pad_token_id, len(texts))
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.8), gridspec_kw={"width_ratios": [1, 1.4]})
    axes[0].imshow(mask, cmap="Greys", vmin=-0.6, vmax=1.4)
    for b in range(ids.shape[0]):
        for t in range(ids.shape[1]):
            text = tok.decode([int(ids[b, t])]) if mask[b, t] else "<pad>"
            axes[0].text(t, b, text, ha="center", va="center", fontsize=7, color="white" if mask[b, t] else "#555")
        axes[0].add_patch(plt.Rectangle((pooled[b] - 0.5, b - 0.5), 1, 1, fill=False, ec="red", lw=2))
    axes[0].set_xticks(range(ids.shape[1]))
    axes[0].set_yticks(range(len(texts)))
    axes[0].set_title("left padding: the classifier reads each row at its\nlast non-pad token (red), "
                      f"argmax(arange(T) * (ids != pad)) = {pooled.tolist()}", fontsize=9)
    line = np.array(tok.encode("Now is the winter of our discontent"))
    logits = lm(line[None]).logits[0, :-1]  # [T-1, V]: position t predicts t + 1
    losses = -log_softmax(logits)[np.arange(len(line) - 1), line[1:]]
    axes[1].bar(range(len(losses)), losses, color="#6a8fc7")
    axes[1].axhline(losses.mean(), color="red", lw=1)
    axes[1].text(0, losses.mean() + 0.2, f"mean = the loss {losses.mean():.2f} (perplexity {np.exp(losses.mean()):.0f})",
                 color="red", fontsize=8)
    axes[1].set_xticks(range(len(losses)), [f"{a}→{b}" for a, b in zip(token_labels(tok, line[:-1]),
                                                                      token_labels(tok, line[1:]))],
                       rotation=60, fontsize=7)
    axes[1].set_ylabel("-log p(next token)")
    axes[1].set_title("causal LM: the cross-entropy of each position against the next token", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=72)


def main(out_dir: str = os.path.join(HERE, "figures")) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    for name, draw in zip(FIGURES, (alibi, attention, architecture, performance, backprop, attention_heads,
                                    logit_lens, kv_cache, padding, gelu, sampling, golden_report,
                                    byte_table, bpe_ladder, pretokenizer, layer_norm_stats, heads_losses)):
        draw(plt, os.path.join(out_dir, name))
        plt.close("all")
        print("wrote", os.path.join(out_dir, name))


if __name__ == "__main__":
    main(*sys.argv[1:])
