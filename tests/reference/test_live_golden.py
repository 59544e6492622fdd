"""A golden file written by minibloom matches transformers' own intermediates, captured with hooks."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from minibloom import BloomForCausalLM
from minibloom import golden
from tests.reference.reference_utils import hooked_intermediates, torch_bloom, transformers


@settings(max_examples=10)
@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 8), st.sampled_from([(32, 4), (48, 6), (24, 3)]))
def test_golden_file_matches_transformers_hooks(tmp_path_factory, seed, B, T, sizes):
    hidden, heads = sizes
    theirs = torch_bloom(transformers.BloomForCausalLM, seed, vocab_size=50, hidden_size=hidden, n_head=heads,
                         n_layer=2)
    directory = tmp_path_factory.mktemp("ckpt")
    theirs.save_pretrained(directory)
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 50, size=(B, T))
    mask = np.ones((B, T), np.int64)
    mask[0, :rng.integers(0, T)] = 0  # left padding on the first row
    path = directory / "golden.safetensors"
    golden.dump(BloomForCausalLM.from_pretrained(directory), path, ids, mask)
    ours = golden.load(path)
    hooked = hooked_intermediates(theirs, ids, mask)
    names = [n for n in ours.order if n in hooked]
    assert len(names) == len(ours.order) - 2 - 2  # all but the inputs and the two layers' scores
    expected = golden.GoldenFile({n: ours.tensors[n] for n in names}, {**ours.metadata, "order": json.dumps(names)})
    report = golden.compare(expected, hooked, atol=1e-5, rtol=1e-5)
    assert report.ok, golden.format_report(report)
