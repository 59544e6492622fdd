"""`minibloom tokenize`: the ids, tokens and offsets of a text (--explain: its BPE merges)."""

from __future__ import annotations

import argparse
import json

from ..embedded import EMBEDDED_CHECKPOINT
from .common import check_checkpoint, load_tokenizer


def add_parser(sub) -> None:
    """Add `tokenize` to the `minibloom` subcommands."""
    from ..explain.cli import add_tokenize_options

    tok = sub.add_parser("tokenize", help="show the ids, tokens and offsets of a text",
                         description="Encode TEXT with the checkpoint's tokenizer.json; print a table of "
                                     "position, id, token (byte-level form, 'Ġ' is a space), offsets and text.")
    tok.add_argument("text")
    tok.add_argument("--checkpoint", default=EMBEDDED_CHECKPOINT, metavar="DIR")
    tok.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_tokenize_options(tok)


def run(args: argparse.Namespace) -> None:
    """Print the table (or --json, or --explain's merge trace) of TEXT's tokens."""
    tok = load_tokenizer(check_checkpoint(args.checkpoint, need_config=False))
    if args.explain:
        from ..explain.cli import tokenize_explain

        print(tokenize_explain(tok, args.text, args.json))
        return
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
