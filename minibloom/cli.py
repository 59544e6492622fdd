"""The `minibloom` command.

    minibloom init DIR [--like bloom-560m]   write a randomly initialised checkpoint (hub layout)
    minibloom info DIR                       config summary, parameter count, bytes on disk
    minibloom forward DIR --ids 1 2 3        run BloomModel and print the last hidden state

Errors in the user's input (a missing checkpoint, a bad id) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from .backends import BACKENDS
from .storage import STORAGE_DTYPES

from . import __version__
from .config import BLOOM_FAMILY, BloomConfig
from .errors import MinibloomError
from .model import BloomModel
from .storage import STORAGE_DTYPES
from .weights import bloom_param_shapes, checkpoint_files

TINY = dict(vocab_size=1024, hidden_size=64, n_layer=2, n_head=8)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minibloom", description="BLOOM in NumPy: inspect checkpoints and run the model offline.",
        epilog="A checkpoint is a directory with config.json and model.safetensors (or a sharded index), "
               "as transformers' save_pretrained writes it.")
    parser.add_argument("--version", action="version", version=f"minibloom {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

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

    info = sub.add_parser("info", help="summarise a checkpoint: config, parameters, bytes")
    info.add_argument("directory")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")

    fwd = sub.add_parser("forward", help="run BloomModel on token ids and print the last hidden state")
    fwd.add_argument("directory")
    fwd.add_argument("--ids", type=int, nargs="+", required=True, metavar="ID", help="token ids of one sequence")
    fwd.add_argument("--backend", choices=BACKENDS, default="numpy",
                     help="numpy: the readable reference; numba: compiled kernels (faster)")
    fwd.add_argument("--storage", choices=sorted(STORAGE_DTYPES), default="float32",
                     help="keep weight matrices in 2 bytes (compute stays float32)")
    return parser


def cmd_init(args: argparse.Namespace) -> None:
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
               "bytes_on_disk": sum(os.path.getsize(f) for f in files)}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        width = max(map(len, summary))
        for key, value in summary.items():
            print(f"{key:<{width}}  {', '.join(value) if isinstance(value, list) else value}")


def cmd_forward(args: argparse.Namespace) -> None:
    model = BloomModel.from_pretrained(args.directory, backend=args.backend, storage=args.storage)
    hidden = model(np.array([args.ids])).last_hidden_state[0]  # [T, H]
    np.set_printoptions(precision=4, suppress=True, linewidth=100)
    print(f"last_hidden_state: shape {tuple(hidden.shape)}, mean {hidden.mean():.6f}, std {hidden.std():.6f}")
    for t, row in enumerate(hidden):
        print(f"  token {t} (id {args.ids[t]}): {row[:6]}{' ...' if row.size > 6 else ''}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {"init": cmd_init, "info": cmd_info, "forward": cmd_forward}[args.command](args)
    except MinibloomError as e:
        print(f"minibloom: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `minibloom ... | head`: the reader left; stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
