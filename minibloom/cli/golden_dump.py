"""`minibloom golden dump` and `golden tokenize`: run a checkpoint (or its tokenizer) and write a
golden file -- every intermediate of a forward pass; with --generate, each step of a generation;
with --train, the backward and AdamW steps; `tokenize`, a tokenizer golden (JSON Lines)."""

from __future__ import annotations

import argparse
import json

import numpy as np

from ..embedded import EMBEDDED_CHECKPOINT
from ..errors import InputError, MinibloomError
from .common import UsageError, add_checkpoint_options, check_checkpoint, load_tokenizer

TRAIN_OPTIONS = ("steps", "lr", "betas", "eps", "weight_decay")


def add_parser(gsub) -> None:
    """Add `dump` to the `golden` actions."""
    dump = gsub.add_parser("dump", help="run a checkpoint and write a golden file",
                           description="Run a checkpoint on one or more sequences and write every intermediate. "
                                       "Several --text make a left-padded batch (the padding catches ALiBi "
                                       "position bugs); --inputs reads {\"input_ids\": [[...]], "
                                       "\"attention_mask\": [[...]]} from a JSON file. --storage defaults to "
                                       "the checkpoint's own dtype, so the weights stay memory-mapped and a "
                                       "checkpoint larger than the RAM streams through.")
    add_checkpoint_options(dump)
    what = dump.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", action="append", help="text to tokenize (repeat for a left-padded batch)")
    what.add_argument("--ids", type=int, nargs="+", metavar="ID", help="token ids of one sequence")
    what.add_argument("--inputs", metavar="JSON", help="a JSON file with input_ids [B][T] and attention_mask [B][T]")
    dump.set_defaults(storage=None)  # default: the checkpoint's own dtype, so the weights stay memory-mapped
    dump.add_argument("-o", "--output", default="golden.safetensors")
    dump.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                      help="compute (and store) the golden as transformers does in this dtype")
    dump.add_argument("--generate", type=int, metavar="N", help="a generation golden instead: N greedy steps with "
                      "the KV cache, each step's logits and cache rows (docs/golden.md)")
    sampling = dump.add_argument_group("sampling golden (docs/golden.md, with --generate): each step's processed "
                                       "scores, probabilities, uniform draw and token, as generate(do_sample=True)")
    sampling.add_argument("--sample", action="store_true", help="sample the --generate steps instead of greedy")
    sampling.add_argument("--temperature", type=float, help="default 1.0")
    sampling.add_argument("--top-k", type=int, help="default 50 (generate's; 0: off)")
    sampling.add_argument("--top-p", type=float, help="default 1.0 (off)")
    sampling.add_argument("--seed", type=int, help="the seed generate(seed=...) takes (default 0)")
    train = dump.add_argument_group("training golden (docs/golden.md): the backward and AdamW steps too")
    train.add_argument("--train", action="store_true", help="also record the loss (labels = the ids, -100 on "
                       "padding), d.<name>, grad.<parameter> and --steps AdamW steps on the same batch")
    train.add_argument("--steps", type=int, help="AdamW steps to record (default 2)")
    train.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    train.add_argument("--betas", type=float, nargs=2, metavar=("B1", "B2"), help="default 0.9 0.999")
    train.add_argument("--eps", type=float, help="default 1e-8")
    train.add_argument("--weight-decay", type=float, help="decoupled weight decay (default 0.01)")


def add_tokenize_parser(gsub) -> None:
    """Add `tokenize` to the `golden` actions."""
    tokz = gsub.add_parser("tokenize", help="write a tokenizer golden (JSON Lines: ids, offsets, decoded text)",
                           description="Tokenize a built-in corpus of hard cases (every split class, white space "
                                       "runs, emoji sequences, special-token strings, non-Latin scripts, long "
                                       "runs) and the --texts, one JSON record per text: {\"name\", \"text\", "
                                       "\"ids\", \"offsets\", \"decoded\", \"tokens\"}. Compare a port's records "
                                       "with `golden compare GOLDEN.jsonl PORT.jsonl` (docs/golden-format.md).")
    tokz.add_argument("--checkpoint", default=EMBEDDED_CHECKPOINT, metavar="DIR",
                      help="a directory holding tokenizer.json (default: the embedded model's)")
    tokz.add_argument("--texts", metavar="FILE", help="more texts: one per line, or a JSON list if FILE ends in .json")
    tokz.add_argument("--no-builtin", action="store_true", help="only the --texts, without the built-in corpus")
    tokz.add_argument("-o", "--output", required=True, metavar="OUT.jsonl")


def run(args: argparse.Namespace) -> int:
    """Write the golden the flags ask for: a forward pass, a generation (--generate) or training (--train)."""
    from .. import golden
    from ..heads import BloomForCausalLM

    directory = check_checkpoint(args.checkpoint)  # a mistyped path says so, before any work
    ids, mask, text = golden_inputs(args)
    check_sampling_flags(args)
    if args.generate is not None:
        return dump_generate(args, directory, ids, mask, text)
    if args.train or any(getattr(args, o) is not None for o in TRAIN_OPTIONS):
        return dump_train(args, directory, ids, mask, text)
    model = BloomForCausalLM.from_pretrained(directory, backend=args.backend, threads=args.threads,
                                             storage=args.storage or "auto")  # auto: memory-mapped as on disk
    record = golden.dump(model, args.output, ids, mask, text=text, dtype=args.dtype)
    print(f"wrote {len(record)} tensors for {ids.shape[0]} x {ids.shape[1]} tokens to {args.output}")
    return 0


def check_sampling_flags(args: argparse.Namespace) -> None:
    """--sample, --temperature, --top-k, --top-p and --seed belong to a sampling golden only."""
    given = [f for f in ("temperature", "top_k", "top_p", "seed") if getattr(args, f) is not None]
    if (args.sample or given) and (args.generate is None or not args.sample):
        raise UsageError(f"--{(given or ['sample'])[0].replace('_', '-')} is a sampling golden's: give "
                         "--generate N --sample")


def dump_generate(args: argparse.Namespace, directory: str, ids: np.ndarray, mask: np.ndarray,
                  text: str | None) -> int:
    """--generate N: a generation golden (greedy, or --sample), checked before the model loads."""
    from ..golden import generate as golden_generate
    from ..heads import BloomForCausalLM

    if args.train or args.dtype != "float32":
        raise UsageError("--generate writes a float32 generation golden: leave out --train and --dtype")
    if not 1 <= args.generate <= 1000:
        raise UsageError(f"--generate must be from 1 to 1000, got {args.generate}")
    settings = {"temperature": 1.0 if args.temperature is None else args.temperature,
                "top_k": 50 if args.top_k is None else args.top_k, "top_p": 1.0 if args.top_p is None else args.top_p,
                "seed": 0 if args.seed is None else args.seed} if args.sample else {}
    if args.sample:
        golden_generate.check_sampling(**settings)  # before the model loads
    model = BloomForCausalLM.from_pretrained(directory, backend=args.backend, threads=args.threads,
                                             storage=args.storage or "auto")
    record = golden_generate.dump_generate(model, args.output, ids, mask, steps=args.generate, text=text,
                                           sample=args.sample, **settings)
    print(f"wrote {len(record)} tensors ({args.generate} {'sampled' if args.sample else 'greedy'} steps) for "
          f"{ids.shape[0]} x {ids.shape[1]} "
          f"prompt tokens to {args.output}")
    return 0


def dump_train(args: argparse.Namespace, directory: str, ids: np.ndarray, mask: np.ndarray,
               text: str | None) -> int:
    """--train: a training golden (loss, gradients, AdamW steps), checked before the model loads."""
    from ..golden import train as golden_train
    from ..heads import BloomForCausalLM

    given = [o for o in TRAIN_OPTIONS if getattr(args, o) is not None]
    if not args.train:
        raise UsageError(f"--{given[0].replace('_', '-')} applies to a training golden: add --train")
    if args.dtype != "float32":
        raise UsageError("--train records float32 gradients: leave out --dtype")
    options = {o: tuple(getattr(args, o)) if o == "betas" else getattr(args, o) for o in given}
    golden_train.check_options(**options)  # before the model is loaded
    model = BloomForCausalLM.from_pretrained(directory, backend=args.backend, threads=args.threads,
                                             storage="float32")  # the optimizer moves the weights in place
    record = golden_train.dump_train(model, args.output, ids, mask, text=text, **options)
    print(f"wrote {len(record)} tensors (forward, backward, {options.get('steps', 2)} AdamW steps) for "
          f"{ids.shape[0]} x {ids.shape[1]} tokens to {args.output}")
    return 0


def run_tokenize(args: argparse.Namespace) -> int:
    """`golden tokenize`: the built-in corpus and --texts through the tokenizer, as JSON Lines."""
    from ..golden import tokens as golden_tokens

    if not args.output.endswith(".jsonl"):
        raise UsageError(f"-o {args.output}: a tokenizer golden is named *.jsonl (compare tells it by the suffix)")
    texts = golden_tokens.read_texts(args.texts) if args.texts else []
    tok = load_tokenizer(check_checkpoint(args.checkpoint, need_config=False))
    records = golden_tokens.dump_tokens(tok, args.output, texts, builtin=not args.no_builtin)
    print(f"wrote {len(records)} records ({sum(len(r['ids']) for r in records)} tokens) to {args.output}")
    return 0


def golden_inputs(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str | None]:
    """ids [B, T] and mask [B, T] from --ids, --inputs JSON, or the --text(s), left-padded."""
    if args.ids:
        ids = np.array([args.ids])
        return ids, np.ones_like(ids), None
    if args.inputs:
        return read_inputs_json(args.inputs) + (None,)
    tok = load_tokenizer(args.checkpoint)
    rows = [tok(t)["input_ids"] for t in args.text]
    if any(len(r) == 0 for r in rows):
        raise MinibloomError("a --text encodes to no tokens")
    T = max(map(len, rows))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = np.array([[pad] * (T - len(r)) + list(r) for r in rows], np.int64)  # [B, T], left padding
    mask = np.array([[0] * (T - len(r)) + [1] * len(r) for r in rows], np.int64)
    return ids, mask, args.text[0] if len(args.text) == 1 else json.dumps(args.text)


def read_inputs_json(path: str) -> tuple[np.ndarray, np.ndarray]:
    """--inputs JSON: ids [B, T] and mask [B, T] of 0/1, checked."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.loads(f.read(64 << 20))
        ids = np.array(data["input_ids"], dtype=np.int64)
        mask = np.array(data.get("attention_mask", np.ones_like(ids)), dtype=np.int64)
    except OSError as e:
        raise InputError(f"--inputs {path}: cannot read it: {e.strerror or e}") from None
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError, AttributeError) as e:
        raise InputError(f"--inputs {path}: needs {{\"input_ids\": [[int]], \"attention_mask\": [[0|1]]}} "
                         f"with equal-length rows ({type(e).__name__}: {e})") from None
    if ids.ndim != 2 or ids.size == 0 or mask.shape != ids.shape or not np.isin(mask, (0, 1)).all():
        raise InputError(f"--inputs {path}: input_ids must be [B][T] (non-empty) and attention_mask the same "
                         f"shape of 0/1, got {ids.shape} and {mask.shape}")
    return ids, mask
