"""Live: minibloom's explicit backward pass against torch autograd on transformers' BLOOM, and AdamW
against torch.optim.AdamW."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minibloom
from minibloom.training import AdamW, clip_grad_norm, value_and_grad
from tests.conftest import assert_close
from tests.reference.grad_cases import GRAD_CASES, PAD, config_kwargs
from tests.reference.reference_utils import mirror, torch, torch_bloom, transformers
from tests.reference.torch_grads import torch_value_and_grad


def check_grads(cls_name: str, config: dict, batch: dict, seed: int, backend: str = "numpy") -> None:
    ref = torch_bloom(getattr(transformers, cls_name), seed, **config)
    cls = getattr(minibloom, cls_name)
    ours = mirror(ref, cls)
    if backend != "numpy":
        ours = cls(ours.config, ours.params, backend=backend)
    expected_loss, expected = torch_value_and_grad(ref, batch)
    loss, grads = value_and_grad(ours, **batch)
    if np.isnan(expected_loss):  # every target ignored: torch's loss is 0/0, its gradient 0
        assert np.isnan(loss)
    else:
        assert abs(float(loss) - expected_loss) <= 1e-5 * max(1.0, abs(expected_loss)), (loss, expected_loss)
    assert set(grads) == set(ours.params) == set(expected)
    for name, g in expected.items():
        assert_close(grads[name], g, f"d loss / d {name}")


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("case", sorted(GRAD_CASES))
def test_gradients_equal_torch_autograd_on_the_fixed_cases(case, backend):
    cls_name, overrides, batch = GRAD_CASES[case]
    check_grads(cls_name, config_kwargs(overrides), batch, seed=7, backend=backend)


@st.composite
def training_setups(draw):
    cls_name = draw(st.sampled_from(["BloomForCausalLM", "BloomForSequenceClassification",
                                     "BloomForTokenClassification", "BloomForQuestionAnswering"]))
    n_head = draw(st.integers(1, 5))
    tp = draw(st.sampled_from([1, 2]))
    config = dict(vocab_size=draw(st.integers(8, 30)), hidden_size=n_head * 2 * draw(st.integers(1, 4)),
                  n_head=n_head, n_layer=draw(st.integers(1, 2)), pad_token_id=PAD,
                  apply_residual_connection_post_layernorm=draw(st.booleans()),
                  tie_word_embeddings=draw(st.booleans()), pretraining_tp=tp, slow_but_exact=tp > 1,
                  num_labels=draw(st.integers(1, 4)))
    B, T = draw(st.integers(1, 3)), draw(st.integers(2, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    ids = rng.integers(4, config["vocab_size"], size=(B, T)).astype(np.int64)
    for b in range(B):  # left or right padding, written into the ids as the pad token
        pad = int(rng.integers(0, T))
        if rng.random() < 0.5:
            ids[b, :pad] = PAD
        else:
            ids[b, T - pad:] = PAD
    batch = {"input_ids": ids, "attention_mask": (ids != PAD).astype(np.int64)}
    if draw(st.booleans()):
        batch["head_mask"] = rng.choice([0.0, 0.5, 1.0], size=(config["n_layer"], n_head)).astype(np.float32)
    C = config["num_labels"]
    if cls_name == "BloomForCausalLM":
        batch["labels"] = np.where(rng.random((B, T)) < 0.2, -100, ids)
    elif cls_name == "BloomForTokenClassification":
        batch["labels"] = np.where(batch["attention_mask"] == 1, rng.integers(0, C, (B, T)), -100)
    elif cls_name == "BloomForQuestionAnswering":
        batch["start_positions"] = rng.integers(-2, T + 3, B)
        batch["end_positions"] = rng.integers(-2, T + 3, B)
    else:
        kind = draw(st.sampled_from(["regression", "single", "multi"]) if C > 1 else st.just("regression"))
        config["problem_type"] = {"regression": "regression", "single": "single_label_classification",
                                  "multi": "multi_label_classification"}[kind]
        batch["labels"] = (rng.integers(0, C, B) if kind == "single" else
                           rng.random((B, C)).astype(np.float32) if kind == "multi" or C > 1 else
                           rng.normal(size=B).astype(np.float32))
    return cls_name, config, batch


@settings(max_examples=15)
@given(training_setups(), st.integers(0, 10**6))
def test_gradients_equal_torch_autograd_on_random_models(setup, seed):
    cls_name, config, batch = setup
    check_grads(cls_name, config, batch, seed)


def test_adamw_ten_steps_equal_torch_adamw():
    rng = np.random.default_rng(0)
    shapes = {"a": (5, 7), "b": (3,), "c": (2, 3, 4)}
    ours = {n: rng.normal(size=s).astype(np.float32) for n, s in shapes.items()}
    theirs = [torch.nn.Parameter(torch.from_numpy(ours[n].copy())) for n in shapes]
    kw = dict(lr=3e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)
    opt, ref = AdamW(ours, **kw), torch.optim.AdamW(theirs, **kw)
    for step in range(10):
        grads = {n: (rng.normal(size=s) * 10 ** rng.uniform(-3, 1)).astype(np.float32) for n, s in shapes.items()}
        for p, n in zip(theirs, shapes):
            p.grad = torch.from_numpy(grads[n].copy())
        ref.step()
        opt.step(grads)
        for p, n in zip(theirs, shapes):
            np.testing.assert_allclose(ours[n], p.detach().numpy(), rtol=0, atol=1e-6, err_msg=f"{n} step {step}")


def test_clip_grad_norm_equals_torch():
    rng = np.random.default_rng(1)
    grads = {n: rng.normal(size=(4, 5)).astype(np.float32) for n in "abc"}
    tensors = [torch.from_numpy(g.copy()) for g in grads.values()]
    params = [torch.nn.Parameter(torch.zeros(4, 5)) for _ in tensors]
    for p, t in zip(params, tensors):
        p.grad = t
    expected = float(torch.nn.utils.clip_grad_norm_(params, 1.5))
    assert abs(clip_grad_norm(grads, 1.5) - expected) <= 1e-5 * expected
    for g, p in zip(grads.values(), params):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_a_model_trained_by_minibloom_saves_and_loads_in_transformers(tmp_path):
    config = minibloom.BloomConfig(vocab_size=30, hidden_size=16, n_head=4, n_layer=2, pad_token_id=PAD, num_labels=3)
    model = minibloom.BloomForSequenceClassification(config, seed=1)
    ids = np.array([[5, 6, 7, 8], [PAD, 9, 10, 11]])
    batch = {"input_ids": ids, "attention_mask": (ids != PAD).astype(np.int64), "labels": np.array([0, 2])}
    before = {n: p.copy() for n, p in model.params.items()}
    opt = AdamW(model.params, lr=1e-2)
    for _ in range(3):
        _, grads = value_and_grad(model, **batch)
        opt.step(grads)
    assert all(not np.array_equal(before[n], p) for n, p in model.params.items())
    model.save_pretrained(tmp_path)
    ref = transformers.BloomForSequenceClassification.from_pretrained(tmp_path, dtype=torch.float32).eval()
    with torch.no_grad():
        expected = ref(torch.from_numpy(ids), attention_mask=torch.from_numpy(batch["attention_mask"])).logits.numpy()
    assert_close(model(**{k: v for k, v in batch.items() if k != "labels"}).logits, expected, "logits after training")


def test_text_labels_train_into_a_config_transformers_reads_back(tmp_path):
    """`minibloom train --rows` with label names writes label2id/id2label as run_glue.py does (sorted
    names); transformers' AutoConfig reads them back and its model gives the trained model's logits."""
    import json

    from minibloom.cli import main
    from tests.test_train_cli import COMMON, tiny_source, write_rows

    rows = [{"text": f"scene {i}: {w}", "label": w} for i, w in enumerate(["tragedy", "comedy", "history"] * 4)]
    out = tmp_path / "out"
    assert main(["train", str(out), "--rows", write_rows(tmp_path / "rows.csv", rows), "--checkpoint",
                 tiny_source(tmp_path / "source"), "--task", "seq-cls", "--steps", "3", "--eval-fraction", "0.25",
                 *COMMON]) == 0
    config = transformers.AutoConfig.from_pretrained(out)
    assert config.id2label == {0: "comedy", 1: "history", 2: "tragedy"}
    assert config.label2id == {"comedy": 0, "history": 1, "tragedy": 2} and config.num_labels == 3
    ref = transformers.AutoModelForSequenceClassification.from_pretrained(out, dtype=torch.float32).eval()
    ours = minibloom.BloomForSequenceClassification.from_pretrained(out)
    ids = np.array([[5, 6, 7, 8]])
    with torch.no_grad():
        expected = ref(torch.from_numpy(ids)).logits.numpy()
    assert_close(ours(input_ids=ids).logits, expected, "logits of the trained classifier")
    assert json.load(open(out / "history.json"))["metrics"][-1][1]["accuracy"] >= 0
