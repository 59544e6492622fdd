"""The exercises: for each, the learner's function (name, signature, docstring), the reference it
is checked against (the op minibloom runs), and the inputs, each chosen to expose one usual mistake.

Shape legend: B batch, N heads, T query length, S key length, D head_dim, M rows, C classes, V vocab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

F32_MIN = np.finfo(np.float32).min


@dataclass(frozen=True)
class Case:
    """One input: `args` for both functions, `what` it tests (printed), `hint` when it fails."""

    args: tuple
    what: str
    hint: str = ""


@dataclass(frozen=True)
class Exercise:
    name: str
    function: str          # the learner's function name
    signature: str         # "(x: np.ndarray) -> np.ndarray", for the stub
    doc: str               # the stub's docstring: what to compute, with shapes
    reference: Callable[..., Any]
    reference_name: str    # where the reference lives, to read after
    cases: Callable[[], list[Case]]
    hint: str              # the general hint, when a case has none
    atol: float = 1e-6
    rtol: float = 1e-5

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0]


def rng() -> np.random.Generator:
    return np.random.default_rng(25)


def left_padded(lengths: list[int], S: int) -> np.ndarray:
    """Attention mask [B, S] with `lengths[b]` real tokens at the right end of each row."""
    return np.array([[0] * (S - n) + [1] * n for n in lengths], np.int64)


# ---- alibi ------------------------------------------------------------------------------------------

def ref_alibi(attention_mask, n_head):
    from ..alibi import alibi_bias

    return alibi_bias(attention_mask, n_head)


def cases_alibi():
    return [Case((np.ones((1, 5), np.int64), 8), "8 heads, 5 tokens, no padding",
                 "slope[n] = 2^(-8(n+1)/N) for N a power of two; bias[b, n, 0, s] = slope[n] * position[s]"),
            Case((np.ones((1, 6), np.int64), 6), "6 heads: not a power of two",
                 "for N not a power of two take the slopes of N' = 2^floor(log2 N) heads, then every other slope "
                 "of 2N' heads (odd powers of 2^(-4/N')): the docstring of minibloom.alibi.alibi_slopes"),
            Case((left_padded([3, 6], 6), 12), "12 heads, a left-padded row",
                 "positions count real tokens only, (cumsum(mask) - 1) * mask, so left padding does not move "
                 "them (minibloom.alibi.alibi_positions); the pads get position 0")]


# ---- layer norm -------------------------------------------------------------------------------------

def ref_layer_norm(x, weight, bias, eps):
    from ..functional import layer_norm

    return layer_norm(x, weight, bias, eps)


def cases_layer_norm():
    r = rng()
    w, b = r.normal(1, 0.2, 16).astype(np.float32), r.normal(0, 0.2, 16).astype(np.float32)
    return [Case((r.normal(0, 1, (2, 3, 16)).astype(np.float32), w, b, 1e-5), "random rows [2, 3, 16]"),
            Case((r.normal(500, 3, (2, 16)).astype(np.float32), w, b, 1e-5), "rows far from 0 (mean 500)",
                 "subtract the mean before squaring; the variance divides by F, not F - 1 (torch.nn.LayerNorm)"),
            Case(((1 + 1e-3 * r.normal(0, 1, (2, 16))).astype(np.float32), w, b, 1e-5),
                 "nearly constant rows: eps matters",
                 "eps goes inside the square root: (x - mean) / sqrt(var + eps), not / (std + eps)")]


# ---- gelu -------------------------------------------------------------------------------------------

def ref_gelu(x):
    from ..functional import bloom_gelu

    return bloom_gelu(x)


def cases_gelu():
    return [Case((np.linspace(-6, 6, 49).astype(np.float32),), "49 points from -6 to 6"),
            Case((rng().normal(0, 3, (4, 16)).astype(np.float32),), "random [4, 16]")]


# ---- softmax ----------------------------------------------------------------------------------------

def ref_softmax(x):
    from ..functional import softmax

    return softmax(x, axis=-1)


def cases_softmax():
    masked = np.array([[0.5, 1.5, F32_MIN, F32_MIN], [F32_MIN] * 4], np.float32)
    return [Case((rng().normal(0, 2, (3, 5)).astype(np.float32),), "random scores [3, 5]"),
            Case((np.array([[1000, 999, 998], [-1000, -1001, -1002]], np.float32),), "large scores",
                 "exp(1000) overflows to inf: subtract each row's max first (softmax(x - c) == softmax(x))"),
            Case((masked,), "masked keys (finfo.min); a row with every key masked",
                 "with the row max subtracted a fully masked row is all zeros before exp, so it comes out "
                 "uniform (1/S each), as transformers' does: minibloom/masking.py")]


# ---- causal mask ------------------------------------------------------------------------------------

def ref_causal_mask(attention_mask, query_length, past_length):
    from ..masking import causal_padding_bias

    return causal_padding_bias(attention_mask, query_length, past_length)


def cases_causal_mask():
    return [Case((np.ones((1, 4), np.int64), 4, 0), "4 tokens, no padding, nothing cached"),
            Case((left_padded([2, 5], 5), 5, 0), "a left-padded row: pad keys are hidden too"),
            Case((np.ones((1, 6), np.int64), 2, 4), "2 new tokens after 4 cached ones",
                 "query t sits at absolute position past_length + t: it sees keys s <= past_length + t")]


# ---- attention --------------------------------------------------------------------------------------

def ref_attention(q, k, v, alibi, mask_bias):
    from ..attention import attention_probs

    return attention_probs(q, k, alibi, mask_bias) @ v  # [B, N, T, S] @ [B, N, S, D] -> [B, N, T, D]


def attention_case(lengths: list[int], N: int, T: int, D: int, what: str, hint: str = "") -> Case:
    from ..alibi import alibi_bias
    from ..masking import causal_padding_bias

    r, B = rng(), len(lengths)
    mask = left_padded(lengths, T)
    q, k, v = (r.normal(0, 1, (B, N, T, D)).astype(np.float32) for _ in range(3))
    return Case((q, k, v, alibi_bias(mask, N), causal_padding_bias(mask, T)), what, hint)


def cases_attention():
    return [attention_case([4], 2, 4, 8, "B=1, N=2, T=4, D=8"),
            attention_case([2, 5], 4, 5, 4, "a left-padded batch: pad queries see no key",
                           "a fully masked query row is uniform over all keys (subtract the row max before exp)")]


# ---- bpe merge --------------------------------------------------------------------------------------

def ref_bpe_merge(symbols, ranks):
    from ..explain.tokens import naive_merge

    return naive_merge(symbols, ranks)[0]


def cases_bpe_merge():
    from .. import EMBEDDED_CHECKPOINT, BloomTokenizer
    from ..tokenizer.bytes_unicode import to_byte_level

    toy = {("b", "c"): 0, ("a", "b"): 1, ("ab", "c"): 2}
    ranks = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT).bpe.ranks
    return [Case((list("abc"), toy), "the toy merges {(b, c): 0, (a, b): 1, (ab, c): 2} on a b c",
                 "merge the adjacent pair of lowest rank anywhere in the word first, not the leftmost pair"),
            Case((list("abab"), {("a", "b"): 0, ("ab", "ab"): 1}), "a pair that occurs twice: a b a b",
                 "after a merge, look at the new pairs again until no adjacent pair has a rank"),
            *(Case((list(to_byte_level(w)), ranks), f"{w!r} with the embedded tokenizer's {len(ranks)} merges")
              for w in (" lovely", " discontent", " Shakespeare"))]


# ---- cross-entropy ----------------------------------------------------------------------------------

def ref_cross_entropy(logits, targets, ignore_index=-100):
    from ..losses import cross_entropy

    return cross_entropy(logits, targets, ignore_index)


def cases_cross_entropy():
    r = rng()
    return [Case((r.normal(0, 2, (4, 6)).astype(np.float32), np.array([0, 5, 2, 2]), -100), "M=4 rows, C=6 classes"),
            Case((r.normal(0, 2, (5, 6)).astype(np.float32), np.array([1, -100, 3, -100, 0]), -100),
                 "two rows ignored (-100)", "ignored rows count neither in the sum nor in the number averaged over"),
            Case((np.array([[1000, 0, -1000], [0, 1000, 0]], np.float32), np.array([0, 2]), -100), "large logits",
                 "log softmax = x - max - log(sum(exp(x - max))) (log-sum-exp): never exp a large number")]


# ---- pooling ----------------------------------------------------------------------------------------

def ref_pooling(input_ids, pad_token_id):
    from ..heads import last_non_pad_index

    return last_non_pad_index(input_ids, pad_token_id, input_ids.shape[0])


def cases_pooling():
    return [Case((np.array([[5, 6, 7, 8]]), 3), "one row, no padding"),
            Case((np.array([[5, 6, 3, 3], [5, 6, 7, 8]]), 3), "right padding"),
            Case((np.array([[3, 3, 5, 6], [5, 6, 7, 8]]), 3), "left padding (BLOOM's tokenizer pads left)",
                 "the rightmost token that is not a pad, argmax(arange(T) * (ids != pad)); not the count of "
                 "real tokens minus one, which is wrong for left padding"),
            Case((np.array([[3, 3, 3], [4, 5, 6]]), 3), "a row of pads only",
                 "transformers' rule gives position 0 for a row of pads (argmax of all zeros)")]


# ---- top-p ------------------------------------------------------------------------------------------

def ref_top_p(scores, p):
    from ..generation.logits_process import top_p

    return top_p(scores, p)


def cases_top_p():
    probs = np.array([[0.5, 0.3, 0.15, 0.05]], np.float32)
    return [Case((np.log(probs), 0.7), "probabilities 0.5 0.3 0.15 0.05, p = 0.7",
                 "keep the smallest set of most likely tokens whose probability reaches p: the token that "
                 "crosses p is kept (0.5 + 0.3 >= 0.7 keeps both)"),
            Case((np.log(probs[:, ::-1].copy()), 0.3), "the top token alone is more than p",
                 "the most likely token is always kept"),
            Case((rng().normal(0, 2, (3, 10)).astype(np.float32), 0.9), "random scores [3, 10], p = 0.9")]




# ---- byte level ------------------------------------------------------------------------------------

def ref_byte_level(text):
    from ..tokenizer.bytes_unicode import to_byte_level

    return list(to_byte_level(text))  # one character per UTF-8 byte


def cases_byte_level():
    return [Case((" héllo",), "' héllo': a space and a two-byte é",
                 "encode to UTF-8 first (é is the two bytes 0xC3 0xA9); printable bytes stand for themselves"),
            Case(("a\tb\nc d",), "a tab, a newline and a space: moved bytes 0x09, 0x0A, 0x20",
                 "bytes 0x00-0x20 are moved to U+0100 + their rank among the moved bytes: space -> 'Ġ', "
                 "newline -> 'Ċ'"),
            Case(("\x7f\xa0\xad½",), "DEL, no-break space, soft hyphen and ½ (0x7F, 0xA0, 0xAD are moved too)",
                 "the moved bytes are numbered in order (0x00-0x20, then 0x7F-0xA0, then 0xAD), from U+0100: "
                 "DEL is the 34th, U+0121, not U+0100 + 0x7F")]


# ---- pre-tokenizer ---------------------------------------------------------------------------------

def ref_pretokenize(text):
    from ..tokenizer.pretokenizer import split_pieces

    return split_pieces(text)


def cases_pretokenize():
    return [Case(("Hello, world!  How are you?",), "'Hello, world!  How are you?'",
                 "a piece is an optional single space plus a run of word characters; the text between two "
                 "such matches (punctuation, extra spaces) is a piece of its own"),
            Case(("a.b,c (x)|y  z",), "'a.b,c (x)|y  z': ( ) | are separators too",
                 "BLOOM's class [^(\\s|[.,!?…。，、।۔،])] excludes '(', ')' and '|' as well as white space and "
                 "the ten punctuation marks: so ' (' and ')|' are gaps"),
            Case(("To be,\tor not…\nthat is 。question",), "a tab, a newline, … and 。",
                 "only a plain space (U+0020) joins the word after it; a tab or newline stays in the gap; "
                 "… and 。 are separators")]


# ---- head distance ---------------------------------------------------------------------------------

def ref_head_distance(probs):
    back = np.arange(probs.shape[-2])[:, None] - np.arange(probs.shape[-1])[None, :]  # [T, T]: t - s
    return (probs * back).sum(-1).mean(-1)  # as minibloom.explain.report.explain computes mean_distance


def cases_head_distance():
    from .. import EMBEDDED_CHECKPOINT, BloomForCausalLM, BloomTokenizer

    tok = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
    lm = BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT)
    ids = np.array([tok.encode("ROMEO.\nBut soft, what light through yonder window breaks?")])
    probs = lm(ids, output_attentions=True).attentions  # L x [1, N, T, T]
    eye = np.eye(4, dtype=np.float32)[None]
    return [Case((eye,), "one head that attends to itself only: distance 0"),
            Case((np.tril(np.ones((4, 4), np.float32))[None] / np.arange(1, 5, dtype=np.float32)[None, :, None],),
                 "one head spread evenly over the past",
                 "query t looks t - s tokens back at key s; weight each distance by probs[n, t, s], sum over s, "
                 "then average over the T queries"),
            Case((probs[0][0],), "the embedded model's layer 0, 8 heads"),
            Case((probs[3][0],), "the embedded model's layer 3, 8 heads")]


# ---- logit lens ------------------------------------------------------------------------------------

def ref_logit_lens(h, ln_f_weight, ln_f_bias, eps, embeddings):
    from ..functional import layer_norm, softmax

    return softmax(layer_norm(h, ln_f_weight, ln_f_bias, eps) @ embeddings.T, axis=-1)  # [T, V]


def cases_logit_lens():
    from .. import EMBEDDED_CHECKPOINT, BloomModel, BloomTokenizer

    tok = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
    model = BloomModel.from_pretrained(EMBEDDED_CHECKPOINT)
    w, b = (model.params[f"ln_f.{n}"].astype(np.float32) for n in ("weight", "bias"))
    E = model.params["word_embeddings.weight"].astype(np.float32)
    hs = model(np.array([tok.encode("But soft, what light")]), output_hidden_states=True).hidden_states
    eps = model.config.layer_norm_epsilon
    return [Case((hs[0][0], w, b, eps, E), "the embedding layer norm's output (row 0 of the lens)",
                 "apply ln_f (with its weight and bias) before the tied embedding matrix: lm_head(ln_f(h))"),
            Case((hs[2][0], w, b, eps, E), "the stream entering block 2",
                 "logits = ln_f(h) @ E^T [T, V] with E = word_embeddings [V, H], then softmax over V")]


# ---- kv cache --------------------------------------------------------------------------------------

def ref_kv_cache(cache_keys, cache_values, start, keys, values):
    from ..cache import KVCache

    B, N, capacity, D = cache_keys.shape
    cache = KVCache(1, B, N, D, capacity)
    cache.keys[0][...], cache.values[0][...] = cache_keys, cache_values
    return np.stack(cache.update(0, keys, values, start))  # [2, B, N, start + T, D]


def kv_case(capacity: int, start: int, T: int, what: str, hint: str = "") -> Case:
    r = rng()
    cache_k, cache_v = (np.zeros((1, 2, capacity, 4), np.float32) for _ in range(2))
    cache_k[:, :, :start], cache_v[:, :, :start] = (r.normal(0, 1, (1, 2, start, 4)) for _ in range(2))
    keys, values = (r.normal(0, 1, (1, 2, T, 4)).astype(np.float32) for _ in range(2))
    return Case((cache_k, cache_v, start, keys, values), what, hint)


def cases_kv_cache():
    return [kv_case(6, 0, 3, "prefill: 3 prompt tokens into an empty cache of 6"),
            kv_case(6, 3, 1, "one step after 3 cached tokens",
                    "the new rows go at positions start .. start + T - 1 (the first free one is start, the "
                    "number already cached), and the step reads positions 0 .. start + T - 1"),
            kv_case(8, 5, 2, "two new tokens after 5 cached, capacity 8",
                    "return the filled positions only, [B, N, start + T, D]: the unfilled rest of the "
                    "preallocated cache is not part of the past")]


# ---- golden headroom -------------------------------------------------------------------------------

def ref_headroom(expected, actual, tolerance):
    from ..golden import diff_tensor

    axes = [f"axis{i}" for i in range(expected.ndim)]
    return diff_tensor("x", expected, actual, axes, tolerance, tolerance, scale_aware=True).headroom


def cases_headroom():
    r = rng()
    e = r.normal(0, 1, (2, 3, 8)).astype(np.float32)
    big = e.copy()
    big[0, 0, 0] = 50.0
    return [Case((e, e.copy(), 1e-5), "a port equal to the reference: headroom 0"),
            Case((e, e + np.float32(1e-5), 1e-5), "every element off by 1e-5",
                 "allowed = tolerance * (rms(expected) + |expected|) per element, rms over the whole tensor"),
            Case((big, big * np.float32(1.0001), 1e-5), "one large element (50) off by 0.005",
                 "the rms is of the *expected* tensor, sqrt(mean(e^2)); |expected| is per element"),
            Case((e, np.where(e > 1.5, e + 0.01, e).astype(np.float32), 1e-3), "a few elements off by 0.01",
                 "headroom is the largest |actual - expected| / allowed over the elements")]


# ---- layer norm backward ---------------------------------------------------------------------------

def ref_layer_norm_backward(d_y, x, weight, eps):
    from ..functional import layer_norm_backward

    return layer_norm_backward(d_y, x, weight, eps)[0]


def cases_layer_norm_backward():
    r = rng()
    w = r.normal(1, 0.2, 16).astype(np.float32)
    return [Case((np.ones((2, 16), np.float32), r.normal(0, 1, (2, 16)).astype(np.float32), np.ones(16, np.float32),
                  1e-5), "d_y all ones, weight 1: the gradient is 0 (a shift leaves y unchanged)",
                 "subtract mean(g): adding a constant to a row does not change the normalised output"),
            Case((r.normal(0, 1, (2, 3, 16)).astype(np.float32), r.normal(2, 3, (2, 3, 16)).astype(np.float32), w,
                  1e-5), "random [2, 3, 16]",
                 "the variance depends on the row too: d_x = rstd (g - mean(g) - xhat mean(g xhat)), g = d_y w")]


# ---- bfloat16 --------------------------------------------------------------------------------------

def ref_bfloat16(x):
    from ..storage import bfloat16_bits

    return bfloat16_bits(x)


def cases_bfloat16():
    def f(*bits):
        return np.array(bits, np.uint32).view(np.float32)

    return [Case((np.array([1.0, -2.0, 0.0, 3.140625, np.inf], np.float32),), "values bfloat16 holds exactly"),
            Case((f(0x3F80C000, 0x3F80_8001, 0x3F80_7FFF),), "values that round up, and one that rounds down",
                 "round to nearest: add 0x7FFF (+ the lowest kept bit) before dropping the low 16 bits; "
                 "x.view(uint32) >> 16 truncates"),
            Case((f(0x3F80_8000, 0x3F81_8000),), "ties: exactly half way",
                 "a tie goes to the even neighbour (the one whose lowest kept bit is 0): 0x3F80 stays, "
                 "0x3F81 goes up to 0x3F82"),
            Case((np.array([np.nan, -np.nan], np.float32),), "NaN", "NaN becomes the quiet NaN 0x7FC0")]


# ---- adamw -----------------------------------------------------------------------------------------

def ref_adamw(param, grads, lr, weight_decay):
    from ..training import AdamW

    params = {"w": param.astype(np.float32).copy()}
    opt = AdamW(params, lr=lr, weight_decay=weight_decay)
    for g in grads:
        opt.step({"w": g})
    return params["w"]


def cases_adamw():
    r = rng()
    p = r.normal(0, 1, (3, 4)).astype(np.float32)
    grads = [r.normal(0, 0.1, (3, 4)).astype(np.float32) for _ in range(5)]
    return [Case((p, grads[:1], 1e-2, 0.0), "one step, no weight decay",
                 "bias correction: m / (1 - beta1^t) and v / (1 - beta2^t); the first step moves each weight "
                 "by about lr"),
            Case((p, grads, 1e-2, 0.0), "five steps, no weight decay"),
            Case((p, grads, 1e-2, 0.1), "five steps, weight decay 0.1",
                 "AdamW decays the weight itself, p *= 1 - lr * weight_decay, before the Adam update; adding "
                 "weight_decay * p to the gradient is Adam with L2, not AdamW")]


# ---- block -----------------------------------------------------------------------------------------

def ref_block(x, ln1, attention, ln2, mlp):
    x1 = x + attention(ln1(x))  # [B, T, H]: the wiring of minibloom.block.bloom_block
    return x1 + mlp(ln2(x1))


def embedded_sublayers(layer: int, text: str) -> tuple:
    """The embedded model's stream entering block `layer` on `text` [1, T, H], and the block's four
    sub-layers as functions [1, T, H] -> [1, T, H] (attention without its residual add)."""
    from .. import EMBEDDED_CHECKPOINT, BloomModel, BloomTokenizer
    from ..alibi import alibi_bias
    from ..attention import self_attention
    from ..block import mlp, sub_params
    from ..masking import causal_padding_bias
    from ..model import block_spec

    tok = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
    model = BloomModel.from_pretrained(EMBEDDED_CHECKPOINT)
    ids = np.array([tok.encode(text)])
    _, cache = model.run_with_cache(ids, use_cache=False)
    x = cache["embeddings_layernorm" if layer == 0 else f"h.{layer - 1}.output"]
    p, spec, mask = model.layer_params(layer), block_spec(model.config), np.ones(ids.shape, np.int64)
    alibi, bias = alibi_bias(mask, spec.attention.n_head), causal_padding_bias(mask, ids.shape[1], 0)

    def norm(name):
        return lambda h: model.ops.layer_norm(h, p[f"{name}.weight"], p[f"{name}.bias"], spec.layer_norm_epsilon)

    def attention(h):
        return self_attention(h, sub_params(p, "self_attention."), alibi, bias, spec.attention, model.ops)[0]

    def feed_forward(h):
        return mlp(h, sub_params(p, "mlp."), spec.attention, model.ops)

    return x, norm("input_layernorm"), attention, norm("post_attention_layernorm"), feed_forward


def cases_block():
    return [Case(embedded_sublayers(0, "But soft, what light"), "the embedded model's block 0",
                 "pre-LN: each sub-layer reads a layer-normed copy and its output is added to the un-normed "
                 "stream: x1 = x + attention(ln1(x))"),
            Case(embedded_sublayers(2, "Now is the winter of our discontent"), "the embedded model's block 2",
                 "the MLP reads ln2 of x1, the stream *after* the attention's add, and adds to x1")]


EXERCISES: dict[str, Exercise] = {ex.name: ex for ex in [
    Exercise("alibi", "alibi_bias", "(attention_mask: np.ndarray, n_head: int) -> np.ndarray", """
BLOOM's ALiBi term: slope[n] * position[b, s] -> float32 [B, N, 1, S].

attention_mask [B, S]: 1 for a real token, 0 for a pad. The slopes are a geometric sequence per
head (1/2, 1/4, ..., 1/256 for 8 heads); positions count real tokens only (left padding must not
move them). Chapter 6 of docs/tutorial.md.
""", ref_alibi, "minibloom.alibi.alibi_bias", cases_alibi,
             "see the docstrings of minibloom/alibi.py"),
    Exercise("layer_norm", "layer_norm", "(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray", """
Layer norm over the last axis: (x - mean) / sqrt(var + eps) * weight + bias, same shape as x.

x [..., F], weight and bias [F]. Chapter 5 of docs/tutorial.md.
""", ref_layer_norm, "minibloom.functional.layer_norm", cases_layer_norm,
             "see the docstring of minibloom.functional.layer_norm", atol=1e-5, rtol=1e-4),
    Exercise("gelu", "bloom_gelu", "(x: np.ndarray) -> np.ndarray", """
BLOOM's GELU, elementwise, float32 in and out.

Chapter 9 of docs/tutorial.md: which GELU, and which constants, BLOOM was trained with.
""", ref_gelu, "minibloom.functional.bloom_gelu", cases_gelu,
             "BLOOM uses the tanh approximation with Megatron's constants, "
             "0.5 x (1 + tanh(0.79788456 x (1 + 0.044715 x^2))), not the exact erf GELU"),
    Exercise("softmax", "softmax", "(x: np.ndarray) -> np.ndarray", """
Softmax over the last axis: exp(x) / sum(exp(x)), same shape as x, float32.

It must stay finite for large scores and for rows masked with finfo(float32).min. Chapter 7.
""", ref_softmax, "minibloom.functional.softmax", cases_softmax,
             "see the docstring of minibloom.functional.softmax"),
    Exercise("causal_mask", "causal_mask", "(attention_mask: np.ndarray, query_length: int, past_length: int) -> np.ndarray", """
The additive attention mask, float32 [B, 1, T, S]: 0 where query t may see key s, else the mask value.

attention_mask [B, S] (S = past_length + query_length; 0 marks a pad). Query t sits at absolute
position past_length + t and sees keys s <= past_length + t that are not pads. The mask value is
the one transformers uses (chapter 4 of docs/tutorial.md, and minibloom/masking.py).
""", ref_causal_mask, "minibloom.masking.causal_padding_bias", cases_causal_mask,
             "masked entries are float32's minimum, np.finfo(np.float32).min, not -inf: a fully masked row "
             "then comes out of softmax uniform instead of NaN (minibloom/masking.py)", atol=0, rtol=0),
    Exercise("attention", "attention", "(q: np.ndarray, k: np.ndarray, v: np.ndarray, alibi: np.ndarray, mask_bias: np.ndarray) -> np.ndarray", """
Scaled dot-product attention with ALiBi and a mask -> context [B, N, T, D].

q [B, N, T, D], k and v [B, N, S, D], alibi [B, N, 1, S], mask_bias [B, 1, T, S] (0 or finfo.min).
scores = q k^T / sqrt(D) + alibi + mask_bias; softmax over the keys; times v. Chapter 7.
""", ref_attention, "minibloom.attention.attention_probs (then @ v)", cases_attention,
             "scores = q @ k^T / sqrt(D) + alibi + mask_bias, softmax over the last axis (keys), then @ v: "
             "minibloom/attention.py", atol=1e-5, rtol=1e-4),
    Exercise("bpe_merge", "bpe_merge", "(symbols: list, ranks: dict) -> list", """
Apply BPE merges to one word: symbols (list of str, one per byte), ranks {(left, right): rank}.

Returns the final list of str. Chapter 2 of docs/tutorial.md; the real tokenizer's trace is
`minibloom tokenize --explain WORD`.
""", ref_bpe_merge, "minibloom.explain.tokens.naive_merge", cases_bpe_merge,
             "repeatedly merge the adjacent pair of lowest rank (leftmost on a tie) until no pair has a rank"),
    Exercise("cross_entropy", "cross_entropy", "(logits: np.ndarray, targets: np.ndarray, ignore_index: int = -100) -> float", """
Mean over rows of -log softmax(logits[m])[targets[m]], skipping rows whose target is ignore_index.

logits [M, C], targets [M] ints. Chapter 12 of docs/tutorial.md.
""", ref_cross_entropy, "minibloom.losses.cross_entropy", cases_cross_entropy,
             "see the docstring of minibloom/losses.py", atol=1e-5, rtol=1e-5),
    Exercise("pooling", "last_non_pad_index", "(input_ids: np.ndarray, pad_token_id: int) -> np.ndarray", """
The position [B] (ints) a sequence classifier reads each row at: its last token that is not a pad.

input_ids [B, T]. Chapter 12 of docs/tutorial.md.
""", ref_pooling, "minibloom.heads.last_non_pad_index", cases_pooling,
             "see the docstring of minibloom.heads.last_non_pad_index"),
    Exercise("top_p", "top_p", "(scores: np.ndarray, p: float) -> np.ndarray", """
Nucleus filtering: scores [B, V] with every token outside the nucleus set to -inf.

The nucleus is the smallest set of most likely tokens (probabilities softmax(scores)) whose total
probability reaches p. Chapter 14 of docs/tutorial.md.
""", ref_top_p, "minibloom.generation.logits_process.top_p", cases_top_p,
             "see the docstring of minibloom.generation.logits_process.top_p"),
    Exercise("byte_level", "to_byte_level", "(text: str) -> str", """
A text's UTF-8 bytes as the byte-level alphabet shows them: one printable character per byte.

Bytes that are printable Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the 68 others,
in byte order, become chr(256), chr(257), ... (so a space is 'Ġ'). Chapter 1 of docs/tutorial.md.
""", ref_byte_level, "minibloom.tokenizer.bytes_unicode.to_byte_level", cases_byte_level,
             "see the docstring of minibloom/tokenizer/bytes_unicode.py"),
    Exercise("pretokenize", "split_pieces", "(text: str) -> list", """
BLOOM's pre-tokenizer: cut text into pieces (list of str) that BPE merges one at a time.

The regex ` ?[^(\\s|[.,!?…。，、।۔،])]+` (Oniguruma) marks the matches; the text between two
matches is a piece too, so the pieces join back to the text. Chapter 3 of docs/tutorial.md.
""", ref_pretokenize, "minibloom.tokenizer.pretokenizer.split_pieces", cases_pretokenize,
             "see the docstring of minibloom/tokenizer/pretokenizer.py"),
    Exercise("head_distance", "mean_distance", "(probs: np.ndarray) -> np.ndarray", """
How far back each head looks -> [N]: sum over s of probs[n, t, s] * (t - s), averaged over t.

probs [N, T, T]: one layer's causal attention probabilities (rows sum to 1). Chapter 8 of
docs/tutorial.md.
""", ref_head_distance, "minibloom.explain.report.explain (heads.mean_distance)", cases_head_distance,
             "distance t - s, weighted by the probabilities, summed over keys, averaged over queries"),
    Exercise("logit_lens", "logit_lens", "(h: np.ndarray, ln_f_weight: np.ndarray, ln_f_bias: np.ndarray, eps: float, embeddings: np.ndarray) -> np.ndarray", """
One row of the logit lens: the next-token probabilities [T, V] the LM head reads from stream h.

h [T, H]: a hidden state (the embedding layer norm's output or the stream entering a block);
ln_f_weight, ln_f_bias [H]; embeddings [V, H] (tied: the LM head is the embedding matrix).
Chapter 11 of docs/tutorial.md.
""", ref_logit_lens, "minibloom.explain.lens.logit_lens", cases_logit_lens,
             "softmax(layer_norm(h) @ embeddings.T) over the vocabulary", atol=1e-6, rtol=1e-3),
    Exercise("kv_cache", "kv_update", "(cache_keys: np.ndarray, cache_values: np.ndarray, start: int, keys: np.ndarray, values: np.ndarray) -> np.ndarray", """
One layer's cache step: write the new keys and values, return what the step attends to.

cache_keys, cache_values [B, N, capacity, D], filled at positions 0 .. start - 1; keys, values
[B, N, T, D] of the new tokens. Return np.stack([all_keys, all_values]) -> [2, B, N, start + T, D].
Chapter 13 of docs/tutorial.md.
""", ref_kv_cache, "minibloom.cache.KVCache.update", cases_kv_cache,
             "see the docstring of minibloom.cache.KVCache.update", atol=0, rtol=0),
    Exercise("headroom", "headroom", "(expected: np.ndarray, actual: np.ndarray, tolerance: float) -> float", """
The headroom of one tensor in a golden compare: max over elements of |actual - expected| / allowed.

allowed = tolerance * (rms + |expected|), rms = sqrt(mean(expected ** 2)) over the whole tensor
(the float32 bound `minibloom golden compare` applies). <= 1 passes. Chapter 15 of docs/tutorial.md.
""", ref_headroom, "minibloom.golden.diff_tensor (scale_aware)", cases_headroom,
             "see the docstrings of minibloom.golden.diff_tensor and summarise", atol=0, rtol=1e-6),
    Exercise("bfloat16", "bfloat16_bits", "(x: np.ndarray) -> np.ndarray", """
float32 -> bfloat16 bit patterns (uint16, same shape), as storage="bfloat16" and torch round them.

bfloat16 is float32's top 16 bits, rounded to nearest with ties to even; NaN -> 0x7FC0.
Chapter 16 of docs/tutorial.md.
""", ref_bfloat16, "minibloom.storage.bfloat16_bits", cases_bfloat16,
             "see the docstring of minibloom.storage.bfloat16_bits", atol=0, rtol=0),
    Exercise("layer_norm_backward", "layer_norm_backward", "(d_y: np.ndarray, x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray", """
The gradient d_x [..., F] of y = layer_norm(x) * weight + bias, given d_y [..., F].

x [..., F], weight [F]. Chapter 17 of docs/tutorial.md.
""", ref_layer_norm_backward, "minibloom.functional.layer_norm_backward", cases_layer_norm_backward,
             "see the docstring of minibloom.functional.layer_norm_backward", atol=1e-5, rtol=1e-3),
    Exercise("adamw", "adamw", "(param: np.ndarray, grads: list, lr: float, weight_decay: float) -> np.ndarray", """
The weights after one AdamW step per gradient in grads (torch.optim.AdamW, betas (0.9, 0.999), eps 1e-8).

param [...] float32; grads: a list of arrays shaped like param; m and v start at 0.
Chapter 18 of docs/tutorial.md.
""", ref_adamw, "minibloom.training.AdamW", cases_adamw,
             "see the docstring of minibloom.training.AdamW", atol=1e-6, rtol=1e-5),
    Exercise("block", "block", "(x: np.ndarray, ln1, attention, ln2, mlp) -> np.ndarray", """
Wire one BLOOM block from its four sub-layers: x [B, T, H] -> out [B, T, H].

ln1, attention, ln2, mlp are functions [B, T, H] -> [B, T, H] (the embedded model's
input_layernorm, self-attention without its residual add, post_attention_layernorm and MLP).
Chapter 10 of docs/tutorial.md.
""", ref_block, "minibloom.block.bloom_block", cases_block,
             "see minibloom.block.bloom_block", atol=1e-5, rtol=1e-4),
]}
