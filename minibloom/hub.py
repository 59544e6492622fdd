"""Hub names: `from_pretrained("bigscience/bloom-560m")` through `huggingface_hub` (the `hub` extra).

A name that is a local directory is used as it is. Any other name that is a valid hub repo id
("org/name") is looked up in the local Hugging Face cache first, then downloaded (with
huggingface_hub's progress bars) unless `HF_HUB_OFFLINE` is set. Only the files minibloom reads
are fetched (`allow_patterns`): bloom-560m's repo also holds PyTorch, Flax and ONNX copies of the
weights that it would be wasteful to download.

The cache layout huggingface_hub keeps (and this module only reads through huggingface_hub):

    $HF_HUB_CACHE/models--org--name/refs/main               the commit hash "main" points at
    $HF_HUB_CACHE/models--org--name/snapshots/<hash>/<file> symlinks to ...
    $HF_HUB_CACHE/models--org--name/blobs/<sha>             ... the file contents, stored once

subtle: huggingface_hub reads HF_HUB_OFFLINE and HF_HUB_CACHE once, when it is imported; they are
read again here on every call, so a script (or a test) that sets them later is still obeyed.
"""

from __future__ import annotations

import fnmatch
import os

from .errors import CheckpointError

# What minibloom reads from a checkpoint: the model's files, and the tokenizer's.
MODEL_FILES = ("config.json", "*.safetensors", "*.safetensors.index.json", "generation_config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
CONFIG_FILES = ("config.json",)
REQUIRED = {"config.json", "*.safetensors", "tokenizer.json"}  # a cached snapshot without these is incomplete
INSTALL_HINT = "pip install 'minibloom[hub]'"


def is_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as huggingface_hub reads it: 1, ON, YES, TRUE mean no network."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")


def looks_like_repo_id(name: str) -> bool:
    """True for "org/name" or "name" as the hub spells repo ids (no "./", no "..", no "--")."""
    if not name or name.startswith((".", "/", "~")) or ".." in name or "--" in name or name.count("/") > 1:
        return False
    return all(part and all(c.isalnum() or c in "-_." for c in part) for part in name.split("/"))


def resolve(name_or_path: str | os.PathLike, patterns: tuple[str, ...] = MODEL_FILES,
            revision: str | None = None) -> str:
    """A local directory holding the checkpoint: `name_or_path` itself, or the hub snapshot of it.

    Names that are not valid repo ids (and existing paths) come back unchanged, so the caller's
    own "not found" error names them. Raises `CheckpointError` (an OSError, as transformers raises)
    when huggingface_hub is missing, when offline and the name is not cached, or when the download fails.
    """
    path = os.fspath(name_or_path)
    if os.path.exists(path) or not looks_like_repo_id(path):
        return path
    try:
        import huggingface_hub
        from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError
        from huggingface_hub.utils import validate_repo_id
    except ImportError:
        raise CheckpointError(f"{path!r} is not a local directory; to load it by its hub name, install "
                              f"huggingface_hub: {INSTALL_HINT}") from None
    try:  # the hub's own rules ('-a', 'a.git', 97 characters pass the test above), before any call
        validate_repo_id(path)
    except HFValidationError as e:
        raise CheckpointError(f"{path!r} is not a local directory, and not a valid hub repo id: {e}") from None
    options = dict(repo_id=path, revision=revision, allow_patterns=list(patterns),
                   cache_dir=os.environ.get("HF_HUB_CACHE") or None)
    try:  # the cache first: no network call when the snapshot is already here
        snapshot = huggingface_hub.snapshot_download(local_files_only=True, **options)
        if is_complete(snapshot, patterns) or is_offline():
            return snapshot
    except (LocalEntryNotFoundError, FileNotFoundError):
        if is_offline():
            raise CheckpointError(f"{path!r} is not a local directory and not in the Hugging Face cache "
                                  f"({options['cache_dir'] or huggingface_hub.constants.HF_HUB_CACHE}); "
                                  "HF_HUB_OFFLINE is set, so it was not downloaded") from None
    try:
        return huggingface_hub.snapshot_download(**options)
    except (HfHubHTTPError, OSError, ValueError) as e:
        raise CheckpointError(f"{path!r} is not a local directory, and downloading it from the hub "
                              f"failed: {e}") from None


def is_complete(snapshot: str, patterns: tuple[str, ...]) -> bool:
    """Does a cached snapshot hold every required file of `patterns`? (An earlier call that fetched
    only config.json leaves a snapshot without the weights.)"""
    names = os.listdir(snapshot)
    return all(fnmatch.filter(names, p) for p in patterns if p in REQUIRED)
