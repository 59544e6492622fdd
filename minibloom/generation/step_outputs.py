"""What a generate call keeps of each forward step: hidden states and attentions, as transformers
keeps them (shared by the sampling loop and beam search)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import GenerationConfig


def output_flags(gen: GenerationConfig) -> dict[str, bool]:
    """The forward's output_hidden_states / output_attentions arguments a generate call asks for
    (only those set: a model without them, the GPU one, is called as before)."""
    return {name: True for name in ("output_hidden_states", "output_attentions")
            if getattr(gen, name) and gen.return_dict_in_generate}


def step_outputs(out: Any, length: int) -> dict[str, tuple[np.ndarray, ...] | None]:
    """One step's hidden_states and attentions as transformers' generate keeps them: the model's
    tuples as they are, attentions cut to the `length` keys seen so far ([B, N, T, length]; the
    preallocated cache has room for more)."""
    attentions = getattr(out, "attentions", None)
    if attentions is not None:
        attentions = tuple(np.ascontiguousarray(a[..., :length]) for a in attentions)
    return {"hidden_states": getattr(out, "hidden_states", None), "attentions": attentions}
