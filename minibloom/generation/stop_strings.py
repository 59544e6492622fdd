"""Stop strings: transformers' StopStringCriteria, which ends a row once its text ends in a string."""

from __future__ import annotations

import numpy as np

from ..errors import InputError


class StopStrings:
    """transformers' StopStringCriteria: a row stops once a stop string ends inside its last token.

    Each token stands for the text it decodes to on its own (a lone byte of a multi-byte character
    is U+FFFD, as transformers' cleaned vocabulary has it). A stop string matches when it occurs in
    the text of the row's last tokens and its final character lies within the last token: the
    token may run past it ("\n\n" stops on "\n"), and the string may start inside an earlier token.
    Ids the tokenizer does not know (a model vocab larger than the tokenizer's) match nothing.
    """

    def __init__(self, stop_strings: list[str], tokenizer):
        if tokenizer is None:
            raise InputError("stop_strings needs the tokenizer: generate(..., stop_strings=..., tokenizer=tok)")
        self.stop_strings, self.tokenizer = stop_strings, tokenizer
        self.window = max(len(s) for s in stop_strings)  # every token is at least one character long
        self.texts: dict[int, str | None] = {}

    def text(self, token: int) -> str | None:
        """The text `token` decodes to on its own (cached); None for an id the tokenizer does not know."""
        if token not in self.texts:
            known = token in self.tokenizer.id_to_token
            self.texts[token] = self.tokenizer.decode([token]) if known else None
        return self.texts[token]

    def matches(self, tokens: np.ndarray) -> np.ndarray:
        """[B] bool: does each row of tokens [B, L] end (in its last token) with a stop string?"""
        return np.array([self.row_matches(row[-self.window:].tolist()) for row in tokens], bool)

    def row_matches(self, row: list[int]) -> bool:
        """Does a stop string end within the last token of `row` (the text of its last known tokens)?"""
        pieces = []
        for token in reversed(row):
            piece = self.text(token)
            if piece is None:
                break
            pieces.append(piece)
        if not pieces or not pieces[0]:
            return False
        text, last = "".join(reversed(pieces)), len(pieces[0])
        return any(text.startswith(s, end - len(s)) for s in self.stop_strings
                   for end in range(max(len(text) - last + 1, len(s)), len(text) + 1))
