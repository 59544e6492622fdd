"""Exercise bpe_merge: write bpe_merge, then run

    python -m minibloom.exercises bpe_merge THIS_FILE.py
"""

import numpy as np


def bpe_merge(symbols: list, ranks: dict) -> list:
    """Apply BPE merges to one word: symbols (list of str, one per byte), ranks {(left, right): rank}.

    Returns the final list of str. Chapter 2 of docs/tutorial.md; the real tokenizer's trace is
    `minibloom tokenize --explain WORD`.
    """
    raise NotImplementedError
