"""Golden outputs for porters, one concept per module:

    format.py    the port-facing format: tensor names, forward order, axes, the plain-file reader
    diff.py      record a forward pass (dump) and compare two records, naming the first divergent op
    lowp.py      float16 / bfloat16 goldens computed as transformers computes them
    tokens.py    tokenizer goldens (JSON Lines: ids, offsets, decoded text) and their compare
    train.py     training goldens: the backward and AdamW steps
    generate.py  generation goldens: each step's logits and cache rows, greedy or sampled

`minibloom.golden` keeps the public names of the dump and compare modules (docs/golden.md).
"""

from .diff import *  # noqa: F401,F403
from .diff import __all__
