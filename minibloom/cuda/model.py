"""BloomForCausalLM on the GPU, device-resident: the weights are copied to the device once; a
step sends the ids and the attention mask, runs every op as a kernel (`kernels.py`), keeps the
keys and values in a device KV cache, and sends back only the last position's logits or, when
decoding greedily, the next token of each row.

It computes what `minibloom.heads.BloomForCausalLM` computes (tested equal under Numba's CUDA
simulator), except head_mask and the `slow_but_exact` tensor-parallel path, which it refuses.
Shape legend: B batch, T new tokens, P cached, S = P + T, H hidden, N heads, D head_dim, V vocab.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..alibi import alibi_slopes
from ..errors import BackendUnavailableError, InputError
from ..storage import to_float32
from ..validation import check_attention_mask, check_ids


def require_cuda():
    """numba.cuda, or BackendUnavailableError saying why not."""
    try:
        from numba import cuda
    except ImportError as e:  # pragma: no cover - numba always ships numba.cuda or the extra does
        raise BackendUnavailableError(f"the CUDA backend needs numba's CUDA support: {e}") from None
    if not cuda.is_available():
        raise BackendUnavailableError(
            "no usable CUDA GPU (the CUDA backend needs an NVIDIA GPU, its driver and the `cuda` extra: "
            "pip install 'minibloom[cuda]'); to run the kernels in Numba's CPU simulator, set "
            "NUMBA_ENABLE_CUDASIM=1 before Python starts")
    return cuda


def _blocks(n: int, threads: int) -> int:
    return max(1, (n + threads - 1) // threads)


class CudaBloomForCausalLM:
    """A causal BLOOM whose weights live on the GPU. Build it from a minibloom model or a directory."""

    def __init__(self, model):
        self.cuda = cuda = require_cuda()
        from . import kernels

        self.k = kernels
        cfg = self.config = model.config
        if cfg.pretraining_tp > 1 and cfg.slow_but_exact:
            raise InputError("the CUDA backend does not implement slow_but_exact with pretraining_tp > 1")
        self.weights = {name: cuda.to_device(np.ascontiguousarray(to_float32(p), np.float32))
                        for name, p in model.params.items()}  # copied to the device once
        self.lm_head = "word_embeddings" if cfg.tie_word_embeddings else "lm_head"  # a weights key prefix
        self.slopes = cuda.to_device(alibi_slopes(cfg.n_head))
        self.cache = None

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **kwargs: Any) -> "CudaBloomForCausalLM":
        from ..heads import BloomForCausalLM

        require_cuda()
        return cls(BloomForCausalLM.from_pretrained(directory, **kwargs))

    # ----------------------------------------------------------------------- kernel launches

    def _buffer(self, tag: str, shape: tuple, dtype=np.float32):
        """The device array for `tag` (one per op role: "qkv", "ln1", ...), allocated the first time a
        shape is seen and reused after. Why: an allocation costs ~25 µs of host time, as much as
        the kernel it feeds during decode. Safe because the kernels run in order on one stream and
        a role's previous contents are dead before it is written again (the next layer, the next
        step). Arrays that grow with the keys are made at the cache's capacity and sliced."""
        key = (tag, shape)
        if key not in self.buffers:
            self.buffers[key] = self.cuda.device_array(shape, dtype)
        return self.buffers[key]

    def _linear(self, x, name: str, tag: str, bias: bool = True):
        """[R, I] @ `name`.weight^T (+ `name`.bias) on the device -> [R, O] in buffer `tag`."""
        w = self.weights[name + ".weight"]
        R, O = x.shape[0], w.shape[0]
        out = self._buffer(tag, (R, O))
        b = self.weights[name + ".bias"] if bias else self.slopes  # not read when has_bias is False
        k = self.k
        if R <= k.GEMV_ROWS:  # decode: stream the weights once (bandwidth-bound)
            k.gemv[_blocks(O, k.GEMV_COLS), (k.GEMV_LANES, k.GEMV_COLS)](x, w, b, bias, out)
        else:  # prefill: shared-memory tiles reuse each loaded value TILE times
            k.matmul_bias[(_blocks(O, k.TILE), _blocks(R, k.TILE)), (k.TILE, k.TILE)](x, w, b, bias, out)
        return out

    def _layer_norm(self, x, name: str, tag: str):
        out = self._buffer(tag, x.shape)
        self.k.layer_norm[x.shape[0], self.k.ROW_THREADS](x, self.weights[name + ".weight"],
                                                          self.weights[name + ".bias"],
                                                          np.float32(self.config.layer_norm_epsilon), out)
        return out

    def _add(self, a, b, tag: str):
        out = self._buffer(tag, a.shape)
        self.k.add[_blocks(a.size, self.k.THREADS), self.k.THREADS](a, b, out)
        return out

    def _block(self, i: int, h, alibi, mask_bias, B: int, T: int, P: int, S: int):
        """One transformer block on device arrays; h is [B*T, H]."""
        cfg, k, p = self.config, self.k, f"h.{i}."
        N, D, H = cfg.n_head, cfg.head_dim, cfg.hidden_size
        ln1 = self._layer_norm(h, p + "input_layernorm", "ln1")
        fused = self._linear(ln1, p + "self_attention.query_key_value", "qkv").reshape(B, T, 3 * H)
        q = self._buffer("q", (B, N, T, D))
        k_cache, v_cache = self.cache[i]
        k.split_qkv[_blocks(q.size, self.k.THREADS), self.k.THREADS](fused, N, P, q, k_cache, v_cache)
        probs = self._buffer("probs", (B, N, T, k_cache.shape[2]))[:, :, :, :S]  # [B, N, T, S]
        k.scores[_blocks(probs.size, self.k.THREADS), self.k.THREADS](q, k_cache, alibi, mask_bias,
                                                                  np.float32(1.0 / math.sqrt(D)), probs)
        k.softmax_rows[B * N * T, k.ROW_THREADS](probs)
        ctx = self._buffer("ctx", (B, T, H))
        k.context[_blocks(ctx.size, self.k.THREADS), self.k.THREADS](probs, v_cache, ctx)
        attn = self._linear(ctx.reshape(B * T, H), p + "self_attention.dense", "attn")
        x1 = self._add(ln1 if cfg.apply_residual_connection_post_layernorm else h, attn, "x1")
        ln2 = self._layer_norm(x1, p + "post_attention_layernorm", "ln2")
        up = self._linear(ln2, p + "mlp.dense_h_to_4h", "up")
        k.bloom_gelu[_blocks(up.size, self.k.THREADS), self.k.THREADS](up)
        down = self._linear(up, p + "mlp.dense_4h_to_h", "down")
        # subtle: this overwrites the buffer holding h, the block's input; h is dead by now
        return self._add(ln2 if cfg.apply_residual_connection_post_layernorm else x1, down, "h")

    # ------------------------------------------------------------------------------- steps

    def new_cache(self, batch: int, capacity: int) -> None:
        """Allocate the device KV cache: per layer, keys and values [B, N, capacity, D]."""
        cfg = self.config
        shape = (batch, cfg.n_head, capacity, cfg.head_dim)
        self.cache = [(self.cuda.device_array(shape, np.float32), self.cuda.device_array(shape, np.float32))
                      for _ in range(cfg.n_layer)]
        self.buffers = {}  # the activations' device arrays (`_buffer`), sized for this cache
        self.length = 0

    def step(self, input_ids: Any, attention_mask: Any):
        """Run T new tokens against the cache; returns the last position's logits on the device
        [B, V] (a reused buffer: valid until the next step). attention_mask [B, P + T] covers the
        cached and the new tokens."""
        cfg = self.config
        ids = check_ids(input_ids, cfg.vocab_size)
        B, T = ids.shape
        P = self.length
        if self.cache is None or self.cache[0][0].shape[0] != B or P + T > self.cache[0][0].shape[2]:
            raise InputError(f"the device cache holds {0 if self.cache is None else self.cache[0][0].shape[2]} "
                             f"positions for batch {0 if self.cache is None else self.cache[0][0].shape[0]}; "
                             f"call new_cache(batch={B}, capacity>={P + T}) first")
        S = P + T
        mask = check_attention_mask(attention_mask, B, S)
        d_ids = self.cuda.to_device(ids.reshape(-1))  # host -> device: the ids and the mask only
        d_mask = self.cuda.to_device(np.ascontiguousarray(mask, np.int64))
        C = self.cache[0][0].shape[2]
        h = self._buffer("embed", (B * T, cfg.hidden_size))
        bad = self.cuda.to_device(np.array([-1], np.int64))
        self.k.gather[B * T, self.k.THREADS](self.weights["word_embeddings.weight"], d_ids, h, bad)
        alibi = self._buffer("alibi", (B, cfg.n_head, C))[:, :, :S]  # [B, N, S]
        mask_bias = self._buffer("mask_bias", (B, T, C))[:, :, :S]  # [B, T, S]
        self.k.alibi_and_mask[_blocks(B, 32), 32](d_mask, self.slopes, T, P, alibi, mask_bias)
        h = self._layer_norm(h, "word_embeddings_layernorm", "h")
        for i in range(cfg.n_layer):
            h = self._block(i, h, alibi, mask_bias, B, T, P, S)
        last = h.reshape(B, T, cfg.hidden_size)[:, T - 1, :]  # [B, H]: a strided view, no copy
        hf = self._layer_norm(last, "ln_f", "ln_f")
        self.length = S
        return self._linear(hf, self.lm_head, "logits", bias=False)  # [B, V]

    def last_logits(self, input_ids: Any, attention_mask: Any = None) -> np.ndarray:
        """Logits of the last position [B, V] for whole sequences (a fresh cache), on the host."""
        ids = check_ids(input_ids, self.config.vocab_size)
        self.new_cache(ids.shape[0], ids.shape[1])
        mask = np.ones_like(ids) if attention_mask is None else attention_mask
        return self.step(ids, mask).copy_to_host()

    def generate(self, input_ids: Any, attention_mask: Any = None, max_new_tokens: int = 20) -> np.ndarray:
        """Greedy decoding on the device: per step only the next token of each row comes back.
        Returns prompt + new tokens [B, T + max_new_tokens] (no EOS stop: fixed length)."""
        ids = check_ids(input_ids, self.config.vocab_size)
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
        B, T = ids.shape
        mask = np.ones((B, T + max_new_tokens), np.int64)
        mask[:, :T] = np.ones_like(ids) if attention_mask is None else check_attention_mask(attention_mask, B, T)
        self.new_cache(B, T + max_new_tokens)
        tokens = np.zeros((B, T + max_new_tokens), np.int64)
        tokens[:, :T] = ids
        logits = self.step(ids, mask[:, :T])
        best = self.cuda.device_array(B, np.int64)
        for j in range(max_new_tokens):
            self.k.argmax_rows[B, self.k.ROW_THREADS](logits, best)
            tokens[:, T + j] = best.copy_to_host()  # device -> host: one id per row
            if j + 1 < max_new_tokens:
                logits = self.step(tokens[:, T + j:T + j + 1], mask[:, :T + j + 1])
        return tokens
