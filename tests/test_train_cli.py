"""`minibloom train`: fine-tuning from the command line, resuming, and every kind of data file."""

from __future__ import annotations

import csv
import json
import time
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


# -- training owns only what it wrote ---------------------------------------------------------------
def tiny_source(directory, n_layer: int = 1, hidden_size: int = 16) -> str:
    """A tiny random BLOOM with the embedded model's tokenizer: steps take milliseconds."""
    import shutil

    config = minibloom.BloomConfig(vocab_size=4096, hidden_size=hidden_size, n_head=2, n_layer=n_layer,
                                   pad_token_id=3, bos_token_id=1, eos_token_id=2)
    minibloom.BloomForCausalLM(config, seed=0).save_pretrained(directory)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(minibloom.EMBEDDED_CHECKPOINT, name), os.path.join(str(directory), name))
    return str(directory)


def tree(directory) -> dict[str, bytes]:
    """Every file under `directory` with its bytes: what 'byte-identical' compares."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, directory)] = f.read()
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_source(tmp_path_factory.mktemp("tiny") / "model")


def train(out, text_file, source, *extra):
    return main(["train", str(out), "--text", text_file, "--checkpoint", source, *COMMON, *extra])


def test_foreign_checkpoint_directories_survive_and_own_ones_rotate(text_file, tiny, tmp_path):
    out = tmp_path / "out"
    for name in ("checkpoint-500", "checkpoint-000009"):  # HF Trainer's naming, and one that looks like ours
        (out / name).mkdir(parents=True)
        (out / name / "trainer_state.json").write_text('{"global_step": 500}')
        (out / name / "model.safetensors").write_bytes(b"theirs")
    before = tree(out)
    assert train(out, text_file, tiny, "--steps", "3", "--save-every", "1") == 0
    after = tree(out)
    assert {k: v for k, v in after.items() if k in before} == before  # every foreign file as it was
    ours = sorted(d for d in os.listdir(out) if d.startswith("checkpoint-") and d not in ("checkpoint-500",
                                                                                         "checkpoint-000009"))
    assert ours == ["checkpoint-000003"]  # the own older ones were rotated away
    assert (out / "latest").read_text().strip() == "checkpoint-000003"


def test_a_foreign_directory_where_a_checkpoint_goes_is_refused_before_work(text_file, tiny, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "checkpoint-000001").mkdir(parents=True)
    (out / "checkpoint-000001" / "notes.txt").write_text("mine")
    before = tree(out)
    assert train(out, text_file, tiny, "--steps", "2", "--save-every", "1") == 2
    err = capsys.readouterr().err.strip()
    assert "checkpoint-000001" in err and len(err.splitlines()) == 1
    assert tree(out) == before


def test_training_into_its_source_or_over_a_model_needs_force(text_file, tiny, tmp_path, capsys):
    import shutil

    source = tmp_path / "source"
    shutil.copytree(tiny, source)
    before = tree(source)
    assert train(source, text_file, str(source), "--steps", "1") == 2  # --checkpoint OUT
    err = capsys.readouterr().err
    assert "--force" in err and len(err.strip().splitlines()) == 1
    assert tree(source) == before
    other = tmp_path / "other"
    shutil.copytree(tiny, other)  # a model that training did not write
    assert train(other, text_file, tiny, "--steps", "1") == 2
    assert "--force" in capsys.readouterr().err and tree(other) == before
    assert train(source, text_file, str(source), "--steps", "2", "--force") == 0  # step 1 has lr 0 (warm-up)
    assert tree(source)["model.safetensors"] != before["model.safetensors"]
    # a run's own OUT is not "a model it did not write": running again resumes, no --force needed
    assert train(source, text_file, str(source), "--steps", "3") == 2  # ... but it is still the source
    assert train(tmp_path / "fresh", text_file, tiny, "--steps", "1") == 0
    assert train(tmp_path / "fresh", text_file, tiny, "--steps", "2") == 0


def test_a_non_finite_loss_stops_and_leaves_the_last_checkpoint_byte_identical(text_file, tiny, tmp_path, capsys):
    out = tmp_path / "out"
    assert train(out, text_file, tiny, "--steps", "2", "--save-every", "2") == 0
    before = tree(out)
    capsys.readouterr()
    # a learning rate that throws the weights to 1e38: the next forward overflows to inf / NaN
    assert train(out, text_file, tiny, "--steps", "6", "--save-every", "2", "--lr", "1e38", "--warmup", "0",
                 "--weight-decay", "0") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "non-finite" in err, err
    assert tree(out) == before


def test_a_nan_label_and_an_infinite_lr_are_refused_before_work(tiny, tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "to be", "label": 0.5}\n{"text": "or not", "label": NaN}\n{"text": "x", "label": 1.0}\n')
    out = tmp_path / "out"
    assert main(["train", str(out), "--rows", str(rows), "--checkpoint", tiny, "--steps", "1", *COMMON]) == 2
    assert "row 2" in capsys.readouterr().err
    assert main(["train", str(out), "--text", str(rows), "--checkpoint", tiny, "--lr", "inf", *COMMON]) == 2
    assert "--lr" in capsys.readouterr().err
    assert not out.exists()


def test_fit_stops_at_a_nan_loss_without_saving(tmp_path):
    from minibloom.training import fit
    from minibloom.training.loop import NonFiniteLossError

    config = minibloom.BloomConfig(vocab_size=32, hidden_size=8, n_head=2, n_layer=1, num_labels=1)
    model = minibloom.BloomForSequenceClassification(config, seed=0)
    ids = np.array([[5, 6, 7]])

    def batch(step):
        return {"input_ids": ids, "labels": np.array([np.nan if step == 2 else 1.0], np.float32)}

    out = tmp_path / "out"
    with pytest.raises(NonFiniteLossError, match="step 3"):
        fit(model, batch, [], steps=4, lr=1e-3, save_every=1, out_dir=str(out), progress=False)
    assert sorted(d for d in os.listdir(out) if d.startswith("checkpoint-")) == ["checkpoint-000002"]
    assert all(np.isfinite(p).all() for p in model.params.values())  # the NaN step was never applied


@pytest.mark.parametrize("flag, value", [("--clip", "-1"), ("--clip", "0"), ("--clip", "nan"), ("--lr", "inf"),
                                         ("--lr", "-1e-3"), ("--lr", "0"), ("--lr", "nan"), ("--warmup", "-1"),
                                         ("--steps", "0"), ("--batch-size", "0"), ("--weight-decay", "-0.1"),
                                         ("--weight-decay", "inf"), ("--eval-every", "-1"), ("--save-every", "-2"),
                                         ("--num-labels", "0"), ("--eval-fraction", "1"), ("--seq-len", "1"),
                                         ("--seed", "-1")])
def test_out_of_range_flags_are_usage_errors(flag, value, text_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["train", str(out), "--text", text_file, *COMMON, f"{flag}={value}"]) == 2
    err = capsys.readouterr().err.strip()
    assert flag in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_resume_refuses_a_checkpoint_of_another_shape(text_file, tmp_path, capsys):
    one, two = tiny_source(tmp_path / "one", n_layer=1), tiny_source(tmp_path / "two", n_layer=2)
    out = tmp_path / "out"
    assert train(out, text_file, two, "--steps", "1") == 0
    before = tree(out)
    capsys.readouterr()
    assert train(out, text_file, one, "--steps", "2") == 2
    err = capsys.readouterr().err.strip()
    assert "n_layer" in err and "checkpoint-000001" in err and len(err.splitlines()) == 1, err
    assert tree(out) == before


DAMAGE = {
    "no config.json": lambda c: os.remove(c / "config.json"),
    "no model.safetensors": lambda c: os.remove(c / "model.safetensors"),
    "no optimizer.safetensors": lambda c: os.remove(c / "optimizer.safetensors"),
    "no trainer_state.json": lambda c: os.remove(c / "trainer_state.json"),
    "no marker": lambda c: os.remove(c / "minibloom_checkpoint.json"),
    "empty trainer_state.json": lambda c: (c / "trainer_state.json").write_text(""),
    "trainer_state.json without fields": lambda c: (c / "trainer_state.json").write_text("{}"),
    "bad JSON": lambda c: (c / "trainer_state.json").write_text('{"step": 1,'),
    "state not an object": lambda c: (c / "trainer_state.json").write_text("[1, 2]"),
    "step of another checkpoint": lambda c: (c / "trainer_state.json").write_text(
        json.dumps({**json.loads((c / "trainer_state.json").read_text()), "step": 7})),
    "run id of another run": lambda c: (c / "trainer_state.json").write_text(
        json.dumps({**json.loads((c / "trainer_state.json").read_text()), "run_id": "0" * 32})),
    "bad train history": lambda c: (c / "trainer_state.json").write_text(
        json.dumps({**json.loads((c / "trainer_state.json").read_text()), "train": [[1]]})),
    "truncated optimizer": lambda c: (c / "optimizer.safetensors").write_bytes(
        (c / "optimizer.safetensors").read_bytes()[:100]),
    "latest names a path": lambda c: (c.parent / "latest").write_text("../elsewhere\n"),
    "latest names nothing": lambda c: (c.parent / "latest").write_text("checkpoint-000042\n"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_checkpoint_is_one_line_naming_the_file(damage, text_file, tiny, tmp_path, capsys):
    out = tmp_path / "out"
    assert train(out, text_file, tiny, "--steps", "1") == 0
    DAMAGE[damage](out / "checkpoint-000001")
    before = tree(out)
    capsys.readouterr()
    assert train(out, text_file, tiny, "--steps", "2") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("checkpoint-000001" in err or "latest" in err), err
    assert "internal error" not in err and "Traceback" not in err, err
    assert tree(out) == before


def test_no_resume_starts_a_new_run_and_latest_names_only_it(text_file, tiny, tmp_path):
    out = tmp_path / "out"
    assert train(out, text_file, tiny, "--steps", "2", "--save-every", "1") == 0
    old = json.loads((out / "checkpoint-000002" / "trainer_state.json").read_text())["run_id"]
    assert train(out, text_file, tiny, "--steps", "2", "--save-every", "1", "--no-resume", "--seed", "1") == 0
    assert (out / "latest").read_text().strip() == "checkpoint-000002"
    state = json.loads((out / "checkpoint-000002" / "trainer_state.json").read_text())
    assert state["run_id"] != old and state["step"] == 2
    assert sorted(d for d in os.listdir(out) if d.startswith("checkpoint-")) == ["checkpoint-000002"]


# -- data verbatim, text labels, accuracy --------------------------------------------------------
def test_csv_cells_are_text_verbatim(tmp_path):
    from minibloom.training.data import read_rows, rows_to_batch

    path = tmp_path / "rows.csv"
    path.write_text('text,label\ntrue,0\n1.50,1\nnull,0\n"[1, 2]",1\n')
    rows = read_rows(str(path))
    assert [r["text"] for r in rows] == ["true", "1.50", "null", "[1, 2]"]
    tok = minibloom.BloomTokenizer.from_pretrained(minibloom.EMBEDDED_CHECKPOINT)
    batch = rows_to_batch(rows[:2], tok, "seq-cls", 16, 3)
    assert batch["input_ids"][1, :len(tok.encode("1.50"))].tolist() == tok.encode("1.50")
    assert batch["labels"].tolist() == [0, 1]  # integer cells of the label column: class ids


def write_rows(path, rows):
    if str(path).endswith(".csv"):
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_text_labels_become_label2id_and_id2label(ext, tiny, tmp_path, capsys):
    genres = ["tragedy", "comedy", "history"]
    rows = [{"text": f"act {i} of the play", "label": genres[i % 3]} for i in range(12)]
    out = tmp_path / "out"
    assert main(["train", str(out), "--rows", write_rows(tmp_path / f"rows.{ext}", rows), "--checkpoint", tiny,
                 "--task", "seq-cls", "--steps", "2", "--eval-fraction", "0.5", *COMMON]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["label2id"] == {"comedy": 0, "history": 1, "tragedy": 2}  # sorted, as run_glue.py
    assert config["id2label"] == {"0": "comedy", "1": "history", "2": "tragedy"}
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "perplexity" not in printed
    model = minibloom.BloomForSequenceClassification.from_pretrained(out)
    assert model.config.num_labels == 3 and model.config.id2label[2] == "tragedy"


def test_token_classification_reports_accuracy_and_f1_and_maps_tag_names(tiny, tmp_path, capsys):
    tok = minibloom.BloomTokenizer.from_pretrained(tiny)
    rows = []
    for i in range(8):
        text = ["Prospero rules the isle", "Miranda sleeps"][i % 2]
        tags = ["B-PER" if j == 0 else "O" for j in range(len(tok.encode(text)))]
        rows.append({"text": text, "labels": " ".join(tags)})  # CSV: whitespace-separated tags
    out = tmp_path / "out"
    assert main(["train", str(out), "--rows", write_rows(tmp_path / "ner.csv", rows), "--checkpoint", tiny,
                 "--task", "token-cls", "--steps", "2", "--eval-fraction", "0.5", *COMMON]) == 0
    assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "B-PER", "1": "O"}
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "F1" in printed
    metrics = json.load(open(out / "history.json"))["metrics"]
    assert set(metrics[-1][1]) == {"accuracy", "f1"} and 0 <= metrics[-1][1]["accuracy"] <= 1


def test_resuming_a_head_does_not_warn_that_it_is_newly_initialised(tiny, tmp_path, capsys):
    """A fresh head warns (as transformers does) on the first run; a resumed run restores the head
    from its checkpoint, so the warning would be false there."""
    rows = write_rows(tmp_path / "rows.jsonl", [{"text": f"act {i}", "label": i % 2} for i in range(8)])
    argv = ["train", str(tmp_path / "out"), "--rows", rows, "--checkpoint", tiny, "--task", "seq-cls",
            "--eval-fraction", "0.5", *COMMON]
    assert main([*argv, "--steps", "1"]) == 0
    assert "newly initialised" in capsys.readouterr().err
    assert main([*argv, "--steps", "2"]) == 0
    captured = capsys.readouterr()
    assert "resuming from step 1" in captured.out and "warning" not in captured.err


def test_a_refused_no_resume_run_leaves_out_as_it_was(text_file, tiny, tmp_path, capsys):
    """Found in review: --no-resume removed OUT/latest before finding a foreign directory in its way,
    so the refused command (exit 2) lost the old run, and the next one deleted its checkpoints."""
    out = tmp_path / "out"
    assert train(out, text_file, tiny, "--steps", "2", "--save-every", "1") == 0
    (out / "checkpoint-000003").mkdir()
    (out / "checkpoint-000003" / "notes.txt").write_text("mine")
    before = tree(out)
    assert train(out, text_file, tiny, "--steps", "3", "--save-every", "1", "--no-resume") == 2
    assert "did not write it" in capsys.readouterr().err
    assert tree(out) == before


def test_a_latest_that_is_not_a_regular_file_is_refused_without_blocking(text_file, tiny, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "latest")  # opening a FIFO for reading waits for a writer: forever
    assert train(out, text_file, tiny, "--steps", "1") == 2
    assert "latest" in capsys.readouterr().err


def test_a_huge_step_count_is_checked_in_milliseconds(text_file, tiny, tmp_path, capsys):
    """The planned saves were listed step by step (10**10 steps: minutes and gigabytes before work)."""
    out = tmp_path / "out"
    assert train(out, text_file, tiny, "--steps", str(10**12), "--save-every", "1") == 2
    assert "--steps" in capsys.readouterr().err
    fresh = tmp_path / "fresh"
    (fresh / "checkpoint-000007").mkdir(parents=True)
    (fresh / "checkpoint-000007" / "notes.txt").write_text("mine")
    start = time.perf_counter()
    assert train(fresh, text_file, tiny, "--steps", str(10**11), "--save-every", "7") == 2
    assert time.perf_counter() - start < 5 and "checkpoint-000007" in capsys.readouterr().err
