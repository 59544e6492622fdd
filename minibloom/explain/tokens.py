"""Watch BPE merge a real word: the merge trace of a text on a real tokenizer.

For each pre-tokenized piece: its UTF-8 bytes as the byte-level alphabet shows them ('Ġ' is a
space, 'Ċ' a newline), then every merge in the order it is applied, with its rank (its line in
tokenizer.json's merges; lower merges first), until no adjacent pair is in the merge list:

    ' lover'  Ġ l o v e r
      rank   12  o + v -> ov
      rank   40  Ġ + l -> Ġl ...

`naive_merge` is the rule itself, rescanning every pair after each merge (O(n^2) per piece, fine
for reading); `tokenizer/bpe.py` computes the same tokens with a heap and compiled code, and the
tests hold the two to the same ids on many texts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InputError
from ..tokenizer.bytes_unicode import BYTE_TO_CHAR


@dataclass
class Merge:
    """One merge step: symbols[position] and symbols[position + 1] become left + right."""

    left: str
    right: str
    rank: int
    position: int

    @property
    def merged(self) -> str:
        return self.left + self.right


@dataclass
class PieceTrace:
    """One piece of the text: `symbols` (one per byte at first), the `merges` applied, the final
    `tokens` and their `ids`. `added`: an added token (`</s>`, ...) matched before the split."""

    piece: str
    symbols: list[str]
    merges: list[Merge] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    added: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def naive_merge(symbols: list[str], ranks: dict[tuple[str, str], int]) -> tuple[list[str], list[Merge]]:
    """Merge the lowest-ranked adjacent pair (the leftmost one on a tie) until no pair is in `ranks`.
    Returns the final symbols and the merges applied, in order."""
    symbols, merges = list(symbols), []
    while True:
        candidates = [(ranks[pair], i) for i, pair in enumerate(zip(symbols, symbols[1:])) if pair in ranks]
        if not candidates:
            return symbols, merges
        rank, i = min(candidates)  # lowest rank, then leftmost
        merges.append(Merge(symbols[i], symbols[i + 1], rank, i))
        symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]


def byte_symbols(bpe: Any, raw: bytes) -> list[str]:
    """One byte-level character per byte; a byte the vocab lacks becomes the unk token (one per run
    with fuse_unk) or is dropped when there is none, as `BPE.byte_symbols` does with ids."""
    out, unknown_before = [], False
    for b in raw:
        char = BYTE_TO_CHAR[b]
        known = char in bpe.vocab
        if not known and bpe.unk_token is not None and not (bpe.fuse_unk and unknown_before):
            out.append(bpe.unk_token)
        elif known:
            out.append(char)
        unknown_before = not known
    return out


def trace_piece(bpe: Any, piece: str) -> PieceTrace:
    """The merge trace of one pre-tokenized piece under the BPE model `bpe` (tokenizer.bpe)."""
    try:
        raw = piece.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputError(f"text holds a lone surrogate U+{ord(piece[e.start]):04X} (in the piece "
                         f"{piece[:40]!r}): not valid Unicode") from None
    symbols = byte_symbols(bpe, raw)
    whole = "".join(BYTE_TO_CHAR[b] for b in raw)
    if bpe.ignore_merges and whole in bpe.vocab:  # the piece is a token itself: no merges are looked at
        return PieceTrace(piece, symbols, [], [whole], [bpe.vocab[whole]])
    tokens, merges = naive_merge(symbols, bpe.ranks)
    return PieceTrace(piece, symbols, merges, tokens, [bpe.vocab[t] for t in tokens])


def merge_trace(tokenizer: Any, text: str) -> list[PieceTrace]:
    """The merge trace of `text` on a `BloomTokenizer`: added tokens first, then the split into
    pieces, then each piece's merges. The ids, joined, are `tokenizer.encode(text)`'s (BLOOM adds
    no special tokens)."""
    if not isinstance(text, str):
        raise InputError(f"text must be a str, got {type(text).__name__}")
    out = []
    for stretch, _ in tokenizer._segments(text):
        if isinstance(stretch, int):  # an added token: matched whole, never merged
            token = tokenizer.id_to_token[stretch]
            out.append(PieceTrace(token, [token], [], [token], [stretch], added=True))
            continue
        out += [trace_piece(tokenizer.bpe, piece) for piece in tokenizer._pieces(stretch)]
    return out


def format_trace(traces: list[PieceTrace]) -> str:
    """The trace as text for people (`minibloom tokenize --explain`)."""
    lines = []
    for t in traces:
        if t.added:
            lines.append(f"{t.piece!r}  added token, id {t.ids[0]} (matched whole, before the split)")
            continue
        lines.append(f"{t.piece!r}  bytes: {' '.join(t.symbols)}")
        for m in t.merges:
            lines.append(f"    rank {m.rank:>7}  {m.left} + {m.right} -> {m.merged}")
        lines.append("    tokens: " + "  ".join(f"{tok} ({i})" for tok, i in zip(t.tokens, t.ids)))
    n_tokens = sum(len(t.ids) for t in traces)
    n_merges = sum(len(t.merges) for t in traces)
    lines.append(f"{len(traces)} pieces, {n_merges} merges, {n_tokens} tokens")
    return "\n".join(lines)
