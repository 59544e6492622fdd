"""Training goldens (docs/golden.md, "Training goldens"): the golden holds the forward, the loss, the
gradient arriving at each intermediate (`d.*`), every parameter's gradient (`grad.*`) and AdamW steps.
An independent port (tests/train_port.py: plain NumPy backward and AdamW, not minibloom's code) must
pass, and each classic training bug must be named at its backward op or optimizer step."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file

from minibloom import BloomForCausalLM, golden
from minibloom.golden.format import is_documented, split_phase
from minibloom.errors import InputError
from minibloom.golden.train import backward_order, dump_train
from tests.conftest import HF_EXPECTED_DIR
from tests.train_port import TRAIN_BUGS, TrainPort, first_op

CHECKPOINT = os.path.join(HF_EXPECTED_DIR, "heads12_prefixed")  # 2 layers, 12 heads, tied embeddings
IDS = np.array([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]])
MASK = np.array([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])  # left padding on the second row
HYPER = {"steps": 2, "lr": 1e-2, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    path = tmp_path_factory.mktemp("train") / "train.safetensors"
    dump_train(BloomForCausalLM.from_pretrained(CHECKPOINT), path, IDS, MASK, **HYPER)
    return golden.load(path)


def port_record(expected, bugs=()) -> dict[str, np.ndarray]:
    return TrainPort(CHECKPOINT, bugs).train(IDS, MASK, expected.tensors, json.loads(expected.metadata["train"]))


def test_the_golden_holds_every_name_in_forward_then_backward_then_step_order(expected):
    model = BloomForCausalLM.from_pretrained(CHECKPOINT)
    order = expected.order
    assert order[:3] == ["input_ids", "attention_mask", "labels"]
    assert (expected.tensors["labels"] == np.where(MASK == 1, IDS, -100)).all()
    back = order[order.index("loss") + 1:order.index("step.1.param.word_embeddings.weight")]
    assert back == backward_order(2, model.params)
    assert back[:3] == ["d.logits", "d.ln_f", "grad.ln_f.weight"] and back[-1] == "grad.word_embeddings.weight"
    assert {f"grad.{n}" for n in model.params} <= set(order)
    for s in (1, 2):
        assert {f"step.{s}.param.{n}" for n in model.params} <= set(order)
    assert {f"step.2.{k}.{n}" for k in ("grad", "m", "v") for n in model.params} <= set(order)
    assert "step.2.loss" in order and not any(n.startswith("step.1.m.") for n in order)
    assert json.loads(expected.metadata["train"])["betas"] == [0.8, 0.95]
    assert expected.tensors["step.2.loss"][0] < expected.tensors["loss"][0]  # a step on the batch lowers its loss
    # the dump moved the weights for its steps and put them back
    moved = BloomForCausalLM.from_pretrained(CHECKPOINT)
    dump_train(moved, _tmp(), IDS, MASK, steps=1)
    assert all((moved.params[n] == p).all() for n, p in model.params.items())


def _tmp() -> str:
    import tempfile

    return os.path.join(tempfile.mkdtemp(), "g.safetensors")


def test_recording_the_backward_leaves_the_gradients_as_they_were(expected):
    from minibloom.training import value_and_grad

    model = BloomForCausalLM.from_pretrained(CHECKPOINT)
    loss, grads = value_and_grad(model, input_ids=IDS, attention_mask=MASK, labels=expected.tensors["labels"])
    assert loss == expected.tensors["loss"][0]
    assert all((grads[n] == expected.tensors[f"grad.{n}"]).all() for n in grads)


def test_a_correct_independent_training_port_passes(expected, tmp_path):
    path = str(tmp_path / "port.safetensors")
    save_file({k: np.ascontiguousarray(v) for k, v in port_record(expected).items()}, path)  # no metadata
    report = golden.compare(expected, golden.load(path))
    text = golden.format_report(report)
    assert report.ok, text
    assert max(r.headroom for r in report.rows) < 0.5
    assert {"forward: ok (35 tensors)", "backward: ok (61 tensors)", "optimizer: ok (146 tensors)"} <= set(
        text.splitlines()), text[-600:]
    assert report.phases() == {"forward": None, "backward": None, "optimizer": None}


@pytest.mark.parametrize("bug", TRAIN_BUGS)
def test_each_classic_training_bug_is_named_at_its_backward_op_or_step(expected, bug):
    report = golden.compare(expected, port_record(expected, [bug]))
    want = first_op(bug, expected.n_layer)
    first = report.first_divergence
    text = golden.format_report(report, failures_only=True)
    assert first is not None and first.name == want, text
    assert f"FAIL: first divergence at {want}" in text
    assert report.phases()["forward"] is None
    if bug == "adamw_bias_step":
        assert report.phases()["backward"] is None and "optimizer: first divergent step 1, at " + want in text
    else:
        assert f"backward: first divergence at {want}" in text


def test_forward_goldens_and_their_compare_are_unchanged_by_the_training_names(expected):
    forward = {n: t for n, t in expected.tensors.items() if not split_phase(n)[0] and n not in ("loss", "labels")}
    report = golden.compare(expected, forward, skip_missing=True)
    assert report.ok and report.phases()["backward"] is None  # not recorded, not failed
    assert "backward: not recorded" in golden.format_report(report)
    assert golden.compare(golden.GoldenFile(forward), forward).phases() == {}


@pytest.mark.parametrize("name", ["d.h.0.self_attention.alibi", "d.input_ids", "grad.h.0.mlp.gelu", "d.grad.ln_f.bias",
                                  "step.0.param.ln_f.bias", "step.1.w.ln_f.bias", "grad.transformer.ln_f.bias"])
def test_names_outside_the_training_format_are_unknown(name):
    assert not is_documented(name)


def test_training_options_are_checked_before_any_work():
    model = BloomForCausalLM.from_pretrained(CHECKPOINT)
    for bad in ({"steps": 0}, {"lr": float("nan")}, {"betas": (1.0, 0.9)}, {"weight_decay": -1}):
        with pytest.raises(InputError):
            dump_train(model, _tmp(), IDS, MASK, **bad)


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minibloom", "golden", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})


def test_the_cli_dumps_and_compares_a_training_golden(tmp_path):
    path = tmp_path / "t.safetensors"
    done = run("dump", "--checkpoint", CHECKPOINT, "--ids", 5, 6, 7, "--train", "--steps", 1, "--lr", 0.01, "-o", path)
    assert done.returncode == 0, done.stderr
    g = golden.load(path)
    assert json.loads(g.metadata["train"])["lr"] == 0.01 and "step.1.m.ln_f.bias" in g.tensors
    done = run("compare", path, path)
    assert done.returncode == 0 and "backward: ok (" in done.stdout, done.stdout
    done = run("dump", "--checkpoint", CHECKPOINT, "--ids", 5, 6, "--steps", 1, "-o", tmp_path / "x.safetensors")
    assert done.returncode == 2 and "add --train" in done.stderr and not (tmp_path / "x.safetensors").exists()
