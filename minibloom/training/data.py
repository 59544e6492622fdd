"""Training data as batches of the model's forward arguments.

- Causal LM: one token stream; a batch is `batch_size` windows of `seq_len` tokens at random
  starts, `labels` = the ids (the model shifts them). Held out: the stream's last `eval_fraction`.
- Heads: labelled rows from JSONL (one object a line) or CSV (a header row), each with `text` and
  its target: `label` (sequence classification: a class id, a label name, a number for regression,
  or a list for multi-label), `labels` (token classification: one class id or name per token of the
  text, -100 for none), or `start_position` / `end_position` (question answering: token indices).
  The text is used verbatim; `prepare_targets` states how targets are read. Rows are right-padded.

Batches are drawn from `numpy.random.default_rng([seed, step])`: the batch of a step does not
depend on what ran before, so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from typing import Any

import numpy as np

from ..errors import InputError

TASKS = ("causal-lm", "seq-cls", "token-cls", "qa")


def window_batch(stream: np.ndarray, batch_size: int, seq_len: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """batch_size random windows [B, T] of a token stream, labels = ids."""
    if stream.size < seq_len:
        raise InputError(f"the text has {stream.size} tokens, fewer than one window of --seq-len {seq_len}")
    starts = rng.integers(0, stream.size - seq_len + 1, size=batch_size)
    ids = np.stack([stream[s:s + seq_len] for s in starts]).astype(np.int64)  # [B, T]
    return {"input_ids": ids, "labels": ids}


def eval_windows(stream: np.ndarray, batch_size: int, seq_len: int) -> list[dict[str, np.ndarray]]:
    """The held-out stream cut into consecutive windows, batch_size per batch (a fixed set)."""
    n = stream.size // seq_len
    windows = stream[:n * seq_len].reshape(n, seq_len).astype(np.int64)  # [n, T]
    return [{"input_ids": w, "labels": w} for w in np.array_split(windows, max(1, -(-n // batch_size))) if len(w)]


def read_rows(path: str) -> list[dict[str, Any]]:
    """Rows of a .jsonl/.json-lines file (one JSON object a line) or a .csv file (a header row), as
    dicts. CSV cells stay the strings in the file: the text `true` is trained as `true`, `1.50` as
    `1.50`; only the target columns are read as numbers, per task (`prepare_targets`)."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            if path.endswith(".csv"):
                for row in csv.DictReader(f):
                    rows.append({k: v for k, v in row.items() if k is not None})  # None: cells past the header
            else:
                for n, line in enumerate(f, start=1):
                    if line.strip():
                        try:
                            row = json.loads(line)
                        except (json.JSONDecodeError, RecursionError) as e:
                            raise InputError(f"{path}:{n}: not a JSON object: {e}") from None
                        if not isinstance(row, dict):
                            raise InputError(f"{path}:{n}: not a JSON object: {type(row).__name__}")
                        rows.append(row)
    except (UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: not a UTF-8 {'CSV' if path.endswith('.csv') else 'JSON lines'} file: {e}") from None
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


INT_RE = re.compile(r"[-+]?\d+")
NUMBER_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
IGNORE = -100  # a token (or row) label that the loss skips, as in transformers


def _csv_target(cell: str, where: str) -> Any:
    """A CSV target cell: an integer (a class id), a decimal number (regression), a JSON list
    (`[0, 1]`), or else a label name, kept verbatim."""
    text = cell.strip()
    if INT_RE.fullmatch(text):
        return int(text)
    if NUMBER_RE.fullmatch(text):
        return float(text)
    if text.startswith("["):
        try:
            return json.loads(text)
        except (json.JSONDecodeError, RecursionError) as e:
            raise InputError(f"{where}: {cell!r} starts like a JSON list but is not one: {e}") from None
    return cell


def _kind(value: Any, where: str) -> str:
    if isinstance(value, bool) or value is None:
        raise InputError(f"{where}: label {value!r}: a label is a class id, a number, a name or a list")
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"{where}: label {value} is not a finite number")
        return "float"
    if isinstance(value, str):
        if not value:
            raise InputError(f"{where}: empty label name")
        return "name"
    if isinstance(value, list):
        return "list"
    raise InputError(f"{where}: label {value!r}: a label is a class id, a number, a name or a list")


def _names(values: list[str], num_labels: int | None) -> dict[str, int]:
    """label2id of label names: the sorted unique names, as transformers' run_glue.py / run_ner.py."""
    names = sorted(set(values))
    if num_labels is not None and num_labels != len(names):
        raise InputError(f"--num-labels is {num_labels}, but the labels hold {len(names)} names: {names[:5]}")
    return {name: i for i, name in enumerate(names)}


def _class_count(ids: list[tuple[int, str]], num_labels: int | None) -> int:
    """num_labels for integer class ids (given, else the largest id + 1), every id checked against it."""
    real = [(v, w) for v, w in ids if v != IGNORE]
    if not real:
        raise InputError("every label is -100 (ignored): nothing to train on")
    n = num_labels if num_labels is not None else max(v for v, _ in real) + 1
    for v, w in real:
        if not 0 <= v < n:
            raise InputError(f"{w}: class id {v} is outside [0, {n}) (--num-labels {n}; -100 marks an ignored label)")
    return n


def prepare_targets(rows: list[dict[str, Any]], task: str, num_labels: int | None = None, from_csv: bool = False,
                    where: str = "rows") -> tuple[list[dict[str, Any]], dict[int, str] | None, int]:
    """Check every row and read its target for `task`, before any work. Returns (rows with `text` and
    the target as the batches need it, id2label when the labels are names (else None), num_labels).

    The rule (a JSON value keeps its JSON type; a CSV cell is read by `_csv_target`):
    seq-cls `label`: integers are class ids (num_labels = --num-labels or the largest + 1); numbers
    with a fraction mean regression (num_labels 1); lists of numbers multi-label; strings are label
    names, mapped to ids in sorted order (label2id/id2label as transformers' run_glue.py builds
    them). token-cls `labels`: a list per row (in CSV a JSON list or whitespace-separated labels) of
    class ids or names, -100 ignored. qa: integer `start_position` and `end_position`."""
    out = []
    for i, row in enumerate(rows, start=1):
        text = row.get("text")
        if text is None:
            raise InputError(f"{where} row {i} has no 'text' field: {sorted(map(str, row))[:8]}")
        if not isinstance(text, str):
            raise InputError(f"{where} row {i}: 'text' must be a string, got {type(text).__name__}")
        fields = {"seq-cls": ("label",), "token-cls": ("labels",), "qa": ("start_position", "end_position")}.get(task)
        if fields is None:
            raise InputError(f"task must be one of {TASKS[1:]} for labelled rows, got {task!r}")
        missing = [f for f in fields if row.get(f) is None]
        if missing:
            raise InputError(f"{where} row {i} lacks the field '{missing[0]}' that task {task} needs")
        target = {f: _csv_target(row[f], f"{where} row {i}") if from_csv and isinstance(row[f], str) and task != "token-cls"
                  else row[f] for f in fields}
        if task == "token-cls" and from_csv and isinstance(row["labels"], str):
            cell = row["labels"]
            target["labels"] = _csv_target(cell, f"{where} row {i}") if cell.strip().startswith("[") else [
                int(t) if INT_RE.fullmatch(t) else t for t in cell.split()]
        out.append({"text": text, **target})
    id2label = None
    if task == "qa":
        for i, row in enumerate(out, start=1):
            for f in ("start_position", "end_position"):
                if isinstance(row[f], bool) or not isinstance(row[f], int):
                    raise InputError(f"{where} row {i}: {f} must be an integer token index, got {row[f]!r}")
        return out, None, 2
    if task == "seq-cls":
        kinds = {_kind(row["label"], f"{where} row {i}") for i, row in enumerate(out, start=1)}
        if kinds == {"name"}:
            label2id = _names([row["label"] for row in out], num_labels)
            for row in out:
                row["label"] = label2id[row["label"]]
            return out, {i: n for n, i in label2id.items()}, len(label2id)
        if kinds == {"int"}:
            n = _class_count([(row["label"], f"{where} row {i}") for i, row in enumerate(out, start=1)], num_labels)
            return out, None, n
        if kinds <= {"int", "float"}:
            if num_labels not in (None, 1):
                raise InputError(f"--num-labels is {num_labels}, but the labels are numbers (regression: 1 output)")
            for row in out:
                row["label"] = float(row["label"])
            return out, None, 1
        if kinds == {"list"}:
            width = len(out[0]["label"])
            for i, row in enumerate(out, start=1):
                if len(row["label"]) != width or width == 0 or any(
                        _kind(v, f"{where} row {i}") not in ("int", "float") for v in row["label"]):
                    raise InputError(f"{where} row {i}: a multi-label target is a list of {width or 'some'} numbers, "
                                     f"got {row['label']!r}"[:300])
            if num_labels not in (None, width):
                raise InputError(f"--num-labels is {num_labels}, but the label lists hold {width} numbers")
            return out, None, width
        raise InputError(f"{where}: the labels mix {' and '.join(sorted(kinds))}s: use one kind (class ids, "
                         "numbers, names or lists)")
    tags = [(v, f"{where} row {i}") for i, row in enumerate(out, start=1) for v in _list(row["labels"], f"{where} row {i}")]
    kinds = {_kind(v, w) for v, w in tags if v != IGNORE}
    if kinds == {"name"}:
        label2id = _names([v for v, _ in tags if v != IGNORE], num_labels)
        for row in out:
            row["labels"] = [IGNORE if v == IGNORE else label2id[v] for v in row["labels"]]
        id2label = {i: n for n, i in label2id.items()}
        return out, id2label, len(label2id)
    if kinds <= {"int"}:
        return out, None, _class_count(tags, num_labels)
    raise InputError(f"{where}: token labels must all be class ids or all names (-100 ignored), found "
                     f"{' and '.join(sorted(kinds))}s")


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise InputError(f"{where}: 'labels' must be a list of per-token labels, got {type(value).__name__}")
    return value


def rows_to_batch(rows: list[dict[str, Any]], tokenizer, task: str, seq_len: int, pad_id: int) -> dict[str, np.ndarray]:
    """Tokenize, right-pad (pad_id, mask 0) and collect the targets of `rows` for `task`."""
    encoded = []
    for i, row in enumerate(rows):
        if "text" not in row:
            raise InputError(f"row {i} has no 'text' field: {sorted(row)}")
        if not isinstance(row["text"], str):
            raise InputError(f"row {i}: 'text' must be a string, got {type(row['text']).__name__}")
        encoded.append(tokenizer.encode(row["text"])[:seq_len])
    T = max(1, max(len(e) for e in encoded))
    ids = np.full((len(rows), T), pad_id, np.int64)
    mask = np.zeros((len(rows), T), np.int64)
    for b, e in enumerate(encoded):
        ids[b, :len(e)], mask[b, :len(e)] = e, 1
    batch = {"input_ids": ids, "attention_mask": mask}
    try:
        if task == "seq-cls":
            labels = [row["label"] for row in rows]
            real = any(isinstance(v, (float, list)) for v in labels)  # regression or multi-label
            batch["labels"] = np.array(labels, np.float32 if real else np.int64)
        elif task == "token-cls":
            labels = np.full((len(rows), T), -100, np.int64)
            for b, row in enumerate(rows):
                row_labels = list(row["labels"])[:T]
                labels[b, :len(row_labels)] = row_labels
            batch["labels"] = labels
        elif task == "qa":
            batch["start_positions"] = np.array([row["start_position"] for row in rows], np.int64)
            batch["end_positions"] = np.array([row["end_position"] for row in rows], np.int64)
        else:
            raise InputError(f"task must be one of {TASKS[1:]} for labelled rows, got {task!r}")
    except KeyError as e:
        raise InputError(f"a row lacks the field {e} that task {task} needs") from None
    return batch
