"""BLOOM's byte-level BPE tokenizer, one concept per module:

    bytes_unicode.py   the byte <-> printable-character table
    pretokenizer.py    BLOOM's split regex (text -> pieces)
    bpe.py             the merge loop (piece -> token ids): the naive rescan to read first, the heap,
                       the Numba versions, the piece cache
    tokenizer_json.py  reading tokenizer.json and refusing pipelines we do not implement
    bloom_tokenizer.py BloomTokenizer: one text -> ids and offsets (added tokens, pieces, BPE) and back
    batching.py        transformers' call around it: batches, truncation, padding, return_tensors
    train.py           learning merges from text (the BPE trainer)
"""

from .batching import BatchEncoding
from .bloom_tokenizer import BloomTokenizer

__all__ = ["BatchEncoding", "BloomTokenizer"]
