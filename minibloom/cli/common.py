"""What the commands share: the checkpoint and backend options, and the checks of a checkpoint
argument, made before any work so that a mistyped path is one line naming the flag (exit 2)."""

from __future__ import annotations

import argparse
import os
import sys

from ..backends import BACKEND_CHOICES
from ..embedded import EMBEDDED_CHECKPOINT
from ..errors import MinibloomError
from ..storage import STORAGES


class UsageError(MinibloomError):
    """A command-line mistake: printed as one line naming the flag, exit 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (`minibloom: error: ...`) and exit 2, as every other
    user error; `--help` still shows the usage."""

    def error(self, message: str):
        """Print the one line and exit 2 (argparse's default prints the whole usage first)."""
        print(f"minibloom: error: {self.prog.removeprefix('minibloom ')}: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def add_checkpoint_options(p: argparse.ArgumentParser) -> None:
    """--checkpoint DIR (default: the embedded model), then the backend options."""
    p.add_argument("--checkpoint", default=EMBEDDED_CHECKPOINT, metavar="DIR", help="default: the embedded model")
    add_backend_options(p)


def add_backend_options(p: argparse.ArgumentParser) -> None:
    """--backend, --storage, --threads: how the model computes."""
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                   help="auto (default): numba where it is installed, else numpy; numba: compiled kernels; "
                        "numpy: the readable reference (slower)")
    p.add_argument("--storage", choices=STORAGES, default="auto",
                   help="how weight matrices are held (compute stays float32); auto: as the checkpoint "
                        "stores them, others convert while loading and say so")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="compute threads (default: the cores this process may run on; 1 on a machine "
                        "other programs keep busy)")


def add_directory_options(p: argparse.ArgumentParser) -> None:
    """[DIR] or --checkpoint DIR, for the commands that inspect one checkpoint (`checkpoint_of`)."""
    p.add_argument("directory", nargs="?", default=None, help="the checkpoint (or use --checkpoint)")
    p.add_argument("--checkpoint", default=None, metavar="DIR", help="default: the embedded model")


def check_checkpoint(directory: str, flag: str = "--checkpoint", need_config: bool = True) -> str:
    """A checkpoint directory that exists and holds config.json (or a hub name), checked before any work."""
    from ..hub import looks_like_repo_id

    if os.path.isdir(directory):
        if need_config and not os.path.isfile(os.path.join(directory, "config.json")):
            raise UsageError(f"{flag} {directory}: not a checkpoint directory (no config.json in it)")
        return directory
    if os.path.exists(directory):
        raise UsageError(f"{flag} {directory}: not a directory")
    if looks_like_repo_id(directory) and "/" in directory and not os.path.isdir(directory.split("/")[0]):
        return directory  # a hub name ("bigscience/bloom-560m"): the HF cache, or a download, by from_pretrained
    raise UsageError(f"{flag}: checkpoint directory not found: {directory}")


def checkpoint_of(args: argparse.Namespace) -> str:
    """DIR or --checkpoint DIR (not both); the embedded model when neither is given."""
    if args.directory is not None and args.checkpoint is not None:
        raise UsageError(f"give the checkpoint once: DIR ({args.directory}) or --checkpoint ({args.checkpoint})")
    given = args.checkpoint if args.checkpoint is not None else args.directory
    return EMBEDDED_CHECKPOINT if given is None else check_checkpoint(
        given, "--checkpoint" if args.checkpoint is not None else "DIR")


def load_tokenizer(directory: str):
    """The checkpoint's tokenizer; a directory without tokenizer.json is a usage error naming --ids."""
    from ..tokenizer import BloomTokenizer

    if os.path.isdir(directory) and not os.path.isfile(os.path.join(directory, "tokenizer.json")):
        raise UsageError(f"--checkpoint {directory} has no tokenizer.json: give the prompt as token ids with --ids")
    return BloomTokenizer.from_pretrained(directory)
