"""A Hugging Face cache laid out exactly as huggingface_hub lays it out, built from a local checkpoint."""

from __future__ import annotations

import hashlib
import os
import shutil


def make_hub_cache(cache: str, repo_id: str, checkpoint: str, commit: str = "0123456789abcdef" * 2 + "01234567") -> str:
    """Copy `checkpoint`'s files into `cache` as huggingface_hub would have downloaded `repo_id`:

        models--org--name/blobs/<sha256 of the file>
        models--org--name/snapshots/<commit>/<file> -> ../../blobs/<sha256>   (relative symlinks)
        models--org--name/refs/main                                      (holds <commit>)

    Returns the snapshot directory.
    """
    repo = os.path.join(cache, "models--" + repo_id.replace("/", "--"))
    snapshot = os.path.join(repo, "snapshots", commit)
    os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
    os.makedirs(snapshot, exist_ok=True)
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    for name in sorted(os.listdir(checkpoint)):
        source = os.path.join(checkpoint, name)
        if not os.path.isfile(source):
            continue
        with open(source, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        blob = os.path.join(repo, "blobs", sha)
        shutil.copyfile(source, blob)
        os.symlink(os.path.join("..", "..", "blobs", sha), os.path.join(snapshot, name))
    with open(os.path.join(repo, "refs", "main"), "w") as f:
        f.write(commit)
    return snapshot
