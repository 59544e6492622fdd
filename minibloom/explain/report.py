"""`minibloom explain`: what every layer and head of a BLOOM does on one text, as data and as an
offline page.

`explain(model, tokenizer, text)` gathers it (one forward with `run_with_cache`, the logit lens, the
merge trace); `write_report(directory, data)` writes `explain.json`, `index.html` (self-contained:
inline CSS, JS and SVG, nothing fetched) and one PNG per layer of attention maps beside it.

explain.json:
    tokens [T], input_ids [T], pieces: each piece's merge trace (`tokens.py`)
    logit_lens: k, top_ids / top_probs / top_tokens [L+1][T][k]   (row 0: the embedding LN's output;
                row i: the stream entering block i; row L: the model's own prediction)
    attentions [L][N][T][T]: probs[query][key] of each head
    heads: alibi_slopes [N]; mean_distance [L][N]: how far back a head looks, averaged over queries
    residual: stream [L+1] (the mean over positions of |h|, entering each block, then the last
              block's output), attention [L] and mlp [L] (|what each sub-layer adds|)
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from typing import Any

import numpy as np

from ..alibi import alibi_slopes
from ..errors import CheckpointError, InputError
from ..safe_read import read_json
from .lens import logit_lens
from .tokens import merge_trace

FORMAT = "minibloom-explain"
MAX_TOKENS = 128  # attentions grow as T^2: [L][N][T][T] in JSON
OWNER_FILE = ".minibloom-explain.json"  # {"format", "files"}: marks a directory `write_report` wrote
OUR_NAMES = re.compile(r"(index\.html|explain\.json|attention_layer\d{1,4}\.png)")


def rounded(values: Any, decimals: int = 6) -> list:
    """Nested lists of floats rounded for people and small files (float32 noise is ~1e-7 anyway)."""
    return np.round(np.asarray(values, np.float64), decimals).tolist()


def explain(model: Any, tokenizer: Any, text: str, k: int = 5) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-able data (see the module docstring)."""
    pieces = merge_trace(tokenizer, text)
    ids = [i for p in pieces for i in p.ids]
    if not ids:
        raise InputError("the text has no tokens: give a non-empty TEXT")
    if len(ids) > MAX_TOKENS:
        raise InputError(f"the text has {len(ids)} tokens; explain shows at most {MAX_TOKENS} "
                         "(its attention maps grow as tokens squared): give a shorter TEXT")
    cfg = model.config
    if max(ids) >= cfg.vocab_size:
        raise InputError(f"token id {max(ids)} is past the model's vocab ({cfg.vocab_size} rows): "
                         "the tokenizer does not belong to this model")
    _, cache = model.run_with_cache(np.array([ids]), use_cache=False)
    lens = logit_lens(model, np.array(ids), k=k)
    L, T = cfg.n_layer, len(ids)
    attentions = np.stack([cache[f"h.{i}.self_attention.probs"][0] for i in range(L)])  # [L, N, T, T]
    back = np.arange(T)[:, None] - np.arange(T)[None, :]  # [T, T]: query t looks t - s tokens back at key s
    mean_distance = (attentions * back).sum(-1).mean(-1)  # [L, N]

    def norm(name: str) -> float:  # the mean over positions of the L2 norm over the hidden size
        return float(np.linalg.norm(cache[name][0].astype(np.float64), axis=-1).mean())

    stream = ["embeddings_layernorm"] + [f"h.{i}.output" for i in range(L)]
    return {
        "format": FORMAT, "format_version": 1, "text": text,
        "config": {key: getattr(cfg, key) for key in ("n_layer", "n_head", "hidden_size", "vocab_size")},
        "input_ids": ids, "tokens": [tokenizer.id_to_token.get(i, f"<id {i}>") for i in ids],
        "pieces": [p.to_dict() for p in pieces],
        "logit_lens": {"k": k, "top_ids": lens.top_ids.tolist(), "top_probs": rounded(lens.top_probs),
                       "top_tokens": [[[tokenizer.id_to_token.get(int(i), f"<id {i}>") for i in row] for row in layer]
                                      for layer in lens.top_ids]},
        "attentions": rounded(attentions),
        "heads": {"alibi_slopes": rounded(alibi_slopes(cfg.n_head), 8), "mean_distance": rounded(mean_distance, 4)},
        "residual": {"stream": [round(norm(n), 4) for n in stream],
                     "attention": [round(norm(f"h.{i}.self_attention.dense"), 4) for i in range(L)],
                     "mlp": [round(norm(f"h.{i}.mlp.dense_4h_to_h"), 4) for i in range(L)]},
    }


# ------------------------------------------------------------------------------------ pictures

def png_bytes(rgb: np.ndarray) -> bytes:
    """A PNG file of an [H, W, 3] uint8 image: the signature, IHDR, one zlib IDAT, IEND (filter 0)."""
    height, width, _ = rgb.shape

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + row.tobytes() for row in np.ascontiguousarray(rgb, np.uint8))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def heads_picture(probs: np.ndarray, gap: int = 4) -> np.ndarray:
    """One layer's maps [N, T, T] side by side as an RGB image: white is 0, dark blue is 1."""
    N, T, _ = probs.shape
    cell = max(2, 96 // T)  # pixels per entry: small texts stay visible
    size = T * cell
    image = np.full((size, N * (size + gap) - gap, 3), 255, np.uint8)
    ink = np.array([8, 48, 107], np.float64)
    for n in range(N):
        p = np.clip(np.kron(probs[n], np.ones((cell, cell))), 0, 1)[..., None]  # [size, size, 1]
        image[:, n * (size + gap):n * (size + gap) + size] = np.round(255 - p * (255 - ink)).astype(np.uint8)
    return image


# ------------------------------------------------------------------------------------ writing

def check_directory(directory: str, force: bool) -> list[str]:
    """The files an earlier `write_report` left in `directory` (to replace); refuses a non-empty
    directory it did not write unless `force` (then nothing in it is removed, only ours written)."""
    if not os.path.isdir(directory):
        if os.path.exists(directory):
            raise CheckpointError(f"--out {directory}: exists and is not a directory")
        return []
    owner = os.path.join(directory, OWNER_FILE)
    if os.path.isfile(owner):
        mark = read_json(owner, CheckpointError, max_bytes=1 << 16)
        files = mark.get("files") if isinstance(mark, dict) and mark.get("format") == FORMAT else None
        if isinstance(files, list):
            return [f for f in files if isinstance(f, str) and OUR_NAMES.fullmatch(f)]  # plain names we write
    others = [n for n in os.listdir(directory) if not n.startswith(".minibloom-save-")]
    if others and not force:
        raise InputError(f"--out {directory}: not empty and not written by minibloom explain "
                         f"(holds {others[0]!r}); choose an empty directory or pass --force")
    return []


def write_report(directory: str | os.PathLike, data: dict[str, Any], force: bool = False) -> list[str]:
    """Write explain.json, index.html and the PNGs into `directory`, all or none (`atomic.transaction`).
    Earlier files of ours that this report does not have (more layers before) are removed; nothing
    else. Returns the names written."""
    from ..atomic import transaction

    directory = os.fspath(directory)
    previous = check_directory(directory, force)
    files = {f"attention_layer{i}.png": png_bytes(heads_picture(np.asarray(a, np.float32)))
             for i, a in enumerate(data["attentions"])}
    files["index.html"] = page(data, sorted(files, key=lambda n: int(re.sub(r"\D", "", n)))).encode("utf-8")
    files["explain.json"] = json.dumps(data, ensure_ascii=False).encode("utf-8")
    with transaction(directory) as txn:
        for name, content in files.items():
            txn.write_bytes(name, content)
        txn.write_bytes(OWNER_FILE, json.dumps({"format": FORMAT, "files": sorted(files)}).encode("utf-8"))
        for name in set(previous) - set(files):
            txn.remove(name)
    return sorted(files)


def page(data: dict[str, Any], pictures: list[str]) -> str:
    """index.html: the data without the attention maps inline (they are the PNGs), drawn by a small
    script; `data-explain="ok"` on <body> says it ran (the browser test reads it)."""
    inline = {k: v for k, v in data.items() if k != "attentions"}
    payload = json.dumps(inline, ensure_ascii=False).replace("</", "<\\/")  # no "</script>" inside the script
    images = json.dumps(pictures)
    return PAGE.replace("__DATA__", payload).replace("__PICTURES__", images)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>minibloom explain</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #222; max-width: 80em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 12px; }
td, th { border: 1px solid #ddd; padding: 2px 5px; text-align: left; vertical-align: top; }
code, .tok { font-family: ui-monospace, monospace; white-space: pre; }
.piece { margin: .3em 0; } .merges { color: #555; margin-left: 2em; font-family: ui-monospace, monospace; }
.note { color: #555; max-width: 60em; } img { image-rendering: pixelated; border: 1px solid #ccc; }
</style></head>
<body data-explain="loading">
<h1>minibloom explain</h1>
<p class="note">Text: <code id="text"></code></p>
<h2>1. Tokens and their BPE merges</h2>
<p class="note">Each piece of the pre-tokenizer's split, its bytes as the byte-level alphabet shows them
('Ġ' is a space), then each merge in the order applied, with its rank (lower merges first).</p>
<div id="pieces"></div>
<h2>2. The logit lens</h2>
<p class="note">What the model would predict next if it stopped early: lm_head(ln_f(h)) of the stream
entering each block. The last row is the model's own prediction. Darker: more probable. Hover a cell for
the top-k.</p>
<div id="lens"></div>
<h2>3. Attention, per layer and head</h2>
<p class="note">One map per head (query down, key across; dark = attended). ALiBi gives each head a slope:
a steep head looks near, a shallow one far. Mean distance: how many tokens back a head looks, averaged
over queries.</p>
<div id="heads"></div><div id="pictures"></div>
<h2>4. The residual stream</h2>
<p class="note">Mean |h| entering each block, and of what the attention and the MLP add to it.</p>
<div id="norms"></div>
<script id="data" type="application/json">__DATA__</script>
<script>
window.onerror = function (msg) { document.body.setAttribute("data-explain", "error: " + msg); };
(function () {
  var data = JSON.parse(document.getElementById("data").textContent);
  var pictures = __PICTURES__;
  function el(tag, text, parent) {
    var e = document.createElement(tag); if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e); return e;
  }
  document.getElementById("text").textContent = data.text;
  var pieces = document.getElementById("pieces");
  data.pieces.forEach(function (p) {
    var d = el("div", undefined, pieces); d.className = "piece";
    if (p.added) { el("span", JSON.stringify(p.piece) + "  added token, id " + p.ids[0], d).className = "tok"; return; }
    el("span", JSON.stringify(p.piece) + "   bytes: " + p.symbols.join(" "), d).className = "tok";
    var m = el("div", undefined, d); m.className = "merges";
    p.merges.forEach(function (x) { el("div", "rank " + x.rank + ":  " + x.left + " + " + x.right + " -> " + x.left + x.right, m); });
    el("div", "tokens: " + p.tokens.map(function (t, i) { return t + " (" + p.ids[i] + ")"; }).join("  "), m);
  });
  var lens = data.logit_lens, table = el("table", undefined, document.getElementById("lens"));
  var head = el("tr", undefined, table); el("th", "layer \\\\ token", head);
  data.tokens.forEach(function (t) { el("th", t, head).className = "tok"; });
  lens.top_ids.forEach(function (layer, l) {
    var row = el("tr", undefined, table);
    el("th", l === lens.top_ids.length - 1 ? "output" : (l === 0 ? "embeddings" : "block " + l), row);
    layer.forEach(function (ids, t) {
      var p = lens.top_probs[l][t][0], cell = el("td", lens.top_tokens[l][t][0] + " " + p.toFixed(2), row);
      cell.className = "tok"; cell.style.background = "rgba(8,48,107," + (0.6 * p).toFixed(3) + ")";
      cell.title = lens.top_tokens[l][t].map(function (s, i) { return s + " " + lens.top_probs[l][t][i].toFixed(3); }).join("\\n");
    });
  });
  var ht = el("table", undefined, document.getElementById("heads")), hr = el("tr", undefined, ht);
  el("th", "head", hr); data.heads.alibi_slopes.forEach(function (s, n) { el("th", "head " + n, hr); });
  hr = el("tr", undefined, ht); el("th", "ALiBi slope", hr);
  data.heads.alibi_slopes.forEach(function (s) { el("td", s.toPrecision(3), hr); });
  data.heads.mean_distance.forEach(function (layer, l) {
    var r = el("tr", undefined, ht); el("th", "layer " + l + " mean distance", r);
    layer.forEach(function (d) { el("td", d.toFixed(2), r); });
  });
  var pics = document.getElementById("pictures");
  pictures.forEach(function (name, l) {
    el("h3", "layer " + l, pics); var img = el("img", undefined, pics); img.src = name; img.alt = "attention of layer " + l;
  });
  var r = data.residual, max = Math.max.apply(null, r.stream.concat(r.attention, r.mlp)) || 1;
  var ns = "http://www.w3.org/2000/svg", width = 640, rowh = 16;
  var svg = document.createElementNS(ns, "svg"); svg.setAttribute("width", width);
  svg.setAttribute("height", rowh * 3 * r.stream.length + 10);
  var y = 0;
  function bar(label, value, color) {
    var rect = document.createElementNS(ns, "rect"); rect.setAttribute("x", 170); rect.setAttribute("y", y + 2);
    rect.setAttribute("width", Math.max(1, (width - 240) * value / max)); rect.setAttribute("height", rowh - 4);
    rect.setAttribute("fill", color); svg.appendChild(rect);
    var text = document.createElementNS(ns, "text"); text.setAttribute("x", 0); text.setAttribute("y", y + rowh - 4);
    text.setAttribute("font-size", "12"); text.textContent = label + "  " + value.toFixed(2); svg.appendChild(text);
    y += rowh;
  }
  r.stream.forEach(function (v, i) {
    bar(i < r.attention.length ? "|h| into block " + i : "|h| after the last", v, "#08306b");
    if (i < r.attention.length) { bar("  + attention", r.attention[i], "#6baed6"); bar("  + MLP", r.mlp[i], "#fd8d3c"); }
  });
  svg.setAttribute("height", y + 4); document.getElementById("norms").appendChild(svg);
  document.body.setAttribute("data-explain", "ok");
})();
</script>
</body></html>
"""
