"""The command-line side of the microscope, wired into `minibloom` by minibloom/cli/:

    minibloom explain TEXT [--checkpoint DIR] --out DIR [--top-k K] [--force]
    minibloom tokenize --explain TEXT        (each piece's bytes and merges, with their ranks)
"""

from __future__ import annotations

import argparse
import json

from ..embedded import EMBEDDED_CHECKPOINT
from ..errors import InputError


def add_parser(sub) -> None:
    """Add `explain` to the `minibloom` subcommands."""
    p = sub.add_parser("explain", help="write an offline page of what every layer and head does on a text",
                       description="Run TEXT through a BloomForCausalLM and write DIR/index.html (opens from disk, "
                                   "nothing fetched), one PNG of attention maps per layer and DIR/explain.json: the "
                                   "tokens with their BPE merges, the logit lens, every head's attention, ALiBi slope "
                                   "and mean distance, and the residual stream's norms (docs/explain.md).")
    p.add_argument("text", help="\\n, \\t, \\r and \\\\ are read as in `generate`")
    p.add_argument("--no-escape", action="store_true", help="take \\n and \\t in TEXT literally")
    p.add_argument("--checkpoint", default=EMBEDDED_CHECKPOINT, metavar="DIR", help="default: the embedded model")
    p.add_argument("--out", required=True, metavar="DIR", help="where to write (empty, new, or an earlier explain's)")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="tokens per logit-lens cell (default 5)")
    p.add_argument("--force", action="store_true", help="write into a non-empty directory that explain did not write "
                                                         "(its other files are left alone)")


def add_tokenize_options(parser: argparse.ArgumentParser) -> None:
    """`minibloom tokenize --explain`."""
    parser.add_argument("--explain", action="store_true",
                        help="show each piece's bytes and the BPE merges applied, in order, with their ranks")


def tokenize_explain(tokenizer, text: str, as_json: bool = False) -> str:
    """What `minibloom tokenize --explain` prints: the merge trace as text, or as JSON with --json."""
    from .tokens import format_trace, merge_trace

    traces = merge_trace(tokenizer, text)
    if as_json:
        return json.dumps({"input_ids": [i for t in traces for i in t.ids], "pieces": [t.to_dict() for t in traces]},
                          ensure_ascii=False, indent=2)
    return format_trace(traces)


def cmd_explain(args: argparse.Namespace) -> None:
    from .. import BloomForCausalLM
    from ..cli.common import check_checkpoint, load_tokenizer
    from ..cli.prompt import unescape
    from .report import MAX_TOKENS, check_directory, explain, write_report

    if args.top_k < 1:
        raise InputError(f"--top-k must be at least 1, got {args.top_k}")
    check_directory(args.out, args.force)  # before the model loads: a wrong --out fails at once
    directory = check_checkpoint(args.checkpoint)
    tok = load_tokenizer(directory)
    model = BloomForCausalLM.from_pretrained(directory)
    text = args.text if args.no_escape else unescape(args.text)
    data = explain(model, tok, text, k=min(args.top_k, model.config.vocab_size))
    names = write_report(args.out, data, force=args.force)
    print(f"wrote {len(names)} files into {args.out}: open {args.out}/index.html "
          f"({len(data['input_ids'])} tokens of at most {MAX_TOKENS}, {model.config.n_layer} layers)")
