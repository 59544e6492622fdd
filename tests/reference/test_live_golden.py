"""A golden file written by minibloom matches transformers' own intermediates, captured with hooks."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from minibloom import BloomForCausalLM
from minibloom import golden
from tests.reference.reference_utils import torch, torch_bloom, transformers


def hooked_intermediates(model, ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """transformers' tensors under golden-file names, from forward hooks on its modules."""
    found: dict[str, np.ndarray] = {}
    handles = []

    def keep(name, what="output"):
        def hook(module, inputs, output):
            value = inputs[0] if what == "input" else (output[0] if isinstance(output, tuple) else output)
            found[name] = value.detach().numpy().copy()
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
    alibi = transformers.models.bloom.modeling_bloom.build_alibi_tensor(
        torch.from_numpy(mask), model.config.n_head, torch.float32).numpy()  # [B*N, 1, S]
    for i, block in enumerate(t.h):  # q, k, v as transformers' own split makes them from the fused output
        fused = torch.from_numpy(found[f"h.{i}.self_attention.qkv"])
        for name, part in zip("qkv", block.self_attention._reshape(fused)):
            found[f"h.{i}.self_attention.{name}"] = part.numpy().copy()
    for i, probs in enumerate(out.attentions):
        found[f"h.{i}.self_attention.probs"] = probs.numpy()
        found[f"h.{i}.self_attention.alibi"] = alibi.reshape(ids.shape[0], model.config.n_head, 1, ids.shape[1])
    found["logits"] = out.logits.numpy()
    return found


@settings(max_examples=10)
@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 8), st.sampled_from([(32, 4), (48, 6), (24, 3)]))
def test_golden_file_matches_transformers_hooks(tmp_path_factory, seed, B, T, sizes):
    hidden, heads = sizes
    theirs = torch_bloom(transformers.BloomForCausalLM, seed, vocab_size=50, hidden_size=hidden, n_head=heads,
                         n_layer=2)
    directory = tmp_path_factory.mktemp("ckpt")
    theirs.save_pretrained(directory)
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 50, size=(B, T))
    mask = np.ones((B, T), np.int64)
    mask[0, :rng.integers(0, T)] = 0  # left padding on the first row
    path = directory / "golden.safetensors"
    golden.dump(BloomForCausalLM.from_pretrained(directory), path, ids, mask)
    ours = golden.load(path)
    hooked = hooked_intermediates(theirs, ids, mask)
    names = [n for n in ours.order if n in hooked]
    assert len(names) == len(ours.order) - 2 - 2  # all but the inputs and the two layers' scores
    expected = golden.GoldenFile({n: ours.tensors[n] for n in names}, {**ours.metadata, "order": json.dumps(names)})
    report = golden.compare(expected, hooked, atol=1e-5, rtol=1e-5)
    assert report.ok, golden.format_report(report)
