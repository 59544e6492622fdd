"""`minibloom info`: summarise a checkpoint (config, parameters, weight dtypes, bytes, tokenizer)
from its config.json and the safetensors headers alone: no weight is read. A config.json that the
tensors disagree with is refused (exit 2), as loading refuses it."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from ..config import BloomConfig
from ..weights import check_sizes_against_tensors, checkpoint_files, param_count
from .common import add_directory_options, checkpoint_of, load_tokenizer


def add_parser(sub) -> None:
    """Add `info` to the `minibloom` subcommands."""
    info = sub.add_parser("info", help="summarise a checkpoint: config, parameters, dtypes, bytes, tokenizer")
    add_directory_options(info)
    info.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> None:
    """Print the summary of DIR (or --checkpoint), as text or --json."""
    from ..hub import resolve

    summary = summarise(resolve(checkpoint_of(args)))  # a hub name -> its snapshot in the HF cache
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)


def summarise(directory: str) -> dict:
    """The summary's fields, in the order they print; "notes" lists what a reader should know."""
    config = BloomConfig.from_pretrained(directory)
    files = sorted(set(checkpoint_files(directory).values()))
    dtypes, shapes = read_headers(files)
    check_tensors(config, shapes, directory)
    summary = {"directory": os.path.abspath(directory), "vocab_size": config.vocab_size,
               "hidden_size": config.hidden_size, "n_layer": config.n_layer, "n_head": config.n_head,
               "head_dim": config.head_dim, "layer_norm_epsilon": config.layer_norm_epsilon,
               "apply_residual_connection_post_layernorm": config.apply_residual_connection_post_layernorm,
               "pretraining_tp": config.pretraining_tp,
               "slow_but_exact": config.slow_but_exact, "parameters": param_count(config),
               "weight_files": [os.path.basename(f) for f in files],
               "weight_dtypes": {k: dtypes[k] for k in sorted(dtypes)},
               "bytes_on_disk": sum(os.path.getsize(f) for f in files),
               "tokenizer": os.path.isfile(os.path.join(directory, "tokenizer.json"))}
    notes = []
    if summary["tokenizer"]:
        tok = load_tokenizer(directory)
        summary["tokenizer_tokens"] = len(tok)
        if len(tok) != config.vocab_size:
            notes.append(f"the tokenizer has {len(tok)} tokens, the model {config.vocab_size} rows: "
                         + (f"ids {len(tok)}..{config.vocab_size - 1} have no text (BLOOM pads its vocab so)"
                            if len(tok) < config.vocab_size else
                            f"tokenizer ids >= {config.vocab_size} cannot be fed to the model"))
    summary["notes"] = notes
    return summary


def read_headers(files: list[str]) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    """({dtype: tensor count}, {tensor name: shape}) from the safetensors headers of `files`."""
    from ..safetensors_io import read_header

    dtypes: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for f in files:
        for name, info in read_header(f)[0].items():
            dtypes[info.dtype] = dtypes.get(info.dtype, 0) + 1
            shapes[name] = tuple(info.shape)
    return dtypes, shapes


def check_tensors(config: BloomConfig, shapes: dict[str, tuple[int, ...]], directory: str) -> None:
    """The tensors' shapes against config.json, as the loaders check them."""
    from ..int8_io import is_int8_checkpoint
    from ..model import BloomModel
    from ..pretrained import HEAD_TENSORS
    from ..weights import check_state_dict, strip_base_prefix

    # A config.json that disagrees with the tensors (n_layer=10**9 over 2 layers' weights) is refused,
    # as from_pretrained refuses it: an error naming both (exit 2), not a summary of a model that is not there.
    check_sizes_against_tensors(config, shapes, directory)
    if not is_int8_checkpoint(directory):  # every base tensor's shape, as the loaders check them
        stored = {n: np.broadcast_to(np.int8(0), s) for n, s in strip_base_prefix(shapes).items()}  # no memory
        check_state_dict(stored, BloomModel.param_shapes(config), ignored=HEAD_TENSORS, where=directory)


def print_summary(summary: dict) -> None:
    """One aligned line per field, then the notes."""
    width = max(map(len, summary))
    for key, value in summary.items():
        if key == "notes":
            continue
        shown = (", ".join(value) if isinstance(value, list) else
                 ", ".join(f"{k} x{v}" for k, v in value.items()) + " tensors" if isinstance(value, dict) else value)
        print(f"{key:<{width}}  {shown}")
    for note in summary["notes"]:
        print(f"note: {note}")
