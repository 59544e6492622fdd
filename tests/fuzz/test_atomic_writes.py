"""Saving is atomic: a writer killed half-way leaves the old file whole (checkpoints, tokenizer, golden)."""

from __future__ import annotations

import os
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
