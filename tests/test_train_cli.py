"""`minibloom train`: fine-tuning from the command line, resuming, and every kind of data file."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

import minibloom
from minibloom.cli import main
from minibloom.training import value_and_grad

TEXT = os.path.join(os.path.dirname(__file__), "data", "heldout", "tempest.txt")
COMMON = ["--batch-size", "2", "--seq-len", "16", "--backend", "numpy", "--quiet", "--warmup", "1"]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "tempest.txt"
    with open(TEXT, encoding="utf-8") as f:
        path.write_text(f.read()[:4000], encoding="utf-8")
    return str(path)


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(text_file, tmp_path, capsys):
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    assert main(["train", straight, "--text", text_file, "--steps", "4", "--eval-every", "2", *COMMON]) == 0
    assert main(["train", resumed, "--text", text_file, "--steps", "2", "--save-every", "1", *COMMON]) == 0
    assert main(["train", resumed, "--text", text_file, "--steps", "4", "--eval-every", "2", *COMMON]) == 0
    assert "resuming from step 2" in capsys.readouterr().out
    a = minibloom.BloomForCausalLM.from_pretrained(straight).params
    b = minibloom.BloomForCausalLM.from_pretrained(resumed).params
    assert all(np.array_equal(a[n], b[n]) for n in a)
    base = minibloom.BloomForCausalLM.from_pretrained(minibloom.EMBEDDED_CHECKPOINT).params
    assert not np.array_equal(a["h.0.mlp.dense_h_to_4h.weight"], base["h.0.mlp.dense_h_to_4h.weight"])
    files = set(os.listdir(straight))
    assert {"config.json", "model.safetensors", "tokenizer.json", "history.json", "latest"} <= files
    history = json.load(open(os.path.join(resumed, "history.json")))
    assert [s for s, _ in history["train"]] == [1, 2, 3, 4] and [s for s, _ in history["eval"]] == [2, 4]
    assert os.listdir(os.path.join(resumed)).count("checkpoint-000004") == 1
    assert not any(d.startswith("checkpoint-00000") and d != "checkpoint-000004" for d in os.listdir(resumed))


@pytest.mark.parametrize("task, ext", [("seq-cls", "jsonl"), ("token-cls", "csv"), ("qa", "jsonl")])
def test_every_head_trains_from_labelled_rows(task, ext, tmp_path):
    rows = []
    for i in range(6):
        text = ["to be or not to be", "the tempest roars", "what light through yonder"][i % 3]
        target = {"seq-cls": {"label": i % 3}, "token-cls": {"labels": [i % 2, 1, 0, 2]},
                  "qa": {"start_position": 1, "end_position": 2}}[task]
        rows.append({"text": text, **target})
    path = tmp_path / f"rows.{ext}"
    if ext == "csv":
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows([{k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()} for r in rows])
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = str(tmp_path / "out")
    assert main(["train", out, "--rows", str(path), "--task", task, "--steps", "2", "--eval-fraction", "0.3", *COMMON]) == 0
    cls = {"seq-cls": minibloom.BloomForSequenceClassification, "token-cls": minibloom.BloomForTokenClassification,
           "qa": minibloom.BloomForQuestionAnswering}[task]
    model = cls.from_pretrained(out)
    if task != "qa":
        assert model.config.num_labels == 3
    assert len(json.load(open(os.path.join(out, "history.json")))["eval"]) == 1


def test_bad_training_input_is_one_line_and_exit_2(tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "no label here"}\n{"text": "x"}\n')
    assert main(["train", str(tmp_path / "o"), "--rows", str(rows), "--task", "seq-cls", "--num-labels", "2",
                 "--steps", "1", *COMMON]) == 2
    assert "lacks the field 'label'" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "o"), "--text", str(tmp_path / "missing.txt"), *COMMON]) == 2


def test_threads_flag_sets_the_compute_threads(text_file, tmp_path):
    before = minibloom.get_num_threads()
    try:
        assert main(["train", str(tmp_path / "t"), "--text", text_file, "--steps", "1", "--threads", "2",
                     *COMMON]) == 0
        assert minibloom.get_num_threads() == 2
        assert main(["train", str(tmp_path / "u"), "--text", text_file, "--steps", "1", "--threads", "0",
                     *COMMON]) == 2  # refused by name, one line
    finally:
        minibloom.set_num_threads(before)


def test_value_and_grad_on_the_embedded_model_gives_every_parameter_a_gradient():
    model = minibloom.BloomForCausalLM.from_pretrained(minibloom.EMBEDDED_CHECKPOINT, storage="float32")
    ids = np.arange(10, 26)[None]
    loss, grads = value_and_grad(model, input_ids=ids, labels=ids)
    assert np.isfinite(loss) and set(grads) == set(model.params)
    assert all(np.abs(g).max() > 0 for g in grads.values())
