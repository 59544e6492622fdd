"""Exercise byte_level: write to_byte_level, then run

    python -m minibloom.exercises byte_level THIS_FILE.py
"""

import numpy as np


def to_byte_level(text: str) -> str:
    """A text's UTF-8 bytes as the byte-level alphabet shows them: one printable character per byte.

    Bytes that are printable Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the 68 others,
    in byte order, become chr(256), chr(257), ... (so a space is 'Ġ'). Chapter 1 of docs/tutorial.md.
    """
    raise NotImplementedError
