"""Golden files for porters: the names are the contract, compare finds the first divergent op."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from minibloom import BloomForCausalLM, BloomForSequenceClassification, BloomModel, CheckpointError
from minibloom import golden
from minibloom.safetensors_io import save_file
from tests.conftest import HF_EXPECTED_DIR

CASE = os.path.join(HF_EXPECTED_DIR, "heads12_prefixed")
IDS = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]])
MASK = np.array([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "golden.md")


@pytest.fixture(scope="module")
def dumped(tmp_path_factory):
    path = tmp_path_factory.mktemp("golden") / "g.safetensors"
    golden.dump(BloomForCausalLM.from_pretrained(CASE), path, IDS, MASK)
    return golden.load(path)


def test_every_documented_name_is_recorded_with_its_shape(dumped):
    config = BloomForCausalLM.from_pretrained(CASE).config
    B, T, H, N = 2, 5, config.hidden_size, config.n_head
    contract = open(DOCS).read().split("## The names (the contract)")[1].split("\n## ")[0]  # the forward's table
    documented = re.findall(r"^\| `([^`]+)` \| \[([^\]]+)\]", contract, flags=re.M)
    sizes = {"B": B, "T": T, "S": T, "H": H, "3H": 3 * H, "4H": 4 * H, "N": N, "1": 1, "V": config.vocab_size,
             "D": H // N}
    recorded = dumped.order
    checked = 0
    for name, shape in documented:
        for i in range(config.n_layer) if "{i}" in name else [None]:
            concrete = name.replace("{i}", str(i))
            if concrete in ("start_logits", "last_hidden_state"):
                continue  # not outputs of a causal LM
            assert concrete in recorded, concrete
            assert dumped.tensors[concrete].shape == tuple(sizes[d.strip()] for d in shape.split(",")), concrete
            checked += 1
    assert checked == len(recorded)  # and nothing recorded is undocumented
    assert dumped.metadata["config_sha256"] == golden.config_sha256(config)


def test_records_equal_the_model_outputs(dumped):
    model = BloomForCausalLM.from_pretrained(CASE)
    out = model(IDS, attention_mask=MASK, output_hidden_states=True, output_attentions=True)
    np.testing.assert_array_equal(dumped.tensors["logits"], out.logits)
    np.testing.assert_array_equal(dumped.tensors["h.1.self_attention.probs"], out.attentions[1])
    np.testing.assert_array_equal(dumped.tensors["h.0.output"], out.hidden_states[1])
    scores = dumped.tensors["h.0.self_attention.scores"]  # softmax of the scores is the probs
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    np.testing.assert_allclose(probs / probs.sum(-1, keepdims=True), dumped.tensors["h.0.self_attention.probs"],
                               atol=1e-6)


def test_numba_live_run_passes(dumped):
    report = golden.compare(dumped, golden.live_run(dumped, CASE, backend="numba"))
    assert report.ok, golden.format_report(report)


@pytest.mark.parametrize("name", ["h.1.mlp.gelu", "h.0.self_attention.scores", "embeddings_layernorm"])
def test_a_perturbed_op_is_named_as_the_first_divergence_at_its_worst_element(dumped, name):
    bad = dict(dumped.tensors)
    x = bad[name]
    finite = np.where(np.abs(x) < 1e30, np.abs(x), 0)  # masked scores (float32 min) stay as they are
    bad[name] = np.where(np.abs(x) < 1e30, x * np.float32(1.001), x)
    report = golden.compare(dumped, bad)
    first = report.first_divergence
    assert first is not None and first.name == name
    worst = np.unravel_index(int(np.argmax(finite)), x.shape)  # 0.1 % of |x|: the largest |x| is worst
    assert tuple(first.position.values()) == tuple(int(i) for i in worst)
    assert list(first.position)[:2] == ["batch", "head" if x.ndim == 4 else "token"]
    assert all(r.ok for r in report.rows if r.name != name)
    assert "FAIL: first divergence at " + name in golden.format_report(report)


def test_shape_mismatch_missing_tensor_and_nan(dumped):
    bad = dict(dumped.tensors)
    bad["h.0.self_attention.qkv"] = bad["h.0.self_attention.qkv"][:, :-1]
    del bad["ln_f"]
    bad["logits"] = bad["logits"].copy()
    bad["logits"][0, 0, 0] = np.nan
    rows = {r.name: r for r in golden.compare(dumped, bad).rows}
    assert not rows["h.0.self_attention.qkv"].ok and "shape" in rows["h.0.self_attention.qkv"].note
    assert not rows["ln_f"].ok and rows["ln_f"].note == "missing"
    assert not rows["logits"].ok and rows["logits"].position == {"batch": 0, "token": 0, "vocab": 0}
    assert golden.compare(dumped, dict(dumped.tensors)).ok  # NaN-free identical copy passes


def test_bare_model_and_classification_heads_record_their_outputs(tmp_path):
    base = golden.dump(BloomModel.from_pretrained(os.path.join(HF_EXPECTED_DIR, "heads8")), tmp_path / "a", IDS[:, :3] % 64)
    assert "last_hidden_state" in base and "logits" not in base
    cls = BloomForSequenceClassification.from_pretrained(os.path.join(HF_EXPECTED_DIR, "seq_cls_single_label"))
    g = golden.dump(cls, tmp_path / "b", IDS % cls.config.vocab_size)
    assert g["logits"].shape == (2, cls.config.num_labels)
    assert golden.load(tmp_path / "b").axes["logits"] == ["batch", "label"]


def test_files_that_are_not_golden_files_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no such golden file"):
        golden.load(tmp_path / "missing.safetensors")
    save_file({"x": np.zeros(2, np.float32)}, tmp_path / "plain.safetensors")
    with pytest.raises(CheckpointError, match="none of the documented golden names"):
        golden.load(tmp_path / "plain.safetensors")


def test_equal_infinities_pass_and_nan_passes_only_where_the_golden_has_nan(dumped):
    """Fail closed on values: +inf == +inf and -inf == -inf pass (inf - inf is NaN, which was a failure);
    inf vs -inf, inf vs a number, NaN vs a number (either side) fail; NaN == NaN passes only because
    the golden holds NaN at that position."""
    special = dumped.tensors["logits"].copy()
    special[0, 0, :3] = [np.inf, -np.inf, np.nan]
    expected = golden.GoldenFile(dict(dumped.tensors, logits=special), dumped.metadata)
    for options in ({}, {"atol": 0, "rtol": 0}, {"atol": 1e-3, "rtol": 1e-3}):
        report = golden.compare(expected, expected, **options)
        assert report.ok, golden.format_report(report, failures_only=True)
    for k, value in ((0, -np.inf), (0, 1.0), (1, np.inf), (1, 0.0), (0, np.nan), (2, 0.0), (3, np.nan),
                     (3, np.inf)):
        bad = special.copy()
        bad[0, 0, k] = value
        report = golden.compare(expected, dict(dumped.tensors, logits=bad), atol=1e-3, rtol=1e-3)
        first = report.first_divergence
        assert first is not None and first.name == "logits", (k, value)
        assert first.position == {"batch": 0, "token": 0, "vocab": k}, (k, value)


def _zip(path, members: dict) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        for name, data in members:
            z.writestr(name, data)


def _npy(array) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def test_duplicate_names_are_refused_naming_them(dumped, tmp_path):
    import warnings

    logits = _npy(dumped.tensors["logits"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate it is asked to write
        _zip(tmp_path / "twice.npz", [("logits.npy", logits), ("logits.npy", _npy(dumped.tensors["logits"] + 1))])
    _zip(tmp_path / "aliases.npz", [("logits", logits), ("logits.npy", logits)])  # both are "logits" to np.load
    for path in (tmp_path / "twice.npz", tmp_path / "aliases.npz"):
        with pytest.raises(CheckpointError, match=r"'logits'.*(twice|duplicate)"):
            golden.load(path)
    # safetensors: a repeated key whose first entry is empty leaves no gap, so the reader keeps the last
    header = {"logits": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}
    head = json.dumps(header)[:-1] + ', "logits": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'
    head = head.encode() + b" " * (-len(head) % 8)
    (tmp_path / "twice.safetensors").write_bytes(len(head).to_bytes(8, "little") + head + bytes(8))
    with pytest.raises(CheckpointError, match=r"'logits'.*(twice|duplicate)"):
        golden.load(tmp_path / "twice.safetensors")


def test_lying_npy_and_npz_headers_are_refused_at_once_naming_the_file_and_tensor(tmp_path):
    """A 200-byte file that claims 4 TiB: refused from the header and the file's size, before any
    allocation (it was a raw MemoryError, an "internal error" on the command line)."""
    import time

    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (2**40,)})
    huge = buf.getvalue() + bytes(12)  # 4 TiB of float32 claimed, 3 elements stored
    directory = tmp_path / "port"
    directory.mkdir()
    (directory / "logits.npy").write_bytes(huge)
    _zip(tmp_path / "port.npz", [("logits.npy", huge)])
    short = _npy(np.zeros(8, np.float32))[:-4]  # 8 elements claimed, 7 stored
    (tmp_path / "short").mkdir()
    (tmp_path / "short" / "logits.npy").write_bytes(short)
    long_header = b"\x93NUMPY\x02\x00" + (2**32 - 1).to_bytes(4, "little") + b"{" * 100  # a 4 GiB header claimed
    (tmp_path / "header").mkdir()
    (tmp_path / "header" / "logits.npy").write_bytes(long_header)
    for path in (directory, tmp_path / "port.npz", tmp_path / "short", tmp_path / "header"):
        start = time.perf_counter()
        with pytest.raises(CheckpointError, match=r"logits") as info:
            golden.load(path)
        assert time.perf_counter() - start < 0.5
        assert str(path) in str(info.value)


@pytest.mark.parametrize("container", ["npy", "npz", "safetensors"])
def test_a_file_larger_than_the_memory_budget_is_refused_before_reading(dumped, tmp_path, monkeypatch, container):
    from minibloom.errors import MemoryBudgetError

    tensors = {"logits": dumped.tensors["logits"], "ln_f": dumped.tensors["ln_f"]}
    if container == "npy":
        path = tmp_path / "port"
        path.mkdir()
        for name, value in tensors.items():
            np.save(path / f"{name}.npy", value)
    elif container == "npz":
        path = tmp_path / "port.npz"
        np.savez_compressed(path, **tensors)
    else:
        path = tmp_path / "port.safetensors"
        save_file(tensors, path)
    assert set(golden.load(path).tensors) == set(tensors)
    monkeypatch.setenv("MINIBLOOM_MEMORY_BUDGET", str(tensors["logits"].nbytes // 2))
    with pytest.raises(MemoryBudgetError, match=str(path)):
        golden.load(path)
