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

What transformers adds around this (a list of texts, truncation, padding, `return_tensors="np"`,
`pad`) is `batching.py`; the class inherits it, so `tokenizer(texts, padding=True)` works as there.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Sequence

import numpy as np
import regex

from ..atomic import reading, transaction
from ..errors import InputError, TokenizerFileError
from ..validation import as_array, check_side, check_text, check_unicode
from .batching import Batching
from .bytes_unicode import from_byte_level
from .pretokenizer import PIECE_RE, SCAN_MIN_CHARS, split_byte_starts, split_pieces
from .tokenizer_json import Pipeline, config_settings, max_length_setting, parse_pipeline, read_json

SPACE = "Ġ"  # the byte-level stand-in of " "


SPECIAL_NAMES = ("unk_token", "bos_token", "eos_token", "pad_token")


class BloomTokenizer(Batching):
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

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of one text, as a list."""
        return self.encode_ids(check_text(text))

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


def _where(data: dict[str, Any], token_id: int) -> str:
    """Which part of tokenizer.json defines `token_id`: added_tokens[k] or model.vocab."""
    for k, a in enumerate(data.get("added_tokens") or []):
        if isinstance(a, dict) and a.get("id") == token_id:
            return f"added_tokens[{k}]:"
    return "model.vocab:"


CLEANUPS = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def clean_up_tokenization(text: str) -> str:
    """transformers' `clean_up_tokenization`: drop the space before punctuation and contractions."""
    for before, after in CLEANUPS:
        text = text.replace(before, after)
    return text
