"""Training without torch: each backward against finite differences, the Numba backward kernels
against the NumPy ones, AdamW / schedule / clipping properties, and value_and_grad's errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minibloom
from minibloom import functional as F
from minibloom.backends import numba_backward, numpy_backward
from minibloom.training import AdamW, clip_grad_norm, cosine_schedule, value_and_grad
from tests.conftest import assert_close

PAD = 3


def directional(f, x, d_y, u, eps):
    """sum(d_y * (f(x + eps u) - f(x - eps u)) / 2 eps): what <d_x, u> must equal."""
    return float(np.sum(d_y.astype(np.float64) * (f(x + eps * u).astype(np.float64) - f(x - eps * u)) / (2 * eps)))


@given(st.integers(1, 4), st.integers(2, 9), st.integers(0, 10**6))
def test_each_op_backward_matches_finite_differences(rows, width, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, width))  # float64: the ops keep it, so differences are exact enough
    u, d_y = rng.normal(size=x.shape), rng.normal(size=x.shape)
    w, b = rng.normal(size=width), rng.normal(size=width)
    d_x, _, _ = F.layer_norm_backward(d_y, x, w, 1e-5)
    assert np.isclose(np.sum(d_x * u), directional(lambda z: F.layer_norm(z, w, b, 1e-5), x, d_y, u, 1e-6), rtol=1e-5, atol=1e-6)
    p = F.softmax(x).astype(np.float64)
    d_s = F.softmax_backward(d_y, p)
    softmax64 = lambda z: np.exp(z - z.max(-1, keepdims=True)) / np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)
    assert np.isclose(np.sum(d_s * u), directional(softmax64, x, d_y, u, 1e-6), rtol=1e-4, atol=1e-5)
    xg = x.astype(np.float32)  # GELU computes in float32: a larger step, a looser bound
    d_g = F.bloom_gelu_backward(d_y.astype(np.float32), xg)
    assert np.isclose(np.sum(d_g * u), directional(F.bloom_gelu, xg, d_y, u.astype(np.float32), 1e-2), rtol=2e-2, atol=2e-2)
    W = rng.normal(size=(3, width))
    d_out = rng.normal(size=(rows, 3))
    for tp in (1, 2) if width >= 2 else (1,):
        d_lx, d_w = F.linear_tp_backward(d_out, x, W, tp)
        assert np.isclose(np.sum(d_lx * u), directional(lambda z: F.linear_tp(z, W, tp), x, d_out, u, 1e-3), rtol=1e-3)
        uw = rng.normal(size=W.shape)
        assert np.isclose(np.sum(d_w * uw), directional(lambda m: F.linear_tp(x, m, tp), W, d_out, uw, 1e-3), rtol=1e-3)


def tiny_model(cls, n_head, seed, **overrides):
    config = minibloom.BloomConfig(vocab_size=24, hidden_size=4 * n_head, n_head=n_head, n_layer=2, pad_token_id=PAD,
                                   **overrides)
    model = cls(config, seed=seed, backend="numpy")  # the reference: its loss equals value_and_grad's bitwise
    rng = np.random.default_rng(seed)
    for p in model.params.values():  # spread the weights so every path carries gradient
        p += rng.normal(scale=0.5, size=p.shape).astype(np.float32)
    return model


@settings(max_examples=10)
@given(st.sampled_from(["BloomForCausalLM", "BloomForSequenceClassification", "BloomForTokenClassification",
                        "BloomForQuestionAnswering"]), st.integers(1, 3), st.booleans(), st.booleans(),
       st.integers(0, 10**6))
def test_value_and_grad_matches_finite_differences_of_the_loss(cls_name, n_head, tied, post_ln, seed):
    """The directional derivative along a random direction of each parameter, right-padded rows
    (left padding makes rows whose value ignores q and k, see attention_scores_backward)."""
    cls = getattr(minibloom, cls_name)
    model = tiny_model(cls, n_head, seed, tie_word_embeddings=tied, apply_residual_connection_post_layernorm=post_ln,
                       num_labels=3, problem_type="multi_label_classification" if "Sequence" in cls_name else None)
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, 24, size=(2, 6))
    ids[1, 4:] = PAD
    batch = {"input_ids": ids, "attention_mask": (ids != PAD).astype(np.int64),
             "head_mask": np.array([1.0, 0.5, 0.0])[:n_head]}
    if cls_name == "BloomForQuestionAnswering":
        batch.update(start_positions=np.array([1, 3]), end_positions=np.array([2, 9]))
    elif cls_name == "BloomForSequenceClassification":
        batch["labels"] = rng.random((2, 3)).astype(np.float32)
    else:
        batch["labels"] = np.where(ids == PAD, -100, ids % 3 if "Token" in cls_name else ids)
    loss, grads = value_and_grad(model, **batch)
    for name, param in model.params.items():  # one tensor at a time, so a small wrong gradient shows
        u = rng.normal(size=param.shape)
        u = (u / np.linalg.norm(u)).astype(np.float32)  # a unit step inside this tensor
        base = param.copy()

        def slope(h):  # central difference of the loss along u
            param[...] = base + h * u
            up = float(model(**batch).loss)
            param[...] = base - h * u
            down = float(model(**batch).loss)
            param[...] = base
            return (up - down) / (2 * h)

        numeric = (4 * slope(5e-3) - slope(1e-2)) / 3  # Richardson: the h^2 error terms cancel
        analytic = float(np.sum(grads[name].astype(np.float64) * u))
        assert abs(numeric - analytic) <= 5e-4 + 1e-2 * abs(analytic), (name, numeric, analytic)
    assert float(model(**batch).loss) == float(loss)


@given(st.integers(1, 40), st.integers(1, 70), st.integers(0, 10**6))
def test_numba_backward_kernels_equal_numpy(rows, width, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, rows, width)).astype(np.float32) * 3
    d_y = rng.normal(size=x.shape).astype(np.float32)
    w = rng.normal(size=width).astype(np.float32)
    for got, want, name in zip(numba_backward.layer_norm_backward(d_y, x, w, 1e-5),
                               numpy_backward.layer_norm_backward(d_y, x, w, 1e-5), ("d_x", "d_w", "d_b")):
        assert_close(got, want, f"layer_norm_backward {name}", atol=2e-5)
    assert_close(numba_backward.bloom_gelu_backward(d_y, x), numpy_backward.bloom_gelu_backward(d_y, x), "gelu")
    p = F.softmax(x)
    p[0, 0] = 1.0 / width  # a uniform (fully masked) row
    assert_close(numba_backward.softmax_backward(d_y, p), numpy_backward.softmax_backward(d_y, p), "softmax")
    ids = rng.integers(0, 5, size=(2, rows))  # repeated ids: the scatter must add, not overwrite
    assert_close(numba_backward.embedding_backward(d_y, ids, 5), numpy_backward.embedding_backward(d_y, ids, 5),
                 "embedding")
    big = x * 1e3  # exp(2|u|) overflows to inf: tanh is +-1, the slope 0 or 1
    assert_close(numba_backward.bloom_gelu_backward(d_y, big), numpy_backward.bloom_gelu_backward(d_y, big), "gelu big")
    logits = x.reshape(-1, width) * 10  # [M, C], C = width classes
    targets = rng.integers(0, width, size=logits.shape[0])
    targets[rng.random(targets.size) < 0.3] = -100  # ignored rows: zero gradient, left out of the mean
    got, want = numba_backward.cross_entropy_with_grad(logits, targets), numpy_backward.cross_entropy_with_grad(
        logits, targets)
    assert np.isclose(got[0], want[0], rtol=1e-6, atol=1e-6, equal_nan=True), (got[0], want[0])  # NaN: all ignored
    assert_close(got[1], want[1], "cross_entropy d_logits")


def test_tied_embedding_gradient_is_the_sum_of_both_uses():
    tied = tiny_model(minibloom.BloomForCausalLM, 2, 0)
    untied = minibloom.BloomForCausalLM(minibloom.BloomConfig(**{**tied.config.to_dict(), "tie_word_embeddings": False}),
                                        {**tied.params, "lm_head.weight": tied.params["word_embeddings.weight"].copy()})
    ids = np.array([[5, 6, 7, 5]])
    _, g_tied = value_and_grad(tied, input_ids=ids, labels=ids)
    _, g_untied = value_and_grad(untied, input_ids=ids, labels=ids)
    assert "lm_head.weight" not in g_tied and "lm_head.weight" in g_untied
    assert_close(g_tied["word_embeddings.weight"],
                 g_untied["word_embeddings.weight"] + g_untied["lm_head.weight"], "tied gradient")
    assert not g_untied["word_embeddings.weight"][8:].any()  # tokens never gathered get no gather gradient


def test_training_lowers_the_loss_of_a_repeated_batch():
    model = tiny_model(minibloom.BloomForCausalLM, 2, 1)
    ids = np.array([[4, 5, 6, 7, 8, 9, 10, 11]])
    opt = AdamW(model.params, lr=1e-2)
    first = None
    for _ in range(20):
        loss, grads = value_and_grad(model, input_ids=ids, labels=ids)
        first = loss if first is None else first
        clip_grad_norm(grads, 1.0)
        opt.step(grads)
    assert loss < 0.5 * first


def test_adamw_resumes_from_its_state_step_for_step():
    rng = np.random.default_rng(0)
    grads = [{"w": rng.normal(size=(3, 2)).astype(np.float32)} for _ in range(6)]
    a, b = {"w": np.ones((3, 2), np.float32)}, {"w": np.ones((3, 2), np.float32)}
    opt_a = AdamW(a, lr=0.1)
    for g in grads:
        opt_a.step(g)
    opt_b = AdamW(b, lr=0.1)
    for g in grads[:3]:
        opt_b.step(g)
    resumed = AdamW(b, lr=0.1)
    resumed.load_state_dict({k: v.copy() for k, v in opt_b.state_dict().items()})
    for g in grads[3:]:
        resumed.step(g)
    np.testing.assert_array_equal(a["w"], b["w"])


def test_adamw_first_step_moves_each_weight_by_lr():
    """Bias correction makes the first step exactly lr * sign(g) (up to eps), whatever g's scale."""
    p = {"w": np.zeros(4, np.float32)}
    AdamW(p, lr=0.01, weight_decay=0.0).step({"w": np.array([1e-3, -5.0, 2.0, -1e3], np.float32)})
    np.testing.assert_allclose(p["w"], [-0.01, 0.01, -0.01, 0.01], rtol=1e-4)


def test_cosine_schedule_warms_up_then_decays_to_min():
    lrs = [cosine_schedule(s, 1.0, 10, 110, min_lr=0.1) for s in range(111)]
    assert lrs[0] == 0.0 and lrs[5] == 0.5 and lrs[10] == 1.0
    assert abs(lrs[60] - 0.55) < 1e-12 and abs(lrs[110] - 0.1) < 1e-12
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_clip_grad_norm_bounds_the_global_norm():
    grads = {"a": np.full(4, 3.0, np.float32), "b": np.full(9, 4.0 / 3, np.float32)}  # norm sqrt(36 + 16) ~ 7.2
    norm = clip_grad_norm(grads, 1.0)
    assert abs(norm - np.sqrt(52)) < 1e-5
    after = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
    assert abs(after - 1.0) < 1e-5
    small = {"a": np.full(2, 0.1, np.float32)}
    clip_grad_norm(small, 1.0)
    assert (small["a"] == np.float32(0.1)).all()  # under the bound: untouched


def test_value_and_grad_refuses_what_it_cannot_differentiate():
    config = minibloom.BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1)
    ids = np.array([[1, 2, 3]])
    with pytest.raises(minibloom.InputError, match="head and a loss"):
        value_and_grad(minibloom.BloomModel(config), input_ids=ids)
    with pytest.raises(minibloom.InputError, match="labels"):
        value_and_grad(minibloom.BloomForCausalLM(config), input_ids=ids)
    with pytest.raises(minibloom.InputError, match="end_positions"):
        value_and_grad(minibloom.BloomForQuestionAnswering(config), input_ids=ids, start_positions=np.array([0]))
    with pytest.raises(ValueError, match="float32 weights"):
        value_and_grad(minibloom.BloomForCausalLM(config, storage="float16"), input_ids=ids, labels=ids)
    with pytest.raises(minibloom.InputError, match="exactly the parameters' names"):
        AdamW({"w": np.zeros(2, np.float32)}).step({"v": np.zeros(2, np.float32)})
    with pytest.raises(minibloom.InputError, match="float32"):
        AdamW({"w": np.zeros(2, np.float16)})


def test_a_memory_mapped_float32_checkpoint_trains_in_place_and_its_file_never_changes(tmp_path):
    import shutil

    from tests.conftest import HF_EXPECTED_DIR

    directory = tmp_path / "ckpt"
    shutil.copytree(f"{HF_EXPECTED_DIR}/causal_lm_tied", directory)
    before = (directory / "model.safetensors").read_bytes()
    model = minibloom.BloomForCausalLM.from_pretrained(directory)  # float32 on disk: memory-mapped as it is
    ids = np.arange(12).reshape(2, 6) % model.config.vocab_size
    opt = AdamW(model.params, lr=1e-2)
    first, grads = value_and_grad(model, input_ids=ids, labels=ids)
    opt.step(grads)  # in place, into copy-on-write pages
    assert float(value_and_grad(model, input_ids=ids, labels=ids)[0]) < float(first)
    assert (directory / "model.safetensors").read_bytes() == before


def test_adamw_refuses_a_read_only_parameter_when_created_and_never_half_applies_a_step():
    params = {"a": np.ones(3, np.float32), "b": np.ones(2, np.float32)}
    params["b"].flags.writeable = False
    with pytest.raises(minibloom.InputError, match="'b'.*read-only"):
        AdamW(params)
    params["b"] = np.ones(2, np.float32)
    opt = AdamW(params, lr=0.1)
    params["b"].flags.writeable = False  # made read-only after creation: refused before any update
    with pytest.raises(minibloom.InputError, match="'b'"):
        opt.step({"a": np.ones(3, np.float32), "b": np.ones(2, np.float32)})
    assert (params["a"] == 1).all() and opt.t == 0 and not opt.m["a"].any()
    params["b"] = np.ones(2, np.float32)
    with pytest.raises(minibloom.InputError, match="'b'"):  # a mis-shaped gradient: nothing moves either
        opt.step({"a": np.ones(3, np.float32), "b": np.ones(5, np.float32)})
    assert (params["a"] == 1).all() and opt.t == 0


def test_held_out_accuracy_and_f1_equal_a_direct_count():
    from minibloom.training.loop import evaluate_metrics

    rng = np.random.default_rng(0)
    seq = tiny_model(minibloom.BloomForSequenceClassification, 2, 0, num_labels=3)
    tokc = tiny_model(minibloom.BloomForTokenClassification, 2, 1, num_labels=3)
    ids = [rng.integers(4, 24, size=(3, 5)) for _ in range(2)]
    seq_batches = [{"input_ids": i, "labels": rng.integers(0, 3, 3)} for i in ids]
    tok_batches = [{"input_ids": i, "labels": np.where(rng.random((3, 5)) < 0.3, -100, rng.integers(0, 3, (3, 5)))}
                   for i in ids]
    got = evaluate_metrics(seq, seq_batches)
    pred = np.concatenate([seq(input_ids=b["input_ids"]).logits.argmax(-1) for b in seq_batches])
    gold = np.concatenate([b["labels"] for b in seq_batches])
    assert got["accuracy"] == pytest.approx(np.mean(pred == gold)) and "f1" not in got
    got = evaluate_metrics(tokc, tok_batches)
    pred = np.concatenate([tokc(input_ids=b["input_ids"]).logits.argmax(-1).ravel() for b in tok_batches])
    gold = np.concatenate([b["labels"].ravel() for b in tok_batches])
    pred, gold = pred[gold != -100], gold[gold != -100]
    f1s = []
    for c in sorted(set(pred) | set(gold)):  # macro F1 over the classes that occur
        tp, fp, fn = np.sum((pred == c) & (gold == c)), np.sum((pred == c) & (gold != c)), np.sum((pred != c) & (gold == c))
        f1s.append(2 * tp / (2 * tp + fp + fn))
    assert got["accuracy"] == pytest.approx(np.mean(pred == gold))
    assert got["f1"] == pytest.approx(np.mean(f1s))
    lm = tiny_model(minibloom.BloomForCausalLM, 2, 2)
    assert set(evaluate_metrics(lm, [{"input_ids": ids[0], "labels": ids[0]}])) == {"loss"}
