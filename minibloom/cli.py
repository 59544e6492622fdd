"""The `minibloom` command: every subcommand works offline on the embedded checkpoint by default.

    minibloom generate "ROMEO."                 continue a text, streaming tokens (tokens/s at the end)
    minibloom tokenize "Hello world"            ids, tokens and offsets, as a table or --json
    minibloom info [DIR]                        config summary, parameter count, bytes on disk
    minibloom forward [DIR] --ids 1 2 3         run BloomModel and print the last hidden state
    minibloom golden dump --text "..." -o F     record every intermediate of a forward pass
    minibloom golden compare EXPECTED ACTUAL    name the first op where two runs part (exit 1)
    minibloom init DIR [--like bloom-560m]      write a randomly initialised checkpoint (hub layout)

DIR / --checkpoint: a directory as transformers' save_pretrained writes it (config.json,
model.safetensors or a sharded index, tokenizer.json). Default: the small BLOOM trained on
Shakespeare that ships inside minibloom. Errors in the user's input print one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from . import __version__
from .backends import BACKENDS
from .config import BLOOM_FAMILY, BloomConfig
from .embedded import EMBEDDED_CHECKPOINT
from .errors import MinibloomError, TokenizerFileError
from .storage import STORAGE_DTYPES
from .weights import bloom_param_shapes, checkpoint_files

TINY = dict(vocab_size=1024, hidden_size=64, n_layer=2, n_head=8)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minibloom", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="BLOOM in NumPy, offline: generate text, tokenize, inspect checkpoints, and dump or\n"
                    "compare golden outputs when porting BLOOM to another stack.",
        epilog=f"A checkpoint is a directory as transformers' save_pretrained writes it. Without one, the\n"
               f"commands use the embedded Shakespeare model ({EMBEDDED_CHECKPOINT}).\n"
               f"Run `minibloom COMMAND --help` for each command's options.")
    parser.add_argument("--version", action="version", version=f"minibloom {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", help="continue a text, streaming the new tokens",
                         description="Continue TEXT with BloomForCausalLM, printing tokens as they come and the "
                                     "speed (tokens/s) on stderr at the end. Greedy unless --sample.")
    gen.add_argument("text")
    _checkpoint_args(gen)
    gen.add_argument("--max-new-tokens", type=int, default=60)
    gen.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    gen.add_argument("--temperature", type=float, default=1.0)
    gen.add_argument("--top-k", type=int, default=50)
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument("--repetition-penalty", type=float, default=1.0)
    gen.add_argument("--num-beams", type=int, default=1, help="beam search (no streaming)")
    gen.add_argument("--seed", type=int, default=0, help="seed for --sample (the output is reproducible)")

    tok = sub.add_parser("tokenize", help="show the ids, tokens and offsets of a text",
                         description="Encode TEXT with the checkpoint's tokenizer.json; print a table of "
                                     "position, id, token (byte-level form, 'Ġ' is a space), offsets and text.")
    tok.add_argument("text")
    tok.add_argument("--checkpoint", default=EMBEDDED_CHECKPOINT, metavar="DIR")
    tok.add_argument("--json", action="store_true", help="print JSON instead of a table")

    info = sub.add_parser("info", help="summarise a checkpoint: config, parameters, bytes")
    info.add_argument("directory", nargs="?", default=EMBEDDED_CHECKPOINT)
    info.add_argument("--json", action="store_true", help="print JSON instead of text")

    fwd = sub.add_parser("forward", help="run BloomModel on token ids and print the last hidden state")
    fwd.add_argument("directory", nargs="?", default=EMBEDDED_CHECKPOINT)
    fwd.add_argument("--ids", type=int, nargs="+", required=True, metavar="ID", help="token ids of one sequence")
    _backend_args(fwd)

    golden = sub.add_parser("golden", help="dump or compare golden outputs (every intermediate tensor)",
                            description="Golden files record every intermediate of a forward pass under stable "
                                        "names (docs/golden.md), for checking a port of BLOOM op by op.")
    gsub = golden.add_subparsers(dest="golden_command", required=True, metavar="ACTION")
    dump = gsub.add_parser("dump", help="run a checkpoint and write a golden file",
                           description="Run a checkpoint on one or more sequences and write every intermediate. "
                                       "Several --text make a left-padded batch (the padding catches ALiBi "
                                       "position bugs); --inputs reads {\"input_ids\": [[...]], "
                                       "\"attention_mask\": [[...]]} from a JSON file. --storage defaults to "
                                       "the checkpoint's own dtype, so the weights stay memory-mapped and a "
                                       "checkpoint larger than the RAM streams through.")
    _checkpoint_args(dump)
    what = dump.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", action="append", help="text to tokenize (repeat for a left-padded batch)")
    what.add_argument("--ids", type=int, nargs="+", metavar="ID", help="token ids of one sequence")
    what.add_argument("--inputs", metavar="JSON", help="a JSON file with input_ids [B][T] and attention_mask [B][T]")
    dump.set_defaults(storage=None)  # default: the checkpoint's own dtype, so the weights stay memory-mapped
    dump.add_argument("-o", "--output", default="golden.safetensors")
    dump.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                      help="compute (and store) the golden as transformers does in this dtype")
    cmp = gsub.add_parser("compare", help="compare two golden files, or a golden file and a live run",
                          description="Compare every tensor of EXPECTED with ACTUAL (a golden file: safetensors, "
                                      ".npz or a directory of NAME.npy; or a checkpoint directory run on EXPECTED's "
                                      "inputs) in forward order. Exit 0 when all pass, 1 with the first divergent "
                                      "op and the position of its worst element, 2 when a file cannot be read. "
                                      "The format and every option: docs/golden-format.md.")
    cmp.add_argument("expected")
    cmp.add_argument("actual")
    cmp.add_argument("--atol", type=float, help="one absolute tolerance for every tensor (default: by depth and dtype)")
    cmp.add_argument("--rtol", type=float, help="an element passes if |diff| <= atol + rtol*|expected|")
    cmp.add_argument("--tolerances", metavar="FILE", help="JSON {name glob: {atol, rtol}}; the first match wins")
    cmp.add_argument("--only", action="append", default=[], metavar="GLOB",
                     help="compare only these names (repeatable)")
    cmp.add_argument("--layers", metavar="A:B", help="compare only layers A <= i < B (other tensors stay)")
    cmp.add_argument("--logits-only", action="store_true", help="compare only the head's outputs")
    cmp.add_argument("--skip-missing", action="store_true", help="a name the port did not record is reported "
                     "'not recorded' instead of failing")
    cmp.add_argument("--ignore-padding", action="store_true", help="compare only real tokens and allowed "
                     "query/key pairs")
    cmp.add_argument("--scores-up-to-row-constant", action="store_true", help="compare alibi and scores up to a "
                     "per-row constant (the paper's relative ALiBi j - i)")
    cmp.add_argument("--port-dtype", choices=("float32", "float16", "bfloat16", "float64"),
                     help="the dtype the port computes in (default: each tensor's stored dtype)")
    cmp.add_argument("--failures-only", action="store_true", help="print only the failing tensors and layers")
    cmp.add_argument("--json", action="store_true")
    cmp.add_argument("--plot", metavar="PNG", help="write an error-vs-depth plot (needs matplotlib)")
    cmp.add_argument("--backend", choices=BACKENDS, default="numpy", help="for a live run")

    init = sub.add_parser("init", help="write a randomly initialised BLOOM checkpoint",
                          description="Write config.json + model.safetensors with transformers' initialisation "
                                      "(N(0, 0.02) matrices, zero biases). Default: a tiny model.")
    init.add_argument("directory")
    init.add_argument("--like", choices=sorted(BLOOM_FAMILY), help="use the shapes of a released model")
    for name in ("vocab_size", "hidden_size", "n_layer", "n_head"):
        init.add_argument("--" + name.replace("_", "-"), type=int, dest=name, help=f"default {TINY[name]}")
    init.add_argument("--seed", type=int, default=0)
    init.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                      help="storage dtype of the weights (compute is always float32)")
    return parser


def _backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=BACKENDS, default="numpy",
                   help="numpy: the readable reference; numba: compiled kernels (faster)")
    p.add_argument("--storage", choices=sorted(STORAGE_DTYPES), default="float32",
                   help="keep weight matrices in 2 bytes (compute stays float32)")


def _checkpoint_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=EMBEDDED_CHECKPOINT, metavar="DIR", help="default: the embedded model")
    _backend_args(p)


def _tokenizer(directory: str):
    from .tokenizer import BloomTokenizer

    if not os.path.isfile(os.path.join(directory, "tokenizer.json")):
        raise TokenizerFileError(f"{directory}: no tokenizer.json in this checkpoint (use --ids instead of text)")
    return BloomTokenizer.from_pretrained(directory)


def cmd_generate(args: argparse.Namespace) -> None:
    from .heads import BloomForCausalLM

    tok = _tokenizer(args.checkpoint)
    model = BloomForCausalLM.from_pretrained(args.checkpoint, backend=args.backend, storage=args.storage)
    prompt = tok(args.text)["input_ids"][None]
    if prompt.size == 0:
        raise MinibloomError("the text encodes to no tokens; give some text to continue")
    new_ids: list[int] = []
    shown = ""
    print(args.text, end="", flush=True)

    def show(tokens: np.ndarray) -> None:  # decode everything so far; print what is new
        nonlocal shown
        new_ids.append(int(tokens[0]))
        text = tok.decode(new_ids, skip_special_tokens=True)
        if not text.endswith("\ufffd"):  # wait for the rest of a character split across tokens
            print(text[len(shown):], end="", flush=True)
            shown = text

    start = time.perf_counter()
    out = model.generate(prompt, max_new_tokens=args.max_new_tokens, do_sample=args.sample,
                         temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                         repetition_penalty=args.repetition_penalty, num_beams=args.num_beams, seed=args.seed,
                         streamer=None if args.num_beams > 1 else show, progress=False)
    seconds = time.perf_counter() - start
    if args.num_beams > 1:
        print(tok.decode(out[0, prompt.shape[1]:], skip_special_tokens=True), end="")
    elif len(tok.decode(new_ids, skip_special_tokens=True)) > len(shown):
        print(tok.decode(new_ids, skip_special_tokens=True)[len(shown):], end="")
    n = out.shape[1] - prompt.shape[1]
    print()
    print(f"[{n} tokens in {seconds:.2f} s: {n / max(seconds, 1e-9):.1f} tokens/s]", file=sys.stderr)


def cmd_tokenize(args: argparse.Namespace) -> None:
    tok = _tokenizer(args.checkpoint)
    ids, offsets = tok.encode_with_offsets(args.text)
    rows = [{"position": i, "id": t, "token": tok.convert_ids_to_tokens(t), "start": s, "end": e,
             "text": args.text[s:e]} for i, (t, (s, e)) in enumerate(zip(ids, offsets))]
    if args.json:
        print(json.dumps({"input_ids": ids, "tokens": rows}, ensure_ascii=False, indent=2))
        return
    print(f"{'pos':>4} {'id':>7}  {'token':20} {'offsets':>11}  text")
    for r in rows:
        print(f"{r['position']:>4} {r['id']:>7}  {r['token']:20} {r['start']:>5}-{r['end']:<5}  {r['text']!r}")
    print(f"{len(ids)} tokens for {len(args.text)} characters")


def cmd_init(args: argparse.Namespace) -> None:
    from .model import BloomModel

    sizes = dict(TINY, vocab_size=250880, **BLOOM_FAMILY[args.like]) if args.like else dict(TINY)
    sizes.update({k: getattr(args, k) for k in TINY if getattr(args, k) is not None})
    config = BloomConfig(**sizes)
    BloomModel(config, seed=args.seed).save_pretrained(args.directory, dtype=args.dtype)
    print(f"wrote a random BLOOM ({_count(config):,} parameters) to {args.directory}")


def _count(config: BloomConfig) -> int:
    return sum(int(np.prod(s)) for s in bloom_param_shapes(config).values())


def cmd_info(args: argparse.Namespace) -> None:
    config = BloomConfig.from_pretrained(args.directory)
    files = sorted(set(checkpoint_files(args.directory).values()))
    summary = {"directory": os.path.abspath(args.directory), "vocab_size": config.vocab_size,
               "hidden_size": config.hidden_size, "n_layer": config.n_layer, "n_head": config.n_head,
               "head_dim": config.head_dim, "pretraining_tp": config.pretraining_tp,
               "slow_but_exact": config.slow_but_exact, "parameters": _count(config),
               "weight_files": [os.path.basename(f) for f in files],
               "bytes_on_disk": sum(os.path.getsize(f) for f in files),
               "tokenizer": os.path.isfile(os.path.join(args.directory, "tokenizer.json"))}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        width = max(map(len, summary))
        for key, value in summary.items():
            print(f"{key:<{width}}  {', '.join(value) if isinstance(value, list) else value}")


def cmd_forward(args: argparse.Namespace) -> None:
    from .model import BloomModel

    model = BloomModel.from_pretrained(args.directory, backend=args.backend, storage=args.storage)
    hidden = model(np.array([args.ids])).last_hidden_state[0]  # [T, H]
    np.set_printoptions(precision=4, suppress=True, linewidth=100)
    print(f"last_hidden_state: shape {tuple(hidden.shape)}, mean {hidden.mean():.6f}, std {hidden.std():.6f}")
    for t, row in enumerate(hidden):
        print(f"  token {t} (id {args.ids[t]}): {row[:6]}{' ...' if row.size > 6 else ''}")


def cmd_golden(args: argparse.Namespace) -> int:
    from . import golden
    from .heads import BloomForCausalLM

    if args.golden_command == "dump":
        ids, mask, text = _golden_inputs(args)
        storage = args.storage or golden.checkpoint_storage(args.checkpoint)  # as on disk: memory-mapped
        model = BloomForCausalLM.from_pretrained(args.checkpoint, backend=args.backend, storage=storage)
        record = golden.dump(model, args.output, ids, mask, text=text, dtype=args.dtype)
        print(f"wrote {len(record)} tensors for {ids.shape[0]} x {ids.shape[1]} tokens to {args.output}")
        return 0
    for flag in ("atol", "rtol"):
        if getattr(args, flag) is not None:
            golden.check_tolerance(getattr(args, flag), "--" + flag)
    layers = golden.parse_layers(args.layers) if args.layers is not None else None
    expected = golden.load(args.expected)
    actual = golden.live_run(expected, args.actual, args.backend) if os.path.isdir(args.actual) and not any(
        f.endswith(".npy") for f in os.listdir(args.actual)) else golden.load(args.actual)
    report = golden.compare(expected, actual, atol=args.atol, rtol=args.rtol, only=args.only, layers=layers,
                            skip_missing=args.skip_missing, logits_only=args.logits_only,
                            ignore_padding=args.ignore_padding, tolerances=args.tolerances,
                            scores_up_to_row_constant=args.scores_up_to_row_constant, port_dtype=args.port_dtype)
    if args.plot:
        golden.plot_errors(report, args.plot)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, allow_nan=False))
    else:
        print(golden.format_report(report, failures_only=args.failures_only))
    return 0 if report.ok else 1


def _golden_inputs(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str | None]:
    """ids [B, T] and mask [B, T] from --ids, --inputs JSON, or the --text(s), left-padded."""
    if args.ids:
        ids = np.array([args.ids])
        return ids, np.ones_like(ids), None
    if args.inputs:
        return _read_inputs_json(args.inputs) + (None,)
    tok = _tokenizer(args.checkpoint)
    rows = [tok(t)["input_ids"] for t in args.text]
    if any(len(r) == 0 for r in rows):
        raise MinibloomError("a --text encodes to no tokens")
    T = max(map(len, rows))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = np.array([[pad] * (T - len(r)) + list(r) for r in rows], np.int64)  # [B, T], left padding
    mask = np.array([[0] * (T - len(r)) + [1] * len(r) for r in rows], np.int64)
    return ids, mask, args.text[0] if len(args.text) == 1 else json.dumps(args.text)


def _read_inputs_json(path: str) -> tuple[np.ndarray, np.ndarray]:
    from .errors import InputError

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


COMMANDS = {"generate": cmd_generate, "tokenize": cmd_tokenize, "info": cmd_info, "forward": cmd_forward,
            "golden": cmd_golden, "init": cmd_init}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args) or 0
    except MinibloomError as e:
        print(f"minibloom: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `minibloom ... | head`: the reader left; stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
