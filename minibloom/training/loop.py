"""The training loop: value_and_grad, clip, schedule, AdamW; evaluation; resumable checkpoints.

A checkpoint is a directory `OUT/checkpoint-<step>/` with the model (save_pretrained), the optimizer
state (`optimizer.safetensors`) and `trainer_state.json` (step, loss history). Every file is written
atomically, and the checkpoint becomes current only when the one-line file `OUT/latest` is
replaced, last: a run killed at any moment resumes from the last complete checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from ..atomic import atomic_write_bytes
from ..errors import CheckpointError
from ..safetensors_io import load_file, save_file
from ..weights import load_state_dict, strip_base_prefix
from .grad import value_and_grad
from .optim import AdamW, clip_grad_norm, cosine_schedule

LATEST = "latest"


def evaluate(model, batches: list[dict[str, np.ndarray]]) -> float:
    """Mean loss over held-out batches, each weighted by its number of rows."""
    total, rows = 0.0, 0
    for batch in batches:
        n = len(batch["input_ids"])
        total += float(model(**batch).loss) * n
        rows += n
    return total / max(1, rows)


def save_checkpoint(out_dir: str, model, opt: AdamW, state: dict[str, Any], keep: int = 1) -> str:
    """Write checkpoint-<step> and point `latest` at it; older checkpoints beyond `keep` are removed."""
    name = f"checkpoint-{state['step']:06d}"
    path = os.path.join(out_dir, name)
    model.save_pretrained(path)
    save_file(opt.state_dict(), os.path.join(path, "optimizer.safetensors"))
    atomic_write_bytes(os.path.join(path, "trainer_state.json"), (json.dumps(state) + "\n").encode())
    atomic_write_bytes(os.path.join(out_dir, LATEST), (name + "\n").encode())  # the commit point
    old = sorted(d for d in os.listdir(out_dir) if d.startswith("checkpoint-") and d != name)
    for d in old[:max(0, len(old) - keep + 1)]:
        shutil.rmtree(os.path.join(out_dir, d), ignore_errors=True)
    return path


def load_checkpoint(out_dir: str, model, opt: AdamW) -> dict[str, Any] | None:
    """Restore model weights (in place) and optimizer state from OUT/latest; None if there is none."""
    pointer = os.path.join(out_dir, LATEST)
    if not os.path.isfile(pointer):
        return None
    with open(pointer) as f:
        path = os.path.join(out_dir, f.read().strip())
    try:
        weights = strip_base_prefix(load_state_dict(path))
        for name, p in model.params.items():
            p[...] = weights[name]  # in place: the optimizer and the layer views keep their arrays
        opt.load_state_dict(load_file(os.path.join(path, "optimizer.safetensors")))
        with open(os.path.join(path, "trainer_state.json")) as f:
            return json.load(f)
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: not a usable training checkpoint ({e})") from None


def fit(model, next_batch: Callable[[int], dict[str, np.ndarray]], eval_batches: list[dict[str, np.ndarray]], *,
        steps: int, lr: float, warmup: int = 0, min_lr: float = 0.0, weight_decay: float = 0.01, clip: float = 1.0,
        eval_every: int = 0, save_every: int = 0, out_dir: str | None = None, resume: bool = True,
        progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train `model` in place for `steps` steps; returns the history {step, train: [[step, loss]],
    eval: [[step, loss]]}. next_batch(step) gives the batch of a step (deterministic, for resuming)."""
    opt = AdamW(model.params, lr=lr, weight_decay=weight_decay)
    state: dict[str, Any] = {"step": 0, "train": [], "eval": []}
    if out_dir and resume:
        state = load_checkpoint(out_dir, model, opt) or state
        if state["step"]:
            log(f"resuming from step {state['step']} ({out_dir})")
    bar = tqdm(range(state["step"], steps), initial=state["step"], total=steps, disable=not progress,
               desc="training", unit="step")
    for step in bar:
        batch = next_batch(step)
        start = time.perf_counter()
        loss, grads = value_and_grad(model, **batch)
        clip_grad_norm(grads, clip)
        opt.lr = cosine_schedule(step, lr, warmup, steps, min_lr)
        opt.step(grads)
        tokens_per_s = batch["input_ids"].size / (time.perf_counter() - start)
        state["train"].append([step + 1, float(loss)])
        state["step"] = step + 1
        bar.set_postfix(loss=f"{float(loss):.3f}", tok_s=f"{tokens_per_s:.0f}")
        last = step + 1 == steps
        if eval_batches and ((eval_every and (step + 1) % eval_every == 0) or last):
            held_out = evaluate(model, eval_batches)
            state["eval"].append([step + 1, held_out])
            bar.write(f"step {step + 1}: train loss {float(loss):.4f}, held-out loss {held_out:.4f} "
                      f"(perplexity {math.exp(min(held_out, 50)):.2f})")
        if out_dir and ((save_every and (step + 1) % save_every == 0) or last):
            save_checkpoint(out_dir, model, opt, state)
    bar.close()
    return state


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
