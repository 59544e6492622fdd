"""`minibloom init`: write a randomly initialised BLOOM checkpoint (config.json + model.safetensors),
with transformers' initialisation, streamed to disk a few MB at a time."""

from __future__ import annotations

import argparse
import os
import shutil

from ..config import BLOOM_FAMILY, BloomConfig
from ..weights import param_count
from .common import UsageError

# The default sizes: a model that writes and runs in a blink, for trying a port or a pipeline.
TINY = dict(vocab_size=1024, hidden_size=64, n_layer=2, n_head=8)


def add_parser(sub) -> None:
    """Add `init` to the `minibloom` subcommands."""
    init = sub.add_parser("init", help="write a randomly initialised BLOOM checkpoint",
                          description="Write config.json + model.safetensors with transformers' initialisation "
                                      "(N(0, 0.02) matrices, zero biases). Default: a tiny model.")
    init.add_argument("directory")
    init.add_argument("--like", choices=sorted(BLOOM_FAMILY), help="use the shapes of a released model")
    for name in ("vocab_size", "hidden_size", "n_layer", "n_head"):
        init.add_argument("--" + name.replace("_", "-"), type=int, dest=name, help=f"default {TINY[name]}")
    init.add_argument("--seed", type=int, default=0)
    init.add_argument("--force", action="store_true", help="replace a model already in DIR (its weights, "
                      "config, tokenizer and generation_config.json; other files stay)")
    init.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                      help="storage dtype of the weights (compute is always float32)")


def run(args: argparse.Namespace) -> None:
    """Write the random model into DIR (replacing one there only with --force), in one transaction."""
    from ..atomic import transaction
    from ..config import CONFIG_NAME
    from ..model import BloomModel
    from ..weights import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, SHARD_NAME, write_random_weights

    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    existing = model_files(args.directory)
    if existing and not args.force:
        shown = ", ".join(existing[:4]) + (", ..." if len(existing) > 4 else "")
        raise UsageError(f"{args.directory} already holds a model ({shown}); pass --force to replace it")
    config = config_of(args)
    check_disk_space(args.directory, param_count(config) * (4 if args.dtype == "float32" else 2))
    with transaction(args.directory) as txn:  # config, weights and the stale files switch together
        # streamed: the random weights are drawn and written a few MB at a time (issue 24: the
        # whole model and its converted copy made `--like bloom-560m` peak at 5.6 GB)
        write_random_weights(txn.path(SAFE_WEIGHTS_NAME), BloomModel.param_shapes(config), args.dtype,
                             config.initializer_range, args.seed)
        for name in os.listdir(txn.directory):  # a sharded layout's files, as save_state_dict removes them
            if name == SAFE_WEIGHTS_INDEX_NAME or SHARD_NAME.match(name):
                txn.remove(name)
        txn.write_bytes(CONFIG_NAME, config.to_json_string().encode("utf-8"))
        for name in REPLACED_WITH_THE_MODEL:
            if name in existing:
                txn.remove(name)
    print(f"wrote a random BLOOM ({param_count(config):,} parameters) to {args.directory}"
          + (" (replacing the model there)" if existing else ""))


def config_of(args: argparse.Namespace) -> BloomConfig:
    """The tiny model's sizes, or --like's, with --vocab-size, --hidden-size, ... over them; checked."""
    sizes = dict(TINY, vocab_size=250880, **BLOOM_FAMILY[args.like]) if args.like else dict(TINY)
    sizes.update({k: getattr(args, k) for k in TINY if getattr(args, k) is not None})
    config = BloomConfig(**sizes)
    config.validate()
    config.architectures = ["BloomModel"]
    return config


# The files of a checkpoint that `init --force` replaces: a new config.json and weights go in, and the
# old model's tokenizer and generation settings go out with the old weights (random weights beside a
# trained tokenizer would look like a usable model). Weight files of another layout (shards, the index)
# are removed by the save itself (`weights.save_state_dict`). Nothing else in DIR is touched.
REPLACED_WITH_THE_MODEL = ("generation_config.json", "tokenizer.json", "tokenizer_config.json",
                           "special_tokens_map.json", "added_tokens.json")


def model_files(directory: str) -> list[str]:
    """The files in `directory` that show it already holds a model (config, weights, tokenizer)."""
    try:
        names = os.listdir(directory)
    except OSError:  # absent, or not a directory (the save names the problem)
        return []
    return sorted(n for n in names if n in ("config.json",) + REPLACED_WITH_THE_MODEL or n.endswith(".safetensors")
                  or n == "model.safetensors.index.json")


def check_disk_space(directory: str, nbytes: int) -> None:
    """Refuse, before writing, a file larger than the free space where `directory` is (or would be):
    streamed, init's weights take no memory, so the disk is what a huge --hidden-size exhausts."""
    where = os.path.abspath(directory)
    while not os.path.exists(where) and os.path.dirname(where) != where:
        where = os.path.dirname(where)
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return  # cannot tell: the write itself reports a full disk
    if nbytes > free:
        raise UsageError(f"{directory}: the weights need {nbytes:,} bytes on disk, {free:,} are free there")
