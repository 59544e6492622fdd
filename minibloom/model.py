"""BloomModel: the bare BLOOM transformer, token ids in, hidden states out.

    x = word_embeddings[input_ids]                       [B, T, H]
    h = word_embeddings_layernorm(x)                     (BLOOM normalises its embeddings)
    for each of n_layer blocks: h = bloom_block(h, ...)  (ALiBi + causal/padding mask inside)
    last_hidden_state = ln_f(h)

The ALiBi bias and the mask are computed once per forward and shared by every layer.

Shape legend: B batch, T query length, S key length, H hidden, N heads, V vocab, L layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .alibi import alibi_bias
from .attention import AttentionSpec, split_heads
from .block import BlockSpec, bloom_block, bloom_block_backward, sub_params
from .cache import CacheSlot, KVCache
from .config import BloomConfig
from .errors import InputError
from .explain.hooks import HookedRun
from .masking import causal_padding_bias
from .outputs import BaseModelOutputWithPast
from .pretrained import PreTrainedBloom
from .trace import NO_TRACE, Trace
from .validation import check_allocation, check_attention_mask, check_embeds, check_head_mask, check_ids


def block_spec(config: BloomConfig) -> BlockSpec:
    """The per-block hyper-parameters, read once from the config."""
    attention = AttentionSpec(config.n_head, config.pretraining_tp, config.slow_but_exact)
    return BlockSpec(attention, config.layer_norm_epsilon, config.apply_residual_connection_post_layernorm)


class BloomModel(HookedRun, PreTrainedBloom):
    """The bare BLOOM transformer (transformers' `BloomModel`), in NumPy.

    >>> model = BloomModel(BloomConfig(vocab_size=32, hidden_size=16, n_head=4))  # random weights
    >>> model(np.array([[1, 2, 3]])).last_hidden_state.shape
    (1, 3, 16)
    """

    def forward(self, input_ids: Any = None, past_key_values: KVCache | None = None, attention_mask: Any = None,
                head_mask: Any = None, inputs_embeds: Any = None, use_cache: bool | None = None,
                output_attentions: bool | None = None,
                output_hidden_states: bool | None = None, trace: Trace = NO_TRACE) -> BaseModelOutputWithPast:
        """Run the model on T new tokens. Exactly one of `input_ids` [B, T] and `inputs_embeds` [B, T, H].

        past_key_values: a `KVCache` holding P earlier tokens; it is updated in place (as transformers
        updates a passed cache), and returned. use_cache (default config.use_cache) makes one if none.
        attention_mask [B, P + T]: 1 for real tokens, 0 for padding (default: all ones). Left padding
        is fine: ALiBi positions come from the mask, so real tokens see the same positions.
        head_mask [N] or [L, N]: multiplies each head's attention probabilities.
        trace: a `Trace` to record every intermediate under its golden-file name (`golden.py`).
        """
        cfg = self.config
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        use_cache = cfg.use_cache if use_cache is None else use_cache
        x = trace.record("embeddings", self.embed(input_ids, inputs_embeds))  # [B, T, H]
        B, T, _ = x.shape
        past = past_key_values.length if isinstance(past_key_values, KVCache) else 0
        check_allocation(4 * B * cfg.n_head * T * (past + T), f"a forward of {T} tokens after {past} cached "
                         f"(attention scores [B={B}, N={cfg.n_head}, T, S])")
        cache = self.prepare_cache(past_key_values, use_cache, B, T)
        P = 0 if cache is None else cache.length
        mask = np.ones((B, P + T), np.int64) if attention_mask is None else check_attention_mask(attention_mask, B, P + T)
        heads = check_head_mask(head_mask, cfg.n_layer, cfg.n_head)  # [L, N] or None

        alibi = alibi_bias(mask, cfg.n_head)  # [B, N, 1, S]
        mask_bias = causal_padding_bias(mask, T, P)  # [B, 1, T, S]
        spec = block_spec(cfg)
        h = trace.record("embeddings_layernorm", self.ops.layer_norm(
            x, self.params["word_embeddings_layernorm.weight"], self.params["word_embeddings_layernorm.bias"],
            cfg.layer_norm_epsilon))  # [B, T, H]
        all_hidden, all_attn = [], []
        for i in range(cfg.n_layer):
            all_hidden.append(h)
            slot = None if cache is None else CacheSlot(cache, i, P)
            h, probs = bloom_block(h, self.layer_params(i), alibi, mask_bias, spec, self.ops,
                                   None if heads is None else heads[i], slot,
                                   trace.scope(f"h.{i}"))  # [B, T, H], [B, N, T, S]
            all_attn.append(probs)
        if cache is not None:
            cache.length = P + T
        h = trace.record("ln_f", self.ops.layer_norm(h, self.params["ln_f.weight"], self.params["ln_f.bias"],
                                                     cfg.layer_norm_epsilon))  # [B, T, H]
        all_hidden.append(h)  # subtle: the last entry is ln_f(h); the raw last block output is never returned
        return BaseModelOutputWithPast(
            last_hidden_state=h,
            past_key_values=cache,
            hidden_states=tuple(all_hidden) if output_hidden_states else None,
            attentions=tuple(all_attn) if output_attentions else None,
        )

    def layer_params(self, i: int) -> dict[str, np.ndarray]:
        """Layer i's tensors without the `h.{i}.` prefix, made once (decoding asks every step).
        subtle: so rebinding `model.params[name]` after the first forward is not seen; edit the
        array in place or build a new model."""
        if getattr(self, "_layers", None) is None:
            self._layers = [sub_params(self.params, f"h.{j}.") for j in range(self.config.n_layer)]
        return self._layers[i]

    def prepare_cache(self, past_key_values: KVCache | None, use_cache: bool, batch: int,
                      new_tokens: int) -> KVCache | None:
        """The cache this step writes into: the one passed, a new growable one, or none."""
        if past_key_values is None:
            return KVCache.for_config(self.config, batch, new_tokens, growable=True) if use_cache else None
        if not isinstance(past_key_values, KVCache):
            raise InputError("past_key_values must be a minibloom KVCache (KVCache.from_legacy converts "
                             f"per-layer (key, value) pairs), got {type(past_key_values).__name__}")
        if len(past_key_values.keys) != self.config.n_layer or past_key_values.keys[0].shape[1::2] != (
                self.config.n_head, self.config.head_dim):
            raise InputError("past_key_values was made for another model shape: "
                             f"{len(past_key_values.keys)} layers of {past_key_values.keys[0].shape}")
        past_key_values.check_fits(batch, new_tokens)
        return past_key_values

    __call__ = forward

    def embed(self, input_ids: Any = None, inputs_embeds: Any = None) -> np.ndarray:
        """Token ids [B, T] -> embeddings [B, T, H] (or checked `inputs_embeds`), before the embedding LN."""
        if (input_ids is None) == (inputs_embeds is None):
            raise InputError("pass exactly one of input_ids and inputs_embeds")
        if inputs_embeds is not None:
            return check_embeds(inputs_embeds, self.config.hidden_size)
        ids = check_ids(input_ids, self.config.vocab_size)
        return self.ops.embed(self.params["word_embeddings.weight"], ids)  # [V, H][B, T] -> [B, T, H]


def bloom_model_backward(model: BloomModel, d_last_hidden: np.ndarray, layers: list[dict[str, np.ndarray]],
                         embeddings: np.ndarray, input_ids: np.ndarray | None, attention_mask: np.ndarray,
                         head_mask: np.ndarray | None, bops: Any, trace: Trace = NO_TRACE) -> dict[str, np.ndarray]:
    """Walk the model backwards: d last_hidden_state [B, T, H] -> gradients of every base tensor.

    layers[i]: block i's forward record (its `input`, its `output`, and what `bloom_block_backward`
    reads); embeddings: the gathered rows [B, T, H] before the embedding LN. The order is the
    forward's reversed: ln_f, blocks L-1 .. 0, the embedding LN, then the gather's scatter-add.
    A head_mask [L, N] needs each layer's probs before it was applied; they are recomputed here
    from q, k and the mask rather than kept by every forward. `trace` records the gradient arriving at
    each intermediate under its golden name (a training golden's `d.*`, `golden_train.py`).
    """
    cfg, spec, params = model.config, block_spec(model.config), model.params
    eps = cfg.layer_norm_epsilon
    grads = {}
    trace.record("ln_f", d_last_hidden)
    d_h, grads["ln_f.weight"], grads["ln_f.bias"] = bops.layer_norm_backward(
        d_last_hidden, layers[-1]["output"], params["ln_f.weight"], eps)  # [B, T, H]
    if head_mask is not None:
        alibi = alibi_bias(attention_mask, cfg.n_head)  # [B, N, 1, S]
        mask_bias = causal_padding_bias(attention_mask, d_h.shape[1])  # [B, 1, T, S]
    for i in reversed(range(cfg.n_layer)):
        rec = layers[i]
        if head_mask is not None:
            q, k, _ = split_heads(rec["qkv"], cfg.n_head)  # [B, N, T, D] each
            rec = {**rec, "raw_probs": model.ops.attention_probs(q, k, alibi, mask_bias)}  # [B, N, T, S]
        d_h, layer_grads = bloom_block_backward(d_h, rec, model.layer_params(i), spec, bops,
                                                None if head_mask is None else head_mask[i], trace.scope(f"h.{i}"))
        grads.update({f"h.{i}.{k}": v for k, v in layer_grads.items()})
    trace.record("embeddings_layernorm", d_h)
    d_x, grads["word_embeddings_layernorm.weight"], grads["word_embeddings_layernorm.bias"] = bops.layer_norm_backward(
        d_h, embeddings, params["word_embeddings_layernorm.weight"], eps)  # [B, T, H]
    trace.record("embeddings", d_x)
    if input_ids is None:  # inputs_embeds were given: the table was not used by the gather
        grads["word_embeddings.weight"] = np.zeros(params["word_embeddings.weight"].shape, np.float32)
    else:
        grads["word_embeddings.weight"] = bops.embedding_backward(d_x, input_ids, cfg.vocab_size)  # [V, H]
    return grads
