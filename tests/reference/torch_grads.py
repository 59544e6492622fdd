"""Gradients by torch autograd on a transformers model, named like minibloom's `model.params`."""

from __future__ import annotations

import numpy as np
import torch


def torch_value_and_grad(model: torch.nn.Module, batch: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
    """(loss, {name without `transformer.`: grad}) in train mode (BLOOM's GELU then uses Megatron's
    backward, as minibloom does; dropout is 0). A parameter the loss does not use gets zeros."""
    model.train()
    model.zero_grad(set_to_none=True)
    kwargs = {k: torch.from_numpy(np.asarray(v)) for k, v in batch.items()}
    if "start_positions" not in batch:  # the QA head takes no use_cache
        kwargs["use_cache"] = False
    out = model(**kwargs)
    out.loss.backward()
    grads = {}
    for name, p in model.named_parameters():
        g = torch.zeros_like(p) if p.grad is None else p.grad
        grads[name.removeprefix("transformer.")] = g.detach().numpy().copy()
    return float(out.loss.detach()), grads
