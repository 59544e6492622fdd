"""The `minibloom` command: every subcommand works offline on the embedded checkpoint by default.

    minibloom generate "ROMEO."                 continue a text, streaming tokens, then a timing line
    minibloom generate -f prompt.txt --temp 0.8 the prompt from a file (- for stdin); --temp/--top-p sample
    minibloom tokenize "Hello world"            ids, tokens and offsets, as a table or --json
                                                (--explain: each piece's bytes and BPE merges, with ranks)
    minibloom explain "ROMEO." --out DIR        an offline page: logit lens, attention per head, merges
    minibloom info [DIR]                        config summary, parameters, weight dtypes, bytes, tokenizer
                                                (a config.json the tensors disagree with: exit 2, as loading)
    minibloom forward [DIR] --ids 1 2 3         run BloomModel and print the last hidden state
    minibloom golden dump --text "..." -o F     record every intermediate of a forward pass
    minibloom golden compare EXPECTED ACTUAL    name the first op where two runs part (exit 1)
    minibloom init DIR [--like bloom-560m]      write a randomly initialised checkpoint (hub layout); a model
                                                already in DIR is replaced only with --force
    minibloom train OUT --text FILE             fine-tune (text: causal LM; --rows JSONL/CSV: any head)

DIR / --checkpoint DIR (every command takes --checkpoint): a directory as transformers'
save_pretrained writes it (config.json, model.safetensors or a sharded index, tokenizer.json), or a
hub name with the `hub` extra. Default: the small BLOOM trained on Shakespeare that ships inside
minibloom. Errors in the user's input (flags, paths) are checked before the model loads and print
one line naming the flag, exit 2; those that need the model (a generation_config.json setting, a
length past the memory budget) are checked before anything is printed.

One module per command, each with `add_parser(subparsers)` and `run(args)`: generate.py,
tokenize.py, info.py, forward.py, golden.py, init.py here; explain and train in explain/cli.py and
training/cli.py. common.py holds the shared options and checks, exits.py the exit statuses.
"""

from __future__ import annotations

import argparse

from .. import __version__
from ..embedded import EMBEDDED_CHECKPOINT
from ..explain import cli as explain
from ..training import cli as train
from . import exits, forward, generate, golden, info, init, tokenize
from .common import OneLineParser

# Each command's parser, in the order `minibloom --help` lists them, and what runs it. Tests may
# replace a command here (`COMMANDS["tokenize"] = ...`): `main` looks it up at each call.
PARSERS = (generate.add_parser, tokenize.add_parser, explain.add_parser, info.add_parser, forward.add_parser,
           golden.add_parser, init.add_parser, train.add_parser)
COMMANDS = {"generate": generate.run, "tokenize": tokenize.run, "explain": explain.cmd_explain, "info": info.run,
            "forward": forward.run, "golden": golden.run, "init": init.run, "train": train.cmd_train}


def build_parser() -> argparse.ArgumentParser:
    """`minibloom`'s parser: the global flags, then each command's own."""
    parser = OneLineParser(
        prog="minibloom", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="BLOOM in NumPy, offline: generate text, tokenize, inspect checkpoints, and dump or\n"
                    "compare golden outputs when porting BLOOM to another stack.",
        epilog=f"A checkpoint is a directory as transformers' save_pretrained writes it. Without one, the\n"
               f"commands use the embedded Shakespeare model ({EMBEDDED_CHECKPOINT}).\n"
               f"Run `minibloom COMMAND --help` for each command's options.")
    parser.add_argument("--version", action="version", version=f"minibloom {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser in PARSERS:
        add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit status: 0 done, 1 failed (a write error, an unexpected error; one line,
    no traceback unless MINIBLOOM_DEBUG is set), 2 bad input (a MinibloomError), 130 Ctrl-C."""

    def command() -> int:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args) or 0

    return exits.run(command)
