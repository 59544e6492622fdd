"""09 - The KV cache and generation (about 2 s).

Generating token by token, the keys and values of earlier tokens never change, so they are kept
in a preallocated cache and only the new token is run. Logits with the cache equal the full run.
"""

import numpy as np

from minibloom import EMBEDDED_CHECKPOINT, BloomForCausalLM, BloomTokenizer, KVCache

lm = BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT)
tok = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
ids = tok("HAMLET.\nTo be, or not to be", return_tensors="np")["input_ids"]
cache = KVCache.for_config(lm.config, batch=1, capacity=ids.shape[1] + 20)
prefix = lm(ids[:, :-3], past_key_values=cache).logits  # the first T-3 tokens fill the cache
rest = lm(ids[:, -3:], past_key_values=cache).logits  # the last 3 attend to the cached ones
full = lm(ids).logits
# equal up to float32 rounding: 1e-5, relative where logits are large (BLAS may sum in another order)
np.testing.assert_allclose(np.concatenate([prefix, rest], 1), full, rtol=0, atol=1e-5 * max(1, np.abs(full).max()))
print(f"cache holds {cache.get_seq_length()} tokens; cached logits == full logits")

tokens = ids.copy()
cache = KVCache.for_config(lm.config, 1, ids.shape[1] + 12)
logits = lm(tokens, past_key_values=cache).logits[:, -1]
for _ in range(12):  # greedy decoding by hand
    nxt = logits.argmax(-1)[:, None]
    tokens = np.concatenate([tokens, nxt], 1)
    logits = lm(nxt, past_key_values=cache).logits[:, -1]
assert (tokens == lm.generate(ids, max_new_tokens=12)).all()
print(repr(tok.decode(tokens[0])))
print("sampled:", repr(tok.decode(lm.generate(ids, max_new_tokens=12, do_sample=True, top_p=0.9, seed=1)[0])))
