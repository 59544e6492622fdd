"""07 - A whole block, and the model as a stack of blocks (about 1 s).

block(x) = x1 + mlp(ln2(x1)), x1 = x + attention(ln1(x)). The model: embeddings, embedding layer
norm, n_layer blocks, a final layer norm. We run the blocks ourselves and match model(ids).
"""

import numpy as np

from minibloom import EMBEDDED_CHECKPOINT, BloomModel, BloomTokenizer
from minibloom.alibi import alibi_bias
from minibloom.backends import numpy_backend as ops
from minibloom.block import bloom_block
from minibloom.masking import causal_padding_bias
from minibloom.model import block_spec

model = BloomModel.from_pretrained(EMBEDDED_CHECKPOINT)
tok = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
ids = tok("Friends, Romans, countrymen", return_tensors="np")["input_ids"]
cfg, P = model.config, model.params
mask = np.ones_like(ids)
h = ops.layer_norm(ops.embed(P["word_embeddings.weight"], ids), P["word_embeddings_layernorm.weight"],
                   P["word_embeddings_layernorm.bias"], cfg.layer_norm_epsilon)
alibi, mask_bias = alibi_bias(mask, cfg.n_head), causal_padding_bias(mask, ids.shape[1], 0)
for i in range(cfg.n_layer):
    h, _ = bloom_block(h, model.layer_params(i), alibi, mask_bias, block_spec(cfg), ops)
    print(f"after block {i}: mean {h.mean():+.3f} std {h.std():.3f}")
h = ops.layer_norm(h, P["ln_f.weight"], P["ln_f.bias"], cfg.layer_norm_epsilon)
np.testing.assert_allclose(h, model(ids).last_hidden_state, atol=1e-5)
print(f"{cfg.n_layer} blocks by hand == BloomModel.forward; parameters:",
      sum(v.size for v in P.values()))
