"""BLOOM's byte-level BPE tokenizer, one concept per module:

    bytes_unicode.py   the byte <-> printable-character table
    pretokenizer.py    BLOOM's split regex (text -> pieces)
    bpe.py             the merge loop (piece -> token ids), readable and Numba versions, piece cache
    tokenizer_json.py  reading tokenizer.json and refusing pipelines we do not implement
    bloom_tokenizer.py BloomTokenizer, the transformers-like API
    train.py           learning merges from text (the BPE trainer)
"""

from .bloom_tokenizer import BloomTokenizer

__all__ = ["BloomTokenizer"]
