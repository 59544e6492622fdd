"""int8 weights: a bit-exact save/load round trip, accuracy against float32 (held-out perplexity of
the embedded model, logits cosine on bloom-560m's widths), and malformed int8 checkpoints refused."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibloom import EMBEDDED_CHECKPOINT, BloomConfig, BloomForCausalLM, BloomTokenizer, CheckpointError
from minibloom.backends import numba_backend, numba_vnni as vnni
from minibloom.int8_io import METADATA, is_int8_checkpoint
from minibloom.llm_int8 import llm_int8_linear
from minibloom.perplexity import perplexity
from minibloom.safetensors_io import read_header
from minibloom.storage import Int8Matrix, quantize_int8

HELD_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "heldout", "tempest.txt")


def test_quantisation_is_per_row_absmax_and_within_half_a_step():
    w = (np.random.default_rng(0).standard_normal((7, 300)) * np.arange(1, 8)[:, None]).astype(np.float32)
    w[3] = 0.0  # an all-zero row stays zero
    q = quantize_int8(w)
    np.testing.assert_array_equal(q.absmax, np.abs(w).max(axis=1))
    assert np.abs(q.codes()).max(axis=1).tolist() == [127, 127, 127, 0, 127, 127, 127]
    step = q.absmax / 127
    assert (np.abs(q.codes() * step[:, None] - w) <= step[:, None] / 2 * (1 + 1e-6)).all()


@pytest.mark.parametrize("head_class_prefix", [False, True])
def test_int8_checkpoint_saves_and_reloads_bit_exactly(tmp_path, head_class_prefix):
    config = BloomConfig(vocab_size=64, hidden_size=32, n_head=4, n_layer=2)
    model = BloomForCausalLM(config, seed=2, storage="int8", backend="numba")
    model.save_prefix = head_class_prefix
    model.save_pretrained(tmp_path, dtype="int8")
    header, metadata = read_header(tmp_path / "model.safetensors")
    assert metadata == METADATA and is_int8_checkpoint(tmp_path)
    name = ("transformer." if head_class_prefix else "") + "h.1.mlp.dense_4h_to_h.weight"
    assert header[name].dtype == "I8" and header[name[:-len("weight")] + "SCB"].dtype == "F32"
    back = BloomForCausalLM.from_pretrained(tmp_path, backend="numba")  # auto: stays int8, memory-mapped
    assert back.storage == "int8"
    for key, value in model.params.items():
        assert type(back.params[key]) is type(value), key
        np.testing.assert_array_equal(np.asarray(back.params[key]), np.asarray(value))
        if isinstance(value, Int8Matrix):
            np.testing.assert_array_equal(back.params[key].absmax, value.absmax)
    ids = np.array([[3, 1, 4, 1, 5]])
    np.testing.assert_array_equal(back(ids).logits, model(ids).logits)


def test_an_int8_tensor_without_its_scales_is_refused(tmp_path):
    import safetensors.numpy

    safetensors.numpy.save_file({"word_embeddings.weight": np.zeros((4, 2), np.int8)}, str(tmp_path / "model.safetensors"),
                                metadata=METADATA)
    (tmp_path / "config.json").write_text(json.dumps({"vocab_size": 4, "hidden_size": 2, "n_head": 1, "n_layer": 1}))
    with pytest.raises(CheckpointError, match="word_embeddings.SCB"):
        BloomForCausalLM.from_pretrained(tmp_path)


def test_int8_held_out_perplexity_of_the_embedded_model_is_within_one_percent_of_float32():
    """On the whole play (docs/performance.md): float32 89.342, int8 89.407."""
    tok = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
    window = json.load(open(os.path.join(EMBEDDED_CHECKPOINT, "metadata.json")))["seq_len"]
    ids = np.array(tok.encode(open(HELD_OUT, encoding="utf-8").read()))[:16 * window]  # 16 windows: a few seconds
    ppl = {s: perplexity(BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT, backend="numba", storage=s), ids, window)
           for s in ("float32", "int8")}
    print(f"held-out perplexity: float32 {ppl['float32']:.3f}, int8 {ppl['int8']:.3f} "
          f"({ppl['int8'] / ppl['float32'] - 1:+.2%})")
    assert abs(ppl["int8"] / ppl["float32"] - 1) <= 0.01


def test_int8_logits_cosine_on_bloom_560m_widths():
    """bloom-560m's hidden size and heads (2 layers, a 4096-token vocab), random weights."""
    config = BloomConfig(vocab_size=4096, hidden_size=1024, n_head=16, n_layer=2)
    wide = BloomForCausalLM(config, seed=0, backend="numba")
    narrow = BloomForCausalLM(config, dict(wide.params), backend="numba", storage="int8")
    ids = np.random.default_rng(0).integers(0, 4096, size=(1, 32))
    a, b = wide(ids).logits.reshape(-1), narrow(ids).logits.reshape(-1)
    cosine = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    print(f"int8 vs float32 logits cosine: {cosine:.6f}")
    assert cosine >= 0.999


def test_llm_int8_without_outliers_is_the_int8_product_rescaled():
    from minibloom.llm_int8 import llm_int8_linear

    rng = np.random.default_rng(1)
    w = quantize_int8(rng.standard_normal((9, 40)).astype(np.float32))
    x = rng.integers(-127, 128, size=(3, 40)).astype(np.float32) / 127 * 2  # row absmax <= 2 < 6
    x[:, 0] = 2.0  # each row's absmax is exactly 2: its codes are x * 127 / 2, exact integers
    expected = ((x * 127 / 2).astype(np.int64) @ w.codes().astype(np.int64).T) * (2 / 127) * (w.absmax / 127)
    np.testing.assert_allclose(llm_int8_linear(x, w), expected, rtol=1e-6, atol=1e-6)


def test_llm_int8_outlier_columns_keep_the_other_activations_accurate():
    """One feature at 60 (an outlier, as in large models): with the decomposition the error stays
    at int8 level; without it (threshold inf) the row scale is set by the outlier and the rest of
    the row loses its precision."""
    from minibloom.llm_int8 import llm_int8_linear
    from minibloom.storage import to_float32

    rng = np.random.default_rng(2)
    w = quantize_int8(rng.standard_normal((64, 256)).astype(np.float32) * 0.05)
    x = rng.standard_normal((4, 256)).astype(np.float32) * 0.3
    x[:, 17] = 60.0
    exact = x @ to_float32(w).T
    mixed = np.abs(llm_int8_linear(x, w) - exact).max()
    plain = np.abs(llm_int8_linear(x, w, threshold=np.inf) - exact).max()
    assert mixed < plain / 5, (mixed, plain)
    assert mixed <= 0.02 * np.abs(exact).max()


needs_vnni = pytest.mark.skipif(not vnni.available(), reason="this CPU has no AVX512-VNNI")


@needs_vnni
@given(st.data(), st.integers(1, 9), st.integers(1, 300), st.integers(1, 40), st.sampled_from([1.0, 100.0]))
def test_vnni_product_equals_llm_int8_without_outliers(data, batch, fan_in, fan_out, scale):
    """int8 x int8 through vpdpbusd (whole 64-byte chunks and the columns after them, batch 8 and
    the one-row path) equals the NumPy reference: LLM.int8()'s product with no outlier column."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    weight = quantize_int8(rng.standard_normal((fan_out, fan_in)).astype(np.float32))
    x = (rng.standard_normal((batch, fan_in)) * scale).astype(np.float32)
    got = vnni.gemv_int8(x, weight.codes()) * weight.row_scales()
    expected = llm_int8_linear(x, weight, threshold=np.inf)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max(initial=1.0))


@needs_vnni
def test_backend_uses_vnni_only_when_asked(monkeypatch):
    """INT8_ACTIVATIONS="float32" (the default) widens exactly; "int8" gives the quantised product."""
    rng = np.random.default_rng(3)
    weight = quantize_int8(rng.standard_normal((70, 130)).astype(np.float32))
    x = rng.standard_normal((8, 130)).astype(np.float32)
    exact = x @ (weight.codes().astype(np.float32) * weight.row_scales()[:, None]).T
    np.testing.assert_allclose(numba_backend.gemv(x, weight), exact, rtol=1e-5, atol=1e-4)
    monkeypatch.setattr(numba_backend, "INT8_ACTIVATIONS", "int8")
    quantised = numba_backend.gemv(x, weight)
    np.testing.assert_allclose(quantised, llm_int8_linear(x, weight, threshold=np.inf), rtol=1e-5, atol=1e-4)
    assert np.abs(quantised - exact).max() > 1e-4  # it really took the other path
