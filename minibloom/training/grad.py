"""value_and_grad: the loss of a batch and the gradient of every parameter, by an explicit backward pass.

    loss, grads = value_and_grad(model, input_ids=ids, attention_mask=mask, labels=ids)
    grads["h.3.mlp.dense_h_to_4h.weight"]        # same names and shapes as model.params

How: (1) run the model's own forward with a `GradRecord`, which keeps (by reference, no copies) the
few intermediates the backward needs: each layer's input, LN outputs, fused QKV, probs, context, the
pre- and post-GELU values; (2) the head computes the loss and turns it into d last_hidden_state (`heads.py`);
(3) `bloom_model_backward` walks ln_f, the blocks in reverse and the embedding (`model.py`, which
calls `block.py`, `attention.py` and `functional.py`). Inference never builds the record.

Tied embeddings: the LM head and the gather use one matrix, so its gradient is the sum of both uses.
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import InputError
from ..heads import BloomWithHead
from ..model import bloom_model_backward
from ..trace import NO_TRACE, Trace
from ..validation import check_attention_mask, check_head_mask, check_ids

# The forward intermediates backward reads, by their trace names (per layer unless noted).
KEPT = ("embeddings", "embeddings_layernorm", "ln_f", "input_layernorm", "self_attention.qkv",
        "self_attention.probs", "self_attention.context", "self_attention.dense", "post_attention_layernorm",
        "mlp.dense_h_to_4h", "mlp.gelu", "output")


class GradRecord(Trace):
    """A trace that keeps references to what backward needs, and nothing else (not the scores)."""

    def scope(self, name: str) -> "GradRecord":
        return GradRecord(self.store, self.prefix + name + ".")

    def record(self, name: str, value: np.ndarray) -> np.ndarray:
        if self.wants(name):
            self.store[self.prefix + name] = value
        return value

    def wants(self, name: str) -> bool:
        full = self.prefix + name
        return full.split(".", 2)[-1] in KEPT if full.startswith("h.") else full in KEPT

    def layers(self, n_layer: int) -> list[dict[str, np.ndarray]]:
        """Per-block records: names without `h.{i}.` / the sub-layer prefix, plus `input`."""
        out = []
        for i in range(n_layer):
            prefix = f"h.{i}."
            rec = {k[len(prefix):].split(".")[-1]: v for k, v in self.store.items() if k.startswith(prefix)}
            rec["input"] = self.store.get("embeddings_layernorm") if i == 0 else out[-1]["output"]
            out.append(rec)
        return out


def backward_ops(backend: str) -> ModuleType:
    """The backward-ops module matching a forward backend: NumPy's reference or the Numba kernels."""
    if backend == "numba":
        from ..backends import numba_backward

        return numba_backward
    from ..backends import numpy_backward

    return numpy_backward


def value_and_grad(model: BloomWithHead, *, backward_trace: Trace = NO_TRACE,
                   **batch: Any) -> tuple[np.float32, dict[str, np.ndarray]]:
    """(loss, grads) for one batch; `batch` holds the model's forward arguments with the targets
    (`labels`, or `start_positions` and `end_positions` for question answering).

    grads has exactly the keys of `model.params`, each float32 of the parameter's shape. Dropout is
    not modelled (BLOOM's configs set it to 0), and no KV cache is used. `backward_trace` records the
    gradient arriving at each intermediate of the base model under its golden name (from `ln_f` back
    to `embeddings`; a training golden's `d.*`, `golden_train.py`).
    """
    check_trainable(model, batch)
    record = GradRecord()
    # The forward runs without the targets: the head computes the loss with its gradient (one softmax).
    forward_args = {k: v for k, v in batch.items() if k not in ("labels", "start_positions", "end_positions")}
    if "use_cache" in inspect.signature(model.forward).parameters:
        forward_args["use_cache"] = False
    out = model(**forward_args, trace=record)
    bops = backward_ops(model.backend)
    loss, d_hidden, head_grads = model.head_backward(record.store["ln_f"], out, batch, bops)  # [B, T, H]
    cfg = model.config
    B, T, _ = d_hidden.shape
    ids = batch.get("input_ids")
    ids = None if ids is None else check_ids(ids, cfg.vocab_size)
    mask = batch.get("attention_mask")
    mask = np.ones((B, T), np.int64) if mask is None else check_attention_mask(mask, B, T)
    heads = check_head_mask(batch.get("head_mask"), cfg.n_layer, cfg.n_head)  # [L, N] or None
    grads = bloom_model_backward(model.transformer, d_hidden, record.layers(cfg.n_layer), record.store["embeddings"],
                                 ids, mask, heads, bops, backward_trace)
    for name, g in head_grads.items():  # tied: the LM head's use of word_embeddings adds to the gather's
        grads[name] = grads[name] + g if name in grads else g
    return loss, {name: grads[name] for name in model.params}


def check_trainable(model: Any, batch: dict[str, Any]) -> None:
    """Refuse, before any work, what value_and_grad cannot differentiate."""
    if not isinstance(model, BloomWithHead):
        raise InputError(f"value_and_grad needs a model with a head and a loss (BloomForCausalLM, ...), "
                         f"got {type(model).__name__}")
    if model.storage != "float32":
        raise InputError(f"value_and_grad needs float32 weights, the model stores {model.storage} "
                         "(load it with storage='float32')")
    if batch.get("past_key_values") is not None:
        raise InputError("value_and_grad runs whole sequences: pass no past_key_values")
    for flag in ("output_attentions", "output_hidden_states", "trace", "logits_to_keep"):
        if batch.get(flag):
            raise InputError(f"value_and_grad does not take {flag}")
    targets = ("start_positions", "end_positions") if "start_positions" in inspect.signature(
        model.forward).parameters else ("labels",)
    missing = [t for t in targets if batch.get(t) is None]
    if missing:
        raise InputError(f"value_and_grad needs the targets {missing} in the batch: the loss is what it differentiates")
