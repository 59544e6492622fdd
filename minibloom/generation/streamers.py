"""Streamers: objects that receive tokens while `generate` chooses them (transformers' protocol).

`generate(..., streamer=s)` calls `s.put(prompt_ids [B, L0])` once, then `s.put(new_tokens [B])`
after each step, then `s.end()`. `TextStreamer` prints the text of a batch of one as it grows,
word by word; a plain callable is also accepted and gets each step's tokens [B] (no prompt, no end).
"""

from __future__ import annotations

from queue import Queue

import numpy as np

from ..errors import InputError


class BaseStreamer:
    """The protocol `generate` drives: put(value) for the prompt and then each step, end() once."""

    def put(self, value: np.ndarray) -> None:
        """Receive the prompt [1, L0] (first call), then each step's new tokens [1]."""
        raise NotImplementedError

    def end(self) -> None:
        """The generation is over."""
        raise NotImplementedError


class TextStreamer(BaseStreamer):
    """Print generated text to stdout as soon as whole words form (transformers' TextStreamer).

    Tokens are decoded together, not one at a time: a character split over several byte-level
    tokens (most non-ASCII text) only becomes printable once all its bytes have arrived. Text is
    flushed at a newline, after a CJK character, or up to the last space (a word may still grow).
    skip_prompt: do not print the prompt. decode_kwargs go to `tokenizer.decode` (skip_special_tokens).
    """

    def __init__(self, tokenizer, skip_prompt: bool = False, **decode_kwargs):
        self.tokenizer, self.skip_prompt, self.decode_kwargs = tokenizer, skip_prompt, decode_kwargs
        self.token_cache: list[int] = []
        self.print_len = 0
        self.next_tokens_are_prompt = True

    def put(self, value) -> None:
        """Skip the prompt (skip_prompt=True), then pass the new text up to the last complete word to
        `on_finalized_text`."""
        value = np.asarray(value)
        if value.ndim > 1 and value.shape[0] > 1:
            raise InputError("TextStreamer only supports batch size 1")
        value = value.reshape(-1)
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        self.token_cache.extend(value.tolist())
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        if text.endswith("\n"):  # a finished line: flush and start a new cache
            printable = text[self.print_len:]
            self.token_cache, self.print_len = [], 0
        elif text and is_cjk(ord(text[-1])):  # CJK has no spaces: each character is a word
            printable = text[self.print_len:]
            self.print_len += len(printable)
        else:  # up to the last space: the last word may still grow with the next token
            printable = text[self.print_len:text.rfind(" ") + 1]
            self.print_len += len(printable)
        self.on_finalized_text(printable)

    def end(self) -> None:
        """Flush what is left and end the line."""
        printable = ""
        if self.token_cache:
            printable = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)[self.print_len:]
            self.token_cache, self.print_len = [], 0
        self.next_tokens_are_prompt = True
        self.on_finalized_text(printable, stream_end=True)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        """Print the new text (override to send it elsewhere)."""
        print(text, flush=True, end=None if stream_end else "")


class TextIteratorStreamer(TextStreamer):
    """`TextStreamer` whose text goes to a queue, read by iterating (transformers' TextIteratorStreamer):
    run generate in a thread and consume the text as it comes.

        streamer = TextIteratorStreamer(tok, skip_prompt=True)
        threading.Thread(target=lm.generate, args=(ids,), kwargs=dict(streamer=streamer)).start()
        for text in streamer: ...

    Each put's printable text is one item (possibly ""), the prompt's included unless skip_prompt;
    iteration stops at end(). timeout: seconds each get (and put) may wait, then `queue.Empty` (or
    `queue.Full`); None waits forever -- so if generate fails in its thread, only a timeout ends the loop.
    """

    def __init__(self, tokenizer, skip_prompt: bool = False, timeout: float | None = None, **decode_kwargs):
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        if timeout is not None and not (isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
                                        and timeout >= 0):
            raise InputError(f"timeout must be None or a number of seconds >= 0, got {timeout!r}")
        self.text_queue: Queue = Queue()
        self.stop_signal = None
        self.timeout = timeout

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        """Queue the new text; at the end, also the stop signal."""
        self.text_queue.put(text, timeout=self.timeout)
        if stream_end:
            self.text_queue.put(self.stop_signal, timeout=self.timeout)

    def __iter__(self) -> "TextIteratorStreamer":
        return self

    def __next__(self) -> str:
        value = self.text_queue.get(timeout=self.timeout)  # queue.Empty after `timeout` seconds
        if value == self.stop_signal:
            raise StopIteration()
        return value


def is_cjk(cp: int) -> bool:
    """A code point in the CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana)."""
    return any(lo <= cp <= hi for lo, hi in ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
                                            (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
                                            (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))
