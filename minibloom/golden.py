"""Golden outputs for porters: record every intermediate of a forward pass, compare two records,
and name the first op where they part.

A golden file is one .safetensors file:

    input_ids, attention_mask                  int64 [B, T]
    embeddings ... logits                      float32, one tensor per step (names: docs/golden.md)
    __metadata__                               format, minibloom version, model class, config and
                                               its sha256, dtype, the names in forward order, the
                                               axes of each tensor, the text if one was given

`compare` walks the names in forward order. An element passes when |actual - expected| <=
atol + rtol * |expected| (NaN equals NaN); the first tensor with a failing element is the first
divergence, reported with the position of its worst element (the largest |diff| / allowed) as
named axes (batch, token, head, channel...), since an error in one op spreads to every later one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import __version__
from .errors import CheckpointError, InputError
from .safetensors_io import load_file, read_header, save_file
from .trace import Trace

FORMAT = "minibloom-golden"
FORMAT_VERSION = "1"
HEAD_OUTPUTS = ("logits", "start_logits", "end_logits")


def axes_of(name: str, ndim: int, model_class: str) -> list[str]:
    """Names of the axes of tensor `name`, for reporting positions."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf in ("scores", "probs"):
        return ["batch", "head", "token", "key"]
    if leaf == "alibi":
        return ["batch", "head", "_", "key"]
    if name == "logits" and model_class == "BloomForSequenceClassification":
        return ["batch", "label"]
    if name == "logits":
        return ["batch", "token", "vocab" if model_class == "BloomForCausalLM" else "label"]
    return ["batch", "token", "channel"][:ndim] if ndim <= 3 else [f"axis{i}" for i in range(ndim)]


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


def dump(model, path: str | os.PathLike, input_ids: Any, attention_mask: Any = None, text: str | None = None) -> dict:
    """Write a golden file of `model` on these inputs (atomically); returns the recorded tensors."""
    record = capture(model, input_ids, attention_mask)
    cls = type(model).__name__
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "minibloom_version": __version__,
                "model_class": cls, "config": json.dumps(model.config.to_dict(), sort_keys=True),
                "config_sha256": config_sha256(model.config), "dtype": "float32",
                "order": json.dumps(list(record)),
                "axes": json.dumps({k: axes_of(k, v.ndim, cls) for k, v in record.items()})}
    if text is not None:
        metadata["text"] = text
    save_file(record, path, metadata=metadata)
    return record


@dataclass
class GoldenFile:
    tensors: dict[str, np.ndarray]
    metadata: dict[str, str]

    @property
    def order(self) -> list[str]:
        return json.loads(self.metadata["order"])

    @property
    def axes(self) -> dict[str, list[str]]:
        return json.loads(self.metadata.get("axes", "{}"))


def load(path: str | os.PathLike) -> GoldenFile:
    """Read a golden file; a file that is not one is a CheckpointError naming it."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such golden file")
    _, metadata = read_header(path)
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a minibloom golden file (metadata format {metadata.get('format')!r})")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: golden format version {metadata.get('format_version')!r}, "
                              f"this minibloom reads {FORMAT_VERSION!r}")
    tensors = load_file(path)
    try:
        order, axes = json.loads(metadata.get("order", "")), json.loads(metadata.get("axes", "{}"))
    except (TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: golden metadata 'order' / 'axes' is not valid JSON: {e}") from None
    if not (isinstance(order, list) and all(isinstance(n, str) for n in order) and isinstance(axes, dict)):
        raise CheckpointError(f"{path}: golden metadata 'order' must be a list of names and 'axes' an object")
    missing = [n for n in order if n not in tensors]
    if missing or not {"input_ids", "attention_mask"} <= set(tensors):
        raise CheckpointError(f"{path}: tensors named in the metadata are missing: "
                              f"{(missing or ['input_ids / attention_mask'])[:3]}")
    return GoldenFile(tensors, metadata)


@dataclass
class TensorDiff:
    name: str
    ok: bool
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: float = 0.0
    position: dict[str, int] = field(default_factory=dict)
    expected: float | None = None
    actual: float | None = None
    note: str = ""

    def where(self) -> str:
        return ", ".join(f"{axis} {i}" for axis, i in self.position.items() if axis != "_")


@dataclass
class Report:
    rows: list[TensorDiff]
    atol: float
    rtol: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def first_divergence(self) -> TensorDiff | None:
        return next((r for r in self.rows if not r.ok), None)

    def to_dict(self) -> dict:
        first = self.first_divergence
        return {"ok": self.ok, "atol": self.atol, "rtol": self.rtol,
                "first_divergence": None if first is None else first.__dict__,
                "tensors": [r.__dict__ for r in self.rows]}


def diff_tensor(name: str, expected: np.ndarray, actual: np.ndarray, axes: list[str], atol: float,
                rtol: float) -> TensorDiff:
    """Max abs / rel / ULP differences of one tensor and the position of its worst element."""
    if expected.shape != actual.shape:
        return TensorDiff(name, False, note=f"shape {actual.shape} != expected {expected.shape}")
    e, a = expected.astype(np.float64), actual.astype(np.float64)
    both_nan = np.isnan(e) & np.isnan(a)
    diff = np.where(both_nan, 0.0, np.abs(a - e))
    diff = np.where(np.isnan(diff), np.inf, diff)  # one side NaN: an infinite difference
    if diff.size == 0:
        return TensorDiff(name, True)
    allowed = atol + rtol * np.abs(np.nan_to_num(e))
    badness = diff / allowed
    worst = np.unravel_index(int(np.argmax(badness)), diff.shape)
    with np.errstate(over="ignore"):  # the spacing at float32's max is inf: such an element has 0 ULPs
        spacing = np.spacing(np.maximum(np.abs(expected), np.abs(actual)).astype(np.float32)).astype(np.float64)
    ulp = np.where(both_nan, 0.0, diff / np.where(spacing > 0, spacing, np.inf))
    rel = diff / np.maximum(np.abs(e), np.finfo(np.float32).tiny)
    return TensorDiff(name, bool(badness.max() <= 1.0), float(diff.max()), float(rel.max()),
                      float(np.nanmax(ulp)), dict(zip(axes, map(int, worst))),
                      float(expected[worst]), float(actual[worst]))


def compare(expected: GoldenFile, actual: GoldenFile | dict[str, np.ndarray], atol: float = 1e-5,
            rtol: float = 1e-5) -> Report:
    """Compare every tensor of `expected`, in forward order, with the same name in `actual`."""
    tensors = actual.tensors if isinstance(actual, GoldenFile) else actual
    axes = expected.axes
    rows = []
    for name in expected.order:
        want = expected.tensors[name]
        if name not in tensors:
            rows.append(TensorDiff(name, False, note="missing"))
            continue
        names = axes.get(name)
        names = [str(a) for a in names] if isinstance(names, list) else []
        rows.append(diff_tensor(name, want, np.asarray(tensors[name]), names, atol, rtol))
    return Report(rows, atol, rtol)


def live_run(expected: GoldenFile, checkpoint: str | os.PathLike, backend: str = "numpy") -> dict[str, np.ndarray]:
    """Run a checkpoint directory on a golden file's inputs and capture its intermediates."""
    from . import heads
    from .model import BloomModel

    cls_name = expected.metadata.get("model_class", "BloomForCausalLM")
    cls = BloomModel if cls_name == "BloomModel" else getattr(heads, cls_name, None)
    if cls is None:
        raise InputError(f"golden file names an unknown model class {cls_name!r}")
    model = cls.from_pretrained(checkpoint, backend=backend)
    return capture(model, expected.tensors["input_ids"], expected.tensors["attention_mask"])


def format_report(report: Report, limit: int | None = None) -> str:
    """A table of every tensor, then the verdict with the first divergence."""
    lines = [f"{'tensor':44} {'max abs':>10} {'max rel':>10} {'max ulp':>10}  status"]
    for r in report.rows[:limit]:
        status = "ok" if r.ok else ("FAIL " + r.note if r.note else "FAIL")
        lines.append(f"{r.name:44} {r.max_abs:10.3g} {r.max_rel:10.3g} {r.max_ulp:10.3g}  {status}")
    first = report.first_divergence
    if first is None:
        lines.append(f"PASS: {len(report.rows)} tensors within atol={report.atol:g}, rtol={report.rtol:g}")
    elif first.note:
        lines.append(f"FAIL: first divergence at {first.name}: {first.note}")
    else:
        lines.append(f"FAIL: first divergence at {first.name} ({first.where()}): expected {first.expected:.9g}, "
                     f"got {first.actual:.9g} (atol={report.atol:g}, rtol={report.rtol:g})")
    return "\n".join(lines)
