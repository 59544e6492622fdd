"""`minibloom golden`: dump or compare golden outputs, for checking a port of BLOOM op by op.

    golden dump      run a checkpoint, write every intermediate (or a generation / training golden)
    golden tokenize  write a tokenizer golden (JSON Lines)
    golden compare   name the first op where two runs part (exit 1), or the first differing token

The actions live in golden_dump.py and golden_compare.py; the format in docs/golden.md.
"""

from __future__ import annotations

import argparse

from . import golden_compare, golden_dump


def add_parser(sub) -> None:
    """Add `golden` and its actions to the `minibloom` subcommands."""
    golden = sub.add_parser("golden", help="dump or compare golden outputs (every intermediate tensor)",
                            description="Golden files record every intermediate of a forward pass under stable "
                                        "names (docs/golden.md), for checking a port of BLOOM op by op.")
    gsub = golden.add_subparsers(dest="golden_command", required=True, metavar="ACTION")
    golden_dump.add_parser(gsub)
    golden_dump.add_tokenize_parser(gsub)
    golden_compare.add_parser(gsub)


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; its exit status (compare: 1 when the files part)."""
    if args.golden_command == "tokenize":
        return golden_dump.run_tokenize(args)
    if args.golden_command == "dump":
        return golden_dump.run(args)
    return golden_compare.run(args)
