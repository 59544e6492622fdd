"""Printing generated tokens as text while they come (`minibloom generate`)."""

from __future__ import annotations


class TokenPrinter:
    """Prints generated tokens as text as they come: decoded together, so a character split over
    several tokens prints whole; ids the tokenizer does not know (the model's vocab is larger) print
    as <id N> instead of aborting mid-line; without a tokenizer, ids are printed."""

    def __init__(self, tok):
        self.tok, self.pending, self.shown = tok, [], ""

    def add(self, token: int) -> None:
        """Print what `token` completes (nothing while a character is still split)."""
        if self.tok is None:
            print(f" {token}", end="", flush=True)
            return
        if token not in self.tok.id_to_token:
            self.flush()
            print(f"<id {token}>", end="", flush=True)
            return
        self.pending.append(token)
        text = self.tok.decode(self.pending, skip_special_tokens=True)
        if not text.endswith("\ufffd"):  # wait for the rest of a character split across tokens
            print(text[len(self.shown):], end="", flush=True)
            self.shown = text

    def flush(self) -> None:
        """Print whatever is still pending (a character left incomplete prints as U+FFFD)."""
        if self.tok is not None and self.pending:
            text = self.tok.decode(self.pending, skip_special_tokens=True)
            print(text[len(self.shown):], end="", flush=True)
        self.pending, self.shown = [], ""
