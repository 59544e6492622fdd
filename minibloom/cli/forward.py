"""`minibloom forward`: run BloomModel on token ids and print the last hidden state."""

from __future__ import annotations

import argparse

import numpy as np

from .common import UsageError, add_backend_options, add_directory_options, checkpoint_of


def add_parser(sub) -> None:
    """Add `forward` to the `minibloom` subcommands."""
    fwd = sub.add_parser("forward", help="run BloomModel on token ids and print the last hidden state")
    add_directory_options(fwd)
    fwd.add_argument("--ids", type=int, nargs="+", required=True, metavar="ID", help="token ids of one sequence")
    add_backend_options(fwd)


def run(args: argparse.Namespace) -> None:
    """Print the shape, mean and std of the last hidden state, and each token's first values."""
    from ..model import BloomModel

    model = BloomModel.from_pretrained(checkpoint_of(args), backend=args.backend, storage=args.storage,
                                       threads=args.threads)
    big = [i for i in args.ids if not -2**63 <= i < 2**63]  # past int64: the model's own check names the rest
    if big:
        raise UsageError(f"--ids: {big[0]} is not a token id of this model (0..{model.config.vocab_size - 1})")
    hidden = model(np.array([args.ids])).last_hidden_state[0]  # [T, H]
    np.set_printoptions(precision=4, suppress=True, linewidth=100)
    print(f"last_hidden_state: shape {tuple(hidden.shape)}, mean {hidden.mean():.6f}, std {hidden.std():.6f}")
    for t, row in enumerate(hidden):
        print(f"  token {t} (id {args.ids[t]}): {row[:6]}{' ...' if row.size > 6 else ''}")
