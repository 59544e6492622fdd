"""Reading files that may be hostile: regular files only, sizes capped, JSON bounded.

Every file minibloom reads goes through `open_regular` (or `read_json`, built on it):

- only a *regular* file is opened: a FIFO would block forever, `/dev/zero` (or a symlink to it)
  would read until memory runs out. The file is opened with O_NONBLOCK, so even a FIFO swapped in
  after a check cannot block, and `fstat` on the open descriptor decides;
- the size is known before a byte is read, and capped per kind of file;
- JSON (`loads`) is refused past a nesting depth (`MAX_JSON_DEPTH`; a nesting bomb would otherwise
  be a RecursionError here or in any code that walks the document later) and integers longer than
  `MAX_INT_DIGITS` digits (Python's own 4300-digit guard is a bare ValueError, and converting
  integers of thousands of digits, to read them or to print them in a message, is quadratic).

Each limit admits every file the reference stack writes (tests/reference/test_live_artifacts.py
reads them all): its comment names the largest real value and where it comes from.

Failures are raised as the caller's typed error (CheckpointError, TokenizerFileError) naming the file.
"""

from __future__ import annotations

import json
import os
import re
import stat
from typing import Any, BinaryIO

from .errors import CheckpointError

# config.json, shard indexes, tokenizer_config.json, generation_config.json. The largest real ones: a
# config.json with config.MAX_LABELS labels (id2label and label2id) is 6.8 MB; BLOOM-176B's shard
# index, 845 names, about 80 KB.
MAX_JSON_BYTES = 64 * 2**20
# tokenizer.json. The largest real one: BLOOM's own, 250,680 tokens and their merges, is 14.5 MB.
MAX_TOKENIZER_BYTES = 1024 * 2**20
# The deepest real file: tokenizer.json, 5 levels (pre_tokenizer.pretokenizers[0].pattern.Regex);
# generation_config.json's sequence_bias 4; everything else transformers writes for BLOOM 3 or less.
MAX_JSON_DEPTH = 64
# The longest real integer: transformers' VERY_LARGE_INTEGER = int(1e30), 31 digits, which
# tokenizer_config.json holds as model_max_length whenever the tokenizer has no limit (BLOOM's has
# none); sizes, ids and offsets are at most 2**64 (20 digits). 100 digits admit any 256-bit value
# (78), and int() reads them in linear time (~0.2 us each: a 64 MB file of them takes 0.1 s).
MAX_INT_DIGITS = 100


def open_regular(path: str | os.PathLike, error: type[Exception] = CheckpointError,
                 max_bytes: int | None = None) -> BinaryIO:
    """Open `path` for binary reading if it is a regular file (of at most `max_bytes`)."""
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise error(f"{path} not found: no such file") from None
    except ValueError:  # os.open's refusal of an embedded NUL
        raise error(f"{path!r}: a file name cannot hold a NUL byte") from None
    except OSError as e:
        raise error(f"cannot open {path}: {e.strerror or e}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{path} is not a regular file ({_kind(info.st_mode)}); refusing to read it")
        if max_bytes is not None and info.st_size > max_bytes:
            raise error(f"{path} is {info.st_size:,} bytes, more than the {max_bytes:,} this kind of file may have")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a plain file"


def read_json(path: str | os.PathLike, error: type[Exception] = CheckpointError,
              max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Read and parse a JSON file with every guard above; `error` names the file on any failure."""
    path = os.fspath(path)
    with open_regular(path, error, max_bytes) as f:
        try:  # the size fstat gave, plus one byte to notice a file that grew since
            raw = f.read(os.fstat(f.fileno()).st_size + 1)
        except OSError as e:
            raise error(f"cannot read {path}: {e.strerror or e}") from None
    if len(raw) > max_bytes:  # it grew since fstat
        raise error(f"{path} is more than the {max_bytes:,} bytes this kind of file may have")
    return loads(raw, path, error)


def loads(raw: bytes | str, where: str, error: type[Exception] = CheckpointError,
          object_pairs_hook: Any = None) -> Any:
    """`json.loads` that raises `error` (naming `where`) for anything but a bounded, valid document.
    `object_pairs_hook` may refuse an object by raising ValueError."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        data = json.loads(text, parse_int=_parse_int, object_pairs_hook=object_pairs_hook)
    except UnicodeDecodeError as e:
        raise error(f"{where} is not valid JSON (not UTF-8 text): {e}") from None
    except json.JSONDecodeError as e:
        raise error(f"{where} is not valid JSON: {e}") from None
    except RecursionError:
        raise error(f"{where}: JSON nested more than {MAX_JSON_DEPTH} deep") from None
    except ValueError as e:  # _parse_int's or the hook's refusal
        raise error(f"{where}: {e}") from None
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise error(f"{where}: JSON nested {depth} deep, more than the {MAX_JSON_DEPTH} allowed")
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):  # only escapes can make one
        raise error(f"{where}: a string holds a lone surrogate escape (\\uD800-\\uDFFF unpaired): not valid "
                    "Unicode, and refused by the Rust readers (tokenizers, safetensors) too")
    return data


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def _has_lone_surrogate(data: Any) -> bool:
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if not node.isascii() and any("\ud800" <= c <= "\udfff" for c in node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(digits.lstrip('-'))} digits (at most {MAX_INT_DIGITS} are read)")
    return int(digits)


def json_depth(data: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of a parsed document (a scalar is 0), counting no further than `limit` + 1.
    Iterative, so a deep document cannot exhaust the stack here."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        deepest = max(deepest, depth)
        if depth > limit:
            return depth
        stack.extend((child, depth + 1) for child in node if isinstance(child, (dict, list)))
    return deepest
