"""`minibloom train`: fine-tune a causal LM on a text file, or any head on labelled JSONL/CSV rows.

    minibloom train OUT --text plays.txt --steps 200                 # causal LM, from the embedded model
    minibloom train OUT --rows reviews.jsonl --task seq-cls         # {"text": ..., "label": 1} per line
    minibloom train OUT --rows ner.csv --task token-cls --num-labels 5

OUT receives resumable checkpoints (run the same command again to continue), the final model
(config.json, model.safetensors, the tokenizer), history.json and loss_curve.png. Training deletes
only checkpoints it marked as its own, refuses to write over its source or a model it did not write
(--force to do so), and stops at a NaN/inf loss before saving it (exit 1). See docs/training.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings

import numpy as np

from ..atomic import atomic_write_bytes
from ..backends import BACKENDS
from ..config import MAX_LABELS
from ..embedded import EMBEDDED_CHECKPOINT
from ..errors import CheckpointError, InputError
from .data import eval_windows, prepare_targets, read_rows, rows_to_batch, window_batch
from .loop import NonFiniteLossError, check_resumable, describe, fit, own_checkpoints, plot_losses, read_latest

# What a model directory holds: OUT with one of these and no checkpoint of ours needs --force.
MODEL_FILES = ("config.json", "model.safetensors.index.json", "pytorch_model.bin", "tokenizer.json")
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
    p.add_argument("--no-resume", action="store_true",
                   help="start a new run even if OUT holds one (its checkpoints are replaced by the new run's)")
    p.add_argument("--force", action="store_true",
                   help="write into OUT even if it holds a model minibloom train did not write, or is --checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


MAX_STEPS = 10**12 - 1  # checkpoint names hold at most 12 digits (loop.CHECKPOINT_RE)


def check_ranges(args: argparse.Namespace) -> None:
    """Every numeric flag in its range, before anything is read or written (one line, exit 2)."""
    finite = math.isfinite
    rules = [("--steps", 1 <= args.steps <= MAX_STEPS, f"an integer from 1 to {MAX_STEPS:,}"), ("--batch-size", args.batch_size >= 1, "an integer >= 1"),
             ("--seq-len", args.seq_len >= 2, "an integer >= 2"), ("--warmup", args.warmup >= 0, "an integer >= 0"),
             ("--lr", finite(args.lr) and args.lr > 0, "a finite number > 0"),
             ("--weight-decay", finite(args.weight_decay) and args.weight_decay >= 0, "a finite number >= 0"),
             ("--clip", finite(args.clip) and args.clip > 0, "a finite number > 0 (the largest gradient norm)"),
             ("--eval-every", args.eval_every >= 0, "an integer >= 0 (0: only at the end)"),
             ("--save-every", args.save_every >= 0, "an integer >= 0 (0: only at the end)"),
             ("--eval-fraction", 0 < args.eval_fraction < 1, "a number in (0, 1)"),
             ("--num-labels", args.num_labels is None or 1 <= args.num_labels <= MAX_LABELS, f"in [1, {MAX_LABELS}]"),
             ("--seed", args.seed >= 0, "an integer >= 0")]
    for flag, ok, want in rules:
        if not ok:
            raise InputError(f"{flag} must be {want}, got {getattr(args, flag[2:].replace('-', '_'))}")
    if args.lr * args.weight_decay >= 1:
        raise InputError(f"--lr x --weight-decay must be < 1 (each step multiplies the weights by 1 - lr * wd), "
                         f"got {args.lr} x {args.weight_decay}")


def check_out(args: argparse.Namespace) -> None:
    """What training may write in OUT, checked before any work: not its source checkpoint, not over a
    model it did not write (without --force), and a resumable checkpoint complete and consistent."""
    out = args.out
    if os.path.lexists(out) and not os.path.isdir(out):
        raise CheckpointError(f"OUT {out} exists and is not a directory")
    if os.path.exists(args.checkpoint) and not args.force:
        source, target = os.path.realpath(args.checkpoint), os.path.realpath(out)
        if os.path.commonpath([source, target]) == target:
            raise InputError(f"--checkpoint {args.checkpoint} is OUT or inside it: training would write over its "
                             "source model; pass --force to do so, or choose another OUT")
    if not os.path.isdir(out):
        return
    read_latest(out)  # a `latest` that is not ours is refused, whatever the mode
    if not args.no_resume:
        check_resumable(out)
    if not own_checkpoints(out) and not args.force:
        theirs = sorted(n for n in os.listdir(out) if n in MODEL_FILES or n.endswith(".safetensors"))
        if theirs:
            raise InputError(f"{out} holds a model that minibloom train did not write ({theirs[0]}); pass --force to "
                             "write over it, or choose another OUT")


def cmd_train(args: argparse.Namespace) -> int:
    import minibloom

    check_ranges(args)
    check_out(args)
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
        rows, id2label, num_labels = prepare_targets(read_rows(args.rows), args.task, args.num_labels,
                                                     from_csv=args.rows.endswith(".csv"), where=args.rows)
        order = np.random.default_rng(args.seed).permutation(len(rows))
        n_eval = max(1, int(len(rows) * args.eval_fraction)) if len(rows) > 1 else 0
        held_rows, train_rows = [rows[i] for i in order[:n_eval]], [rows[i] for i in order[n_eval:]]
        cls = getattr(minibloom, HEADS[args.task])
        overrides = ({} if args.task == "qa" else {"num_labels": num_labels} if id2label is None else
                     {"id2label": id2label, "label2id": {name: i for i, name in id2label.items()}})
        with warnings.catch_warnings():
            if not args.no_resume and read_latest(args.out) is not None:  # the head comes from the checkpoint
                warnings.filterwarnings("ignore", message=r".*; newly initialised")
            model = cls.from_pretrained(args.checkpoint, backend=args.backend, storage="float32", threads=args.threads,
                                        seed=args.seed, **overrides)
        pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0

        def next_batch(step: int) -> dict:
            pick = np.random.default_rng([args.seed, step]).integers(0, len(train_rows), args.batch_size)
            return rows_to_batch([train_rows[i] for i in pick], tokenizer, args.task, args.seq_len, pad)

        eval_batches = [rows_to_batch(held_rows[i:i + args.batch_size], tokenizer, args.task, args.seq_len, pad)
                        for i in range(0, len(held_rows), args.batch_size)]
    os.makedirs(args.out, exist_ok=True)
    try:
        state = fit(model, next_batch, eval_batches, steps=args.steps, lr=args.lr, warmup=args.warmup,
                    weight_decay=args.weight_decay, clip=args.clip, eval_every=args.eval_every,
                    save_every=args.save_every, out_dir=args.out, resume=not args.no_resume, progress=not args.quiet)
    except NonFiniteLossError as e:  # not a usage mistake: the run itself failed (exit 1, one line)
        print(f"minibloom: error: {e}", file=sys.stderr)
        return 1
    model.save_pretrained(args.out)
    tokenizer.save(args.out)  # the tokenizer it was trained with (also for a hub name), in a transaction
    atomic_write_bytes(os.path.join(args.out, "history.json"), json.dumps(state).encode("utf-8"))
    plotted = plot_losses(state, os.path.join(args.out, "loss_curve.png"))
    final = ""
    if state["eval"]:
        step, loss = state["eval"][-1]
        metrics = dict(state["metrics"][-1][1]) if state["metrics"] and state["metrics"][-1][0] == step else {}
        final = f", held-out loss {loss:.4f}" + describe(metrics, loss, type(model).__name__)
    print(f"trained {state['step']} steps{final}; model in {args.out}"
          + ("" if plotted else " (install matplotlib for loss_curve.png)"))
    return 0
