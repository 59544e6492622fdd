"""What transformers' tokenizers add around encoding: batches, truncation, padding, arrays.

`BloomTokenizer` (bloom_tokenizer.py) turns one text into ids and back. This module is the layer a
transformers user calls, `tokenizer(texts, padding=True, truncation=True, max_length=..,
return_tensors="np")` and `tokenizer.pad(rows)`, with transformers' rules:

    1. encode    each text on its own (`encode_ids`, or `encode_with_offsets` for offset_mapping)
    2. truncate  to max_length (or model_max_length), from the right or the left (`truncation_side`)
    3. pad       to the longest row or to max_length, rounded up to pad_to_multiple_of, on
                 `padding_side`: pad_token_id, attention 0, special-token mask 1, offsets (0, 0),
                 labels -100
    4. format    lists (one text: unnested) or int64 arrays [B, T] (`return_tensors="np"`)

The argument checks (padding, truncation, sides, return_tensors) are in `minibloom/validation.py`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..validation import (check_allocation, check_padding, check_return_tensors, check_side, check_texts,
                          check_truncation)

class BatchEncoding(dict):
    """What the tokenizer returns: a dict (`enc["input_ids"]`) whose keys are also attributes
    (`enc.input_ids`), as transformers' BatchEncoding."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"'BatchEncoding' object has no attribute {name!r} "
                                 f"(its keys: {sorted(self)})") from None

    def to(self, device: Any, non_blocking: bool = False) -> "BatchEncoding":
        """transformers' `enc.to(device)`: returns self for "cpu", where NumPy arrays and lists live.
        Another device is an `InputError`: the GPU model (`minibloom.cuda`) takes host arrays."""
        if str(device).split(":")[0] != "cpu":
            raise InputError(f"BatchEncoding.to({device!r}): minibloom's encodings are NumPy arrays or lists on "
                             "the CPU; pass them as they are (minibloom.cuda.CudaBloomForCausalLM copies them "
                             "to the GPU itself)")
        return self


class Batching:
    """transformers' call and `pad` for a tokenizer that has `encode_ids`, `encode_with_offsets`,
    `pad_token` / `pad_token_id`, `padding_side`, `truncation_side`, `model_max_length` and `_check_ids`
    (BloomTokenizer)."""

    def __call__(self, text: str | Sequence[str], padding: bool | str = False, truncation: bool | str | None = None,
                 max_length: int | None = None, return_offsets_mapping: bool = False,
                 add_special_tokens: bool = True, padding_side: str | None = None,
                 return_attention_mask: bool = True, return_tensors: str | None = None,
                 pad_to_multiple_of: int | None = None, return_special_tokens_mask: bool = False) -> BatchEncoding:
        """Encode one text or a list of texts, as transformers' tokenizers do: a `BatchEncoding` (a dict
        with attribute access) of input_ids, attention_mask and, if asked, offset_mapping and
        special_tokens_mask.

        return_tensors=None (the default): Python lists, `[T]` for one text and `[[...], ...]` for a
        list (rows may differ in length when not padded). return_tensors="np": NumPy int64 arrays
        [B, T] (one text gives [1, T]); rows must then have one length (pad them).
        padding: False / "do_not_pad", True / "longest" (to the longest in the batch) or "max_length"
        (each row to max_length); pad_to_multiple_of rounds the padded length up. truncation: True /
        "longest_first" / "only_first" cut each text to max_length tokens, from the right or, with
        truncation_side "left", the left; False / "do_not_truncate" do not; None (the default)
        truncates when max_length is given without padding, as transformers does. Other values are
        refused, as transformers' PaddingStrategy and TruncationStrategy refuse them.
        add_special_tokens is accepted for compatibility: BLOOM adds none (so special_tokens_mask
        marks only padding).
        """
        batch = check_texts(text)
        truncation = check_truncation(truncation)
        pad_mode = check_padding(padding, max_length)
        side = check_side(padding_side or self.padding_side, "padding_side")
        check_return_tensors(return_tensors)
        encoded = [self.encode_with_offsets(t) if return_offsets_mapping else (self.encode_ids(t), None)
                   for t in batch]
        if truncation is None:  # transformers: max_length with padding=False (not "do_not_pad") means truncate
            truncation = max_length is not None and padding is False
        limit = max_length if max_length is not None else self.model_max_length
        if truncation and limit is not None:
            encoded = [self._truncate(ids, offs, limit) for ids, offs in encoded]
        rows = []
        for ids, offsets in encoded:
            row = {"input_ids": ids, "attention_mask": [1] * len(ids)}
            if return_special_tokens_mask:
                row["special_tokens_mask"] = [0] * len(ids)
            if return_offsets_mapping:
                row["offset_mapping"] = [tuple(o) for o in offsets]
            rows.append(row)
        rows = self._pad_rows(rows, pad_mode, max_length, pad_to_multiple_of, side)
        return self._format(rows, single=isinstance(text, str), return_tensors=return_tensors,
                            return_attention_mask=return_attention_mask)

    def _truncate(self, ids: list[int], offsets: list | None, limit: int):
        cut = slice(max(len(ids) - limit, 0), None) if self.truncation_side == "left" else slice(0, limit)
        return ids[cut], None if offsets is None else offsets[cut]

    # What padding puts in each per-token list. Labels get -100, the ignore index of the losses and of
    # transformers' collators (DataCollatorForTokenClassification), never 0: that is a real class.
    PAD_VALUES = {"attention_mask": 0, "special_tokens_mask": 1, "offset_mapping": (0, 0), "token_type_ids": 0,
                  "labels": -100, "label": -100}

    def _pad_rows(self, rows: list[dict[str, list]], pad_mode: str | None, max_length: int | None,
                  multiple: int | None, side: str) -> list[dict[str, list]]:
        """Pad each row (a dict of equal-length lists) to the batch's longest or to max_length, rounded
        up to `multiple`: pad_token_id, attention 0, special-token mask 1, offsets (0, 0)."""
        if multiple is not None and (not isinstance(multiple, (int, np.integer)) or isinstance(multiple, bool)
                                     or multiple < 1):
            raise InputError(f"pad_to_multiple_of must be a positive integer, got {multiple!r}")
        if pad_mode is None:
            return rows
        if self.pad_token is None:
            raise InputError("this tokenizer has no pad token, so it cannot pad")
        longest = max(len(r["input_ids"]) for r in rows)
        width = longest if pad_mode == "longest" else max(longest, max_length)
        check_allocation(8 * len(rows) * width * (len(rows[0]) + 1), f"padding to max_length={width} "
                         f"({', '.join(rows[0])} [B={len(rows)}, T])")
        padded = []
        for row in rows:
            n = len(row["input_ids"])
            target = longest if pad_mode == "longest" else max(n, max_length)
            if multiple:
                target = -(-target // multiple) * multiple
            fill = {k: [self.pad_token_id if k == "input_ids" else self.PAD_VALUES[k]] * (target - n)
                    for k in row if k == "input_ids" or k in self.PAD_VALUES and _per_token(row[k])}
            padded.append({k: (fill[k] + list(v) if side == "left" else list(v) + fill[k]) if k in fill else v
                           for k, v in row.items()})
        return padded

    def _format(self, rows: list[dict[str, list]], single: bool, return_tensors: str | None,
                return_attention_mask: bool | None = True) -> BatchEncoding:
        """Rows -> BatchEncoding of lists (one row: unnested) or of [B, T] int64 arrays."""
        keys = [k for k in rows[0] if not (k == "attention_mask" and return_attention_mask is False)]
        if return_tensors != "np":
            out = {k: [r[k] for r in rows] for k in keys}
            return BatchEncoding({k: v[0] for k, v in out.items()} if single else out)
        lengths = sorted({len(r["input_ids"]) for r in rows})
        if len(lengths) > 1:
            raise InputError(f"texts encode to different lengths {lengths}; pass padding=True (and/or "
                             "truncation=True with max_length) to get one array, or return_tensors=None for lists")
        arrays = {}
        for k in keys:
            if k not in self.PAD_VALUES and k != "input_ids" or not _per_token(rows[0][k]):
                arrays[k] = _array_of(k, [r[k] for r in rows])  # a row's label, or a key padding leaves alone
                continue
            value = np.array([r[k] for r in rows], np.int64)
            arrays[k] = value.reshape(len(rows), lengths[0], 2) if k == "offset_mapping" else value  # [B, T(, 2)]
        return BatchEncoding(arrays)

    def pad(self, encoded_inputs: Any, padding: bool | str = True, max_length: int | None = None,
            pad_to_multiple_of: int | None = None, padding_side: str | None = None,
            return_attention_mask: bool | None = None, return_tensors: str | None = None) -> BatchEncoding:
        """Pad already-encoded inputs (transformers' `pad`): a dict of lists (one row, or a batch of
        rows) or a list of such dicts. An attention_mask is made when absent.

        Per-token labels (`labels` or `label`, a list per row) are padded with -100, the ignore index,
        as transformers' DataCollatorForTokenClassification pads them (transformers' own `pad` leaves
        them ragged); never with 0, a real class. One label per row passes through, as do keys
        padding does not know (token_type_ids, special_tokens_mask, offset_mapping are padded)."""
        rows, single = _rows_of(encoded_inputs)
        pad_mode = check_padding(padding, max_length)
        side = check_side(padding_side or self.padding_side, "padding_side")
        check_return_tensors(return_tensors)
        rows = [{"input_ids": list(self._check_ids(r["input_ids"], "input_ids")),
                 "attention_mask": list(r.get("attention_mask", [1] * len(r["input_ids"]))),
                 **{k: list(v) if _per_token(v) else v for k, v in r.items()
                    if k not in ("input_ids", "attention_mask")}} for r in rows]
        for b, r in enumerate(rows):
            for k, v in r.items():
                if k in self.PAD_VALUES and _per_token(v) and len(v) != len(r["input_ids"]):
                    raise InputError(f"encoded_inputs row {b}: {k} has {len(v)} entries for "
                                     f"{len(r['input_ids'])} input_ids (one per token, or one per row for labels)")
        rows = self._pad_rows(rows, pad_mode, max_length, pad_to_multiple_of, side)
        return self._format(rows, single, return_tensors, return_attention_mask)


def _per_token(value: Any) -> bool:
    """A list of values, one per token (not one label for the whole row)."""
    return isinstance(value, (list, tuple, np.ndarray))


def _array_of(key: str, values: list) -> np.ndarray:
    """[B, ...] array of a key padding does not pad (a row's label: int, float or bool, as given)."""
    try:
        arr = np.array(values)
    except ValueError:  # ragged
        arr = np.array(values, dtype=object)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise InputError(f"{key}: its rows cannot make one array (ragged or not numbers); pad them first or use "
                         "return_tensors=None")
    return arr.astype(np.int64) if arr.dtype.kind in "iu" else arr


def _rows_of(encoded: Any) -> tuple[list[dict[str, Any]], bool]:
    """pad()'s input -> (rows, was it one unnested row)."""
    if isinstance(encoded, (list, tuple)) and encoded and all(isinstance(e, dict) for e in encoded):
        rows = [dict(e) for e in encoded]
        single = False
    elif isinstance(encoded, dict) and "input_ids" in encoded:
        ids = encoded["input_ids"]
        ids = ids.tolist() if isinstance(ids, np.ndarray) else ids
        single = not (len(ids) and isinstance(ids[0], (list, tuple, np.ndarray)))
        if single:
            rows = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in encoded.items()}]
        else:
            rows = [{k: (np.asarray(encoded[k])[b].tolist() if isinstance(encoded[k], np.ndarray) else encoded[k][b])
                     for k in encoded} for b in range(len(ids))]
    else:
        raise InputError("encoded_inputs must be a dict with input_ids, or a non-empty list of such dicts")
    if any("input_ids" not in r for r in rows):
        raise InputError("every row of encoded_inputs needs input_ids")
    return rows, single
