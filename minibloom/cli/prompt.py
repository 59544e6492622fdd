"""The prompt of `generate`: TEXT (with \\n and \\t escapes), -f FILE, or stdin, checked before the
model loads."""

from __future__ import annotations

import argparse
import sys

from .common import UsageError


def read_prompt(args: argparse.Namespace) -> str | None:
    """The prompt text from TEXT, -f FILE or stdin ('-'); None with --ids. Checked before loading."""
    sources = [name for name, given in (("TEXT", args.text is not None), ("-f", args.file is not None),
                                        ("--ids", args.ids is not None)) if given]
    if len(sources) != 1:
        raise UsageError("give the prompt once: as TEXT, -f FILE (- for stdin) or --ids" +
                         (f" (got {' and '.join(sources)})" if sources else ""))
    if args.ids is not None:
        return None
    if args.file is not None or args.text == "-":
        return read_prompt_file(args.file if args.file is not None else "-")
    return args.text if args.no_escape else unescape(args.text)


# The most prompt text read from -f or stdin. The longest contexts models use are about a million
# tokens, some 4 MB of English text (BLOOM itself was trained on 2048 tokens); 16 MiB is four times
# that, and a NumPy forward over it would already take hours. Past it is a mistake (`-f /dev/zero`,
# a pipe that never ends), refused before memory runs out.
MAX_PROMPT_BYTES = 16 * 2**20


def read_prompt_file(path: str) -> str:
    """The prompt from a regular file (never a FIFO, a device or a directory) or stdin ('-'), of at
    most MAX_PROMPT_BYTES, as UTF-8."""
    from ..safe_read import open_regular

    flag = "- (stdin)" if path == "-" else f"-f {path}"
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(MAX_PROMPT_BYTES + 1)
        else:
            with open_regular(path, UsageError, MAX_PROMPT_BYTES) as f:
                raw = f.read(MAX_PROMPT_BYTES + 1)
    except UsageError as e:
        raise UsageError(f"{flag}: cannot read the prompt: {e}") from None
    except OSError as e:
        raise UsageError(f"{flag}: cannot read the prompt ({e.strerror or e})") from None
    if len(raw) > MAX_PROMPT_BYTES:
        raise UsageError(f"{flag}: the prompt is more than {MAX_PROMPT_BYTES:,} bytes (the limit on a prompt "
                         f"read from {'stdin' if path == '-' else 'a file'})")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{flag}: cannot read the prompt (not UTF-8 text: {e})") from None


def unescape(text: str) -> str:
    """\\n, \\t, \\r and \\\\ in a command-line prompt, as llama.cpp's --escape reads them."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in "ntr\\":
            out.append({"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
