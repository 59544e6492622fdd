"""BloomModel: the bare BLOOM transformer, token ids in, hidden states out.

    x = word_embeddings[input_ids]                       [B, T, H]
    h = word_embeddings_layernorm(x)                     (BLOOM normalises its embeddings)
    for each of n_layer blocks: h = bloom_block(h, ...)  (ALiBi + causal/padding mask inside)
    last_hidden_state = ln_f(h)

The ALiBi bias and the mask are computed once per forward and shared by every layer.

`bloom_forward(params, config, input_ids, attention_mask)` is that math, a pure function of the
parameters; `BloomModel.forward` checks the arguments at the edge and calls it, with the model's
own tensors or, as Flax's models do, with `params=` given to the call.

Shape legend: B batch, T query length, S key length, H hidden, N heads, V vocab, L layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import ModuleType
from typing import Any

import numpy as np

from .alibi import alibi_bias
from .attention import AttentionSpec, split_heads
from .backends import numpy_backend
from .block import BlockSpec, bloom_block, bloom_block_backward, layer_norm, sub_params
from .cache import CacheSlot, KVCache
from .config import BloomConfig
from .errors import InputError
from .explain.hooks import HookedRun
from .masking import causal_padding_bias
from .outputs import BaseModelOutputWithPast
from .pretrained import PreTrainedBloom
from .storage import BF16, STORAGE_DTYPES, as_array, store
from .trace import NO_TRACE, Trace
from .validation import check_allocation, check_attention_mask, check_embeds, check_head_mask, check_ids


def block_spec(config: BloomConfig) -> BlockSpec:
    """The per-block hyper-parameters, read once from the config."""
    attention = AttentionSpec(config.n_head, config.pretraining_tp, config.slow_but_exact)
    return BlockSpec(attention, config.layer_norm_epsilon, config.apply_residual_connection_post_layernorm)


def split_layers(params: dict[str, np.ndarray], n_layer: int) -> list[dict[str, np.ndarray]]:
    """The tensors of each block without their `h.{i}.` prefix, in one pass over the names:
    {'h.1.mlp.x': a} -> [{}, {'mlp.x': a}]."""
    layers: list[dict[str, np.ndarray]] = [{} for _ in range(n_layer)]
    for name, value in params.items():
        if name.startswith("h."):
            i, rest = name[2:].split(".", 1)
            layers[int(i)][rest] = value
    return layers


def bloom_forward(params: dict[str, np.ndarray], config: BloomConfig, input_ids: np.ndarray | None,
                  attention_mask: np.ndarray | None = None, *, inputs_embeds: np.ndarray | None = None,
                  head_mask: np.ndarray | None = None, cache: KVCache | None = None,
                  ops: ModuleType = numpy_backend, trace: Trace = NO_TRACE) -> BaseModelOutputWithPast:
    """The bare model as a pure function of its parameters: input_ids [B, T] -> last_hidden_state [B, T, H].

    params: every base tensor by checkpoint name (`h.0.mlp.dense_h_to_4h.weight`, ...). The inputs
    are trusted (BloomModel.forward checks them): input_ids int [B, T], or inputs_embeds [B, T, H]
    with input_ids None; attention_mask [B, P + T] (None: all ones); head_mask [L, N] or None;
    cache: a KVCache holding P earlier tokens, written in place. The output holds every hidden
    state and attention map; the caller keeps what was asked for.
    """
    rec, eps = trace.record, config.layer_norm_epsilon
    x = rec("embeddings", inputs_embeds if input_ids is None else
            ops.embed(params["word_embeddings.weight"], input_ids))  # [V, H][B, T] -> [B, T, H]
    B, T, _ = x.shape
    P = 0 if cache is None else cache.length
    mask = np.ones((B, P + T), np.int64) if attention_mask is None else attention_mask  # [B, S]
    alibi = alibi_bias(mask, config.n_head)  # [B, N, 1, S]: shared by every layer
    mask_bias = causal_padding_bias(mask, T, P)  # [B, 1, T, S]
    h = rec("embeddings_layernorm", layer_norm(x, params, "word_embeddings_layernorm", eps, ops))  # [B, T, H]
    spec, hidden, attentions = block_spec(config), [], []
    for i, p in enumerate(split_layers(params, config.n_layer)):
        hidden.append(h)
        slot = None if cache is None else CacheSlot(cache, i, P)
        h, probs = bloom_block(h, p, alibi, mask_bias, spec, ops,
                               None if head_mask is None else head_mask[i], slot,
                               trace.scope(f"h.{i}"))  # [B, T, H], [B, N, T, S]
        attentions.append(probs)
    if cache is not None:
        cache.length = P + T
    h = rec("ln_f", layer_norm(h, params, "ln_f", eps, ops))  # [B, T, H]
    hidden.append(h)  # subtle: the last entry is ln_f(h); the raw last block output is never returned
    return BaseModelOutputWithPast(last_hidden_state=h, past_key_values=cache, hidden_states=tuple(hidden),
                                   attentions=tuple(attentions))


def call_params(params: Any, shapes: dict[str, tuple[int, ...]], storage: str, where: str) -> dict[str, np.ndarray]:
    """The `params=` of a call, checked: exactly the tensors `shapes` names, each of its shape and
    numeric, held as the model holds its own (a float32 tensor of a float32 model is used as is)."""
    if not isinstance(params, Mapping):
        raise InputError(f"{where}: params must be a dict of tensors by checkpoint name, got {type(params).__name__}")
    missing = sorted(set(shapes) - set(params))
    extra = sorted(set(params) - set(shapes), key=str)
    if missing or extra:
        raise InputError(f"{where}: params " + "; ".join(
            ([f"lacks {missing[:5]}" + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")] if missing else [])
            + ([f"has unexpected {extra[:5]}"] if extra else [])))
    out = {}
    for name, shape in shapes.items():
        value = as_array(params[name])
        if value.dtype.kind != "f" and value.dtype not in (BF16, np.int8):
            raise InputError(f"{where}: params[{name!r}] must hold floats, got dtype {value.dtype}")
        if value.shape != tuple(shape):
            raise InputError(f"{where}: params[{name!r}] has shape {value.shape}, the config needs {tuple(shape)}")
        out[name] = store(name, value, STORAGE_DTYPES[storage])
    return out


class BloomModel(HookedRun, PreTrainedBloom):
    """The bare BLOOM transformer (transformers' `BloomModel`), in NumPy.

    >>> model = BloomModel(BloomConfig(vocab_size=32, hidden_size=16, n_head=4))  # random weights
    >>> model(np.array([[1, 2, 3]])).last_hidden_state.shape
    (1, 3, 16)
    >>> other = {name: w * 2 for name, w in model.params.items()}
    >>> model(np.array([[1, 2, 3]]), params=other).last_hidden_state.shape  # as Flax: other weights, same model
    (1, 3, 16)
    """

    def forward(self, input_ids: Any = None, past_key_values: KVCache | None = None, attention_mask: Any = None,
                head_mask: Any = None, inputs_embeds: Any = None, use_cache: bool | None = None,
                output_attentions: bool | None = None, output_hidden_states: bool | None = None,
                trace: Trace = NO_TRACE, params: dict[str, np.ndarray] | None = None) -> BaseModelOutputWithPast:
        """Run the model on T new tokens. Exactly one of `input_ids` [B, T] and `inputs_embeds` [B, T, H].

        past_key_values: a `KVCache` holding P earlier tokens; it is updated in place (as transformers
        updates a passed cache), and returned. use_cache (default config.use_cache) makes one if none.
        attention_mask [B, P + T]: 1 for real tokens, 0 for padding (default: all ones). Left padding
        is fine: ALiBi positions come from the mask, so real tokens see the same positions.
        head_mask [N] or [L, N]: multiplies each head's attention probabilities.
        trace: a `Trace` to record every intermediate under its golden-file name (`golden.py`).
        params: other tensors to compute with, by checkpoint name (as Flax's `model(ids, params=...)`);
        the model's own stay as they are. The arguments are checked here; the math is `bloom_forward`.
        """
        cfg = self.config
        ids, embeds = self.check_inputs(input_ids, inputs_embeds)
        B, T = (ids if embeds is None else embeds).shape[:2]
        past = past_key_values.length if isinstance(past_key_values, KVCache) else 0
        check_allocation(4 * B * cfg.n_head * T * (past + T), f"a forward of {T} tokens after {past} cached "
                         f"(attention scores [B={B}, N={cfg.n_head}, T, S])")
        params = self.params if params is None else call_params(params, self.param_shapes(cfg), self.storage,
                                                                type(self).__name__)
        cache = self.prepare_cache(past_key_values, cfg.use_cache if use_cache is None else use_cache, B, T)
        P = 0 if cache is None else cache.length
        mask = None if attention_mask is None else check_attention_mask(attention_mask, B, P + T)  # [B, S]
        heads = check_head_mask(head_mask, cfg.n_layer, cfg.n_head)  # [L, N] or None
        out = bloom_forward(params, cfg, ids, mask, inputs_embeds=embeds, head_mask=heads, cache=cache,
                            ops=self.ops, trace=trace)
        keep_hidden = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        keep_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        return replace(out, hidden_states=out.hidden_states if keep_hidden else None,
                       attentions=out.attentions if keep_attentions else None)

    def layer_params(self, i: int) -> dict[str, np.ndarray]:
        """Layer i's tensors without the `h.{i}.` prefix (the model's own; a forward with `params=`
        splits those it is given)."""
        return sub_params(self.params, f"h.{i}.")

    def check_inputs(self, input_ids: Any, inputs_embeds: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(ids int64 [B, T], None) or (None, embeds float32 [B, T, H]): exactly one is given."""
        if (input_ids is None) == (inputs_embeds is None):
            raise InputError("pass exactly one of input_ids and inputs_embeds")
        if inputs_embeds is not None:
            return None, check_embeds(inputs_embeds, self.config.hidden_size)
        return check_ids(input_ids, self.config.vocab_size), None

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
    eps, layer_params = cfg.layer_norm_epsilon, split_layers(params, cfg.n_layer)
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
        d_h, layer_grads = bloom_block_backward(d_h, rec, layer_params[i], spec, bops,
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
