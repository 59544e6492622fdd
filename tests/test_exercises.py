"""The exercises' checkers (`python -m minibloom.exercises`): each accepts the reference and a
correct solution written independently here, and rejects the typical mistake with a message that
names the case and the position where it differs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from minibloom.exercises import EXERCISES, check, template

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
F32_MIN = np.finfo(np.float32).min

CORRECT = {
    "alibi": """
        import math
        import numpy as np

        def alibi_bias(attention_mask, n_head):
            p = 2 ** math.floor(math.log2(n_head))
            slopes = [2 ** (-8 * (i + 1) / p) for i in range(p)]
            slopes += [2 ** (-4 * (2 * i + 1) / p) for i in range(n_head - p)]
            pos = (np.cumsum(attention_mask, -1) - 1) * attention_mask
            return np.array(slopes, np.float32)[None, :, None, None] * pos[:, None, None, :]
    """,
    "layer_norm": """
        import numpy as np

        def layer_norm(x, weight, bias, eps):
            x = x.astype(np.float64)
            return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * weight + bias
    """,
    "gelu": """
        import numpy as np

        def bloom_gelu(x):
            return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    """,
    "softmax": """
        import numpy as np

        def softmax(x):
            e = np.exp(x - x.max(-1, keepdims=True))
            return e / e.sum(-1, keepdims=True)
    """,
    "causal_mask": """
        import numpy as np

        def causal_mask(attention_mask, query_length, past_length):
            B, S = attention_mask.shape
            out = np.zeros((B, 1, query_length, S), np.float32)
            for b in range(B):
                for t in range(query_length):
                    for s in range(S):
                        if s > past_length + t or attention_mask[b, s] == 0:
                            out[b, 0, t, s] = np.finfo(np.float32).min
            return out
    """,
    "attention": """
        import numpy as np

        def attention(q, k, v, alibi, mask_bias):
            s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]) + alibi + mask_bias
            p = np.exp(s - s.max(-1, keepdims=True))
            return p / p.sum(-1, keepdims=True) @ v
    """,
    "bpe_merge": """
        def bpe_merge(symbols, ranks):
            symbols = list(symbols)
            while len(symbols) > 1:
                pairs = [(ranks.get(p, float("inf")), i) for i, p in enumerate(zip(symbols, symbols[1:]))]
                rank, i = min(pairs)
                if rank == float("inf"):
                    break
                symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
            return symbols
    """,
    "cross_entropy": """
        import numpy as np

        def cross_entropy(logits, targets, ignore_index=-100):
            keep = targets != ignore_index
            x = logits[keep].astype(np.float64)
            logz = x.max(-1) + np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1))
            return float(np.mean(logz - x[np.arange(len(x)), targets[keep]]))
    """,
    "pooling": """
        import numpy as np

        def last_non_pad_index(input_ids, pad_token_id):
            T = input_ids.shape[1]
            return np.array([max([t for t in range(T) if row[t] != pad_token_id], default=0) for row in input_ids])
    """,
    "top_p": """
        import numpy as np

        def top_p(scores, p):
            out = np.full_like(scores, -np.inf)
            for b, row in enumerate(scores):
                probs = np.exp(row - row.max()); probs /= probs.sum()
                total = 0.0
                for i in np.argsort(-probs, kind="stable"):
                    out[b, i] = row[i]
                    total += probs[i]
                    if total >= p:
                        break
            return out
    """,
    "byte_level": """
        def to_byte_level(text):
            keep = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
            moved = [b for b in range(256) if b not in keep]
            table = {**{b: chr(b) for b in keep}, **{b: chr(256 + i) for i, b in enumerate(moved)}}
            return "".join(table[b] for b in text.encode("utf-8"))
    """,
    "pretokenize": """
        SEP = set("()|.,!?…。，、।۔،")

        def split_pieces(text):
            word = lambda c: not (c.isspace() or c in SEP)
            pieces, i, gap = [], 0, ""
            while i < len(text):
                j = i + 1 if text[i] == " " and i + 1 < len(text) and word(text[i + 1]) else i
                if j < len(text) and word(text[j]):
                    k = j
                    while k < len(text) and word(text[k]):
                        k += 1
                    if gap:
                        pieces.append(gap)
                    pieces.append(text[i:k])
                    gap, i = "", k
                else:
                    gap, i = gap + text[i], i + 1
            return pieces + [gap] if gap else pieces
    """,
    "head_distance": """
        import numpy as np

        def mean_distance(probs):
            N, T, _ = probs.shape
            return np.array([np.mean([sum(probs[n, t, s] * (t - s) for s in range(T)) for t in range(T)])
                             for n in range(N)])
    """,
    "logit_lens": """
        import numpy as np

        def logit_lens(h, ln_f_weight, ln_f_bias, eps, embeddings):
            h = h.astype(np.float64)
            x = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + eps) * ln_f_weight + ln_f_bias
            logits = x @ embeddings.T.astype(np.float64)
            e = np.exp(logits - logits.max(-1, keepdims=True))
            return e / e.sum(-1, keepdims=True)
    """,
    "kv_cache": """
        import numpy as np

        def kv_update(cache_keys, cache_values, start, keys, values):
            T = keys.shape[2]
            cache_keys[:, :, start:start + T] = keys
            cache_values[:, :, start:start + T] = values
            return np.stack([cache_keys[:, :, :start + T], cache_values[:, :, :start + T]])
    """,
    "headroom": """
        import numpy as np

        def headroom(expected, actual, tolerance):
            e, a = expected.astype(np.float64), actual.astype(np.float64)
            allowed = tolerance * (np.sqrt(np.mean(e ** 2)) + np.abs(e))
            return float(np.max(np.abs(a - e) / allowed))
    """,
    "bfloat16": """
        import numpy as np

        def bfloat16_bits(x):
            out = []
            for bits in x.astype(np.float32).view(np.uint32).ravel().tolist():
                if (bits & 0x7FFFFFFF) > 0x7F800000:
                    out.append(0x7FC0)
                    continue
                top, low = bits >> 16, bits & 0xFFFF
                if low > 0x8000 or (low == 0x8000 and top % 2 == 1):
                    top += 1
                out.append(top)
            return np.array(out, np.uint16).reshape(x.shape)
    """,
    "layer_norm_backward": """
        import numpy as np

        def layer_norm_backward(d_y, x, weight, eps):
            x, g = x.astype(np.float64), (d_y * weight).astype(np.float64)
            F = x.shape[-1]
            rstd = 1 / np.sqrt(x.var(-1, keepdims=True) + eps)
            xhat = (x - x.mean(-1, keepdims=True)) * rstd
            return rstd / F * (F * g - g.sum(-1, keepdims=True) - xhat * (g * xhat).sum(-1, keepdims=True))
    """,
    "adamw": """
        import numpy as np

        def adamw(param, grads, lr, weight_decay):
            p = param.astype(np.float64)
            m, v = np.zeros_like(p), np.zeros_like(p)
            for t, g in enumerate(grads, 1):
                p = p * (1 - lr * weight_decay)
                m = 0.9 * m + 0.1 * g
                v = 0.999 * v + 0.001 * g * g
                p = p - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
            return p
    """,
    "block": """
        def block(x, ln1, attention, ln2, mlp):
            after_attention = attention(ln1(x)) + x
            return mlp(ln2(after_attention)) + after_attention
    """,
}

# the typical mistake of each exercise, and what the report must say (case, position)
WRONG = {
    "alibi": ("""
        import numpy as np

        def alibi_bias(attention_mask, n_head):  # 2^(-8k/N) for every N: wrong when N is not a power of two
            slopes = 2.0 ** (-8 * np.arange(1, n_head + 1) / n_head)
            pos = (np.cumsum(attention_mask, -1) - 1) * attention_mask
            return slopes[None, :, None, None] * pos[:, None, None, :]
    """, "case 2 (6 heads: not a power of two): first difference at position [0, 0, 0, 1]"),
    "layer_norm": ("""
        import numpy as np

        def layer_norm(x, weight, bias, eps):  # eps added to the standard deviation
            return (x - x.mean(-1, keepdims=True)) / (x.std(-1, keepdims=True) + eps) * weight + bias
    """, "case 3 (nearly constant rows: eps matters): first difference at position [0, 0]"),
    "gelu": ("""
        import math
        import numpy as np

        def bloom_gelu(x):  # the exact erf GELU
            return np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.ravel()]).reshape(x.shape)
    """, "case 1 (49 points from -6 to 6): first difference at position ["),
    "softmax": ("""
        import numpy as np

        def softmax(x):  # no max subtraction: exp overflows
            e = np.exp(x)
            return e / e.sum(-1, keepdims=True)
    """, "case 2 (large scores): first difference at position [0, 0] (6 of 6 differ): "
                "expected 0.66524094, got nan"),
    "causal_mask": ("""
        import numpy as np

        def causal_mask(attention_mask, query_length, past_length):  # -inf instead of finfo.min
            S = attention_mask.shape[-1]
            future = np.arange(S)[None] > np.arange(past_length, past_length + query_length)[:, None]
            blocked = future[None] | (attention_mask == 0)[:, None, :]
            return np.where(blocked, -np.inf, 0.0)[:, None].astype(np.float32)
    """, "case 1 (4 tokens, no padding, nothing cached): first difference at position [0, 0, 0, 1]"),
    "attention": ("""
        import numpy as np

        def attention(q, k, v, alibi, mask_bias):  # forgot 1/sqrt(D)
            s = q @ np.swapaxes(k, -1, -2) + alibi + mask_bias
            p = np.exp(s - s.max(-1, keepdims=True))
            return p / p.sum(-1, keepdims=True) @ v
    """, "case 1 (B=1, N=2, T=4, D=8): first difference at position [0, 0, 1, "),
    "bpe_merge": ("""
        def bpe_merge(symbols, ranks):  # merges the leftmost pair that has a rank, whatever its rank
            symbols = list(symbols)
            merged = True
            while merged:
                merged = False
                for i in range(len(symbols) - 1):
                    if (symbols[i], symbols[i + 1]) in ranks:
                        symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
                        merged = True
                        break
            return symbols
    """, "case 1 (the toy merges {(b, c): 0, (a, b): 1, (ab, c): 2} on a b c): first difference at item 0: "
         "expected 'a', got 'abc'"),
    "cross_entropy": ("""
        import numpy as np

        def cross_entropy(logits, targets, ignore_index=-100):  # ignored rows still counted in the mean
            x = logits.astype(np.float64)
            logz = x.max(-1) + np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1))
            keep = targets != ignore_index
            return float(np.sum((logz - x[np.arange(len(x)), np.where(keep, targets, 0)])[keep]) / len(x))
    """, "case 2 (two rows ignored (-100)): first difference at the value"),
    "pooling": ("""
        import numpy as np

        def last_non_pad_index(input_ids, pad_token_id):  # count of real tokens - 1
            return (input_ids != pad_token_id).sum(-1) - 1
    """, "case 3 (left padding (BLOOM's tokenizer pads left)): first difference at position [0] (1 of 2 "
                "differ): expected 3, got 1"),
    "top_p": ("""
        import numpy as np

        def top_p(scores, p):  # drops the token that crosses p
            probs = np.exp(scores - scores.max(-1, keepdims=True)); probs /= probs.sum(-1, keepdims=True)
            order = np.argsort(-probs, -1)
            cum = np.cumsum(np.take_along_axis(probs, order, -1), -1)
            keep = np.zeros_like(probs, bool)
            np.put_along_axis(keep, order, cum < p, -1)
            return np.where(keep, scores, -np.inf)
    """, "case 1 (probabilities 0.5 0.3 0.15 0.05, p = 0.7): first difference at position [0, 1]"),
    "byte_level": ("""
        def to_byte_level(text):  # each unprintable byte b moved to chr(256 + b), not numbered in order
            keep = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
            return "".join(chr(b) if b in keep else chr(256 + b) for b in text.encode("utf-8"))
    """, "case 3 (DEL, no-break space, soft hyphen and ½ (0x7F, 0xA0, 0xAD are moved too)): first difference "
         "at item 0: expected 'ġ', got"),
    "pretokenize": ("""
        import re

        def split_pieces(text):  # \\s? joins a tab or newline to the word after it
            return re.findall(r"\\s?[^\\s()|.,!?…。，、।۔،]+|[\\s()|.,!?…。，、।۔،]+?(?=\\s?[^\\s()|.,!?…。，、।۔،])|[\\s()|.,!?…。，、।۔،]+", text)
    """, "case 3 (a tab, a newline, … and 。): first difference at item 2: expected ',\\t', got ','"),
    "head_distance": ("""
        import numpy as np

        def mean_distance(probs):  # the argmax key's distance, not the probability-weighted one
            T = probs.shape[-1]
            return (np.arange(T)[None, :] - probs.argmax(-1)).mean(-1)
    """, "case 2 (one head spread evenly over the past): first difference at position [0] (1 of 1 differ): expected 0.75"),
    "logit_lens": ("""
        import numpy as np

        def logit_lens(h, ln_f_weight, ln_f_bias, eps, embeddings):  # forgot ln_f
            logits = h @ embeddings.T
            e = np.exp(logits - logits.max(-1, keepdims=True))
            return e / e.sum(-1, keepdims=True)
    """, "case 1 (the embedding layer norm's output (row 0 of the lens)): first difference at position [0, "),
    "kv_cache": ("""
        import numpy as np

        def kv_update(cache_keys, cache_values, start, keys, values):  # off by one: writes after start
            T = keys.shape[2]
            cache_keys[:, :, start + 1:start + 1 + T] = keys
            cache_values[:, :, start + 1:start + 1 + T] = values
            return np.stack([cache_keys[:, :, :start + T], cache_values[:, :, :start + T]])
    """, "case 1 (prefill: 3 prompt tokens into an empty cache of 6): first difference at position [0, 0, 0, 0, 0]"),
    "headroom": ("""
        import numpy as np

        def headroom(expected, actual, tolerance):  # the tolerance not scaled by the tensor's rms
            e, a = expected.astype(np.float64), actual.astype(np.float64)
            return float(np.max(np.abs(a - e) / (tolerance + tolerance * np.abs(e))))
    """, "case 2 (every element off by 1e-5): first difference at the value"),
    "bfloat16": ("""
        import numpy as np

        def bfloat16_bits(x):  # truncates: keeps the top 16 bits
            return (x.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    """, "case 2 (values that round up, and one that rounds down): first difference at position [0] (2 of 3 "
         "differ): expected 16257, got 16256"),
    "layer_norm_backward": ("""
        import numpy as np

        def layer_norm_backward(d_y, x, weight, eps):  # treats the variance as a constant
            g = d_y * weight
            rstd = 1 / np.sqrt(x.var(-1, keepdims=True) + eps)
            return rstd * (g - g.mean(-1, keepdims=True))
    """, "case 2 (random [2, 3, 16]): first difference at position [0, 0, 0]"),
    "adamw": ("""
        import numpy as np

        def adamw(param, grads, lr, weight_decay):  # Adam with L2: the decay added to the gradient
            p = param.astype(np.float64)
            m, v = np.zeros_like(p), np.zeros_like(p)
            for t, g in enumerate(grads, 1):
                g = g + weight_decay * p
                m = 0.9 * m + 0.1 * g
                v = 0.999 * v + 0.001 * g * g
                p = p - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
            return p
    """, "case 3 (five steps, weight decay 0.1): first difference at position [0, 0]"),
    "block": ("""
        def block(x, ln1, attention, ln2, mlp):  # adds to the normed copy (post-LN residual)
            h = ln1(x)
            x1 = h + attention(h)
            h2 = ln2(x1)
            return h2 + mlp(h2)
    """, "case 1 (the embedded model's block 0): first difference at position [0, 0, 0]"),
}


def load(source: str, name: str):
    namespace: dict = {}
    exec(textwrap.dedent(source), namespace)
    return namespace[EXERCISES[name].function]


def test_every_exercise_has_a_solution_and_a_mistake_here():
    assert set(CORRECT) == set(WRONG) == set(EXERCISES) and len(EXERCISES) >= 20


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_the_reference_and_a_correct_solution_pass(name):
    ex = EXERCISES[name]
    assert check(ex, ex.reference).ok
    result = check(ex, load(CORRECT[name], name))
    assert result.ok, str(result)
    assert str(result).splitlines()[-1].startswith(f"PASS {name}: {len(ex.cases())} cases agree")


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_the_typical_mistake_is_rejected_at_a_named_position(name):
    source, where = WRONG[name]
    with np.errstate(all="ignore"):
        result = check(name, load(source, name))
    assert not result.ok
    text = str(result)
    assert f"FAIL {name} {where}" in text, text
    assert "hint: " in text and "expected" in text


def test_the_block_reference_is_what_the_model_computes():
    """The block exercise's reference wires the embedded model's own sub-layers: it reproduces the
    model's `h.{i}.output` golden tensor exactly."""
    from minibloom import EMBEDDED_CHECKPOINT, BloomModel, BloomTokenizer
    from minibloom.exercises.cases import embedded_sublayers, ref_block

    tok = BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)
    model = BloomModel.from_pretrained(EMBEDDED_CHECKPOINT)
    for layer, text in ((0, "But soft"), (3, "Now is the winter")):
        _, cache = model.run_with_cache(np.array([tok.encode(text)]), use_cache=False)
        assert np.array_equal(ref_block(*embedded_sublayers(layer, text)), cache[f"h.{layer}.output"])


def test_a_mistake_that_makes_nan_is_reported_with_the_value():
    """Softmax without max subtraction gives NaN on large scores: the report shows it."""
    with np.errstate(all="ignore"):
        text = str(check("softmax", load(WRONG["softmax"][0], "softmax")))
    assert "got nan" in text.lower() and "subtract each row's max" in text


def test_a_solution_that_raises_or_has_the_wrong_shape_fails_with_one_line():
    result = check("gelu", lambda x: x[:1])
    assert not result.ok and "expected shape (49,), got (1,)" in str(result)
    result = check("gelu", lambda x: 1 / 0)
    assert not result.ok and "bloom_gelu raised ZeroDivisionError" in str(result)


def test_a_check_that_compared_nothing_fails():
    from dataclasses import replace

    empty = replace(EXERCISES["gelu"], cases=lambda: [])
    assert not check(empty, EXERCISES["gelu"].reference).ok


def run(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "minibloom.exercises", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env)


def test_cli_lists_checks_and_exits_by_verdict(tmp_path):
    listed = run()
    assert listed.returncode == 0 and all(f"  {name} " in listed.stdout for name in EXERCISES)
    stub = tmp_path / "my_alibi.py"
    stub.write_text(run("alibi", "--template").stdout)
    todo = run("alibi", str(stub))
    assert todo.returncode == 1 and "not written yet" in todo.stdout
    stub.write_text(textwrap.dedent(CORRECT["alibi"]))
    good = run("alibi", str(stub))
    assert good.returncode == 0 and "PASS alibi" in good.stdout, good.stdout + good.stderr
    stub.write_text(textwrap.dedent(WRONG["alibi"][0]))
    bad = run("alibi", str(stub))
    assert bad.returncode == 1 and WRONG["alibi"][1] in bad.stdout and "hint:" in bad.stdout


def test_cli_usage_mistakes_are_one_line_and_exit_2(tmp_path):
    for args, needle in ((["nope"], "no exercise 'nope'"), (["alibi"], "give the file"),
                         (["alibi", str(tmp_path / "missing.py")], "no such file"),
                         (["alibi", "json"], "defines no function alibi_bias()")):
        done = run(*args)
        assert done.returncode == 2 and needle in done.stderr and len(done.stderr.strip().splitlines()) == 1, args


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_the_stubs_in_docs_are_the_templates(name):
    """docs/exercises/NAME.py is what `--template` prints (regenerate: python -m minibloom.exercises NAME --template)."""
    with open(os.path.join(ROOT, "docs", "exercises", f"{name}.py"), encoding="utf-8") as f:
        assert f.read() == template(name)
