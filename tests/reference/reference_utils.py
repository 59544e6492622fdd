"""Helpers for the live tests against transformers: build a randomised torch BLOOM and mirror it."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the live reference tests need the `reference` extra (torch)")
transformers = pytest.importorskip("transformers", reason="the live reference tests need transformers 4.57.1")

from minibloom import BloomConfig, BloomModel  # noqa: E402


def torch_bloom(cls, seed: int, **config_kwargs):
    """A transformers model with every parameter spread out (non-zero biases, LN weights != 1)."""
    config = transformers.BloomConfig(**config_kwargs)
    torch.manual_seed(seed)
    model = cls(config).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name.endswith("word_embeddings.weight"):
                p.copy_(noise)
            elif p.ndim == 2:
                p.copy_(0.2 * noise)
            elif "layernorm" in name or "ln_f" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * noise)
            else:
                p.copy_(0.1 * noise)
    return model


def mirror(torch_model, cls=BloomModel):
    """The same weights in a minibloom model of class `cls` (names without the transformer. prefix)."""
    config = BloomConfig.from_dict(torch_model.config.to_dict())
    state = {k.removeprefix("transformer."): v.detach().numpy() for k, v in torch_model.state_dict().items()}
    shapes = cls.param_shapes(config)
    return cls(config, {k: state[k] for k in shapes})
