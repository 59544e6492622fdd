"""Check before work: every hostile file fails fast, small and typed.

Each case runs in one helper process whose address space is capped (RLIMIT_AS) at what it has
mapped after the imports plus 100 MB, and is timed: it must raise the expected `MinibloomError`
subclass (which names the file) in under 1 s. Without the checks these cases hang (a FIFO), read
until MemoryError (/dev/zero), build tables of 10**9 layers or labels, or overflow the stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import json, os, shutil, sys, time, traceback
import numpy as np
import minibloom
from minibloom import (BloomConfig, BloomForSequenceClassification, BloomModel, BloomTokenizer, CheckpointError,
                       ConfigError, MinibloomError, TokenizerFileError, WeightsMismatchError)
from minibloom.cli import main
from minibloom.errors import MemoryBudgetError, SafetensorsFormatError
from tests.fuzz.isolated import cap_address_space, in_forked_children

root, tokenizer_dir = sys.argv[1], sys.argv[2]
tiny = BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1)
good = os.path.join(root, "good")
BloomModel(tiny).save_pretrained(good)
for fname in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(os.path.join(tokenizer_dir, fname), good)
tokenizer_json = json.load(open(os.path.join(good, "tokenizer.json")))
BloomTokenizer.from_pretrained(good)("warm up every code path once")
BloomForSequenceClassification(tiny)

def variant(name, edit=None, replace=None):
    d = os.path.join(root, name)
    shutil.copytree(good, d)
    if edit:
        data = json.load(open(os.path.join(d, "config.json")))
        data.update(edit)
        json.dump(data, open(os.path.join(d, "config.json"), "w"))
    for fname, how in (replace or {}).items():
        p = os.path.join(d, fname)
        if os.path.lexists(p):
            os.remove(p)
        if how == "delete":
            continue
        if how == "fifo":
            os.mkfifo(p)
        elif how == "zero":
            os.symlink("/dev/zero", p)
        else:
            open(p, "wb").write(how)
    return d

deep = b"[" * 100_000 + b"]" * 100_000
cases = [
    ("n_layer 10**9", lambda: BloomModel.from_pretrained(variant("layers", {"n_layer": 10**9})), WeightsMismatchError),
    ("n_layer 10**9 (info)", lambda: main(["info", variant("layers_info", {"n_layer": 10**9}), "--json"]), None),
    ("hidden_size 2**30", lambda: BloomModel.from_pretrained(variant("hidden", {"hidden_size": 2**30})), WeightsMismatchError),
    ("vocab_size 2**31-1", lambda: BloomModel.from_pretrained(variant("vocab", {"vocab_size": 2**31 - 1})), WeightsMismatchError),
    ("num_labels 10**9", lambda: BloomForSequenceClassification.from_pretrained(variant("labels", {"num_labels": 10**9, "id2label": None, "label2id": None})), ConfigError),
    ("num_labels 10**5 (works)", lambda: BloomForSequenceClassification.from_pretrained(
        variant("labels2", {"num_labels": 10**5})), type(None)),
    ("random init 10**6 layers", lambda: BloomModel(BloomConfig(hidden_size=4096, n_head=32, n_layer=10**6)), MemoryBudgetError),
    ("config.json FIFO", lambda: BloomModel.from_pretrained(variant("cfifo", replace={"config.json": "fifo"})), CheckpointError),
    ("config.json -> /dev/zero", lambda: BloomModel.from_pretrained(variant("czero", replace={"config.json": "zero"})), CheckpointError),
    ("weights FIFO", lambda: BloomModel.from_pretrained(variant("wfifo", replace={"model.safetensors": "fifo"})), CheckpointError),
    ("weights -> /dev/zero", lambda: BloomModel.from_pretrained(variant("wzero", replace={"model.safetensors": "zero"})), CheckpointError),
    ("tokenizer.json FIFO", lambda: BloomTokenizer.from_pretrained(variant("tfifo", replace={"tokenizer.json": "fifo"})), TokenizerFileError),
    ("tokenizer.json -> /dev/zero", lambda: BloomTokenizer.from_file(variant("tzero", replace={"tokenizer.json": "zero"}) + "/tokenizer.json"), TokenizerFileError),
    ("tokenizer_config FIFO", lambda: BloomTokenizer.from_pretrained(variant("tcfifo", replace={"tokenizer_config.json": "fifo"})), TokenizerFileError),
    ("config.json nesting bomb", lambda: BloomConfig.from_pretrained(variant("bomb", replace={"config.json": deep})), CheckpointError),
    ("config.json 5000-digit int", lambda: BloomConfig.from_pretrained(variant("bigint", replace={"config.json": b'{"n_layer": ' + b"9" * 5000 + b"}"})), CheckpointError),
    ("tokenizer.json nesting bomb", lambda: BloomTokenizer.from_file(variant("tbomb", replace={"tokenizer.json": deep}) + "/tokenizer.json"), TokenizerFileError),
    ("shard index nesting bomb", lambda: BloomModel.from_pretrained(variant("ibomb", replace={"model.safetensors": "delete", "model.safetensors.index.json": deep})), CheckpointError),
    ("safetensors header nesting bomb", lambda: BloomModel.from_pretrained(variant("hbomb", replace={
        "model.safetensors": len(deep).to_bytes(8, "little") + deep})), SafetensorsFormatError),
    ("added token id 2**40", lambda: BloomTokenizer(dict(tokenizer_json, added_tokens=[
        {"id": 2**40, "content": "<x>", "special": True}])), TokenizerFileError),
    ("empty vocab", lambda: BloomTokenizer(dict(tokenizer_json, added_tokens=[], model=dict(
        tokenizer_json["model"], vocab={}, merges=[]))), TokenizerFileError),
]
def run_case(run, expected):
    # in a forked child: cap the address space at what is mapped now + 100 MB, time the case
    cap_address_space()
    start = time.perf_counter()
    try:
        run()
        outcome = type(None)
    except BaseException as e:
        outcome = type(e)
    seconds = time.perf_counter() - start
    if expected is None:  # the CLI: must return, not raise
        ok = outcome is type(None)
    else:
        ok = issubclass(outcome, expected) and (outcome is type(None) or issubclass(outcome, MinibloomError))
    return None if ok and seconds <= 1.0 else f"{outcome.__name__} in {seconds:.2f} s"

print(json.dumps(in_forked_children(cases, run_case)))
"""


def test_hostile_files_fail_typed_in_under_a_second_and_100_mb(tmp_path):
    from tests.tokenizer_utils import TOKENIZER_DIR

    if not hasattr(os, "mkfifo") or not os.path.exists("/proc/self/statm"):
        pytest.skip("needs Linux (/proc, mkfifo)")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), TOKENIZER_DIR], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    failures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert failures == [], failures
