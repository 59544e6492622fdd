"""Saving is atomic: a writer killed half-way leaves the old file whole (checkpoints, tokenizer, golden)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from minibloom import BloomConfig, BloomModel, BloomTokenizer
from minibloom.atomic import atomic_write_bytes
from tests.tokenizer_utils import TOKENIZER_DIR

BIG = BloomConfig(vocab_size=60_000, hidden_size=512, n_head=8, n_layer=1)  # ~140 MB of float32

WRITER = """
import sys
from minibloom import BloomConfig, BloomModel
config = BloomConfig(vocab_size=60_000, hidden_size=512, n_head=8, n_layer=1)
model = BloomModel(config, seed=int(sys.argv[2]))
print("ready", flush=True)
while True:
    model.save_pretrained(sys.argv[1])
"""


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.5])
def test_a_checkpoint_writer_killed_half_way_leaves_a_whole_checkpoint(tmp_path, delay):
    target = tmp_path / "ckpt"
    BloomModel(BIG, seed=1).save_pretrained(target)
    old = BloomModel.from_pretrained(target).params["word_embeddings.weight"][:3].copy()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), "2"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    loaded = BloomModel.from_pretrained(target).params["word_embeddings.weight"][:3]  # loads: never half a file
    new = BloomModel(BIG, seed=2).params["word_embeddings.weight"][:3]
    assert np.array_equal(loaded, old) or np.array_equal(loaded, new)


def test_a_failing_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"old contents")

    class Boom(Exception):
        pass

    def explode(*args, **kwargs):
        raise Boom()

    monkeypatch.setattr(os, "fsync", explode)  # fail after the bytes went out, before the rename
    with pytest.raises(Boom):
        atomic_write_bytes(target, b"new contents that never land")
    assert target.read_bytes() == b"old contents" and os.listdir(tmp_path) == ["file.bin"]


def test_tokenizer_and_golden_saves_are_atomic(tmp_path, monkeypatch):
    from minibloom import golden

    tok = BloomTokenizer.from_pretrained(TOKENIZER_DIR)
    tok.save(tmp_path)
    path = tmp_path / "g.safetensors"
    golden.dump(BloomModel(BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1)), path, np.array([[1, 2]]))
    before = {p: (tmp_path / p).read_bytes() for p in os.listdir(tmp_path)}
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(Exception):
        tok.save(tmp_path)
    with pytest.raises(Exception):
        golden.dump(BloomModel(BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1)), path,
                    np.array([[3, 4]]))
    assert {p: (tmp_path / p).read_bytes() for p in os.listdir(tmp_path)} == before


def test_the_next_save_removes_what_killed_saves_left(tmp_path):
    from minibloom.atomic import STAGING_MARKER, STAGING_PREFIX

    small = BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1)
    BloomModel(small, seed=1).save_pretrained(tmp_path)
    ours = tmp_path / (STAGING_PREFIX + "abcdefgh")  # a save killed before its commit: marked as ours
    ours.mkdir()
    (ours / STAGING_MARKER).write_bytes(b"")
    (ours / "model.safetensors").write_bytes(b"x" * 1000)
    (tmp_path / (STAGING_PREFIX + "empty123")).mkdir()  # killed between creating it and marking it
    (tmp_path / ".model.safetensors.minibloom-abcd_fgh.tmp").write_bytes(b"x" * 1000)  # a killed writer's
    (tmp_path / ".draft.md.abcd1234.tmp").write_bytes(b"mine")  # another program's temporary: kept
    theirs = tmp_path / (STAGING_PREFIX + "notours1")  # not marked: someone else's, never deleted
    theirs.mkdir()
    (theirs / "notes.txt").write_bytes(b"keep")
    BloomModel(small, seed=2).save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted([STAGING_PREFIX + "notours1", ".draft.md.abcd1234.tmp",
                                                   "config.json", "model.safetensors"])
    assert (theirs / "notes.txt").read_bytes() == b"keep"


def test_a_save_killed_after_its_commit_is_read_as_the_new_one_and_finished_by_the_next_save(tmp_path, monkeypatch):
    import minibloom.atomic as atomic

    small = BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1)
    BloomModel(small, seed=1).save_pretrained(tmp_path, max_shard_size="200B")
    new = BloomModel(BloomConfig(vocab_size=24, hidden_size=8, n_head=2, n_layer=2), seed=2)
    renames = []

    def replace_then_die(src, dst):  # install two files, then "die" (as a kill would)
        if os.path.basename(os.path.dirname(src)).startswith(atomic.STAGING_PREFIX) and \
                os.path.dirname(dst) != os.path.dirname(src):  # out of staging: the apply step
            if len(renames) == 2:
                raise KeyboardInterrupt
            renames.append(dst)
        real_replace(src, dst)

    real_replace = os.replace
    monkeypatch.setattr(atomic.os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        new.save_pretrained(tmp_path, max_shard_size="300B")
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    listing = sorted(os.listdir(tmp_path))
    assert any(n.startswith(atomic.STAGING_PREFIX) for n in listing)  # half applied
    loaded = BloomModel.from_pretrained(tmp_path)  # reads the committed save where it lies, moving nothing
    assert loaded.config.n_layer == 2 and all(np.array_equal(loaded.params[k], v) for k, v in new.params.items())
    assert sorted(os.listdir(tmp_path)) == listing
    new.save_pretrained(tmp_path)  # the next save finishes it (and the old shards go)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("save", ["model", "tokenizer", "config"])
def test_a_nul_in_a_save_path_is_a_checkpoint_error_naming_it(tmp_path, save):
    from minibloom import CheckpointError

    target = str(tmp_path / "a\x00b")
    writer = {"model": BloomModel(BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1)).save_pretrained,
              "tokenizer": BloomTokenizer.from_pretrained(TOKENIZER_DIR).save,
              "config": BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1).save_pretrained}[save]
    with pytest.raises(CheckpointError, match=re.escape(repr(target))):
        writer(target)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("where", ["a file", "under a file", "read-only"])
def test_save_destinations_that_cannot_hold_a_checkpoint_are_checkpoint_errors(tmp_path, where):
    from minibloom import CheckpointError

    model = BloomModel(BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1))
    (tmp_path / "f").write_text("x")
    target = {"a file": tmp_path / "f", "under a file": tmp_path / "f" / "ckpt", "read-only": tmp_path / "ro"}[where]
    if where == "read-only":
        target.mkdir()
        target.chmod(0o500)
        if os.access(target, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
    with pytest.raises(CheckpointError, match=str(target)):
        model.save_pretrained(target)
    with pytest.raises(CheckpointError, match=str(target)):
        BloomTokenizer.from_pretrained(TOKENIZER_DIR).save(target)


def test_a_concurrent_sweep_never_removes_a_live_temporary(tmp_path):
    """Another writer's sweep of stale temporaries runs while this one creates, locks and renames
    its own, over and over: it must never delete a temporary that is being written."""
    import threading

    from minibloom.atomic import atomic_write_bytes, remove_stale_temporaries

    target, stop, errors = tmp_path / "config.json", threading.Event(), []

    def sweep():
        while not stop.is_set():
            remove_stale_temporaries(str(tmp_path), "config.json")

    sweeper = threading.Thread(target=sweep)
    sweeper.start()
    try:
        for i in range(1500):
            try:
                atomic_write_bytes(target, b"%d" % i)
            except OSError as e:  # the temporary vanished under the writer
                errors.append(e)
    finally:
        stop.set()
        sweeper.join()
    assert not errors, f"{len(errors)} of 1500 writes lost their temporary: {errors[0]}"
    assert target.read_bytes() == b"1499"


def test_a_fresh_empty_temporary_is_left_until_it_is_old(tmp_path):
    """The instant between mkstemp and the writer's lock: an unlocked, empty, new temporary may
    belong to a live writer, so the sweep keeps it; an old one is removed."""
    from minibloom.atomic import STALE_EMPTY_SECONDS, remove_stale_temporaries

    tmp = tmp_path / ".config.json.minibloom-abcd1234.tmp"
    tmp.write_bytes(b"")
    remove_stale_temporaries(str(tmp_path))
    assert tmp.exists()
    old = time.time() - STALE_EMPTY_SECONDS - 1
    os.utime(tmp, (old, old))
    remove_stale_temporaries(str(tmp_path))
    assert not tmp.exists()
