"""BloomTokenizer: text <-> token ids with BLOOM's tokenizer.json, as transformers' BloomTokenizerFast.

Encoding one text:

    1. added tokens  find `<s>`, `</s>`, `<pad>`, `<unk>` in the raw text (leftmost, longest first);
                     they become their ids and the text between them is encoded on its own
    2. pre-tokenize  cut each stretch into pieces (`pretokenizer.py`)
    3. BPE           each piece's UTF-8 bytes -> merged tokens -> ids (`bpe.py`, cached per piece)

Nothing is added around the ids: BLOOM's post-processor adds no `<s>` or `</s>`. Offsets are
character offsets into the text, as transformers returns them; a token holding only part of a
multi-byte character (byte-level BPE can split one) gets the offsets of the whole character.
Decoding maps each token back to bytes and decodes UTF-8 with errors="replace".
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Sequence

import numpy as np
import regex

from ..atomic import reading, transaction
from ..errors import InputError, TokenizerFileError
from ..validation import as_array, check_allocation, check_unicode
from .bytes_unicode import from_byte_level
from .pretokenizer import PIECE_RE, SCAN_MIN_CHARS, split_byte_starts, split_pieces
from .tokenizer_json import Pipeline, config_settings, max_length_setting, parse_pipeline, read_json

SPACE = "Ġ"  # the byte-level stand-in of " "


SPECIAL_NAMES = ("unk_token", "bos_token", "eos_token", "pad_token")


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


class BloomTokenizer:
    """Load with `from_file("tokenizer.json")` or `from_pretrained(directory)`; call it on text."""

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, data: dict[str, Any], path: str = "tokenizer.json", padding_side: str = "right",
                 add_prefix_space: bool | None = None, model_max_length: int | None = None,
                 special_tokens: dict[str, str] | None = None, truncation_side: str = "right",
                 clean_up_tokenization_spaces: bool = False):
        padding_side = check_side(padding_side, "padding_side")  # the caller's keywords, checked first
        model_max_length = max_length_setting(model_max_length, InputError)
        if add_prefix_space:  # as BloomTokenizerFast: switch it on in the pre-tokenizer and decoder
            data = {**data, **{k: _with_prefix_space(data.get(k)) for k in ("pre_tokenizer", "decoder")}}
        self.data = data
        self.pipeline: Pipeline = parse_pipeline(data, path)
        self.bpe = self.pipeline.bpe
        self.add_prefix_space = self.pipeline.add_prefix_space
        self.padding_side = padding_side
        self.truncation_side = check_side(truncation_side, "truncation_side")
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        self.pipeline_path = path
        self.model_max_length = model_max_length
        self.id_to_token = {i: t for t, i in self.bpe.vocab.items()}
        self.id_to_token.update({a.id: a.content for a in self.pipeline.added_tokens})
        self.token_to_id = {t: i for i, t in self.id_to_token.items()}
        shared = next((a for a in self.pipeline.added_tokens if self.token_to_id.get(a.content) != a.id), None)
        if shared is not None:  # tokenizers renumbers such a file; transformers never writes one
            raise TokenizerFileError(f"{path}: added token {shared.content!r} has id {shared.id}, which another "
                                     f"added token ({self.id_to_token[shared.id]!r}) also has: each id once")
        self.special_ids = {a.id for a in self.pipeline.added_tokens if a.special}
        self.n_ids = max(self.id_to_token) + 1
        self.token_nbytes = np.zeros(self.n_ids, np.int64)  # bytes of text each token stands for
        try:
            for i, t in self.id_to_token.items():
                self.token_nbytes[i] = len(from_byte_level(t))
        except UnicodeEncodeError:  # a lone surrogate has no UTF-8 bytes (a file on disk is refused on reading)
            raise TokenizerFileError(f"{path}: {_where(data, i)} token id {i} holds a lone surrogate "
                                     f"{ascii(t)[:60]}: not valid Unicode") from None
        contents = sorted((a.content for a in self.pipeline.added_tokens), key=len, reverse=True)
        self.added_re = regex.compile("|".join(map(regex.escape, contents))) if contents else None
        self.added_first_chars = {c[0] for c in contents}  # a cheap test before the regex search
        self.added_contents = contents  # longest first
        self.sticky_special: set[str] = set()
        self._build_added_passes()
        names = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>",
                 **(special_tokens or {})}
        for name, token in names.items():
            setattr(self, name, token if token in self.token_to_id else None)

    def _build_added_passes(self) -> None:
        """The added-token matchers, in tokenizers' order.

        subtle: tokenizers matches in two passes, the tokens with "normalized": false (special ones)
        first, then the others in the text between them; one pass would let "xa" win over a special
        "ab" in "xab". A token once added as special stays special (`sticky_special`: matched in the
        first pass, skipped by skip_special_tokens), even re-added as a plain one."""
        normalized = {e.get("id"): e.get("normalized", not e.get("special")) for e in self.data.get("added_tokens") or []
                      if isinstance(e, dict)}
        self.special_ids |= {self.token_to_id[c] for c in self.sticky_special}
        first = [c for c in self.added_contents if not normalized.get(self.token_to_id[c], False)
                 or c in self.sticky_special]
        self.added_passes = [regex.compile("|".join(map(regex.escape, group))) for group in
                             (first, [c for c in self.added_contents if c not in first]) if group]

    # ----------------------------------------------------------------------------------- loading

    @classmethod
    def from_file(cls, path: str | os.PathLike, **kwargs: Any) -> "BloomTokenizer":
        """A tokenizer.json file (padding_side "right", as BloomTokenizerFast(tokenizer_file=...))."""
        return cls(read_json(path), os.fspath(path), **kwargs)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **kwargs: Any) -> "BloomTokenizer":
        """A directory with tokenizer.json and, optionally, tokenizer_config.json (padding side,
        add_prefix_space, model_max_length, special token names); keyword arguments override it.
        A hub name ("bigscience/bloom-560m") is read from the HF cache or downloaded (`hub.py`)."""
        from ..hub import TOKENIZER_FILES, resolve

        directory = resolve(directory, TOKENIZER_FILES)
        with reading(directory) as files:  # both files from the same save, even one a kill interrupted (atomic.py)
            path, config_path = files.path("tokenizer.json"), files.path("tokenizer_config.json")
            if not os.path.isfile(path):
                raise TokenizerFileError(f"{directory}: no tokenizer.json in this directory")
            config = read_json(config_path) if os.path.lexists(config_path) else {}  # a FIFO is refused
            data = read_json(path)
        settings = config_settings(config, config_path, skip=kwargs)  # a bad value here is the file's fault
        specials = {k: config[k] for k in ("unk_token", "bos_token", "eos_token", "pad_token")
                    if isinstance(config.get(k), str)}
        settings = {"padding_side": "right", **settings, "special_tokens": specials, **kwargs}
        return cls(data, path, **settings)  # a bad keyword is the caller's: InputError from __init__

    def save(self, directory: str | os.PathLike) -> None:
        """Write tokenizer.json and tokenizer_config.json into `directory`, both in one transaction."""
        config = {"tokenizer_class": "BloomTokenizerFast", "padding_side": self.padding_side,
                  "add_prefix_space": self.pipeline.add_prefix_space, "truncation_side": self.truncation_side,
                  "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
                  **{k: getattr(self, k) for k in ("unk_token", "bos_token", "eos_token", "pad_token")}}
        if self.model_max_length is not None:
            config["model_max_length"] = self.model_max_length
        with transaction(directory) as txn:
            for name, content in (("tokenizer.json", self.data), ("tokenizer_config.json", config)):
                txn.write_bytes(name, json.dumps(content, ensure_ascii=False, indent=2).encode("utf-8"))

    save_pretrained = save

    # ------------------------------------------------------------------------------- properties

    @property
    def vocab_size(self) -> int:
        """Size of the BPE vocab without added tokens (BLOOM: 250680; the model has 250880 rows)."""
        return len(self.bpe.vocab)

    def __len__(self) -> int:
        return len(self.id_to_token)

    def get_vocab(self) -> dict[str, int]:
        return dict(self.token_to_id)

    def __getattr__(self, name: str) -> Any:  # unk_token_id, bos_token_id, eos_token_id, pad_token_id
        if name.endswith("_token_id") and name[:-3] in ("unk_token", "bos_token", "eos_token", "pad_token"):
            token = self.__dict__.get(name[:-3])
            return None if token is None else self.token_to_id[token]
        raise AttributeError(name)

    # -------------------------------------------------------------------------------- encoding

    def _segments(self, text: str) -> Iterable[tuple[str | int, int]]:
        """(text stretch or added-token id, start offset), in order."""
        segments: list[tuple[str | int, int]] = [(text, 0)]
        for pattern in self.added_passes:  # leftmost-longest within each pass
            split: list[tuple[str | int, int]] = []
            for stretch, start in segments:
                if isinstance(stretch, int):
                    split.append((stretch, start))
                    continue
                pos = 0
                for m in pattern.finditer(stretch):
                    if m.start() > pos:
                        split.append((stretch[pos:m.start()], start + pos))
                    split.append((self.token_to_id[m.group()], start + m.start()))
                    pos = m.end()
                if pos < len(stretch):
                    split.append((stretch[pos:], start + pos))
            segments = split
        yield from segments

    def _pieces(self, stretch: str) -> list[str]:
        pieces = PIECE_RE.findall(stretch)
        if self.pipeline.add_prefix_space:
            pieces = [p if p.startswith(" ") else " " + p for p in pieces]
        return pieces

    def encode_ids(self, text: str) -> list[int]:
        """Token ids of one text: the fast path (no offsets). A long text (>= SCAN_MIN_CHARS) goes
        through compiled code from end to end: the scanner's piece bounds as UTF-8 offsets, then
        one merge call for all pieces (`BPE.encode_utf8`). A short one is a regex scan and, mostly,
        a dict lookup per piece (the BPE cache); its unseen pieces merge in one call. A text holding
        added tokens (`<s>`) is split at them first, and the stretches between go the same way
        (the pre-tokenizer never joins across an added token, so the ids are the same as the
        general path's; one `<s>` in 1.5 MB used to send it all through the slow path)."""
        if self.pipeline.add_prefix_space:
            return self._encode_ids_general(text)
        if self.added_re is None or not self._may_hold_added(text):
            return self._encode_plain(text)
        out: list[int] = []
        for stretch, _ in self._segments(text):
            if isinstance(stretch, int):
                out.append(stretch)
            else:
                out += self._encode_plain(stretch)
        return out

    def _encode_plain(self, text: str) -> list[int]:
        """Ids of a text holding no added token, through the compiled scanner and merges."""
        if len(text) >= SCAN_MIN_CHARS:  # a long text: scan, map and merge it all in compiled code
            try:
                ids = self.bpe.encode_utf8(text.encode("utf-8"), split_byte_starts(text))
            except UnicodeEncodeError:  # a lone surrogate: the piece path below names it
                ids = None
            if ids is not None:
                return ids
        out: list[int] = []
        pieces = split_pieces(text)  # compiled scan for long texts
        cache = self.bpe.cache
        get = cache.get
        for i, piece in enumerate(pieces):
            ids = get(piece)
            if ids is None:  # the first unseen piece: merge every unseen one from here in one call
                self.bpe.encode_pieces([p for p in pieces[i:] if p not in cache])
                ids = get(piece)
                if ids is None:  # emptied again by a full cache: this one alone
                    ids = self.bpe.encode_piece(piece)
            out += ids
        return out

    def _may_hold_added(self, text: str) -> bool:
        return any(c in text for c in self.added_first_chars) and self.added_re.search(text) is not None

    def _encode_ids_general(self, text: str) -> list[int]:
        out: list[int] = []
        for stretch, _ in self._segments(text):
            if isinstance(stretch, int):
                out.append(stretch)
            else:
                for piece in self._pieces(stretch):
                    out += self.bpe.encode_piece(piece)
        return out

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids and (start, end) character offsets into `text`."""
        check_unicode(text)
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        for stretch, start in self._segments(text):
            if isinstance(stretch, int):
                ids.append(stretch)
                offsets.append((start, start + len(self.id_to_token[stretch])))
                continue
            for m in PIECE_RE.finditer(stretch):
                piece_ids, piece_offsets = self._piece_offsets(m.group(), start + m.start())
                ids += piece_ids
                offsets += piece_offsets
        if self.pipeline.trim_offsets:
            offsets = self._trim_offsets(ids, offsets)
        return ids, offsets

    def _piece_offsets(self, piece: str, start: int) -> tuple[list[int], list[tuple[int, int]]]:
        """Map each token's byte span in the piece to the characters holding those bytes."""
        char_of_byte = np.repeat(np.arange(len(piece)), [len(c.encode("utf-8")) for c in piece])  # [n_bytes]
        if self.pipeline.add_prefix_space and not piece.startswith(" "):
            piece = " " + piece  # subtle: the added space is aligned with the piece's first character
            char_of_byte = np.r_[0, char_of_byte]
        ids = self.bpe.encode_piece(piece)
        ends = np.cumsum(self.token_nbytes[ids])  # [n_tokens] byte end of each token
        begins = ends - self.token_nbytes[ids]
        return ids, [(start + int(char_of_byte[b]), start + int(char_of_byte[e - 1]) + 1)
                     for b, e in zip(begins, ends)]

    def _trim_offsets(self, ids: list[int], offsets: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The ByteLevel post-processor's trim_offsets: leave leading/trailing spaces out of the span."""
        trimmed = []
        for i, (token_id, (start, end)) in enumerate(zip(ids, offsets)):
            token = self.id_to_token[token_id]
            leading = len(token) - len(token.lstrip(SPACE))
            trailing = len(token) - len(token.rstrip(SPACE))
            if leading and (i == 0 or start == 0) and self.pipeline.post_add_prefix_space and leading == 1:
                leading = 0  # a prefix space the pre-tokenizer may have added stays in the first span
            if leading:
                start = min(start + leading, end)
            if trailing and end >= trailing:
                end = max(end - trailing, start)
            trimmed.append((start, end))
        return trimmed

    def __call__(self, text: str | Sequence[str], padding: bool | str = False, truncation: bool | str | None = None,
                 max_length: int | None = None, return_offsets_mapping: bool = False,
                 add_special_tokens: bool = True, padding_side: str | None = None,
                 return_attention_mask: bool = True, return_tensors: str | None = None,
                 pad_to_multiple_of: int | None = None, return_special_tokens_mask: bool = False) -> "BatchEncoding":
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
                return_attention_mask: bool | None = True) -> "BatchEncoding":
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
            return_attention_mask: bool | None = None, return_tensors: str | None = None) -> "BatchEncoding":
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

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of one text, as a list."""
        return self.encode_ids(check_texts(text)[0] if isinstance(text, str) else _not_a_str(text))

    def tokenize(self, text: str) -> list[str]:
        """Token strings (byte-level form: 'ĠHello') of one text."""
        return self.convert_ids_to_tokens(self.encode(text))

    # -------------------------------------------------------------------------------- decoding

    def _check_ids(self, ids: Any, name: str = "token_ids") -> list[int]:
        arr = as_array(ids, name) if not isinstance(ids, np.ndarray) else ids
        if arr.dtype.kind not in "iu" and not (arr.size == 0 and arr.dtype.kind == "f"):
            raise InputError(f"{name} must be integers, got dtype {arr.dtype}")
        flat = arr.reshape(-1).astype(np.int64)
        bad = np.flatnonzero((flat < 0) | (flat >= self.n_ids))
        if bad.size or any(int(i) not in self.id_to_token for i in flat):
            k = int(bad[0]) if bad.size else next(k for k, i in enumerate(flat) if int(i) not in self.id_to_token)
            raise InputError(f"{name}[{k}] = {flat[k]} is not a token id of this tokenizer (ids 0..{self.n_ids - 1})")
        return flat.tolist()

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False) -> str | list[str]:
        if isinstance(ids, (int, np.integer)):
            return self.id_to_token[self._check_ids([ids], "ids")[0]]
        return [self.id_to_token[i] for i in self._check_ids(ids, "ids")
                if not (skip_special_tokens and i in self.special_ids)]

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | None | list[int | None]:
        if isinstance(tokens, str):
            return self.token_to_id.get(tokens)
        return [self.token_to_id.get(t) for t in tokens]

    def decode(self, token_ids: Any, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: bool | None = None) -> str:
        """Ids -> text. Tokens are joined as bytes first, so a character split across two tokens comes
        back whole; bytes that are not valid UTF-8 become U+FFFD, as in transformers.
        clean_up_tokenization_spaces (default: the tokenizer's setting, False for BLOOM) removes the
        space before punctuation and English contractions (" ." -> ".", " n't" -> "n't")."""
        if isinstance(token_ids, (int, np.integer)):
            token_ids = [token_ids]
        ids = self._check_ids(token_ids)
        text = self.convert_tokens_to_string([self.id_to_token[i] for i in ids
                                              if not (skip_special_tokens and i in self.special_ids)])
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None \
            else clean_up_tokenization_spaces
        return clean_up_tokenization(text) if clean else text

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None) -> list[str]:
        """Decode each row of a [B, L] array or list of id lists (generate's output) to text."""
        return [self.decode(seq, skip_special_tokens=skip_special_tokens,
                            clean_up_tokenization_spaces=clean_up_tokenization_spaces) for seq in sequences]

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Byte-level token strings ("ĠHello") -> text: their bytes joined, then decoded as UTF-8."""
        if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
            raise InputError("tokens must be a list of token strings")
        return b"".join(from_byte_level(t) for t in tokens).decode("utf-8", errors="replace")

    def add_tokens(self, new_tokens: str | Sequence[str], special_tokens: bool = False) -> int:
        """Add tokens matched whole in the text (before pre-tokenization), any text (spaces, non-ASCII);
        returns how many were added (transformers' `add_tokens`, with tokenizers' rules: a text already
        in the vocabulary keeps its id, one already added with the same flags is not counted, empty
        ones are skipped). special_tokens: matched before the others, dropped by
        skip_special_tokens. Resize the model's embeddings to `len(tokenizer)` to use new ids."""
        new_tokens = [new_tokens] if isinstance(new_tokens, str) else list(new_tokens)
        if not all(isinstance(t, str) for t in new_tokens):
            raise InputError("new_tokens must be strings")
        for t in new_tokens:
            check_unicode(t, "new_tokens")  # a lone surrogate has no UTF-8 bytes: InputError naming it
        added = [dict(e) for e in self.data.get("added_tokens") or []]
        count, next_id, sticky = 0, self.n_ids, set(self.sticky_special)
        for content in new_tokens:
            entry = {"content": content, "single_word": False, "lstrip": False, "rstrip": False,
                     "normalized": not special_tokens, "special": special_tokens}
            if not content or any({k: e.get(k) for k in entry} == entry for e in added):
                continue  # empty, or already added exactly so: not counted (tokenizers' rule)
            # subtle: as in tokenizers, a text already in the vocabulary keeps its id (and is then
            # matched whole before BPE, like any added token); only a new text gets the next id
            token_id = self.token_to_id.get(content)
            token_id = next((e["id"] for e in added if e.get("content") == content), token_id)
            if token_id is None:
                token_id, next_id = next_id, next_id + 1
            count += 1
            sticky |= {e["content"] for e in added if e.get("content") == content and e.get("special")}
            added = [e for e in added if e.get("id") != token_id] + [{"id": token_id, **entry}]
        if not count:
            return 0
        added.sort(key=lambda e: e["id"])
        settings = dict(padding_side=self.padding_side, model_max_length=self.model_max_length,
                        special_tokens={k: getattr(self, k) for k in SPECIAL_NAMES if getattr(self, k)})
        truncation_side, clean = self.truncation_side, self.clean_up_tokenization_spaces
        self.__init__({**self.data, "added_tokens": added}, self.pipeline_path, **settings)
        self.truncation_side, self.clean_up_tokenization_spaces = truncation_side, clean
        self.sticky_special = sticky  # once special, always special (tokenizers' special set only grows)
        self._build_added_passes()
        return count


def _with_prefix_space(component: Any) -> Any:
    """A copy of a pipeline component with every `"add_prefix_space": false` set to true."""
    return json.loads(json.dumps(component).replace('"add_prefix_space": false', '"add_prefix_space": true'))


def check_texts(text: Any) -> list[str]:
    """A str or a non-empty list/tuple of str -> list of str; anything else is an InputError."""
    if isinstance(text, str):
        return [check_unicode(text)]
    if isinstance(text, (list, tuple)) and text and all(isinstance(t, str) for t in text):
        return [check_unicode(t, f"text[{k}]") for k, t in enumerate(text)]
    if isinstance(text, (list, tuple)):
        bad = next((k for k, t in enumerate(text) if not isinstance(t, str)), None)
        raise InputError("text must be a str or a non-empty list of str" +
                         ("" if bad is None else f"; text[{bad}] is a {type(text[bad]).__name__}"))
    return _not_a_str(text)


def _not_a_str(text: Any):
    raise InputError(f"text must be a str or a list of str, got {type(text).__name__}")


def _where(data: dict[str, Any], token_id: int) -> str:
    """Which part of tokenizer.json defines `token_id`: added_tokens[k] or model.vocab."""
    for k, a in enumerate(data.get("added_tokens") or []):
        if isinstance(a, dict) and a.get("id") == token_id:
            return f"added_tokens[{k}]:"
    return "model.vocab:"


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


# transformers 4.57.1's TruncationStrategy and PaddingStrategy values (True/False are also accepted)
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")
PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")


def check_truncation(truncation: Any) -> bool | None:
    """transformers' truncation argument -> True (cut to max_length), False, or None (the default:
    cut when max_length is given without padding). A single text has only a first sequence, so
    'longest_first' and 'only_first' cut it and 'only_second' is the error transformers raises."""
    if truncation is None or truncation is True or truncation is False:
        return truncation
    if isinstance(truncation, str) and truncation in TRUNCATION_STRATEGIES:
        if truncation == "only_second":
            raise InputError("truncation='only_second' needs a second sequence (a text pair), which minibloom's "
                             "tokenizer does not take")
        return truncation != "do_not_truncate"
    raise InputError(f"truncation must be True, False, None or one of {list(TRUNCATION_STRATEGIES)}, "
                     f"got {truncation!r}")


def check_padding(padding: Any, max_length: int | None) -> str | None:
    """transformers' padding argument -> None (no padding), "longest" or "max_length"."""
    if max_length is not None and (not isinstance(max_length, (int, np.integer)) or max_length < 0):
        raise InputError(f"max_length must be a non-negative integer, got {max_length!r}")
    if not (padding is True or padding is False or isinstance(padding, str) and padding in PADDING_STRATEGIES):
        raise InputError(f"padding must be True, False or one of {list(PADDING_STRATEGIES)}, got {padding!r}")
    if padding is False or padding == "do_not_pad":
        return None
    if padding == "max_length":
        if max_length is None:
            raise InputError("padding='max_length' needs max_length")
        return "max_length"
    return "longest"


def check_side(side: Any, name: str) -> str:
    if side not in ("left", "right"):
        raise InputError(f"{name} must be 'left' or 'right', got {side!r}")
    return side


def check_return_tensors(return_tensors: Any) -> None:
    if return_tensors not in (None, "np"):
        raise InputError(f"return_tensors must be None (lists) or 'np' (NumPy arrays): minibloom has no torch, "
                         f"got {return_tensors!r}")


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


CLEANUPS = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def clean_up_tokenization(text: str) -> str:
    """transformers' `clean_up_tokenization`: drop the space before punctuation and contractions."""
    for before, after in CLEANUPS:
        text = text.replace(before, after)
    return text
