"""03 - Embeddings and layer norm (about 1 s).

A token id picks a row of the embedding matrix; BLOOM then normalises it (word_embeddings_layernorm)
before the first block: subtract the mean, divide by the standard deviation, scale and shift.
"""

import numpy as np

from minibloom import EMBEDDED_CHECKPOINT, BloomModel, BloomTokenizer
from minibloom.functional import layer_norm

model = BloomModel.from_pretrained(EMBEDDED_CHECKPOINT)
tok = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
ids = tok("KING RICHARD.", return_tensors="np")["input_ids"]  # [1, T]
table = model.params["word_embeddings.weight"]  # [V, H]
x = table[ids].astype(np.float32)  # [1, T, H]
print("ids", ids.tolist(), "-> embeddings", x.shape, "(stored as", table.dtype, ")")

mean = x.mean(-1, keepdims=True)
var = ((x - mean) ** 2).mean(-1, keepdims=True)  # biased variance, as torch.nn.LayerNorm
w, b = model.params["word_embeddings_layernorm.weight"], model.params["word_embeddings_layernorm.bias"]
by_hand = (x - mean) / np.sqrt(var + model.config.layer_norm_epsilon) * w + b
print("row 0 mean %.3f std %.3f -> normalised mean %.3f std %.3f" % (
    x[0, 0].mean(), x[0, 0].std(), ((x - mean) / np.sqrt(var + 1e-5))[0, 0].mean(),
    ((x - mean) / np.sqrt(var + 1e-5))[0, 0].std()))
np.testing.assert_allclose(by_hand, layer_norm(x, w, b, model.config.layer_norm_epsilon), atol=1e-5)
print("layer_norm by hand == minibloom.functional.layer_norm")
