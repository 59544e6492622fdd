"""The kill loop: saves SIGKILLed at random instants leave exactly the old or the new checkpoint.

One helper process imports minibloom once, then for each round forks a child that saves the
next of three models (different configs, layouts and shard counts) over the directory, kills it
at a random instant of the save with SIGKILL, and loads the directory: it must be exactly the
model that was there before or the one being saved (config and every tensor), never a mix and
never an error, and loading must leave the directory as it found it (a save killed after its
commit is read in place; the next save finishes it). Rounds: 60 by default (about 10-20 s),
`MINIBLOOM_KILL_ROUNDS` or HYPOTHESIS_PROFILE=long (600) for more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.fuzz.fuzz_utils import PROFILE

ROUNDS = int(os.environ.get("MINIBLOOM_KILL_ROUNDS", 600 if PROFILE == "long" else 60))

SCRIPT = r"""
import json, os, random, signal, sys, time
import numpy as np
from minibloom import BloomConfig, BloomModel, BloomTokenizer
from minibloom.atomic import STAGING_PREFIX

target, rounds, tokenizer_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
# three models that differ in config (layers, width, labels), layout (single file / 3 / 9 shards)
configs = [BloomConfig(vocab_size=300, hidden_size=64, n_head=4, n_layer=2),
           BloomConfig(vocab_size=200, hidden_size=96, n_head=4, n_layer=3, num_labels=5),
           BloomConfig(vocab_size=400, hidden_size=32, n_head=2, n_layer=1)]
models = [BloomModel(c, seed=i) for i, c in enumerate(configs)]
shard = [None, "60KB", "25KB"]
tokenizers = [BloomTokenizer.from_pretrained(tokenizer_dir, padding_side=side) for side in ("right", "left")]

def save(k):
    models[k].save_pretrained(target, max_shard_size=shard[k])
    tokenizers[k % 2].save(target)

def which(directory):
    # (index of the model the directory holds exactly, or an error message; the tokenizer's side)
    loaded = BloomModel.from_pretrained(directory)
    tok = BloomTokenizer.from_pretrained(directory)
    for k, m in enumerate(models):
        if loaded.config.to_dict() == dict(m.config.to_dict(), architectures=["BloomModel"]) and all(
                np.array_equal(np.asarray(loaded.params[n]), np.asarray(v)) for n, v in m.params.items()):
            return k, tok.padding_side
    return "a mix of models", tok.padding_side

def tree(directory):
    # every name in the directory and in its staging directories, with each file's size and mtime
    out = {}
    for top, dirs, files in os.walk(directory):
        for name in dirs + files:
            st = os.lstat(os.path.join(top, name))
            out[os.path.relpath(os.path.join(top, name), directory)] = (st.st_size, st.st_mtime_ns)
    return out

# time one save, to spread the kills over all of it
start = time.perf_counter(); save(0); duration = time.perf_counter() - start
current, side, outcomes, interrupted = 0, "right", {"old": 0, "new": 0}, 0
rng = random.Random(int(sys.argv[4]))
for r in range(rounds):
    nxt = (current + 1) % 3
    pid = os.fork()
    if pid == 0:
        try:
            save(nxt)
        finally:
            os._exit(0)
    time.sleep(rng.uniform(0, 1.3 * duration))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    before = tree(target)
    got, got_side = which(target)  # the tokenizer is a second transaction, saved after the model
    if got not in (current, nxt) or got_side not in (side, ("right", "left")[nxt % 2]):
        print(json.dumps({"round": r, "error": f"expected model {current} or {nxt}, found {got} ({got_side})",
                          "files": sorted(os.listdir(target))}))
        sys.exit(1)
    if tree(target) != before:  # a read never writes: an interrupted save is read in place, not finished
        print(json.dumps({"round": r, "error": "loading changed the directory", "before": before,
                          "after": tree(target)}))
        sys.exit(1)
    interrupted += any(n.startswith(STAGING_PREFIX) and os.path.exists(os.path.join(target, n, "COMMIT"))
                       for n in before)
    outcomes["old" if got == current else "new"] += 1
    current, side = got, got_side
save((current + 1) % 3)  # a complete save cleans up whatever the kills left
left = [n for n in os.listdir(target) if n.startswith(STAGING_PREFIX) or n.endswith(".tmp")]
print(json.dumps({"outcomes": outcomes, "left_over": left, "save_seconds": duration, "interrupted": interrupted}))
"""


def test_saves_killed_at_random_instants_leave_exactly_the_old_or_the_new_checkpoint(tmp_path):
    from tests.tokenizer_utils import TOKENIZER_DIR

    seed = 0 if PROFILE == "ci" else int.from_bytes(os.urandom(4), "little")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "ckpt"), str(ROUNDS), TOKENIZER_DIR,
                           str(seed)], capture_output=True, text=True, timeout=600,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert proc.returncode == 0, f"seed {seed}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sum(report["outcomes"].values()) == ROUNDS
    # the kills landed both before and after the commit point, so both outcomes were exercised
    assert report["outcomes"]["old"] > 0 and report["outcomes"]["new"] > 0, report
    assert report["left_over"] == [], report
