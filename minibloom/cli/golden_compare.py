"""`minibloom golden compare`: compare two golden files (or a golden file and a live run) tensor by
tensor in forward order, naming the first op where they part; or, for *.jsonl, a tokenizer golden
with a port's records, naming the first differing record and token."""

from __future__ import annotations

import argparse
import json
import os

from ..backends import BACKENDS
from .common import UsageError


def add_parser(gsub) -> None:
    """Add `compare` to the `golden` actions."""
    cmp = gsub.add_parser("compare", help="compare two golden files, or a golden file and a live run",
                          description="Compare every tensor of EXPECTED with ACTUAL (a golden file: safetensors, "
                                      ".npz or a directory of NAME.npy; or a checkpoint directory run on EXPECTED's "
                                      "inputs) in forward order. Exit 0 when all pass, 1 with the first divergent "
                                      "op and the position of its worst element, 2 when a file cannot be read. "
                                      "An EXPECTED ending in .jsonl is a tokenizer golden: ACTUAL is the port's "
                                      "records, and the first differing record and token are named. "
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
    cmp.add_argument("--allow-unknown", action="store_true", help="names the golden does not hold (e.g. "
                     "'transformer.h.0...') are listed, not failed")
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


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every tensor (or record) passes, 1 otherwise, with the report."""
    if args.expected.endswith(".jsonl") or args.actual.endswith(".jsonl"):
        return compare_tokens(args)
    from .. import golden

    layers, tolerances = read_options(args)
    expected = golden.load(args.expected)
    actual = golden.live_run(expected, args.actual, args.backend) if os.path.isdir(args.actual) and not any(
        f.endswith(".npy") for f in os.listdir(args.actual)) else golden.load(args.actual)
    report = golden.compare(expected, actual, atol=args.atol, rtol=args.rtol, only=args.only, layers=layers,
                            skip_missing=args.skip_missing, logits_only=args.logits_only,
                            ignore_padding=args.ignore_padding, tolerances=tolerances,
                            scores_up_to_row_constant=args.scores_up_to_row_constant, port_dtype=args.port_dtype,
                            allow_unknown=args.allow_unknown)
    if args.plot:
        golden.plot_errors(report, args.plot)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, allow_nan=False))
    else:
        print(golden.format_report(report, failures_only=args.failures_only))
    return 0 if report.ok else 1


def read_options(args: argparse.Namespace) -> tuple:
    """The tolerances, --layers and --only, checked before any file is read: (layers, tolerances)."""
    from .. import golden

    for flag in ("atol", "rtol"):
        if getattr(args, flag) is not None:
            golden.check_tolerance(getattr(args, flag), "--" + flag)
    layers = golden.parse_layers(args.layers) if args.layers is not None else None
    golden.compile_globs(args.only, "--only")  # length and count bounded, before any file is read
    tolerances = golden.read_tolerances(args.tolerances) if args.tolerances is not None else None
    return layers, tolerances


# the tensor compare's options, which mean nothing for a tokenizer golden
TENSOR_OPTIONS = ("atol", "rtol", "tolerances", "layers", "port_dtype", "plot")
TENSOR_FLAGS = ("only", "logits_only", "allow_unknown", "ignore_padding", "scores_up_to_row_constant")


def compare_tokens(args: argparse.Namespace) -> int:
    """A tokenizer golden (.jsonl) with a port's records; the tensor options are refused by name."""
    from ..golden import tokens as golden_tokens

    if not (args.expected.endswith(".jsonl") and args.actual.endswith(".jsonl")):
        raise UsageError(f"a tokenizer golden is compared with a port's records: both files *.jsonl, got "
                         f"{args.expected} and {args.actual}")
    used = [o for o in TENSOR_OPTIONS if getattr(args, o) is not None] + [o for o in TENSOR_FLAGS if getattr(args, o)]
    if used:
        raise UsageError(f"--{used[0].replace('_', '-')} applies to tensor goldens, not to a tokenizer golden (.jsonl)")
    expected = golden_tokens.read_records(args.expected, golden=True)
    actual = golden_tokens.read_records(args.actual)
    report = golden_tokens.compare_tokens(expected, actual, skip_missing=args.skip_missing)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(golden_tokens.format_token_report(report, failures_only=args.failures_only))
    return 0 if report.ok else 1
