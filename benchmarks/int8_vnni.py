"""int8 decoding two ways, accuracy and speed: exact widening against activations quantised for VNNI.

    python benchmarks/int8_vnni.py                 # the embedded model on The Tempest, and random 560m widths

int8 storage decodes either by widening the weights to float32 (`numba_backend.INT8_ACTIVATIONS =
"float32"`, the default) or by quantising each input row to int8 as well and multiplying int8 x int8
with AVX512-VNNI ("int8", `numba_vnni`; LLM.int8()'s product without its outlier columns). Both
decode the same tokens one at a time with the KV cache (the path VNNI takes: <= 8 rows), beside the
float32 model; printed: the max abs difference of the logits (and the max |logit|), how often the
top token agrees with float32's, the perplexity of the text under each, and ms per token. Speed
against the streaming-read floor is `benchmarks/floor.py --storages int8 int8+vnni`.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

HELD_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "heldout", "tempest.txt")


def decode_logits(model, ids: np.ndarray) -> tuple[np.ndarray, float]:
    """Logits [T, V] of feeding ids [1, T] one token at a time with the cache, and seconds per token."""
    from minibloom import KVCache

    cache = KVCache.for_config(model.config, 1, ids.shape[1])
    rows, start = [], time.perf_counter()
    for t in range(ids.shape[1]):
        rows.append(model(ids[:, t:t + 1], past_key_values=cache).logits[0, -1])
    return np.stack(rows), (time.perf_counter() - start) / ids.shape[1]


def perplexity(logits: np.ndarray, ids: np.ndarray) -> float:
    shifted = logits[:-1] - logits[:-1].max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(np.exp(-logp[np.arange(len(ids) - 1), ids[1:]].mean()))


def compare(name: str, make, ids: np.ndarray) -> None:
    from minibloom.backends import numba_backend

    wide = make("float32")
    decode_logits(wide, ids[None, :4])
    reference, t32 = decode_logits(wide, ids[None])
    print(f"{name}: {len(ids)} tokens decoded one by one; float32: perplexity {perplexity(reference, ids):.3f}, "
          f"max |logit| {np.abs(reference).max():.2f}, {t32 * 1e3:.1f} ms/token")
    model = make("int8")
    exact = None
    for mode in ("float32", "int8"):
        numba_backend.INT8_ACTIVATIONS = mode
        decode_logits(model, ids[None, :4])  # warm-up: compile (or load) the kernels outside the timing
        logits, t = decode_logits(model, ids[None])
        versus = "" if exact is None else f", vs exact widening's {np.abs(logits - exact).max():.4f}"
        exact = logits if exact is None else exact
        agree = (logits.argmax(1) == reference.argmax(1)).mean()
        label = "int8 weights, exact widening " if mode == "float32" else "int8 weights + int8 activations (VNNI)"
        print(f"  {label}: max |logits - float32's| {np.abs(logits - reference).max():.4f}{versus}, top token agrees "
              f"{agree:.1%}, perplexity {perplexity(logits, ids):.3f}, {t * 1e3:.1f} ms/token")
    numba_backend.INT8_ACTIVATIONS = "float32"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=512)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # "converting the float32 weights to int8": on purpose

    from minibloom import EMBEDDED_CHECKPOINT, BloomConfig, BloomForCausalLM, BloomTokenizer
    from minibloom.backends import numba_vnni

    if not numba_vnni.available():
        print("this CPU has no AVX512-VNNI: the 'int8' setting falls back to exact widening (both rows equal)")
    tok = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
    ids = np.array(tok.encode(open(HELD_OUT, encoding="utf-8").read()))[:args.tokens]
    compare("embedded model (trained), The Tempest",
            lambda s: BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT, backend="numba", storage=s), ids)
    config = BloomConfig(vocab_size=4096, hidden_size=1024, n_head=16, n_layer=2)
    params = BloomForCausalLM(config, seed=0, backend="numba").params
    ids = np.random.default_rng(0).integers(0, 4096, size=64)
    compare("random weights, bloom-560m widths (2 layers, vocab 4096)",
            lambda s: BloomForCausalLM(config, dict(params), backend="numba", storage=s), ids)


if __name__ == "__main__":
    main()
