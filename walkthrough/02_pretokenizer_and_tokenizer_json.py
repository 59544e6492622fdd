"""02 - BLOOM's pre-tokenizer and tokenizer.json (about 1 s).

Before BPE, text is cut into pieces by BLOOM's split regex; no token crosses a piece. The whole
pipeline is named in tokenizer.json; minibloom checks each stage and refuses any it does not know.
"""

import json
import os

from minibloom import EMBEDDED_CHECKPOINT, BloomTokenizer
from minibloom.tokenizer.pretokenizer import BLOOM_SPLIT_PATTERN, split_pieces

print("the split regex, as tokenizer.json stores it:", BLOOM_SPLIT_PATTERN)
pieces = split_pieces("Hello, world!  How are you?")
print("pieces:", pieces)
# subtle: "! " is one piece: the text between two matches stays together, and the second space
# belongs to " How" (a match is an optional space plus word characters)
assert pieces == ["Hello", ",", " world", "! ", " How", " are", " you", "?"]

with open(os.path.join(EMBEDDED_CHECKPOINT, "tokenizer.json")) as f:
    data = json.load(f)
for stage in ("normalizer", "pre_tokenizer", "post_processor", "decoder"):
    print(f"{stage:15}", json.dumps(data[stage])[:90])
print("added tokens:", [(t["id"], t["content"]) for t in data["added_tokens"]])

tok = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
text = "Now is the winter of our discontent</s>"
ids, offsets = tok.encode_with_offsets(text)
for i, (s, e) in zip(ids, offsets):
    print(f"{i:5d} {tok.convert_ids_to_tokens(i)!r:14} {text[s:e]!r}")
assert ids[-1] == tok.eos_token_id  # special tokens in the text are matched first
assert tok.decode(ids) == text
batch = tok(["To be", "or not to be"], padding=True, return_tensors="np")
print("left-padded batch:", batch["input_ids"].tolist(), batch["attention_mask"].tolist())
assert batch["attention_mask"][0, 0] == 0  # padding_side is left, as BLOOM's hub config says
