"""The CUDA backend: every kernel equals its NumPy op, and the device-resident model equals the
NumPy model, run in Numba's CUDA simulator (or on a real GPU with MINIBLOOM_REAL_CUDA=1)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibloom import BloomConfig, BloomForCausalLM
from minibloom.alibi import alibi_bias
from minibloom.errors import BackendUnavailableError
from minibloom.functional import bloom_gelu, layer_norm, softmax
from minibloom.masking import causal_padding_bias
from tests.conftest import assert_close

cuda = pytest.importorskip("numba.cuda")
if not cuda.is_available():
    pytest.skip("no GPU and the simulator is off (NUMBA_ENABLE_CUDASIM)", allow_module_level=True)
from minibloom.cuda import CudaBloomForCausalLM  # noqa: E402
from minibloom.cuda import kernels as k  # noqa: E402

FEW = settings(max_examples=6, deadline=None)  # the simulator runs each CUDA thread in Python


def arrays(draw, shape, scale=1.0):
    seed = draw(st.integers(0, 2**32 - 1))
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


@FEW
@given(st.data(), st.integers(1, 6), st.integers(1, 9), st.integers(1, 7), st.booleans())
def test_matmul_bias_on_sizes_that_are_not_multiples_of_the_tile(data, M, K, N, has_bias):
    x, w, b = arrays(data.draw, (M, K)), arrays(data.draw, (N, K)), arrays(data.draw, (N,))
    out = cuda.device_array((M, N), np.float32)
    k.matmul_bias[((N + k.TILE - 1) // k.TILE, (M + k.TILE - 1) // k.TILE), (k.TILE, k.TILE)](x, w, b, has_bias, out)
    assert_close(out.copy_to_host(), x @ w.T + (b if has_bias else 0), "matmul_bias", atol=1e-6)


@FEW
@given(st.data(), st.integers(1, k.GEMV_ROWS), st.integers(1, 40), st.integers(1, 11), st.booleans(), st.booleans())
def test_gemv_for_decode_rows_including_a_strided_view(data, R, K, N, has_bias, strided):
    x, w, b = arrays(data.draw, (R, 2, K)), arrays(data.draw, (N, K)), arrays(data.draw, (N,))
    x = x[:, 1] if strided else np.ascontiguousarray(x[:, 1])  # the model passes the last position's view
    d_x = cuda.to_device(np.ascontiguousarray(x))[:, :] if not strided else cuda.to_device(x.base)[:, 1]
    out = cuda.device_array((R, N), np.float32)
    k.gemv[(N + k.GEMV_COLS - 1) // k.GEMV_COLS, (k.GEMV_LANES, k.GEMV_COLS)](d_x, w, b, has_bias, out)
    assert_close(out.copy_to_host(), x @ w.T + (b if has_bias else 0), "gemv", atol=1e-6)


@FEW
@given(st.data(), st.integers(1, 4), st.integers(1, 20))
def test_layer_norm_gelu_softmax_rows(data, R, F):
    x, w, b = arrays(data.draw, (R, F), 3.0), arrays(data.draw, (F,)), arrays(data.draw, (F,))
    out = cuda.device_array((R, F), np.float32)
    k.layer_norm[R, k.ROW_THREADS](x, w, b, np.float32(1e-5), out)
    assert_close(out.copy_to_host(), layer_norm(x, w, b, 1e-5), "layer_norm", atol=1e-5)
    g = cuda.to_device(x)
    k.bloom_gelu[(x.size + k.THREADS - 1) // k.THREADS, k.THREADS](g)
    assert_close(g.copy_to_host(), bloom_gelu(x), "bloom_gelu", atol=1e-6)
    s = cuda.to_device(x.reshape(1, 1, R, F))
    k.softmax_rows[R, k.ROW_THREADS](s)
    assert_close(s.copy_to_host()[0, 0], softmax(x), "softmax", atol=1e-6)
    idx = cuda.device_array(R, np.int64)
    k.argmax_rows[R, k.ROW_THREADS](x, idx)
    assert idx.copy_to_host().tolist() == x.argmax(-1).tolist()


@FEW
@given(st.data(), st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2), st.integers(1, 4))
def test_attention_kernels_with_padding_and_a_cache(data, B, N, T, P, D):
    S = P + T
    mask = np.ones((B, S), np.int64)
    mask[0, :data.draw(st.integers(0, S - 1))] = 0  # left padding, possibly whole rows of pads
    slopes = np.array(alibi_bias(np.ones((1, 2), np.int64), N)[0, :, 0, 1])  # slope * position 1
    alibi = cuda.device_array((B, N, S), np.float32)
    mask_bias = cuda.device_array((B, T, S), np.float32)
    k.alibi_and_mask[1, 32](mask, slopes, T, P, alibi, mask_bias)
    np.testing.assert_array_equal(alibi.copy_to_host(), alibi_bias(mask, N)[:, :, 0])
    np.testing.assert_array_equal(mask_bias.copy_to_host(), causal_padding_bias(mask, T, P)[:, 0])
    fused = arrays(data.draw, (B, T, 3 * N * D))
    q = cuda.device_array((B, N, T, D), np.float32)
    kc = cuda.to_device(arrays(data.draw, (B, N, S + 1, D)))  # a cache with room to spare
    vc = cuda.to_device(arrays(data.draw, (B, N, S + 1, D)))
    k.split_qkv[(q.size + 31) // 32, 32](fused, N, P, q, kc, vc)
    view = fused.reshape(B, T, N, 3, D)
    np.testing.assert_array_equal(q.copy_to_host(), view[:, :, :, 0].transpose(0, 2, 1, 3))
    np.testing.assert_array_equal(kc.copy_to_host()[:, :, P:S], view[:, :, :, 1].transpose(0, 2, 1, 3))
    probs = cuda.device_array((B, N, T, S), np.float32)
    k.scores[(probs.size + 31) // 32, 32](q, kc, alibi, mask_bias, np.float32(0.5), probs)
    K = kc.copy_to_host()[:, :, :S]
    expected = alibi_bias(mask, N) + np.float32(0.5) * (q.copy_to_host() @ K.transpose(0, 1, 3, 2))
    assert_close(probs.copy_to_host(), expected + causal_padding_bias(mask, T, P), "scores", atol=1e-6)
    k.softmax_rows[B * N * T, k.ROW_THREADS](probs)  # scores -> probabilities, in place
    ctx = cuda.device_array((B, T, N * D), np.float32)
    k.context[(ctx.size + 31) // 32, 32](probs, vc, ctx)
    V = vc.copy_to_host()[:, :, :S]
    merged = (probs.copy_to_host() @ V).transpose(0, 2, 1, 3).reshape(B, T, N * D)
    assert_close(ctx.copy_to_host(), merged, "context", atol=1e-5)


def test_gather_refuses_out_of_range_ids_without_reading_them():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = cuda.to_device(np.zeros((2, 3), np.float32))
    bad = cuda.to_device(np.array([-1], np.int64))
    k.gather[2, 4](table, np.array([3, 9], np.int64), out, bad)
    assert bad.copy_to_host()[0] == 1 and out.copy_to_host()[0].tolist() == [9, 10, 11]


CONFIG = BloomConfig(vocab_size=12, hidden_size=8, n_head=2, n_layer=1, eos_token_id=None)


def test_device_model_equals_the_numpy_model_with_left_padding():
    lm = BloomForCausalLM(CONFIG, seed=4)
    gpu = CudaBloomForCausalLM(lm)
    ids, mask = np.array([[3, 5, 7], [1, 9, 2]]), np.array([[0, 1, 1], [1, 1, 1]])
    assert_close(gpu.last_logits(ids, mask), lm(ids, attention_mask=mask).logits[:, -1], "cuda logits", atol=1e-5)


def test_device_greedy_generation_equals_the_numpy_backend():
    lm = BloomForCausalLM(CONFIG.__class__(**{**CONFIG.to_dict(), "apply_residual_connection_post_layernorm": True,
                                               "n_head": 4}), seed=6)
    ids = np.array([[2, 4, 6]])
    np.testing.assert_array_equal(CudaBloomForCausalLM(lm).generate(ids, max_new_tokens=3),
                                  lm.generate(ids, max_new_tokens=3))


def test_device_generation_of_a_left_padded_batch_equals_the_numpy_model_step_after_step():
    # every step reuses the activation buffers of the step before (CudaBloomForCausalLM._buffer)
    lm = BloomForCausalLM(CONFIG, seed=5)
    ids, mask = np.array([[0, 3, 5], [1, 9, 2]]), np.array([[0, 1, 1], [1, 1, 1]])
    np.testing.assert_array_equal(CudaBloomForCausalLM(lm).generate(ids, mask, max_new_tokens=4),
                                  lm.generate(ids, mask, max_new_tokens=4))


def test_without_a_gpu_the_backend_raises_a_typed_error_and_import_needs_no_cuda():
    code = ("import minibloom\nfrom minibloom.cuda import CudaBloomForCausalLM\n"
            "from minibloom.errors import BackendUnavailableError\n"
            "try:\n    CudaBloomForCausalLM.from_pretrained('nowhere')\nexcept BackendUnavailableError as e:\n"
            "    print('typed:', e)\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["CUDA_VISIBLE_DEVICES"] = ""  # hide any real GPU too
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("typed: no usable CUDA GPU"), done.stderr[-2000:]
    assert issubclass(BackendUnavailableError, Exception)
