"""Exercise pretokenize: write split_pieces, then run

    python -m minibloom.exercises pretokenize THIS_FILE.py
"""

import numpy as np


def split_pieces(text: str) -> list:
    """BLOOM's pre-tokenizer: cut text into pieces (list of str) that BPE merges one at a time.

    The regex ` ?[^(\s|[.,!?…。，、।۔،])]+` (Oniguruma) marks the matches; the text between two
    matches is a piece too, so the pieces join back to the text. Chapter 3 of docs/tutorial.md.
    """
    raise NotImplementedError
