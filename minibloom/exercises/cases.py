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
    from ..logits_process import top_p

    return top_p(scores, p)


def cases_top_p():
    probs = np.array([[0.5, 0.3, 0.15, 0.05]], np.float32)
    return [Case((np.log(probs), 0.7), "probabilities 0.5 0.3 0.15 0.05, p = 0.7",
                 "keep the smallest set of most likely tokens whose probability reaches p: the token that "
                 "crosses p is kept (0.5 + 0.3 >= 0.7 keeps both)"),
            Case((np.log(probs[:, ::-1].copy()), 0.3), "the top token alone is more than p",
                 "the most likely token is always kept"),
            Case((rng().normal(0, 2, (3, 10)).astype(np.float32), 0.9), "random scores [3, 10], p = 0.9")]


EXERCISES: dict[str, Exercise] = {ex.name: ex for ex in [
    Exercise("alibi", "alibi_bias", "(attention_mask: np.ndarray, n_head: int) -> np.ndarray", """
BLOOM's ALiBi term: slope[n] * position[b, s] -> float32 [B, N, 1, S].

attention_mask [B, S]: 1 for a real token, 0 for a pad. The slopes are a geometric sequence per
head (1/2, 1/4, ..., 1/256 for 8 heads); positions count real tokens only (left padding must not
move them). Chapter 4 of docs/tutorial.md.
""", ref_alibi, "minibloom.alibi.alibi_bias", cases_alibi,
             "see the docstrings of minibloom/alibi.py"),
    Exercise("layer_norm", "layer_norm", "(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray", """
Layer norm over the last axis: (x - mean) / sqrt(var + eps) * weight + bias, same shape as x.

x [..., F], weight and bias [F]. Chapter 3 of docs/tutorial.md.
""", ref_layer_norm, "minibloom.functional.layer_norm", cases_layer_norm,
             "see the docstring of minibloom.functional.layer_norm", atol=1e-5, rtol=1e-4),
    Exercise("gelu", "bloom_gelu", "(x: np.ndarray) -> np.ndarray", """
BLOOM's GELU, elementwise, float32 in and out.

Chapter 6 of docs/tutorial.md: which GELU, and which constants, BLOOM was trained with.
""", ref_gelu, "minibloom.functional.bloom_gelu", cases_gelu,
             "BLOOM uses the tanh approximation with Megatron's constants, "
             "0.5 x (1 + tanh(0.79788456 x (1 + 0.044715 x^2))), not the exact erf GELU"),
    Exercise("softmax", "softmax", "(x: np.ndarray) -> np.ndarray", """
Softmax over the last axis: exp(x) / sum(exp(x)), same shape as x, float32.

It must stay finite for large scores and for rows masked with finfo(float32).min. Chapter 5.
""", ref_softmax, "minibloom.functional.softmax", cases_softmax,
             "see the docstring of minibloom.functional.softmax"),
    Exercise("causal_mask", "causal_mask", "(attention_mask: np.ndarray, query_length: int, past_length: int) -> np.ndarray", """
The additive attention mask, float32 [B, 1, T, S]: 0 where query t may see key s, else the mask value.

attention_mask [B, S] (S = past_length + query_length; 0 marks a pad). Query t sits at absolute
position past_length + t and sees keys s <= past_length + t that are not pads. The mask value is
the one transformers uses (chapter 5 of docs/tutorial.md, and minibloom/masking.py).
""", ref_causal_mask, "minibloom.masking.causal_padding_bias", cases_causal_mask,
             "masked entries are float32's minimum, np.finfo(np.float32).min, not -inf: a fully masked row "
             "then comes out of softmax uniform instead of NaN (minibloom/masking.py)", atol=0, rtol=0),
    Exercise("attention", "attention", "(q: np.ndarray, k: np.ndarray, v: np.ndarray, alibi: np.ndarray, mask_bias: np.ndarray) -> np.ndarray", """
Scaled dot-product attention with ALiBi and a mask -> context [B, N, T, D].

q [B, N, T, D], k and v [B, N, S, D], alibi [B, N, 1, S], mask_bias [B, 1, T, S] (0 or finfo.min).
scores = q k^T / sqrt(D) + alibi + mask_bias; softmax over the keys; times v. Chapter 5.
""", ref_attention, "minibloom.attention.attention_probs (then @ v)", cases_attention,
             "scores = q @ k^T / sqrt(D) + alibi + mask_bias, softmax over the last axis (keys), then @ v: "
             "minibloom/attention.py", atol=1e-5, rtol=1e-4),
    Exercise("bpe_merge", "bpe_merge", "(symbols: list, ranks: dict) -> list", """
Apply BPE merges to one word: symbols (list of str, one per byte), ranks {(left, right): rank}.

Returns the final list of str. Chapter 1 of docs/tutorial.md; the real tokenizer's trace is
`minibloom tokenize --explain WORD`.
""", ref_bpe_merge, "minibloom.explain.tokens.naive_merge", cases_bpe_merge,
             "repeatedly merge the adjacent pair of lowest rank (leftmost on a tie) until no pair has a rank"),
    Exercise("cross_entropy", "cross_entropy", "(logits: np.ndarray, targets: np.ndarray, ignore_index: int = -100) -> float", """
Mean over rows of -log softmax(logits[m])[targets[m]], skipping rows whose target is ignore_index.

logits [M, C], targets [M] ints. Chapter 8 of docs/tutorial.md.
""", ref_cross_entropy, "minibloom.losses.cross_entropy", cases_cross_entropy,
             "see the docstring of minibloom/losses.py", atol=1e-5, rtol=1e-5),
    Exercise("pooling", "last_non_pad_index", "(input_ids: np.ndarray, pad_token_id: int) -> np.ndarray", """
The position [B] (ints) a sequence classifier reads each row at: its last token that is not a pad.

input_ids [B, T]. Chapter 8 of docs/tutorial.md.
""", ref_pooling, "minibloom.heads.last_non_pad_index", cases_pooling,
             "see the docstring of minibloom.heads.last_non_pad_index"),
    Exercise("top_p", "top_p", "(scores: np.ndarray, p: float) -> np.ndarray", """
Nucleus filtering: scores [B, V] with every token outside the nucleus set to -inf.

The nucleus is the smallest set of most likely tokens (probabilities softmax(scores)) whose total
probability reaches p. Chapter 9 of docs/tutorial.md.
""", ref_top_p, "minibloom.logits_process.top_p", cases_top_p,
             "see the docstring of minibloom.logits_process.top_p"),
]}
