"""The byte <-> unicode table of byte-level BPE (GPT-2's `bytes_to_unicode`, used unchanged by BLOOM).

Byte-level BPE works on the UTF-8 *bytes* of the text, so any string can be encoded with a vocabulary
of 256 base symbols and nothing is ever unknown. But vocab files and merge lists are text, and some
bytes are invisible or break JSON (control bytes, the space). So each byte is shown as one printable
unicode character:

- the 188 bytes that are already printable Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves;
- the other 68 (0x00-0x20, 0x7F-0xA0, 0xAD) are moved, in order, to U+0100, U+0101, ...

That is why a space shows up as 'Ġ' (U+0120, the 33rd moved byte) and a newline as 'Ċ' in BLOOM's
vocab: 'ĠHello' is the token " Hello".
"""

from __future__ import annotations


def bytes_to_unicode() -> dict[int, str]:
    """{byte: printable character} for all 256 bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    moved = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + moved)  # subtle: the order of the moved bytes fixes every id in the vocab
            moved += 1
    return table


BYTE_TO_CHAR: dict[int, str] = bytes_to_unicode()
CHAR_TO_BYTE: dict[str, int] = {c: b for b, c in BYTE_TO_CHAR.items()}

# BYTE_TO_CHAR doubles as a str.translate table: decoding bytes as latin-1 gives one character per
# byte whose code point is the byte, so .translate maps a whole piece in one C call.
LATIN1_TO_BYTE_LEVEL: dict[int, str] = BYTE_TO_CHAR


def to_byte_level(text: str) -> str:
    """'héllo' -> 'hÃ©llo': each UTF-8 byte of `text` as its printable stand-in."""
    return text.encode("utf-8").decode("latin-1").translate(LATIN1_TO_BYTE_LEVEL)


def from_byte_level(symbols: str) -> bytes:
    """The inverse of `to_byte_level`, to bytes (a token may end inside a multi-byte character).

    Characters outside the table (an added token's own text) stand for their own UTF-8 bytes, as
    in tokenizers' ByteLevel decoder, which keeps such a token whole."""
    if all(c in CHAR_TO_BYTE for c in symbols):
        return bytes(CHAR_TO_BYTE[c] for c in symbols)
    return symbols.encode("utf-8")
