"""08 - Task heads and their losses (about 1 s).

The causal LM scores every vocabulary entry at every position with the (tied) embedding matrix;
its loss is cross-entropy of position t's logits against token t+1. A sequence classifier scores
the last non-pad token of each row.
"""

import numpy as np

from minibloom import EMBEDDED_CHECKPOINT, BloomForCausalLM, BloomForSequenceClassification, BloomTokenizer
from minibloom.heads import last_non_pad_index
from minibloom.losses import log_softmax

lm = BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT)
tok = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
ids = tok("Good night, good night! parting is such sweet sorrow", return_tensors="np")["input_ids"]
out = lm(ids, labels=ids)
logp = log_softmax(out.logits[0, :-1])  # [T-1, V]: position t predicts token t+1
by_hand = -logp[np.arange(ids.shape[1] - 1), ids[0, 1:]].mean()
print(f"loss {float(out.loss):.4f} (by hand {by_hand:.4f}), perplexity {np.exp(by_hand):.1f}")
assert abs(by_hand - out.loss) < 1e-4
nxt = out.logits[0, -1].argmax()
print("most likely next token:", repr(tok.decode([nxt])))

clf = BloomForSequenceClassification.from_pretrained(EMBEDDED_CHECKPOINT, num_labels=2)  # new head: warns
batch = tok(["Out, damned spot!", "All the world's a stage"], padding=True, return_tensors="np")
logits = clf(batch["input_ids"], attention_mask=batch["attention_mask"], labels=np.array([0, 1])).logits
rows = last_non_pad_index(batch["input_ids"], clf.config.pad_token_id, 2)  # [B]: left padding -> T-1
print("input ids (left-padded):", batch["input_ids"].tolist(), "-> each row is read at position", rows.tolist())
print("classifier logits (random head):", [[f"{v:.3f}" for v in r] for r in logits])
assert logits.shape == (2, 2) and (rows == batch["input_ids"].shape[1] - 1).all()
