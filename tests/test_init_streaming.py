"""`minibloom init` writes its random weights tensor by tensor (issue 24: `init --like bloom-560m`
peaked at 5.6 GB of RAM for a 2.24 GB file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from minibloom import BloomConfig, BloomModel
from minibloom.weights import SAFE_WEIGHTS_NAME

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A mid-size shape: a 120 MB float32 embedding, 4 layers (~150 MB in all): quick, yet far above
# the allocator's slack, so holding the whole model (or one float64 copy of the embedding) shows.
SIZES = dict(vocab_size=30000, hidden_size=1024, n_layer=4, n_head=16)
CHILD = """
import json, sys
from minibloom.cli import main

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))

import numpy, minibloom.model, minibloom.weights, minibloom.safetensors_io  # imports are not the init
before = status("VmRSS:")
try:
    main(sys.argv[1:])
except SystemExit as e:
    assert not e.code, e.code
print(json.dumps({"growth": status("VmHWM:") - before}))
"""


def init_args(directory, dtype: str) -> list[str]:
    return ["init", str(directory), "--vocab-size", "30000", "--hidden-size", "1024", "--n-layer", "4",
            "--n-head", "16", "--seed", "5", "--dtype", dtype]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_init_peaks_well_below_the_model_and_writes_what_the_model_saves(tmp_path, dtype):
    """Peak RSS growth <= 64 MB, a fraction of one float32 embedding (123 MB) and of the file
    (76-153 MB); the file is byte for byte what BloomModel(config, seed).save_pretrained writes."""
    out = subprocess.run([sys.executable, "-c", CHILD, *init_args(tmp_path / "streamed", dtype)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 0, out.stderr
    growth = json.loads(out.stdout.strip().splitlines()[-1])["growth"]
    assert growth <= 64 * 2**20, growth
    BloomModel(BloomConfig(**SIZES), seed=5).save_pretrained(tmp_path / "whole", dtype=dtype)
    with open(tmp_path / "streamed" / SAFE_WEIGHTS_NAME, "rb") as a, open(tmp_path / "whole" / SAFE_WEIGHTS_NAME, "rb") as b:
        assert a.read() == b.read()
    with open(tmp_path / "streamed" / "config.json") as a, open(tmp_path / "whole" / "config.json") as b:
        assert json.load(a) == json.load(b)
