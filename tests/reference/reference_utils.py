"""Helpers for the live tests against transformers: build a randomised torch BLOOM and mirror it."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the live reference tests need the `reference` extra (torch)")
transformers = pytest.importorskip("transformers", reason="the live reference tests need transformers 4.57.1")

import numpy as np  # noqa: E402

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


def hooked_intermediates(model, ids: np.ndarray, mask: np.ndarray, derived: bool = True) -> dict[str, np.ndarray]:
    """transformers' tensors under golden-file names, from forward hooks on its modules (as float32,
    whatever the model's dtype; scores have no module, so they are not recorded). `derived` adds
    q, k, v (transformers' own split of the fused output) and the float32 ALiBi bias: for float32
    models, where they must equal the golden's exactly."""
    found: dict[str, np.ndarray] = {}
    handles = []

    def keep(name, what="output"):
        def hook(module, inputs, output):
            value = inputs[0] if what == "input" else (output[0] if isinstance(output, tuple) else output)
            found[name] = value.detach().float().numpy().copy()
        return hook

    t = model.transformer
    handles.append(t.word_embeddings.register_forward_hook(keep("embeddings")))
    handles.append(t.word_embeddings_layernorm.register_forward_hook(keep("embeddings_layernorm")))
    for i, block in enumerate(t.h):
        p = f"h.{i}."
        handles += [block.input_layernorm.register_forward_hook(keep(p + "input_layernorm")),
                    block.self_attention.query_key_value.register_forward_hook(keep(p + "self_attention.qkv")),
                    block.self_attention.dense.register_forward_hook(keep(p + "self_attention.context", "input")),
                    block.self_attention.dense.register_forward_hook(keep(p + "self_attention.dense")),
                    block.post_attention_layernorm.register_forward_hook(keep(p + "post_attention_layernorm")),
                    block.mlp.dense_h_to_4h.register_forward_hook(keep(p + "mlp.dense_h_to_4h")),
                    block.mlp.gelu_impl.register_forward_hook(keep(p + "mlp.gelu")),
                    block.mlp.dense_4h_to_h.register_forward_hook(keep(p + "mlp.dense_4h_to_h")),
                    block.register_forward_hook(keep(p + "output"))]
    handles.append(t.ln_f.register_forward_hook(keep("ln_f")))
    with torch.no_grad():
        out = model(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), output_attentions=True,
                    use_cache=False)
    for h in handles:
        h.remove()
    for i, probs in enumerate(out.attentions):
        found[f"h.{i}.self_attention.probs"] = probs.float().numpy()
    found["logits"] = out.logits.float().numpy()
    if not derived:
        return found
    alibi = transformers.models.bloom.modeling_bloom.build_alibi_tensor(
        torch.from_numpy(mask), model.config.n_head, torch.float32).numpy()  # [B*N, 1, S]
    for i, block in enumerate(t.h):  # q, k, v as transformers' own split makes them from the fused output
        fused = torch.from_numpy(found[f"h.{i}.self_attention.qkv"])
        for name, part in zip("qkv", block.self_attention._reshape(fused)):
            found[f"h.{i}.self_attention.{name}"] = part.float().numpy().copy()
        found[f"h.{i}.self_attention.alibi"] = alibi.reshape(ids.shape[0], model.config.n_head, 1, ids.shape[1])
    return found


def embedded_pair():
    """The embedded checkpoint in both libraries, with its tokenizer in both:
    (transformers model, transformers tokenizer, minibloom model, minibloom tokenizer)."""
    import os

    import minibloom

    theirs = transformers.BloomForCausalLM.from_pretrained(minibloom.EMBEDDED_CHECKPOINT).eval()
    their_tok = transformers.PreTrainedTokenizerFast(
        tokenizer_file=os.path.join(minibloom.EMBEDDED_CHECKPOINT, "tokenizer.json"))
    return (theirs, their_tok, minibloom.BloomForCausalLM.from_pretrained(minibloom.EMBEDDED_CHECKPOINT),
            minibloom.BloomTokenizer.from_pretrained(minibloom.EMBEDDED_CHECKPOINT))
