"""Every Numba op equals its NumPy op (the reference), over drawn shapes, storages and masks.

Tolerance: 1e-6, scale-aware (relative to the largest expected value when that exceeds 1). The
Numba kernels sum in other orders than NumPy/BLAS, so bit equality is not expected; where a
kernel is exact by construction (widening 2-byte weights, the gather) the test asks for exactness.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibloom import BloomForCausalLM, BloomConfig, InputError
from minibloom.alibi import alibi_bias
from minibloom.backends import BACKENDS, get_backend, numba_backend, numpy_backend
from minibloom.masking import causal_padding_bias
from minibloom.storage import BF16, Int8Matrix, from_float32, quantize_int8, to_float32
from tests.conftest import assert_close

STORAGES = [np.dtype(np.float32), np.dtype(np.float16), BF16, np.dtype(np.int8)]


def arrays(draw, shape, scale=1.0, offset=0.0):
    seed = draw(st.integers(0, 2**32 - 1))
    return (np.random.default_rng(seed).standard_normal(shape) * scale + offset).astype(np.float32)


@given(st.data(), st.integers(1, 9), st.integers(1, 70), st.sampled_from([1.0, 30.0]), st.sampled_from([1e-5, 1e-3]))
def test_layer_norm(data, rows, width, scale, eps):
    x = arrays(data.draw, (rows, width), scale, offset=scale)
    w, b = arrays(data.draw, (width,)), arrays(data.draw, (width,))
    assert_close(numba_backend.layer_norm(x, w, b, eps), numpy_backend.layer_norm(x, w, b, eps), "layer_norm",
                 atol=1e-6 * max(1.0, scale))


@given(st.data(), st.integers(1, 20), st.integers(1, 40), st.integers(1, 150), st.sampled_from(STORAGES),
       st.booleans(), st.booleans())
def test_linear_and_linear_gelu(data, rows, fan_in, fan_out, storage, with_bias, gelu):
    x = arrays(data.draw, (rows, fan_in))
    weight = from_float32(arrays(data.draw, (fan_out, fan_in)), storage)
    bias = arrays(data.draw, (fan_out,)) if with_bias or gelu else None
    op = "linear_gelu" if gelu else "linear"
    got = getattr(numba_backend, op)(x, weight, bias)
    expected = getattr(numpy_backend, op)(x, weight, bias)
    assert_close(got, expected, f"{op} {storage} rows={rows}", atol=1e-6 * np.sqrt(fan_in))


@given(st.data(), st.integers(1, 9), st.integers(1, 5000), st.sampled_from([1.0, 10.0, 1e4]))
def test_bloom_gelu(data, rows, width, scale):
    """GELU alone (training keeps its input): large |x| drives exp(2|u|) to inf, where tanh is +-1."""
    x = arrays(data.draw, (rows, width), scale)
    assert_close(numba_backend.bloom_gelu(x), numpy_backend.bloom_gelu(x), "bloom_gelu", atol=1e-6 * scale)


@given(st.data(), st.integers(1, 8), st.integers(1, 70), st.integers(1, 90), st.sampled_from(STORAGES),
       st.sampled_from([(1, 1), (2, 1), (1, 3)]), st.booleans())
def test_gemv_equals_the_numpy_product(data, batch, fan_in, fan_out, storage, w_step, x_strided):
    """Decoding's matrix-vector kernel, every storage, batch 1-8 (each grouping of rows by 4, 2
    and 1), odd sizes, strided weights (every other row / every third column) and strided inputs."""
    rows, cols = w_step
    weight = from_float32(arrays(data.draw, (fan_out * rows, fan_in * cols)), storage)
    if storage == np.int8:  # strided codes, each row keeping its absmax
        weight = Int8Matrix(weight.codes()[::rows, ::cols], weight.absmax[::rows])
    else:
        weight = weight[::rows, ::cols]
    x = arrays(data.draw, (batch, 2 * fan_in))[:, ::2] if x_strided else arrays(data.draw, (batch, fan_in))
    expected = x @ to_float32(weight).T  # [M, K] @ [K, N]
    assert_close(numba_backend.gemv(x, weight), expected, f"gemv {storage} {batch}x{fan_in}x{fan_out}",
                 atol=1e-6 * np.sqrt(fan_in))


@given(st.data(), st.integers(1, 9), st.integers(1, 70), st.integers(1, 90), st.sampled_from(STORAGES))
def test_fast_gemv_equals_the_plain_one(data, batch, fan_in, fan_out, storage):
    """`_gemv` (unrolled, blocked, prefetching) computes what `_gemv_plain`'s three loops compute."""
    weight = from_float32(arrays(data.draw, (fan_out, fan_in)), storage)
    x = arrays(data.draw, (batch, fan_in))
    assert_close(numba_backend.gemv(x, weight), numba_backend.gemv(x, weight, plain=True),
                 f"gemv vs plain {storage} {batch}x{fan_in}x{fan_out}", atol=1e-6 * np.sqrt(fan_in))


def test_gemv_prefetch_reaches_past_the_last_row_safely():
    """The prefetch distance may exceed the matrix (a hint for a row that does not exist is skipped)."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((8, 5)).astype(np.float32), rng.standard_normal((3, 5)).astype(np.float32)
    out = np.empty((8, 3), np.float32)
    numba_backend._gemv(x, w, out, True, 10**6)
    assert_close(out, x @ w.T, "gemv, prefetch beyond the end", atol=1e-6)


def test_linear_widens_in_blocks_when_many_rows(monkeypatch):
    """Prefill with 2-byte weights: several widened blocks, the last one partial."""
    monkeypatch.setattr(numba_backend, "WIDEN_BLOCK", 7)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((20, 33)).astype(np.float32), rng.standard_normal((30, 33)).astype(np.float32)
    for storage in (np.dtype(np.float16), BF16, np.dtype(np.int8)):
        compact = from_float32(w, storage)
        assert_close(numba_backend.linear(x, compact), x @ to_float32(compact).T, "blocked linear", atol=1e-5)


def test_widening_is_exact_for_every_16_bit_pattern():
    bits = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    out = np.empty((256, 256), np.float32)
    numba_backend._widen(bits.view(np.int16), out)
    expected = bits.view(np.float16).astype(np.float32)
    nan = np.isnan(expected)  # the hardware conversion quiets signalling NaNs: still NaN, same sign
    np.testing.assert_array_equal(out.view(np.uint32)[~nan], expected.view(np.uint32)[~nan])
    assert np.isnan(out[nan]).all() and (np.signbit(out[nan]) == np.signbit(expected[nan])).all()
    numba_backend._widen(bits, out)
    np.testing.assert_array_equal(out.view(np.uint32), bits.astype(np.uint32) << 16)


@st.composite
def attention_inputs(draw):
    B, N, T, P, D = (draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 6)),
                     draw(st.integers(0, 5)), draw(st.integers(1, 9)))
    S = P + T
    mask = np.array(draw(st.lists(st.lists(st.integers(0, 1), min_size=S, max_size=S), min_size=B, max_size=B)))
    q, k = arrays(draw, (B, N, T, D), 3.0), arrays(draw, (B, N, S, D), 3.0)
    return q, k, alibi_bias(mask, N), causal_padding_bias(mask, T, P)


@given(attention_inputs())
def test_attention_probs_with_masks_and_fully_masked_rows(inputs):
    q, k, alibi, mask_bias = inputs
    got = numba_backend.attention_probs(q, k, alibi, mask_bias)
    assert_close(got, numpy_backend.attention_probs(q, k, alibi, mask_bias), "attention_probs", atol=1e-6)


@given(st.data(), st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.integers(1, 7))
def test_context(data, B, N, T, S):
    probs, v = arrays(data.draw, (B, N, T, S)), arrays(data.draw, (B, N, S, 4))
    assert_close(numba_backend.context(probs, v), numpy_backend.context(probs, v), "context", atol=1e-6)


@given(st.data(), st.sampled_from(STORAGES), st.integers(1, 3), st.integers(1, 5))
def test_embed_is_an_exact_gather(data, storage, B, T):
    table = from_float32(arrays(data.draw, (11, 6)), storage)
    ids = np.array(data.draw(st.lists(st.lists(st.integers(0, 10), min_size=T, max_size=T), min_size=B, max_size=B)))
    np.testing.assert_array_equal(numba_backend.embed(table, ids), numpy_backend.embed(table, ids))


def test_the_gather_kernel_refuses_out_of_range_ids_itself():
    table = np.zeros((5, 2), np.float32)
    for bad in (5, -1, 10**12):
        with pytest.raises(InputError, match="outside the vocabulary"):
            numba_backend.embed(table, np.array([[0, bad]]))


@pytest.mark.parametrize("storage", ["float16", "bfloat16", "int8"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_compact_storage_equals_float32_on_the_rounded_weights(backend, storage):
    """Storage changes only the weights' precision, never the float32 arithmetic around them."""
    config = BloomConfig(vocab_size=40, hidden_size=24, n_head=3, n_layer=2)
    compact = BloomForCausalLM(config, seed=3, backend=backend, storage=storage)
    wide = BloomForCausalLM(config, {k: to_float32(v) for k, v in compact.params.items()}, backend=backend)
    shrink = 4 if storage == "int8" else 2
    assert compact.params["h.0.mlp.dense_h_to_4h.weight"].nbytes * shrink == wide.params["h.0.mlp.dense_h_to_4h.weight"].nbytes
    ids = np.array([[1, 5, 9, 2], [3, 3, 8, 30]])
    assert_close(compact(ids).logits, wide(ids).logits, f"{backend} {storage}", atol=1e-5)
    np.testing.assert_array_equal(compact.generate(ids[:1], max_new_tokens=6), wide.generate(ids[:1], max_new_tokens=6))


@pytest.mark.parametrize("backend", BACKENDS)
def test_checked_ops_take_every_weight_storage(backend):
    """The checked ops accept what a model stores, int8 included, and compute what the raw ops do."""
    ops, raw = get_backend(backend), get_backend(backend, checked=False)
    rng = np.random.default_rng(0)
    x, bias = rng.standard_normal((2, 3, 6), dtype=np.float32), rng.standard_normal(5, dtype=np.float32)
    for storage in STORAGES:
        weight = from_float32(rng.standard_normal((5, 6), dtype=np.float32), storage)
        np.testing.assert_array_equal(ops.linear(x, weight, bias), raw.linear(x, weight, bias), err_msg=storage)
        np.testing.assert_array_equal(ops.linear_gelu(x, weight, bias), raw.linear_gelu(x, weight, bias))
        np.testing.assert_array_equal(ops.embed(weight, np.array([[4, 0]])), raw.embed(weight, np.array([[4, 0]])))
    codes = quantize_int8(np.ones((5, 6), np.float32))
    with pytest.raises(InputError, match="bare int8 codes"):
        ops.linear(x, np.asarray(codes).view(np.ndarray), bias)
    with pytest.raises(InputError, match="slice of an int8 matrix"):
        ops.linear(x, codes[:4], bias[:4])


def test_unknown_backend_and_storage_are_refused():
    with pytest.raises(InputError, match="backend"):
        get_backend("cuda-please")
    with pytest.raises(InputError, match="storage"):
        BloomForCausalLM(BloomConfig(vocab_size=8, hidden_size=4, n_head=1, n_layer=1), storage="int4")
