"""Golden files as a contract: an independent port (tests/golden_port.py, plain NumPy written from the
format spec, not minibloom's code) writes plain files with no metadata; compare must pass it when it is
correct, name the first divergent op for each classic porting bug, and pass the legitimately different
correct forms with the documented options."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from minibloom import BloomForCausalLM, golden
from minibloom.errors import CheckpointError, InputError
from minibloom.storage import bfloat16_bits
from tests.conftest import HF_EXPECTED_DIR
from tests.golden_port import BUGS, FIRST_OP, Port

IDS = np.array([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]])
MASK = np.array([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])  # left padding on the second row
# larger than bf16 noise; the eps bug (1 % on these LN outputs) and erf GELU (1e-4) hide under it
BF16_BUGS = ("slopes", "positions", "qkv_split", "no_embedding_layernorm")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """12 heads (not a power of two) and BLOOM-sized embeddings (std 0.02, so the LN eps matters)."""
    src = os.path.join(HF_EXPECTED_DIR, "heads12_prefixed")
    d = tmp_path_factory.mktemp("port_ckpt")
    shutil.copy(os.path.join(src, "config.json"), d / "config.json")
    weights = load_file(os.path.join(src, "model.safetensors"))
    weights["transformer.word_embeddings.weight"] *= np.float32(0.02)
    save_file(weights, str(d / "model.safetensors"))
    return str(d)


@pytest.fixture(scope="module")
def expected(checkpoint, tmp_path_factory):
    path = tmp_path_factory.mktemp("golden") / "golden.safetensors"
    golden.dump(BloomForCausalLM.from_pretrained(checkpoint), path, IDS, MASK)
    return golden.load(path)


def write(record: dict, path, container: str) -> str:
    """What a port writes: plain tensors under the documented names, no metadata."""
    path = str(path)
    if container == "npz":
        np.savez(path + ".npz", **record)
        return path + ".npz"
    if container == "npy":
        os.makedirs(path)
        for name, value in record.items():
            np.save(os.path.join(path, name + ".npy"), value)
        return path
    save_file({k: np.ascontiguousarray(v) for k, v in record.items()}, path + ".safetensors")
    return path + ".safetensors"


@pytest.mark.parametrize("container", ["safetensors", "npz", "npy"])
def test_a_correct_independent_port_passes_from_a_plain_file(checkpoint, expected, tmp_path, container):
    path = write(Port(checkpoint).forward(IDS, MASK), tmp_path / "port", container)
    port = golden.load(path)
    assert port.metadata == {} and "h.1.self_attention.q" in port.tensors
    report = golden.compare(expected, port)
    assert report.ok, golden.format_report(report)
    assert max(r.headroom for r in report.rows) < 0.5  # a correct port uses little of the budget
    assert min(r.cosine for r in report.rows if r.compared) > 0.999999


@pytest.mark.parametrize("bug", BUGS)
def test_each_classic_bug_is_named_as_the_first_divergent_op_in_float32(checkpoint, expected, bug):
    report = golden.compare(expected, Port(checkpoint, bugs=[bug]).forward(IDS, MASK))
    first = report.first_divergence
    assert first is not None and first.name == FIRST_OP[bug], golden.format_report(report, failures_only=True)
    assert f"FAIL: first divergence at {FIRST_OP[bug]}" in golden.format_report(report)


def test_a_correct_bfloat16_port_passes_the_float32_golden_with_the_default_tolerances(checkpoint, expected,
                                                                                       tmp_path):
    record = Port(checkpoint, bf16=True).forward(IDS, MASK)
    assert golden.compare(expected, record).first_divergence is not None  # float32 tolerances: bf16 is noise
    report = golden.compare(expected, record, port_dtype="bfloat16")
    assert report.ok, golden.format_report(report)
    # stored as bfloat16 in the file, the port's dtype is read from it
    infos = {k: v for k, v in record.items()}
    path = tmp_path / "bf16.safetensors"
    _save_bf16(infos, path)
    port = golden.load(path)
    assert port.dtype_of("logits") == "bfloat16"
    assert golden.compare(expected, port).ok


def _save_bf16(tensors: dict, path) -> None:
    """A safetensors file with BF16 tensors, written by hand as a port in another language would."""
    header, blobs, offset = {}, [], 0
    for name, value in tensors.items():
        raw = bfloat16_bits(np.asarray(value, np.float32)).astype("<u2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(value.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(len(head).to_bytes(8, "little") + head + b"".join(blobs))


@pytest.mark.parametrize("bug", BF16_BUGS)
def test_bugs_larger_than_bfloat16_noise_are_named_in_a_bfloat16_port(checkpoint, expected, bug):
    report = golden.compare(expected, Port(checkpoint, bugs=[bug], bf16=True).forward(IDS, MASK),
                            port_dtype="bfloat16")
    first = report.first_divergence
    assert first is not None and first.name == FIRST_OP[bug], golden.format_report(report, failures_only=True)


@pytest.mark.parametrize("variant, options", [
    ("neg_inf_mask", {"ignore_padding": True}),
    ("zero_pad_rows", {"ignore_padding": True}),
    ("fused_attention", {"skip_missing": True}),
    ("relative_alibi", {"scores_up_to_row_constant": True}),
])
def test_legitimately_different_correct_ports_pass_with_the_documented_option(checkpoint, expected, variant,
                                                                              options):
    record = Port(checkpoint, variants=[variant]).forward(IDS, MASK)
    plain = golden.compare(expected, record)
    assert not plain.ok  # the form differs from the golden's...
    report = golden.compare(expected, record, **options)
    assert report.ok, golden.format_report(report, failures_only=True)  # ...and is correct
    if variant in ("neg_inf_mask", "zero_pad_rows"):
        first = plain.first_divergence
        assert first.padding == "query" and "the query is padding" in golden.format_report(plain)


def test_minus_inf_masks_equal_finfo_min_without_padding(checkpoint, tmp_path):
    ids, mask = IDS, np.ones_like(IDS)
    path = tmp_path / "g.safetensors"
    golden.dump(BloomForCausalLM.from_pretrained(checkpoint), path, ids, mask)
    record = Port(checkpoint, variants=["neg_inf_mask"]).forward(ids, mask)
    assert np.isneginf(record["h.0.self_attention.scores"]).any()
    report = golden.compare(golden.load(path), record)
    assert report.ok, golden.format_report(report, failures_only=True)


def test_transformers_layouts_are_accepted_and_wrong_sizes_are_not(checkpoint, expected):
    record = Port(checkpoint, variants=["bnts_layout"]).forward(IDS, MASK)
    assert record["h.0.self_attention.probs"].shape == (2 * 12, 6, 6)
    assert golden.compare(expected, record).ok
    record["h.0.self_attention.probs"] = record["h.0.self_attention.probs"].reshape(12, 2, 6, 6)  # not a merge
    row = {r.name: r for r in golden.compare(expected, record).rows}["h.0.self_attention.probs"]
    assert not row.ok and "shape (12, 2, 6, 6)" in row.note


def test_a_partial_file_passes_with_skip_missing(checkpoint, expected, tmp_path):
    full = Port(checkpoint).forward(IDS, MASK)
    partial = {k: v for k, v in full.items() if k.endswith(".output") or k in ("ln_f", "logits")}
    path = write(partial, tmp_path / "partial", "npz")
    assert golden.compare(expected, golden.load(path)).first_divergence.note == "missing"
    report = golden.compare(expected, golden.load(path), skip_missing=True)
    assert report.ok and sum(not r.skipped for r in report.rows) == 4
    assert "not recorded" in golden.format_report(report)
    bad = dict(partial, logits=partial["logits"] + 1e-2)  # a partial file still fails where it differs
    assert golden.compare(expected, bad, skip_missing=True).first_divergence.name == "logits"


def test_selection_options_pick_the_tensors(checkpoint, expected):
    record = Port(checkpoint, bugs=["erf_gelu"]).forward(IDS, MASK)
    names = lambda report: [r.name for r in report.rows]  # noqa: E731
    assert names(golden.compare(expected, record, logits_only=True)) == ["logits"]
    only = golden.compare(expected, record, only=["h.*.self_attention.q", "ln_f"])
    assert names(only) == ["h.0.self_attention.q", "h.1.self_attention.q", "ln_f"]
    assert only.rows[0].ok and only.first_divergence.name == "h.1.self_attention.q"  # layer 0's gelu spread
    layer1 = golden.compare(expected, record, layers="1:", only=["h.*"])
    assert {r.name.split(".")[1] for r in layer1.rows} == {"1"}
    assert layer1.first_divergence.name == "h.1.input_layernorm"  # layer 0's gelu bug spread into layer 1
    with pytest.raises(InputError, match="--layers"):
        golden.compare(expected, record, layers="1-2")


def test_tolerance_file_first_matching_glob_wins(checkpoint, expected, tmp_path):
    record = Port(checkpoint, bugs=["erf_gelu"]).forward(IDS, MASK)
    table = tmp_path / "tol.json"
    table.write_text(json.dumps({"h.0.mlp.gelu": {"atol": 1e-2, "rtol": 0}, "*": {"atol": 1e3, "rtol": 0}}))
    report = golden.compare(expected, record, tolerances=str(table))
    assert report.ok
    rows = {r.name: r for r in report.rows}
    assert rows["h.0.mlp.gelu"].atol == 1e-2 and rows["logits"].atol == 1e3
    table.write_text(json.dumps({"h.0.mlp.gelu": {"atol": 1e-9}}))
    assert golden.compare(expected, record, tolerances=str(table)).first_divergence.name == "h.0.mlp.gelu"
    for bad in ({"x": {"atol": -1}}, {"x": {"atol": "nan"}}, {"x": 3}, [1]):
        table.write_text(json.dumps(bad))
        with pytest.raises(CheckpointError, match=str(table)):
            golden.compare(expected, record, tolerances=str(table))


def test_zero_tolerances_pass_identical_files_and_bad_tolerances_are_refused(expected):
    assert golden.compare(expected, expected, atol=0, rtol=0).ok
    different = dict(expected.tensors, logits=expected.tensors["logits"] + 1)
    for bad in (-1e-5, float("nan"), float("inf")):
        with pytest.raises(InputError, match="atol"):
            golden.compare(expected, different, atol=bad)
        with pytest.raises(InputError, match="rtol"):
            golden.compare(expected, different, rtol=bad)


def test_metrics_of_a_known_perturbation(expected):
    x = expected.tensors["ln_f"]
    noisy = x * np.float32(1 + 1e-3)
    row = {r.name: r for r in golden.compare(expected, dict(expected.tensors, ln_f=noisy), skip_missing=True).rows}
    r = row["ln_f"]
    assert abs(r.rel_norm - 1e-3) < 1e-5 and r.cosine > 1 - 1e-9 and not r.ok
    tol = golden.default_tolerance("ln_f", expected.n_layer, "float32")
    rms = np.sqrt(np.mean(x.astype(np.float64) ** 2))
    want = np.max(np.abs(noisy.astype(np.float64) - x) / (tol * (rms + np.abs(x))))
    assert abs(r.headroom - want) < 1e-3 * want
    assert 2 ** 23 * 1e-3 / 4 < r.max_ulp < 2 ** 23 * 1e-3 * 2  # 1e-3 relative is ~8000 float32 ULPs
    assert golden.default_tolerance("logits", 24, "bfloat16") > golden.default_tolerance("logits", 2, "bfloat16") \
        > golden.default_tolerance("logits", 2, "float32")


def test_model_class_in_the_metadata_must_be_a_model_class(expected, tmp_path):
    from minibloom.safetensors_io import save_file as save_with_metadata

    for cls in ("BloomForTokenClassification", "BloomTokenizer", "__class__", "os.system"):
        path = tmp_path / "m.safetensors"
        save_with_metadata(expected.tensors, path, metadata={**expected.metadata, "model_class": cls})
        if cls == "BloomForTokenClassification":
            assert golden.load(path).model_class == cls
        else:
            with pytest.raises(CheckpointError, match="model_class"):
                golden.load(path)


def test_per_layer_summary_and_failures_only(checkpoint, expected):
    report = golden.compare(expected, Port(checkpoint, bugs=["erf_gelu"]).forward(IDS, MASK))
    layers = report.layers()
    assert [g["layer"] for g in layers] == ["embeddings", "h.0", "h.1", "head"]
    assert layers[0]["ok"] and not layers[1]["ok"] and layers[1]["headroom"] > 1
    assert layers[1]["worst"] == "h.0.mlp.gelu" or layers[1]["headroom"] >= report.first_divergence.headroom
    text = golden.format_report(report, failures_only=True)
    assert "embeddings_layernorm" not in text and "h.0.mlp.gelu" in text and "h.0.input_layernorm" not in text


def test_error_vs_depth_plot(checkpoint, expected, tmp_path):
    pytest.importorskip("matplotlib", reason="the error-vs-depth plot needs the docs extra (matplotlib)")
    report = golden.compare(expected, Port(checkpoint, bugs=["erf_gelu"]).forward(IDS, MASK))
    golden.plot_errors(report, tmp_path / "e.png")
    assert (tmp_path / "e.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_goldens_hold_values_of_their_dtype_and_pass_a_correct_port(checkpoint, expected, tmp_path,
                                                                                    dtype):
    path = tmp_path / "low.safetensors"
    golden.dump(BloomForCausalLM.from_pretrained(checkpoint), path, IDS, MASK, dtype=dtype)
    low = golden.load(path)
    assert low.metadata["dtype"] == dtype and low.dtype_of("h.0.mlp.gelu") == dtype
    for name in low.order[2:]:
        x = low.tensors[name]
        if dtype == "bfloat16":
            assert not (x.astype(np.float32).view(np.uint32) & 0xFFFF).any(), name
        else:
            np.testing.assert_array_equal(x.astype(np.float16).astype(np.float32), x, err_msg=name)
    scores = low.tensors["h.0.self_attention.scores"]
    assert scores.min() == (np.float32(-3.3895314e38) if dtype == "bfloat16" else -65504.0)
    assert golden.compare(expected, low, port_dtype=dtype).ok  # near the float32 golden, within dtype noise
    if dtype == "bfloat16":  # the independent bf16 port, against the bf16 golden
        port = Port(checkpoint, bf16=True).forward(IDS, MASK)
        report = golden.compare(low, port, port_dtype=dtype)
        assert report.ok, golden.format_report(report)
        far = golden.compare(expected, port, port_dtype=dtype)  # it is closer than to the float32 golden
        assert max(r.headroom for r in report.rows) < 0.75 * max(r.headroom for r in far.rows)


def test_half_precision_goldens_are_for_the_bare_model_and_the_causal_lm(tmp_path):
    from minibloom import BloomForSequenceClassification

    cls = BloomForSequenceClassification.from_pretrained(os.path.join(HF_EXPECTED_DIR, "seq_cls_single_label"))
    with pytest.raises(InputError, match="BloomForSequenceClassification"):
        golden.dump(cls, tmp_path / "x.safetensors", IDS % cls.config.vocab_size, dtype="bfloat16")
    with pytest.raises(InputError, match="dtype"):
        golden.dump(cls, tmp_path / "x.safetensors", IDS % cls.config.vocab_size, dtype="int8")
    assert not (tmp_path / "x.safetensors").exists()


RENAMES = {  # how a port can name its tensors wrongly
    "transformer.": lambda n: "transformer." + n,   # the checkpoint's prefix
    "model.": lambda n: "model." + n,
    "layers": lambda n: n.replace("h.", "layers.", 1) if n.startswith("h.") else n,
    "zero-padded": lambda n: n.replace("h.", "h.0", 1) if n.startswith("h.") else n,  # h.01.output
    "attn": lambda n: n.replace("self_attention.", "attn."),
    "case": lambda n: n.upper(),
}


PARTIAL = ("layers", "zero-padded", "attn")  # renames that leave some names right (embeddings, ln_f, logits...)


@pytest.mark.parametrize("rename", list(RENAMES))
@pytest.mark.parametrize("bug", [None, "erf_gelu"])
def test_an_independent_port_that_names_its_tensors_wrongly_never_passes(checkpoint, expected, rename, bug):
    """Measured: a port writing the `transformer.`-prefixed names passed under --skip-missing with an
    erf GELU ("PASS: 0 tensors"): the names it did not know were ignored. Whatever the options, a
    compare that cannot see the port's tensors fails. Only --allow-unknown with --skip-missing lets
    the wrong names be, and then what is compared (the right names) must still pass on its own."""
    record = Port(checkpoint, bugs=[bug] if bug else []).forward(IDS, MASK)
    renamed = {RENAMES[rename](n): v for n, v in record.items()}
    assert set(renamed) != set(record)
    for options in ({}, {"skip_missing": True}, {"allow_unknown": True}, {"skip_missing": True, "only": ["h.*"]},
                    {"skip_missing": True, "layers": "0:1"}, {"skip_missing": True, "logits_only": True},
                    {"skip_missing": True, "allow_unknown": True},
                    {"skip_missing": True, "allow_unknown": True, "only": ["h.*.mlp.*"]}):
        report = golden.compare(expected, renamed, **options)
        text = golden.format_report(report)
        opted_out = options.get("allow_unknown") and options.get("skip_missing")
        if opted_out and rename in PARTIAL and bug is None and ("only" not in options or rename == "attn"):
            assert report.ok, (options, text)  # the right names compare equal; the wrong ones are listed
            assert "not compared (--allow-unknown)" in text
            continue
        assert not report.ok, (options, text)
        assert "PASS" not in text and text.splitlines()[-1].startswith("FAIL"), (options, text)


@pytest.mark.parametrize("rename", ["transformer.", "layers"])
def test_the_renamed_port_fails_on_the_command_line(checkpoint, tmp_path, rename):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    gpath = tmp_path / "golden.safetensors"
    golden.dump(BloomForCausalLM.from_pretrained(checkpoint), gpath, IDS, MASK)
    record = Port(checkpoint, bugs=["erf_gelu"]).forward(IDS, MASK)
    path = write({RENAMES[rename](n): v for n, v in record.items()}, tmp_path / "port", "safetensors")
    for flags in ([], ["--skip-missing"], ["--skip-missing", "--allow-unknown"]):
        done = subprocess.run([sys.executable, "-m", "minibloom", "golden", "compare", str(gpath), path, *flags],
                              capture_output=True, text=True, timeout=120, cwd=root,
                              env={**os.environ, "PYTHONPATH": root})
        # 2: a file with no name of the format is no golden file at all; 1: the compare fails
        assert done.returncode == (2 if rename == "transformer." else 1), (flags, done.stdout, done.stderr)
        assert "PASS" not in done.stdout
