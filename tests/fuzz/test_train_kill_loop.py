"""The training kill loop: `minibloom train` SIGKILLed at random instants (train, resume, --no-resume)
always leaves OUT as one run's complete state.

One helper process imports minibloom once, runs two uninterrupted reference runs (seeds 0 and 1),
then for each round forks a child that runs `minibloom train OUT` (resuming, or `--no-resume` with
a random seed; a checkpoint every step) and SIGKILLs it at a random instant. After each kill:

- `OUT/latest`, if present, names a checkpoint directory holding every file (marker, config,
  weights, optimizer, trainer_state.json) with one run id in the marker and trainer_state.json,
  the step in its name, trainer_state.json and the optimizer all equal, and the model loads;
- its loss history is a prefix of one reference run's, and its weights are that run's at that step
  (their loss on the next step's batch is the reference loss of that step, bit for bit; at the last
  step they equal the reference model): no mix of two runs;
- a foreign `checkpoint-500` directory placed in OUT before the first round is byte-identical.

At the end a run left alone finishes (exit 0) and leaves exactly one own checkpoint. Rounds: 15 by
default (about 15-30 s), `MINIBLOOM_TRAIN_KILL_ROUNDS` or HYPOTHESIS_PROFILE=long (150) for more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.fuzz.fuzz_utils import PROFILE

ROUNDS = int(os.environ.get("MINIBLOOM_TRAIN_KILL_ROUNDS", 150 if PROFILE == "long" else 15))

SCRIPT = r"""
import json, os, random, shutil, signal, sys, time
import numpy as np
import minibloom
from minibloom.cli import main
from minibloom.training.data import window_batch
from minibloom.training.loop import MARKER, OPTIMIZER, STATE, marker_of, own_checkpoints, read_latest
from minibloom.safetensors_io import load_file

work, rounds, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
source, text, out = os.path.join(work, "source"), os.path.join(work, "text.txt"), os.path.join(work, "out")
config = minibloom.BloomConfig(vocab_size=4096, hidden_size=16, n_head=2, n_layer=1, pad_token_id=3)
minibloom.BloomForCausalLM(config, seed=0).save_pretrained(source)
for name in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(os.path.join(minibloom.EMBEDDED_CHECKPOINT, name), source)
STEPS = 6
ARGS = ["--text", text, "--checkpoint", source, "--batch-size", "2", "--seq-len", "16", "--backend", "numpy",
        "--quiet", "--warmup", "1", "--steps", str(STEPS), "--save-every", "1", "--eval-fraction", "0.2"]

def quiet_main(argv):
    null = os.open(os.path.join(work, "log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    saved = os.dup(1), os.dup(2)
    os.dup2(null, 1); os.dup2(null, 2)
    try:
        return main(argv)
    finally:
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(saved[0], 1); os.dup2(saved[1], 2)

# the references: each seed's uninterrupted run (history and final weights)
reference = {}
for s in (0, 1, 2):  # run 2 (seed 0 again) times a warm run, to spread the kills over all of one
    ref = os.path.join(work, f"ref{s}")
    start = time.perf_counter()
    assert quiet_main(["train", ref, *ARGS, "--seed", str(s % 2)]) == 0
    duration = time.perf_counter() - start
    reference[s] = (json.load(open(os.path.join(ref, "history.json")))["train"],
                    minibloom.BloomForCausalLM.from_pretrained(ref).params)
del reference[2]
tok = minibloom.BloomTokenizer.from_pretrained(source)
stream = np.asarray(tok.encode(open(text, encoding="utf-8").read()), np.int64)
train_stream = stream[:int(stream.size * (1 - 0.2))]

def fail(r, message):
    print(json.dumps({"round": r, "error": message, "files": sorted(os.listdir(out)),
                      "log": open(os.path.join(work, "log")).read()[-500:]}))
    sys.exit(1)

def check(r):
    # the run OUT/latest names, or None; any inconsistency fails the loop
    name = read_latest(out)
    if name is None:
        return None
    path = os.path.join(out, name)
    marker = marker_of(out, name)
    if marker is None or not all(os.path.isfile(os.path.join(path, f)) for f in (STATE, OPTIMIZER, "config.json",
                                                                                 "model.safetensors")):
        fail(r, f"latest names an incomplete checkpoint {name}: {sorted(os.listdir(path))}")
    state = json.load(open(os.path.join(path, STATE)))
    step = state["step"]
    if state["run_id"] != marker["run_id"] or name != f"checkpoint-{step:06d}":
        fail(r, f"{name}: marker run {marker['run_id']}, trainer_state run {state['run_id']} step {step}")
    if load_file(os.path.join(path, OPTIMIZER))["step"].tolist() != [step]:
        fail(r, f"{name}: the optimizer's step is not {step}")
    runs = [s for s, (history, _) in reference.items() if state["train"] == history[:step]]
    if not runs:
        fail(r, f"{name}: its loss history is no reference run's prefix: {state['train']}")
    s = runs[0]
    model = minibloom.BloomForCausalLM.from_pretrained(path)
    if step == STEPS:
        same = all(np.array_equal(model.params[n], p) for n, p in reference[s][1].items())
    else:
        batch = window_batch(train_stream, 2, 16, np.random.default_rng([s, step]))
        same = float(model(**batch).loss) == reference[s][0][step][1]
    if not same:
        fail(r, f"{name}: its weights are not run {s}'s at step {step}: a mix of two runs")
    return s, step

os.makedirs(os.path.join(out, "checkpoint-500"))
with open(os.path.join(out, "checkpoint-500", "model.safetensors"), "wb") as f:
    f.write(b"not minibloom's")
rng = random.Random(seed)
current, outcomes = None, {"killed": 0, "finished": 0, "no_resume": 0}
for r in range(rounds):
    # resume an unfinished run, or start a new one over it (always over a finished one)
    no_resume = current is None or current[1] == STEPS or rng.random() < 0.3
    run_seed = rng.choice((0, 1)) if no_resume else current[0]
    argv = ["train", out, *ARGS, "--seed", str(run_seed)] + (["--no-resume"] if no_resume else [])
    pid = os.fork()
    if pid == 0:
        code = 3  # an exception
        try:
            code = 0 if quiet_main(argv) == 0 else 4
        finally:
            os._exit(code)
    time.sleep(rng.uniform(0, 1.2 * duration))
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) != 0:
        fail(r, f"train {argv[2:]} exited {os.WEXITSTATUS(status)} before it was killed")
    outcomes["finished" if os.WIFEXITED(status) else "killed"] += 1
    outcomes["no_resume"] += no_resume
    current = check(r)
    if open(os.path.join(out, "checkpoint-500", "model.safetensors"), "rb").read() != b"not minibloom's":
        fail(r, "the foreign checkpoint-500 changed")
if quiet_main(["train", out, *ARGS, "--seed", str(current[0] if current else 0)] + ([] if current else ["--no-resume"])) != 0:
    fail(rounds, "the run left alone failed")
current = check(rounds)
own = own_checkpoints(out)
print(json.dumps({"outcomes": outcomes, "run_seconds": duration, "own": sorted(own), "latest": read_latest(out),
                  "foreign_kept": os.path.isdir(os.path.join(out, "checkpoint-500"))}))
"""


def test_training_killed_at_random_instants_leaves_one_runs_complete_state(tmp_path):
    seed = 0 if PROFILE == "ci" else int.from_bytes(os.urandom(4), "little")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "tests", "data", "heldout", "tempest.txt"), encoding="utf-8") as f:
        (tmp_path / "text.txt").write_text(f.read()[:3000], encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), str(ROUNDS), str(seed)],
                          capture_output=True, text=True, timeout=900, cwd=root)
    assert proc.returncode == 0, f"seed {seed}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["outcomes"]["killed"] + report["outcomes"]["finished"] == ROUNDS
    assert report["outcomes"]["killed"] > 0 and report["outcomes"]["no_resume"] > 0, report
    assert report["own"] == [report["latest"]] == ["checkpoint-000006"], report
    assert report["foreign_kept"], report
