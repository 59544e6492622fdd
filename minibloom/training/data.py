"""Training data as batches of the model's forward arguments.

- Causal LM: one token stream; a batch is `batch_size` windows of `seq_len` tokens at random
  starts, `labels` = the ids (the model shifts them). Held out: the stream's last `eval_fraction`.
- Heads: labelled rows from JSONL (one object a line) or CSV (a header row), each with `text` and
  its target: `label` (sequence classification: an int class, a float, or a list for multi-label),
  `labels` (token classification: one class per token of the text, -100 for none), or
  `start_position` / `end_position` (question answering: token indices). Rows are right-padded.

Batches are drawn from `numpy.random.default_rng([seed, step])`: the batch of a step does not
depend on what ran before, so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import csv
import json
import os
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
    """Rows of a .jsonl/.json-lines or .csv file, as dicts (CSV cells holding JSON are parsed)."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        if path.endswith(".csv"):
            for row in csv.DictReader(f):
                rows.append({k: _cell(v) for k, v in row.items()})
        else:
            for n, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise InputError(f"{path}:{n}: not a JSON object: {e}") from None
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


def _cell(value: str) -> Any:
    try:
        return json.loads(value)
    except (json.JSONDecodeError, TypeError):
        return value


def rows_to_batch(rows: list[dict[str, Any]], tokenizer, task: str, seq_len: int, pad_id: int) -> dict[str, np.ndarray]:
    """Tokenize, right-pad (pad_id, mask 0) and collect the targets of `rows` for `task`."""
    encoded = []
    for i, row in enumerate(rows):
        if "text" not in row:
            raise InputError(f"row {i} has no 'text' field: {sorted(row)}")
        encoded.append(tokenizer.encode(str(row["text"]))[:seq_len])
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
