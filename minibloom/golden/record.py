"""Recording a golden file: run a model once and write its inputs and every intermediate.

A golden file minibloom writes is one .safetensors file:

    input_ids, attention_mask                  int64 [B, T]
    embeddings ... logits                      float32, one tensor per step (names: docs/golden.md)
    __metadata__                               format, minibloom version, model class, config and
                                               its sha256, dtype, the names in forward order, the
                                               axes of each tensor, the text if one was given

The forward pass records each intermediate into a `Trace` under its golden name (`trace.py`), so
recording costs the model no extra line; this module only runs it and writes what it kept.
A port's file needs only the names (docs/golden-format.md; the reader is `format.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np

from .. import __version__
from ..safetensors_io import save_file
from ..trace import Trace
from .format import FORMAT, FORMAT_VERSION, HEAD_OUTPUTS, axes_of

__all__ = ["C_WRITER_HEADER", "capture", "checkpoint_storage", "config_sha256", "dump", "metadata_of"]


# The single-file C99 header a port includes to write its tensors as one safetensors file
# (docs/golden-format.md, "Writing from C"); shipped with the package.
C_WRITER_HEADER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "golden_writer.h")


def config_sha256(config) -> str:
    return hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()


def capture(model, input_ids: Any, attention_mask: Any = None) -> dict[str, np.ndarray]:
    """Run `model` (BloomModel or any head) once; return its inputs and every intermediate, in order."""
    ids = np.asarray(input_ids)
    mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask)
    trace = Trace()
    out = model(ids, attention_mask=mask, trace=trace)
    record = {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64), **trace.store}
    for name in (*HEAD_OUTPUTS, "last_hidden_state"):
        value = getattr(out, name, None)
        if value is not None:
            record[name] = np.asarray(value, np.float32)
    return record


def dump(model, path: str | os.PathLike, input_ids: Any, attention_mask: Any = None, text: str | None = None,
         dtype: str = "float32") -> dict:
    """Write a golden file of `model` on these inputs (atomically); returns the recorded tensors.

    dtype "bfloat16" / "float16": computed as transformers computes in that dtype (`lowp.py`)
    and stored in it; "float32" (default): minibloom's own forward pass."""
    if dtype == "float32":
        record = capture(model, input_ids, attention_mask)
    else:
        from .lowp import capture_lowp

        ids = np.asarray(input_ids)
        record = capture_lowp(model, ids, np.ones_like(ids) if attention_mask is None else attention_mask, dtype)
    save_file(record, path, dtype=dtype, metadata=metadata_of(model, record, dtype, text))
    return record


def metadata_of(model, record: dict[str, np.ndarray], dtype: str = "float32", text: str | None = None) -> dict:
    """A golden file's `__metadata__` (docs/golden.md): the names of `record` in its order, their axes."""
    cls = type(model).__name__
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "minibloom_version": __version__,
                "model_class": cls, "config": json.dumps(model.config.to_dict(), sort_keys=True),
                "config_sha256": config_sha256(model.config), "dtype": dtype,
                "order": json.dumps(list(record)),
                "axes": json.dumps({k: axes_of(k, np.ndim(v), cls) for k, v in record.items()})}
    if text is not None:
        metadata["text"] = text
    return metadata


def checkpoint_storage(directory: str | os.PathLike) -> str:
    """The storage that keeps a checkpoint's matrices as they are on disk: "bfloat16" / "float16" when
    every matrix is stored so, else "float32". With it `from_pretrained` memory-maps the weights
    instead of converting them, so a dump reads each layer from the page cache when it gets to it:
    a checkpoint larger than the free RAM streams through (RAM ~ one layer plus the activations)."""
    from ..safetensors_io import read_header
    from ..weights import checkpoint_files

    codes = set()
    for path in sorted(set(checkpoint_files(directory).values())):
        infos, _ = read_header(path)
        codes |= {info.dtype for info in infos.values() if len(info.shape) == 2}
    return {frozenset({"BF16"}): "bfloat16", frozenset({"F16"}): "float16"}.get(frozenset(codes), "float32")
