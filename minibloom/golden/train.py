"""Training goldens: the forward golden of one batch, then its backward and a few AdamW steps, so a
port of *training* can be checked op by op as a port of the forward pass is (docs/golden.md).

One .safetensors file, in this order (the metadata's `order`):

    input_ids, attention_mask, labels        int64 [B, T]: labels = input_ids, -100 on padding
    embeddings ... logits                    the forward golden (record.py)
    loss                                     float32 [1]: mean cross-entropy of the shifted labels
    d.logits, d.ln_f, d.h.{L-1}.output ...   the gradient of the loss arriving at each intermediate,
      d.embeddings                           in backward order (layers in reverse), each parameter's
    grad.<parameter>                         gradient right after the op that completes it
    step.{s}.loss, step.{s}.grad.<p>         AdamW step s = 1..N on the same batch: the loss and the
    step.{s}.param.<p>                       gradients it starts from (s >= 2; step 1 uses grad.*),
    step.{N}.m.<p>, step.{N}.v.<p>           the parameters after it; the moments after the last step

`metadata["train"]` holds the optimizer's hyper-parameters and the number of steps. A port replays
the optimizer on the golden's own gradients (`grad.*`, then `step.{s}.grad.*`): AdamW's first steps
move each weight by about lr * sign(g), so a gradient within rounding of zero would flip a weight
by 2 lr between two correct ports; fed the same gradients, they agree to rounding.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ..backends import numpy_backward
from ..errors import InputError
from ..heads import BloomForCausalLM, causal_lm_loss_with_grad
from ..safetensors_io import save_file
from ..trace import Trace
from .record import capture, metadata_of
from .format import LAYER_OPS

__all__ = ["IGNORE", "backward_order", "check_options", "dump_train", "train_record"]

IGNORE = -100  # a label the loss skips (transformers' ignore_index)
# the per-layer intermediates in the order backward reaches them, each followed by the parameters
# whose gradient is complete there (the ALiBi bias is a constant: no gradient)
BACKWARD_LAYER = (("output", ()), ("mlp.dense_4h_to_h", ("mlp.dense_4h_to_h",)), ("mlp.gelu", ()),
                  ("mlp.dense_h_to_4h", ("mlp.dense_h_to_4h",)),
                  ("post_attention_layernorm", ("post_attention_layernorm",)),
                  ("self_attention.dense", ("self_attention.dense",)), ("self_attention.context", ()),
                  ("self_attention.probs", ()), ("self_attention.scores", ()), ("self_attention.v", ()),
                  ("self_attention.k", ()), ("self_attention.q", ()),
                  ("self_attention.qkv", ("self_attention.query_key_value",)),
                  ("input_layernorm", ("input_layernorm",)))
assert {op for op, _ in BACKWARD_LAYER} == set(LAYER_OPS) - {"self_attention.alibi"}


def backward_order(n_layer: int, params) -> list[str]:
    """The backward names of a model with `n_layer` layers and these parameter names: `d.logits`,
    the LM head's gradient, `d.ln_f` and ln_f's, then each layer from the last to the first, then the
    embedding layer norm and the embedding (tied to the LM head: both uses summed, so it comes last)."""
    params = set(params)
    names = ["d.logits"] + (["grad.lm_head.weight"] if "lm_head.weight" in params else [])
    names += ["d.ln_f", "grad.ln_f.weight", "grad.ln_f.bias"]
    for i in reversed(range(n_layer)):
        for op, owners in BACKWARD_LAYER:
            names.append(f"d.h.{i}.{op}")
            names += [f"grad.h.{i}.{p}.{kind}" for p in owners for kind in ("weight", "bias")]
    names += ["d.embeddings_layernorm", "grad.word_embeddings_layernorm.weight", "grad.word_embeddings_layernorm.bias",
              "d.embeddings", "grad.word_embeddings.weight"]
    return names


def default_labels(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """The language-modelling targets: the ids themselves (the loss shifts them by one), -100 on padding."""
    return np.where(attention_mask == 1, input_ids, IGNORE).astype(np.int64)


def check_options(steps: int = 2, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                  weight_decay: float = 0.01) -> None:
    """Refuse, before any work, what the optimizer would refuse (or a golden of no step)."""
    from ..training import AdamW

    if not isinstance(steps, int) or not 1 <= steps <= 100:
        raise InputError(f"steps must be an integer from 1 to 100, got {steps!r}")
    if not all(np.isfinite([lr, eps, weight_decay, *betas])):
        raise InputError(f"lr, betas, eps and weight_decay must be finite, got {lr}, {betas}, {eps}, {weight_decay}")
    AdamW({}, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)  # its own checks, on no parameter


def train_record(model: BloomForCausalLM, input_ids: Any, attention_mask: Any = None, labels: Any = None,
                 steps: int = 2, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01) -> tuple[dict[str, np.ndarray], dict]:
    """(the training golden's tensors in order, its `train` metadata) for one batch.

    The model's parameters are moved by the optimizer steps and restored afterwards (in place)."""
    from ..training import AdamW, value_and_grad

    if not isinstance(model, BloomForCausalLM):
        raise InputError(f"a training golden needs a BloomForCausalLM, got {type(model).__name__}")
    check_options(steps, lr, betas, eps, weight_decay)
    ids = np.asarray(input_ids)
    mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask)
    labels = default_labels(ids, mask) if labels is None else np.asarray(labels, np.int64)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    forward = capture(model, ids, mask)
    d = Trace(prefix="d.")
    loss, grads = value_and_grad(model, backward_trace=d, **batch)
    _, d.store["d.logits"] = causal_lm_loss_with_grad(forward["logits"], labels, numpy_backward)  # [B, T, V]
    d.store.update({f"grad.{n}": g for n, g in grads.items()})
    record = {k: forward[k] for k in ("input_ids", "attention_mask")}
    record["labels"] = labels
    record.update({k: v for k, v in forward.items() if k not in record})
    record["loss"] = np.asarray([loss], np.float32)
    record.update({name: d.store[name] for name in backward_order(model.config.n_layer, model.params)})
    opt = AdamW(model.params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)  # checks the numbers
    start = {n: p.copy() for n, p in model.params.items()}
    try:
        for s in range(1, steps + 1):
            if s > 1:  # the gradient at the weights the last step left, on the same batch
                loss, grads = value_and_grad(model, **batch)
                record[f"step.{s}.loss"] = np.asarray([loss], np.float32)
                record.update({f"step.{s}.grad.{n}": g for n, g in grads.items()})
            opt.step(grads)
            if s == steps:
                record.update({f"step.{s}.m.{n}": m.copy() for n, m in opt.m.items()})
                record.update({f"step.{s}.v.{n}": v.copy() for n, v in opt.v.items()})
            record.update({f"step.{s}.param.{n}": p.copy() for n, p in model.params.items()})
    finally:
        for n, p in model.params.items():
            p[...] = start[n]
    losses = [float(record["loss"][0])] + [float(record[f"step.{s}.loss"][0]) for s in range(2, steps + 1)]
    if not np.isfinite(losses).all():  # fail closed: a golden of a diverged run checks nothing
        raise InputError(f"the training golden's loss is not finite: {losses}")
    train = {"steps": steps, "optimizer": "AdamW (torch.optim.AdamW, decoupled weight decay)", "lr": lr,
             "betas": list(betas), "eps": eps, "weight_decay": weight_decay,
             "loss": "mean cross-entropy of logits[:, t] against labels[:, t + 1] over labels != -100"}
    return record, train


def dump_train(model: BloomForCausalLM, path: str | os.PathLike, input_ids: Any, attention_mask: Any = None,
               text: str | None = None, **options: Any) -> dict[str, np.ndarray]:
    """Write a training golden of `model` on this batch (atomically); returns the recorded tensors.
    `options`: labels, steps, lr, betas, eps, weight_decay (`train_record`)."""
    record, train = train_record(model, input_ids, attention_mask, **options)
    metadata = metadata_of(model, record, "float32", text)
    metadata["train"] = json.dumps(train)
    save_file(record, path, dtype="float32", metadata=metadata)
    return record
