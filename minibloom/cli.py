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
from .storage import STORAGES
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
    dump = gsub.add_parser("dump", help="run a checkpoint and write a golden file")
    _checkpoint_args(dump)
    what = dump.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="text to tokenize with the checkpoint's tokenizer")
    what.add_argument("--ids", type=int, nargs="+", metavar="ID", help="token ids of one sequence")
    dump.add_argument("-o", "--output", default="golden.safetensors")
    cmp = gsub.add_parser("compare", help="compare two golden files, or a golden file and a live run",
                          description="Compare every tensor of EXPECTED with ACTUAL (a golden file, or a checkpoint "
                                      "directory run on EXPECTED's inputs) in forward order. Exit 0 when all "
                                      "pass, 1 with the first divergent op and the position of its worst element.")
    cmp.add_argument("expected")
    cmp.add_argument("actual")
    cmp.add_argument("--atol", type=float, default=1e-5)
    cmp.add_argument("--rtol", type=float, default=1e-5, help="an element passes if |diff| <= atol + rtol*|expected|")
    cmp.add_argument("--json", action="store_true")
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
    p.add_argument("--storage", choices=STORAGES, default="auto",
                   help="how weight matrices are held (compute stays float32); auto: as the checkpoint "
                        "stores them, others convert while loading and say so")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="compute threads (default 1: holds up when the cores are shared; more helps "
                        "prefill on idle cores)")


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
    model = BloomForCausalLM.from_pretrained(args.checkpoint, backend=args.backend, storage=args.storage,
                                             threads=args.threads)
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

    model = BloomModel.from_pretrained(args.directory, backend=args.backend, storage=args.storage,
                                       threads=args.threads)
    hidden = model(np.array([args.ids])).last_hidden_state[0]  # [T, H]
    np.set_printoptions(precision=4, suppress=True, linewidth=100)
    print(f"last_hidden_state: shape {tuple(hidden.shape)}, mean {hidden.mean():.6f}, std {hidden.std():.6f}")
    for t, row in enumerate(hidden):
        print(f"  token {t} (id {args.ids[t]}): {row[:6]}{' ...' if row.size > 6 else ''}")


def cmd_golden(args: argparse.Namespace) -> int:
    from . import golden
    from .heads import BloomForCausalLM

    if args.golden_command == "dump":
        ids = np.array([args.ids]) if args.ids else _tokenizer(args.checkpoint)(args.text)["input_ids"][None]
        if ids.size == 0:
            raise MinibloomError("the text encodes to no tokens")
        model = BloomForCausalLM.from_pretrained(args.checkpoint, backend=args.backend, storage=args.storage)
        record = golden.dump(model, args.output, ids, text=args.text)
        print(f"wrote {len(record)} tensors for {ids.shape[1]} tokens to {args.output}")
        return 0
    expected = golden.load(args.expected)
    actual = golden.live_run(expected, args.actual, args.backend) if os.path.isdir(args.actual) \
        else golden.load(args.actual)
    report = golden.compare(expected, actual, atol=args.atol, rtol=args.rtol)
    print(json.dumps(report.to_dict(), indent=2) if args.json else golden.format_report(report))
    return 0 if report.ok else 1


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
