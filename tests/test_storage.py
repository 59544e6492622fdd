"""Weight storage: storage="auto" keeps a checkpoint's dtype, conversion streams (peak RSS bound,
measured in a subprocess), and a converted tensor equals the whole-array conversion bit for bit."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from minibloom import BloomConfig, BloomForCausalLM
from minibloom import storage as storage_module
from minibloom.storage import BF16, bfloat16_bits, convert, from_float32

CONFIG = dict(vocab_size=30000, hidden_size=256, n_head=4, n_layer=2)  # a 30.7 MB float32 embedding

CHILD = """
import json, sys
import numpy as np
from minibloom import BloomForCausalLM
from minibloom.backends import resolve_backend

resolve_backend("auto")  # the default backend's import (Numba's LLVM, ~55 MB) is not the conversion's

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))

before = status("VmRSS:")
model = BloomForCausalLM.from_pretrained(sys.argv[1], storage=sys.argv[2])
print(json.dumps({"growth": status("VmHWM:") - before, "out": sum(p.nbytes for p in model.params.values())}))
"""


@pytest.fixture(scope="module")
def float32_checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("f32")
    BloomForCausalLM(BloomConfig(**CONFIG), seed=1).save_pretrained(directory)
    return directory


@pytest.mark.parametrize("storage", ["bfloat16", "float16"])
def test_converting_a_float32_checkpoint_peaks_at_the_output_plus_one_tensor(float32_checkpoint, storage):
    """Peak RSS growth of a fresh process loading and converting <= output bytes + the largest input
    tensor (the 30.7 MB embedding) + 8 MB of allocator slack. Converting the embedding in one go
    used to take several times its size in temporaries, and the read pages stayed resident."""
    run = subprocess.run([sys.executable, "-W", "ignore", "-c", CHILD, str(float32_checkpoint), storage],
                         capture_output=True, text=True, check=True)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    largest = CONFIG["vocab_size"] * CONFIG["hidden_size"] * 4
    assert result["growth"] <= result["out"] + largest + 8 * 2**20, result


def test_auto_keeps_a_bfloat16_checkpoint_memory_mapped_and_converting_says_so(float32_checkpoint, tmp_path):
    BloomForCausalLM.from_pretrained(float32_checkpoint).save_pretrained(tmp_path, dtype="bfloat16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto converts nothing, so it says nothing
        model = BloomForCausalLM.from_pretrained(tmp_path)
    table = model.params["word_embeddings.weight"]
    assert model.storage == "bfloat16" and table.dtype == BF16
    while not isinstance(table, np.memmap):
        table = table.base
    with pytest.warns(UserWarning, match="converting the bfloat16 weights to float32 while loading"):
        assert BloomForCausalLM.from_pretrained(tmp_path, storage="float32").storage == "float32"
    assert BloomForCausalLM(BloomConfig(**CONFIG)).storage == "float32"  # random weights: auto is float32


@pytest.mark.parametrize("dtype", [np.dtype(np.float16), BF16, np.dtype(np.float32)])
def test_block_by_block_conversion_equals_the_whole_array_conversion(monkeypatch, dtype):
    monkeypatch.setattr(storage_module, "CONVERT_BLOCK", 7)
    x = np.random.default_rng(0).standard_normal((13, 11)).astype(np.float32) * 100
    x[0, :4] = [np.nan, np.inf, -np.inf, 0.0]
    got = convert(x, dtype)
    expected = from_float32(x, dtype) if dtype != np.float32 else x
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_array_equal(got.view(np.uint8), np.ascontiguousarray(expected).view(np.uint8))
    if dtype == BF16:
        np.testing.assert_array_equal(got.view(np.uint16), bfloat16_bits(x))


def _file_digest(directory) -> dict[str, str]:
    import hashlib
    from pathlib import Path
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(directory).iterdir()) if p.is_file()}


@pytest.mark.parametrize("source_dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("storage", ["float32", "float16", "bfloat16", "int8"])
def test_a_derived_model_leaves_its_source_arrays_and_file_as_they_were(float32_checkpoint, tmp_path,
                                                                         source_dtype, storage):
    """Building a model from another's (trained, memory-mapped) parameters in any storage changes
    neither the source's arrays nor its checkpoint file. Converting used to drop the source's pages
    with MADV_DONTNEED, which on a copy-on-write map silently reverted trained weights to the file's."""
    directory = float32_checkpoint
    if source_dtype != "float32":
        directory = tmp_path / "src"
        BloomForCausalLM.from_pretrained(float32_checkpoint).save_pretrained(directory, dtype=source_dtype)
    files = _file_digest(directory)
    lm = BloomForCausalLM.from_pretrained(directory)
    for name, value in lm.params.items():  # "train" in place, on the copy-on-write map
        if value.ndim == 2:
            value.view(np.uint8)[::3] ^= 1  # flip a low bit in every third row
    trained = {name: np.array(value, copy=True) for name, value in lm.params.items()}
    derived = BloomForCausalLM(lm.config, lm.params, storage=storage)
    derived(np.array([[1, 2, 3]]))  # and using it
    for name, value in lm.params.items():
        np.testing.assert_array_equal(np.asarray(value).view(np.uint8), trained[name].view(np.uint8), err_msg=name)
    assert _file_digest(directory) == files
