"""Live: a training golden against torch. Its loss and every `grad.*` equal torch autograd's on
transformers' BLOOM within tests/test_hf_grads.py's bound, the `d.*` of the hidden states and
logits equal the gradients torch retains there, and its AdamW steps (parameters and moments) equal
torch.optim.AdamW's fed the golden's own gradients."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minibloom import BloomForCausalLM, golden
from minibloom.golden.train import dump_train
from tests.conftest import assert_close
from tests.reference.reference_utils import torch, torch_bloom, transformers
from tests.reference.torch_grads import torch_value_and_grad

HYPER = {"steps": 3, "lr": 0.03, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}


@pytest.fixture(scope="module", params=[dict(n_head=4), dict(n_head=3, tie_word_embeddings=False),
                                        dict(n_head=4, apply_residual_connection_post_layernorm=True)])
def case(request, tmp_path_factory):
    theirs = torch_bloom(transformers.BloomForCausalLM, 11, vocab_size=40, hidden_size=24, n_layer=2, **request.param)
    directory = tmp_path_factory.mktemp("ckpt")
    theirs.save_pretrained(directory)
    ids = np.array([[3, 9, 4, 17, 5, 30, 2], [0, 0, 7, 8, 9, 12, 33]])
    mask = np.array([[1] * 7, [0, 0, 1, 1, 1, 1, 1]])  # left padding
    path = directory / "train.safetensors"
    dump_train(BloomForCausalLM.from_pretrained(directory), path, ids, mask, **HYPER)
    return theirs, golden.load(path)


def test_loss_and_every_gradient_equal_torch_autograd(case):
    theirs, g = case
    batch = {k: g.tensors[k] for k in ("input_ids", "attention_mask", "labels")}
    loss, grads = torch_value_and_grad(theirs, batch)
    assert abs(float(g.tensors["loss"][0]) - loss) <= 1e-5 * max(1.0, abs(loss))
    assert {f"grad.{n}" for n in grads} == {n for n in g.tensors if n.startswith("grad.")}
    for name, want in grads.items():
        assert_close(g.tensors[f"grad.{name}"], want, f"grad.{name}")


def test_the_gradients_arriving_at_hidden_states_and_logits_equal_torch_retained_grads(case):
    theirs, g = case
    theirs.train()
    theirs.zero_grad(set_to_none=True)
    out = theirs(**{k: torch.from_numpy(g.tensors[k]) for k in ("input_ids", "attention_mask", "labels")},
                 output_hidden_states=True, use_cache=False)
    kept = [out.logits, *out.hidden_states]
    for t in kept:
        t.retain_grad()
    out.loss.backward()
    L = theirs.config.n_layer
    # hidden_states: the embedding LN's output, each block's output but the last, then ln_f's
    names = ["d.logits", "d.embeddings_layernorm", *[f"d.h.{i}.output" for i in range(L - 1)], "d.ln_f"]
    for name, t in zip(names, kept):
        assert_close(g.tensors[name], t.grad.numpy(), name)


def test_adamw_steps_equal_torch_adamw_on_the_golden_gradients(case):
    theirs, g = case
    train = json.loads(g.metadata["train"])
    params = {n.removeprefix("transformer."): p.detach().clone().requires_grad_(True)
              for n, p in theirs.named_parameters()}
    opt = torch.optim.AdamW(params.values(), lr=train["lr"], betas=tuple(train["betas"]), eps=train["eps"],
                            weight_decay=train["weight_decay"])
    for s in range(1, train["steps"] + 1):
        for n, p in params.items():
            p.grad = torch.from_numpy(g.tensors[("grad." if s == 1 else f"step.{s}.grad.") + n].copy())
        opt.step()
        for n, p in params.items():
            np.testing.assert_allclose(g.tensors[f"step.{s}.param.{n}"], p.detach().numpy(), rtol=0, atol=1e-6,
                                       err_msg=f"step.{s}.param.{n}")
    for n, p in params.items():
        state = opt.state[p]
        np.testing.assert_allclose(g.tensors[f"step.{s}.m.{n}"], state["exp_avg"].numpy(), rtol=0, atol=1e-7)
        np.testing.assert_allclose(g.tensors[f"step.{s}.v.{n}"], state["exp_avg_sq"].numpy(), rtol=0, atol=1e-7)
