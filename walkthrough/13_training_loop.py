"""13 - A training loop in about 30 lines: fine-tune the embedded model on a scene (about 10 s).

value_and_grad runs the forward keeping a small record per layer, then the backward, and returns
the loss and a gradient for every parameter by name; AdamW updates the weights in place. The loss
on the training text falls; `minibloom train` is this loop plus data files, checkpoints and plots.
"""

import os
import tempfile

import numpy as np

from minibloom import EMBEDDED_CHECKPOINT, BloomForCausalLM, BloomTokenizer
from minibloom.training import AdamW, clip_grad_norm, cosine_schedule, value_and_grad

model = BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT, storage="float32")  # training needs float32 weights
tokenizer = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
text = "FERDINAND. There be some sports are painful, and their labour\nDelight in them sets off. " * 4
ids = np.array(tokenizer.encode(text))  # one token stream
steps, batch_size, seq_len, peak_lr = 8, 4, 16, 3e-3
optimizer = AdamW(model.params, lr=peak_lr, weight_decay=0.01)
rng = np.random.default_rng(0)
losses = []
for step in range(steps):
    starts = rng.integers(0, ids.size - seq_len, size=batch_size)
    batch = np.stack([ids[s:s + seq_len] for s in starts])  # [B, T] windows
    loss, grads = value_and_grad(model, input_ids=batch, labels=batch)  # labels shift inside
    norm = clip_grad_norm(grads, 1.0)  # no huge steps on an odd batch
    optimizer.lr = cosine_schedule(step, peak_lr, warmup_steps=2, total_steps=steps)
    optimizer.step(grads)
    losses.append(float(loss))
    print(f"step {step:2d}  loss {loss:.3f}  grad norm {norm:6.2f}  lr {optimizer.lr:.5f}")

held = np.array(tokenizer.encode(text[:200]))[None]
print(f"loss on the text: {losses[0]:.3f} at the start, {float(model(held, labels=held).loss):.3f} now")
assert float(model(held, labels=held).loss) < 0.5 * losses[0]
out = os.path.join(tempfile.mkdtemp(prefix="minibloom-walkthrough-"), "trained")  # never into the repository
model.save_pretrained(out)  # transformers' layout: BloomForCausalLM.from_pretrained(out)
print("saved to", out, "(a temporary directory: delete it when done)")
