"""`minibloom train`: fine-tune a causal LM on a text file, or any head on labelled JSONL/CSV rows.

    minibloom train OUT --text plays.txt --steps 200                 # causal LM, from the embedded model
    minibloom train OUT --rows reviews.jsonl --task seq-cls         # {"text": ..., "label": 1} per line
    minibloom train OUT --rows ner.csv --task token-cls --num-labels 5

OUT receives resumable checkpoints (run the same command again to continue), the final model
(config.json, model.safetensors, the tokenizer), history.json and loss_curve.png.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings

import numpy as np

from ..atomic import atomic_write_bytes
from ..backends import BACKENDS
from ..embedded import EMBEDDED_CHECKPOINT
from ..errors import InputError
from .data import eval_windows, read_rows, rows_to_batch, window_batch
from .loop import fit, plot_losses

HEADS = {"seq-cls": "BloomForSequenceClassification", "token-cls": "BloomForTokenClassification",
         "qa": "BloomForQuestionAnswering"}


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="fine-tune on a text file or labelled rows (resumable)",
                       description=__doc__.split("\n\n")[0] + ". Progress bar with loss and tokens/s; "
                       "held-out loss every --eval-every steps; run again to resume from OUT.")
    p.add_argument("out", metavar="OUT", help="directory for checkpoints, the final model and the loss curve")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", metavar="FILE", help="a UTF-8 text file: train a causal LM")
    source.add_argument("--rows", metavar="FILE", help=".jsonl or .csv rows with 'text' and the task's target")
    p.add_argument("--task", choices=sorted(HEADS), default="seq-cls",
                   help="for --rows: seq-cls ('label'), token-cls ('labels'), qa ('start_position', 'end_position')")
    p.add_argument("--num-labels", type=int, help="classes (default: from the labels)")
    p.add_argument("--checkpoint", default=EMBEDDED_CHECKPOINT, metavar="DIR", help="start from (default: embedded)")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=128, help="window length (text) or truncation (rows)")
    p.add_argument("--lr", type=float, default=3e-4, help="peak learning rate of the cosine schedule")
    p.add_argument("--warmup", type=int, default=10, help="linear warm-up steps")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--clip", type=float, default=1.0, help="clip gradients to this global norm")
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--eval-fraction", type=float, default=0.1, help="share of the data held out")
    p.add_argument("--backend", choices=BACKENDS, default="numba")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="compute threads (default 1, as every command; training is compute-bound, so give "
                        "it the cores that are idle)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-resume", action="store_true", help="start over even if OUT holds a checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def infer_num_labels(rows: list[dict], task: str) -> int:
    if task == "qa":
        return 2
    if task == "seq-cls":
        values = [row.get("label") for row in rows]
    else:
        values = [v for row in rows for v in row.get("labels", [])]
    if any(isinstance(v, list) for v in values):
        return len(values[0])
    if any(isinstance(v, float) for v in values):
        return 1
    return max(int(v) for v in values if v is not None and v != -100) + 1


def cmd_train(args: argparse.Namespace) -> int:
    import minibloom

    if args.steps < 1 or args.batch_size < 1 or args.seq_len < 2 or not 0 < args.eval_fraction < 1:
        raise InputError("--steps and --batch-size must be >= 1, --seq-len >= 2, --eval-fraction in (0, 1)")
    # training widens 2-byte weights to float32 on purpose: no "converting ... while loading" warning
    warnings.filterwarnings("ignore", message=r".*: converting the \w+ weights to float32 while loading")
    tokenizer = minibloom.BloomTokenizer.from_pretrained(args.checkpoint)
    if args.text:
        if not os.path.isfile(args.text):
            raise InputError(f"{args.text}: no such file")
        with open(args.text, encoding="utf-8") as f:
            stream = np.asarray(tokenizer.encode(f.read()), np.int64)
        split = int(stream.size * (1 - args.eval_fraction))
        train, held = stream[:split], stream[split:]
        model = minibloom.BloomForCausalLM.from_pretrained(args.checkpoint, backend=args.backend, storage="float32", threads=args.threads)

        def next_batch(step: int) -> dict:
            return window_batch(train, args.batch_size, args.seq_len, np.random.default_rng([args.seed, step]))

        eval_batches = eval_windows(held, args.batch_size, args.seq_len)
    else:
        rows = read_rows(args.rows)
        order = np.random.default_rng(args.seed).permutation(len(rows))
        n_eval = max(1, int(len(rows) * args.eval_fraction)) if len(rows) > 1 else 0
        held_rows, train_rows = [rows[i] for i in order[:n_eval]], [rows[i] for i in order[n_eval:]]
        num_labels = args.num_labels or infer_num_labels(rows, args.task)
        cls = getattr(minibloom, HEADS[args.task])
        overrides = {} if args.task == "qa" else {"num_labels": num_labels}
        model = cls.from_pretrained(args.checkpoint, backend=args.backend, storage="float32", threads=args.threads, seed=args.seed,
                                    **overrides)
        pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0

        def next_batch(step: int) -> dict:
            pick = np.random.default_rng([args.seed, step]).integers(0, len(train_rows), args.batch_size)
            return rows_to_batch([train_rows[i] for i in pick], tokenizer, args.task, args.seq_len, pad)

        eval_batches = [rows_to_batch(held_rows[i:i + args.batch_size], tokenizer, args.task, args.seq_len, pad)
                        for i in range(0, len(held_rows), args.batch_size)]
    os.makedirs(args.out, exist_ok=True)
    state = fit(model, next_batch, eval_batches, steps=args.steps, lr=args.lr, warmup=args.warmup,
                weight_decay=args.weight_decay, clip=args.clip, eval_every=args.eval_every,
                save_every=args.save_every, out_dir=args.out, resume=not args.no_resume, progress=not args.quiet)
    model.save_pretrained(args.out)
    tokenizer.save(args.out)  # the tokenizer it was trained with (also for a hub name), in a transaction
    atomic_write_bytes(os.path.join(args.out, "history.json"), json.dumps(state).encode("utf-8"))
    plotted = plot_losses(state, os.path.join(args.out, "loss_curve.png"))
    final = f", held-out loss {state['eval'][-1][1]:.4f}" if state["eval"] else ""
    print(f"trained {state['step']} steps{final}; model in {args.out}"
          + ("" if plotted else " (install matplotlib for loss_curve.png)"))
    return 0
