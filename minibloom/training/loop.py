"""The training loop: value_and_grad, clip, schedule, AdamW; evaluation; resumable checkpoints.

A checkpoint is a directory `OUT/checkpoint-<step>/` holding, in the order written:

1. `minibloom_checkpoint.json`, the ownership marker: {"format", "run_id", "out": OUT's real path}.
   Training deletes a `checkpoint-*` directory only if it carries this marker for this OUT, so a
   directory it did not write (HF Trainer's, a copy of your own) is never touched;
2. the model (save_pretrained: config.json, weights) and the optimizer (`optimizer.safetensors`);
3. `trainer_state.json` (run id, step, loss history), last.

The checkpoint becomes current only when the one-line file `OUT/latest` is replaced, atomically,
after all of it is on disk. A run has a random id; every checkpoint of a run carries it, and resume
checks that the marker, trainer_state.json and the optimizer's step agree. A checkpoint directory
is always written fresh (an old one of the same name is removed first, never written into), so
`latest` names one complete checkpoint of one run whatever instant a kill lands on.

A non-finite loss, gradient or weight stops the run (`NonFiniteLossError`) before the step is
applied or saved: the last good checkpoint stays byte-identical.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import time
import uuid
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from ..atomic import atomic_write_bytes
from ..config import BloomConfig
from ..errors import CheckpointError, InputError, MinibloomError
from ..safe_read import open_regular, read_json
from ..safetensors_io import load_file, read_header, read_tensor, save_file
from ..weights import check_state_dict, checkpoint_files, load_state_dict, strip_base_prefix
from .grad import value_and_grad
from .optim import AdamW, clip_grad_norm, cosine_schedule

LATEST = "latest"
MARKER = "minibloom_checkpoint.json"
STATE = "trainer_state.json"
OPTIMIZER = "optimizer.safetensors"
FORMAT = "minibloom-train-checkpoint-1"
CHECKPOINT_RE = re.compile(r"checkpoint-\d{6,12}")
RUN_ID_RE = re.compile(r"[0-9a-f]{32}")
# The config fields a resumed checkpoint must share with the model: shapes, head, vocabulary, labels.
RESUME_FIELDS = ("vocab_size", "hidden_size", "n_layer", "n_head", "id2label", "problem_type", "tie_word_embeddings",
                 "apply_residual_connection_post_layernorm", "pretraining_tp", "layer_norm_epsilon")


class NonFiniteLossError(MinibloomError, ArithmeticError):
    """The loss, a gradient or a weight became NaN or infinite: the run stopped before applying or
    saving that step (`minibloom train` exits 1)."""


def evaluate(model, batches: list[dict[str, np.ndarray]]) -> float:
    """Mean loss over held-out batches, each weighted by its number of rows."""
    return evaluate_metrics(model, batches)["loss"]


def evaluate_metrics(model, batches: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Held-out loss (rows-weighted mean), plus for classifiers what the loss hides:

    - sequence classification with class ids: `accuracy` (argmax == label);
    - token classification: token-level `accuracy` and macro `f1` (the mean over the classes that
      occur, in the labels or the predictions, of each class's F1), over tokens whose label is not
      -100. Not seqeval's entity F1 (which needs IOB tag names); a class the model never predicts
      counts as F1 0, so a model that only says "O" scores low even when "O" is most tokens.
    """
    total, rows, preds, golds = 0.0, 0, [], []
    kind = type(model).__name__
    for batch in batches:
        n = len(batch["input_ids"])
        out = model(**batch)
        total += float(out.loss) * n
        rows += n
        labels = np.asarray(batch.get("labels"))
        if kind == "BloomForSequenceClassification" and labels.ndim == 1 and labels.dtype.kind in "iu" \
                and model.config.num_labels > 1:
            preds.append(out.logits.argmax(-1))  # [B]
            golds.append(labels)
        elif kind == "BloomForTokenClassification":
            keep = labels != -100  # [B, T]
            preds.append(out.logits.argmax(-1)[keep])
            golds.append(labels[keep])
    metrics = {"loss": total / max(1, rows)}
    if golds:
        pred, gold = np.concatenate(preds), np.concatenate(golds)
        metrics["accuracy"] = float(np.mean(pred == gold)) if gold.size else math.nan
        if kind == "BloomForTokenClassification":
            f1 = [2 * np.sum((pred == c) & (gold == c)) / (np.sum(pred == c) + np.sum(gold == c))
                  for c in np.union1d(pred, gold)]
            metrics["f1"] = float(np.mean(f1)) if f1 else math.nan
    return metrics


# -- ownership -------------------------------------------------------------------------------------
def _marker(out_dir: str, run_id: str) -> bytes:
    return json.dumps({"format": FORMAT, "run_id": run_id, "out": os.path.realpath(out_dir)}).encode() + b"\n"


def marker_of(out_dir: str, name: str) -> dict[str, Any] | None:
    """The ownership marker of OUT/name if it is a checkpoint training wrote into this OUT, else None."""
    path = os.path.join(out_dir, name)
    if not CHECKPOINT_RE.fullmatch(name) or os.path.islink(path) or not os.path.isdir(path):
        return None
    try:
        marker = read_json(os.path.join(path, MARKER))
    except (CheckpointError, OSError):
        return None
    if not isinstance(marker, dict) or marker.get("format") != FORMAT or \
            marker.get("out") != os.path.realpath(out_dir) or not RUN_ID_RE.fullmatch(str(marker.get("run_id"))):
        return None
    return marker


def own_checkpoints(out_dir: str) -> dict[str, str]:
    """{checkpoint name: run id} of the checkpoint directories training wrote into OUT."""
    try:
        names = sorted(os.listdir(out_dir))
    except OSError:
        return {}
    return {n: m["run_id"] for n in names if (m := marker_of(out_dir, n))}


def read_latest(out_dir: str) -> str | None:
    """The checkpoint name OUT/latest holds (checked to be a plain `checkpoint-NNNNNN`), None if absent."""
    pointer = os.path.join(out_dir, LATEST)
    if not os.path.lexists(pointer):
        return None
    try:
        with open_regular(pointer, CheckpointError, 64) as f:  # a FIFO or a device is refused, not opened
            raw = f.read(65)
        name = raw.decode("ascii").strip()
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{pointer}: cannot read it ({e})") from None
    except CheckpointError as e:
        raise CheckpointError(f"{e} (minibloom train writes OUT/latest as one short line)") from None
    if not CHECKPOINT_RE.fullmatch(name):
        raise CheckpointError(f"{pointer}: holds {raw[:40]!r}, not the name of a checkpoint directory "
                              "(minibloom train writes 'checkpoint-NNNNNN'); move it away or choose another OUT")
    return name


def _remove_own(out_dir: str, name: str) -> None:
    """Delete an own checkpoint directory, its marker last: a kill midway leaves it still marked
    (removed next time) or empty, never an unmarked directory holding files."""
    path = os.path.join(out_dir, name)
    for entry in os.listdir(path):
        if entry != MARKER:
            full = os.path.join(path, entry)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.remove(full)
    os.remove(os.path.join(path, MARKER))
    os.rmdir(path)


def _unfinished(path: str) -> bool:
    """A directory holding nothing but (perhaps) a half-written marker: what a kill between creating
    a checkpoint directory and its marker leaves. Reused or removed; nothing else is in it."""
    return os.path.isdir(path) and not os.path.islink(path) and set(os.listdir(path)) <= {MARKER + ".partial"}


def _remove_unfinished(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(path, MARKER + ".partial"))
    os.rmdir(path)


def _write_marker(path: str, data: bytes) -> None:
    """The marker, atomically, through a temporary of a fixed name (so `_unfinished` can tell a
    kill's leftover from someone else's file): write, fsync, rename."""
    partial = os.path.join(path, MARKER + ".partial")
    with open(partial, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, os.path.join(path, MARKER))


def check_names_free(out_dir: str, names: list[str]) -> None:
    """Refuse, before any work, to save where a directory training did not write is in the way."""
    for name in names:
        path = os.path.join(out_dir, name)
        if os.path.lexists(path) and not _unfinished(path) and marker_of(out_dir, name) is None:
            raise CheckpointError(f"{path} exists and minibloom train did not write it (no {MARKER}): "
                                  "a checkpoint goes there; move it away or choose another OUT")


def planned_entries(out_dir: str, first: int, steps: int, save_every: int) -> list[str]:
    """The entries already in OUT where a save of steps `first`..`steps` will go. Read from the
    directory, not listed step by step: --steps may be in the billions."""
    try:
        names = os.listdir(out_dir)
    except OSError:
        return []
    return [n for n in sorted(names) if CHECKPOINT_RE.fullmatch(n) and first <= (step := int(n[len("checkpoint-"):]))
            <= steps and ((save_every and step % save_every == 0) or step == steps)]


# -- saving and resuming ---------------------------------------------------------------------------
def save_checkpoint(out_dir: str, model, opt: AdamW, state: dict[str, Any], keep: int = 1) -> str:
    """Write checkpoint-<step> fresh, point `latest` at it, then remove this OUT's own older checkpoints
    (all of another run; of this run, all but the newest `keep`, this one included)."""
    state.setdefault("run_id", uuid.uuid4().hex)
    name = f"checkpoint-{state['step']:06d}"
    path = os.path.join(out_dir, name)
    _check_finite_weights(model, f"saving {name}")
    if name == read_latest(out_dir):
        raise CheckpointError(f"{path} is the current checkpoint (OUT/latest); it is never written over")
    check_names_free(out_dir, [name])
    if marker_of(out_dir, name):
        _remove_own(out_dir, name)  # a leftover of a killed run: written fresh, never into
    elif os.path.lexists(path):
        _remove_unfinished(path)
    os.makedirs(out_dir, exist_ok=True)
    os.mkdir(path)
    _write_marker(path, _marker(out_dir, state["run_id"]))  # first: the directory is ours from now on
    model.save_pretrained(path)
    save_file(opt.state_dict(), os.path.join(path, OPTIMIZER))
    atomic_write_bytes(os.path.join(path, STATE), (json.dumps(state) + "\n").encode())
    atomic_write_bytes(os.path.join(out_dir, LATEST), (name + "\n").encode())  # the commit point
    own = own_checkpoints(out_dir)
    same_run = sorted(n for n, run in own.items() if run == state["run_id"] and n != name)
    stale = [n for n, run in own.items() if run != state["run_id"]] + same_run[:max(0, len(same_run) - keep + 1)]
    for old in stale:
        _remove_own(out_dir, old)
    for old in os.listdir(out_dir):  # directories a kill left before their marker was written
        if CHECKPOINT_RE.fullmatch(old) and os.path.isfile(os.path.join(out_dir, old, MARKER + ".partial")) \
                and _unfinished(os.path.join(out_dir, old)):
            _remove_unfinished(os.path.join(out_dir, old))
    return path


def check_resumable(out_dir: str) -> tuple[str, dict[str, Any]] | None:
    """(path, trainer state) of the checkpoint OUT/latest names, after checking that every file it
    needs is there and agrees (marker, trainer_state.json fields, optimizer step); None if OUT has no
    `latest`. Reads headers and JSON only: a damaged checkpoint fails in milliseconds."""
    name = read_latest(out_dir)
    if name is None:
        return None
    path = os.path.join(out_dir, name)
    if os.path.islink(path) or not os.path.isdir(path):
        raise CheckpointError(f"{os.path.join(out_dir, LATEST)} names {name}, which is not a directory "
                              "(--no-resume starts over)")
    marker = marker_of(out_dir, name)
    if marker is None:
        raise CheckpointError(f"{os.path.join(path, MARKER)}: missing or not this OUT's: {path} is not a "
                              "checkpoint minibloom train wrote here (--no-resume starts over)")
    state = read_json(os.path.join(path, STATE))
    _check_state(state, os.path.join(path, STATE), name, marker["run_id"])
    BloomConfig.from_pretrained(path)  # config.json readable and valid
    checkpoint_files(path)  # the weights' files exist (single file or index + shards)
    optimizer = os.path.join(path, OPTIMIZER)
    try:  # the header and the one-number step, not the moments (twice the model's size)
        infos = read_header(optimizer)[0]
        step = read_tensor(optimizer, infos["step"]) if "step" in infos else None
    except CheckpointError:
        raise
    except OSError as e:
        raise CheckpointError(f"{optimizer}: {e}") from None
    if step is None or np.asarray(step).reshape(-1).tolist() != [state["step"]]:
        raise CheckpointError(f"{os.path.join(path, OPTIMIZER)}: its step {None if step is None else step.tolist()} "
                              f"is not trainer_state.json's {state['step']}: files of two runs")
    return path, state


def _check_state(state: Any, where: str, name: str, run_id: str) -> None:
    def pairs(value: Any) -> bool:
        return isinstance(value, list) and all(
            isinstance(p, list) and len(p) == 2 and type(p[0]) is int and isinstance(p[1], (int, float))
            and not isinstance(p[1], bool) for p in value)

    if not isinstance(state, dict):
        raise CheckpointError(f"{where}: must be a JSON object, got {type(state).__name__}")
    step = state.get("step")
    problems = []
    if type(step) is not int or step < 1 or name != f"checkpoint-{step:06d}":
        problems.append(f"'step' is {step!r}, the directory is {name}")
    if state.get("run_id") != run_id:
        problems.append(f"'run_id' is {state.get('run_id')!r}, the marker's {run_id!r}")
    for key in ("train", "eval"):
        if not pairs(state.get(key)):
            problems.append(f"{key!r} must be a list of [step, loss] pairs")
    if "metrics" in state and not isinstance(state["metrics"], list):
        problems.append("'metrics' must be a list")
    if problems:
        raise CheckpointError(f"{where}: " + "; ".join(problems))


def load_checkpoint(out_dir: str, model, opt: AdamW) -> dict[str, Any] | None:
    """Restore model weights (in place) and optimizer state from OUT/latest; None if there is none.
    Everything is checked first (files, trainer state, the config's shapes, head and labels against
    `model`'s, every tensor): on any error, nothing of the model or the optimizer has changed."""
    checked = check_resumable(out_dir)
    if checked is None:
        return None
    path, state = checked
    saved = BloomConfig.from_pretrained(path)
    # subtle: problem_type is None until the first loss sets it (as in transformers), so a run's
    # checkpoint holds it and the freshly loaded model may not yet: None matches any
    differ = [f"{f} {getattr(saved, f)!r} (the model: {getattr(model.config, f)!r})" for f in RESUME_FIELDS
              if getattr(saved, f) != getattr(model.config, f)
              and not (f == "problem_type" and getattr(model.config, f) is None)]
    arch = saved.to_dict().get("architectures")
    if arch != [type(model).__name__]:
        differ.append(f"architectures {arch} (the model: {type(model).__name__})")
    if differ:
        raise CheckpointError(f"{path}/config.json: not the model being trained: " + "; ".join(differ[:4])
                              + " (resume with the same --checkpoint and task, or --no-resume)")
    weights = strip_base_prefix(load_state_dict(path))
    check_state_dict(weights, {n: p.shape for n, p in model.params.items()}, where=path)
    fresh = AdamW(model.params, lr=opt.lr, betas=opt.betas, eps=opt.eps, weight_decay=opt.weight_decay)
    try:
        fresh.load_state_dict(load_file(os.path.join(path, OPTIMIZER)))
    except InputError as e:
        raise CheckpointError(f"{os.path.join(path, OPTIMIZER)}: {e}") from None
    for name, p in model.params.items():
        p[...] = weights[name]  # in place: the optimizer and the layer views keep their arrays
    model.config.problem_type = saved.problem_type
    opt.m, opt.v, opt.t = fresh.m, fresh.v, fresh.t
    return state


def _check_finite_weights(model, when: str) -> None:
    bad = next((n for n, p in model.params.items() if not np.isfinite(p).all()), None)
    if bad is not None:
        raise NonFiniteLossError(f"{when}: weight {bad!r} is not finite (learning rate too large?); nothing saved")


def fit(model, next_batch: Callable[[int], dict[str, np.ndarray]], eval_batches: list[dict[str, np.ndarray]], *,
        steps: int, lr: float, warmup: int = 0, min_lr: float = 0.0, weight_decay: float = 0.01, clip: float = 1.0,
        eval_every: int = 0, save_every: int = 0, out_dir: str | None = None, resume: bool = True,
        progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train `model` in place for `steps` steps; returns the history {run_id, step, train: [[step, loss]],
    eval: [[step, loss]], metrics: [[step, {accuracy, f1}]]}. next_batch(step) gives the batch of a
    step (deterministic, for resuming). resume=False starts a new run: OUT/latest (the old run's) is
    removed first, its checkpoints at the new run's first save. Stops with `NonFiniteLossError` at
    the first NaN/inf loss or gradient, before that step is applied."""
    opt = AdamW(model.params, lr=lr, weight_decay=weight_decay)
    state: dict[str, Any] = {"run_id": uuid.uuid4().hex, "step": 0, "train": [], "eval": [], "metrics": []}
    if out_dir and resume:
        state = load_checkpoint(out_dir, model, opt) or state
        state.setdefault("metrics", [])
        if state["step"]:
            log(f"resuming from step {state['step']} ({out_dir})")
    if out_dir:  # before anything in OUT changes: a refused run leaves it as it was
        check_names_free(out_dir, planned_entries(out_dir, state["step"] + 1, steps, save_every))
    if out_dir and not resume and read_latest(out_dir) is not None:
        os.remove(os.path.join(out_dir, LATEST))  # a new run: the old one is no longer current
    saved = f"checkpoint-{state['step']:06d}" if state["step"] else None
    bar = tqdm(range(state["step"], steps), initial=state["step"], total=steps, disable=not progress,
               desc="training", unit="step")
    for step in bar:
        batch = next_batch(step)
        start = time.perf_counter()
        with np.errstate(all="ignore"):  # an overflow is caught below, by name, not as NumPy's warnings
            loss, grads = value_and_grad(model, **batch)
            norm = clip_grad_norm(grads, clip)
        if not (math.isfinite(float(loss)) and math.isfinite(norm)):
            bar.close()
            raise NonFiniteLossError(
                f"step {step + 1}: non-finite {'loss' if not math.isfinite(float(loss)) else 'gradient'} "
                f"(loss {float(loss)}, gradient norm {norm}; a NaN label, or a learning rate too large?): stopped "
                f"before applying it; " + (f"the last checkpoint, {saved}, is as it was" if saved and out_dir
                                           else "no checkpoint was written"))
        opt.lr = cosine_schedule(step, lr, warmup, steps, min_lr)
        with np.errstate(all="ignore"):  # weights that overflow are refused before any save
            opt.step(grads)
        tokens_per_s = batch["input_ids"].size / max(time.perf_counter() - start, 1e-9)
        state["train"].append([step + 1, float(loss)])
        state["step"] = step + 1
        bar.set_postfix(loss=f"{float(loss):.3f}", tok_s=f"{tokens_per_s:.0f}")
        last = step + 1 == steps
        if eval_batches and ((eval_every and (step + 1) % eval_every == 0) or last):
            with np.errstate(all="ignore"):
                metrics = evaluate_metrics(model, eval_batches)
            held_out = metrics.pop("loss")
            state["eval"].append([step + 1, held_out])
            if metrics:
                state["metrics"].append([step + 1, metrics])
            bar.write(f"step {step + 1}: train loss {float(loss):.4f}, held-out loss {held_out:.4f}"
                      + describe(metrics, held_out, type(model).__name__))
        if out_dir and ((save_every and (step + 1) % save_every == 0) or last):
            save_checkpoint(out_dir, model, opt, state)
            saved = f"checkpoint-{state['step']:06d}"
    bar.close()
    return state


def describe(metrics: dict[str, float], loss: float, kind: str) -> str:
    """What the held-out loss means: perplexity for a language model, accuracy (and F1) for classifiers."""
    if kind == "BloomForCausalLM":
        return f" (perplexity {math.exp(min(loss, 50)):.2f})"
    return "".join(f", {'F1' if k == 'f1' else k} {v:.4f}" for k, v in metrics.items())


def plot_losses(state: dict[str, Any], path: str) -> bool:
    """Write the loss curve (train and held-out) as a PNG; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if state["train"]:
        ax.plot(*zip(*state["train"]), lw=0.8, label="train (batch)")
    if state["eval"]:
        ax.plot(*zip(*state["eval"]), "o-", label="held out")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
