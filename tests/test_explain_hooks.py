"""run_with_cache, run_with_hooks and the logit lens (minibloom/explain/), against golden dumps and
independent properties: a patch that changes nothing changes nothing; zeroing a head's context is
head_mask 0 for that head; patched embeddings are a forward on other ids; the lens by hand."""

from __future__ import annotations

import numpy as np
import pytest

from minibloom import EMBEDDED_CHECKPOINT, BloomConfig, BloomForCausalLM, BloomForSequenceClassification, BloomModel
from minibloom import golden
from minibloom.errors import InputError
from minibloom.explain import hook_names, logit_lens

IDS = np.array([[5, 17, 3, 9, 30, 2], [0, 0, 11, 4, 8, 21]])
MASK = np.array([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])


@pytest.fixture(scope="module")
def lm():
    return BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT)


def small(cls=BloomForCausalLM, **kw):  # the reference backend: a hooked intermediate of a fused Numba
    # kernel (the attention scores) is computed unfused, equal to the last float32 ulp, not bitwise
    return cls(BloomConfig(vocab_size=40, hidden_size=24, n_head=3, n_layer=3, **kw), seed=1, backend="numpy")


@pytest.mark.parametrize("cls", [BloomModel, BloomForCausalLM, BloomForSequenceClassification])
def test_run_with_cache_holds_exactly_what_golden_dump_writes(tmp_path, cls):
    model = small(cls, pad_token_id=0)
    record = golden.dump(model, tmp_path / "g.safetensors", IDS, MASK)
    expected = golden.load(tmp_path / "g.safetensors")
    _, cache = model.run_with_cache(IDS, attention_mask=MASK)
    assert list(cache) == list(record) == expected.order  # the golden names, in forward order
    assert set(cache) == set(expected.tensors)
    for name, value in expected.tensors.items():
        np.testing.assert_array_equal(cache[name], value, err_msg=name)


def test_run_with_cache_on_the_embedded_model_uses_the_golden_names(lm):
    out, cache = lm.run_with_cache(IDS[:1])
    assert [n for n in cache if n not in ("input_ids", "attention_mask", "logits")] == hook_names(lm.config.n_layer)
    np.testing.assert_array_equal(cache["logits"], out.logits)
    np.testing.assert_array_equal(cache["logits"], lm(IDS[:1]).logits)


def test_identity_hooks_on_every_name_change_nothing():
    model = small()
    plain = model(IDS, attention_mask=MASK).logits
    seen = []

    def same(value, name):
        seen.append(name)
        return value  # a copy of the value: the forward goes on with the replacement

    names = hook_names(model.config.n_layer)
    patched = model.run_with_hooks(IDS, attention_mask=MASK, fwd_hooks=[(n, same) for n in names]).logits
    np.testing.assert_array_equal(patched, plain)
    assert seen == names  # every hook ran once, in forward order


def test_zeroing_a_heads_context_equals_head_mask_zero_for_it():
    model = small()
    N, D = model.config.n_head, model.config.head_dim
    for layer, head in [(0, 0), (1, 2), (2, 1)]:
        head_mask = np.ones((model.config.n_layer, N), np.float32)
        head_mask[layer, head] = 0
        expected = model(IDS, attention_mask=MASK, head_mask=head_mask).logits

        def zero(context, name, head=head):
            context[..., head * D:(head + 1) * D] = 0  # head n owns columns n*D .. (n+1)*D of the merged context
            return context

        got = model.run_with_hooks(IDS, attention_mask=MASK,
                                   fwd_hooks=[(f"h.{layer}.self_attention.context", zero)]).logits
        np.testing.assert_array_equal(got, expected)
        assert not np.array_equal(got, model(IDS, attention_mask=MASK).logits)  # the patch did something


def test_patched_embeddings_are_a_forward_on_the_other_ids():
    model = small()
    other = (IDS * 7 + 1) % model.config.vocab_size
    table = model.params["word_embeddings.weight"]
    got = model.run_with_hooks(IDS, attention_mask=MASK, fwd_hooks=[("embeddings", lambda x, n: table[other])])
    np.testing.assert_array_equal(got.logits, model(other, attention_mask=MASK).logits)


def test_patched_scores_are_what_softmax_receives():
    model = small()
    T = IDS.shape[1]
    uniform = np.triu(np.full((T, T), -1e9, np.float32), 1)  # causal, otherwise equal scores
    _, cache = model.run_with_cache(IDS[:1], fwd_hooks=[("h.1.self_attention.scores", lambda s, n: uniform + 0 * s)])
    probs = cache["h.1.self_attention.probs"][0, 0]
    np.testing.assert_allclose(probs, np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None], rtol=1e-6)


def test_read_only_hooks_see_the_cached_values_and_the_cache_holds_patches():
    model = small()
    seen = {}
    _, cache = model.run_with_cache(IDS, attention_mask=MASK,
                                    fwd_hooks=[("h.0.mlp.gelu", lambda v, n: seen.update({n: v})),
                                               ("h.1.output", lambda v, n: np.zeros_like(v))])
    np.testing.assert_array_equal(seen["h.0.mlp.gelu"], cache["h.0.mlp.gelu"])
    assert not cache["h.1.output"].any()


@pytest.mark.parametrize("hooks, message", [
    ([("h.3.output", lambda v, n: v)], "'h.3.output' is not an intermediate"),
    ([("logits", lambda v, n: v)], "input or output"),
    ([("h.0.sef_attention.probs", lambda v, n: v)], "not an intermediate"),
    ([("ln_f", "not callable")], "not a function"),
    (["ln_f"], "pair"),
    ([("ln_f", lambda v, n: v[:, :1])], "returned shape"),
    ([("ln_f", lambda v, n: "text")], "not an array of numbers"),
])
def test_bad_hooks_are_one_input_error(hooks, message):
    with pytest.raises(InputError, match=message):
        small().run_with_hooks(IDS, attention_mask=MASK, fwd_hooks=hooks)


def test_logit_lens_rows_by_hand(lm):
    ids = IDS[0]
    lens = logit_lens(lm, ids, k=4)
    L = lm.config.n_layer
    assert lens.top_ids.shape == lens.top_probs.shape == (L + 1, len(ids), 4)
    out, cache = lm.run_with_cache(ids[None])
    p = lm.params
    streams = [cache["embeddings_layernorm"]] + [cache[f"h.{i}.output"] for i in range(L - 1)]
    for i, h in enumerate(streams + [None]):
        if h is None:  # the last row: the model's own prediction
            logits = out.logits[0].astype(np.float64)
        else:
            h = h[0].astype(np.float64)
            normed = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + lm.config.layer_norm_epsilon)
            logits = (normed * p["ln_f.weight"] + p["ln_f.bias"]) @ p["word_embeddings.weight"].astype(np.float64).T
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        np.testing.assert_allclose(lens.top_probs[i], np.take_along_axis(probs, lens.top_ids[i], -1), atol=1e-5)
        np.testing.assert_allclose(lens.top_probs[i], -np.sort(-probs, -1)[:, :4], atol=1e-5)
    assert (np.diff(lens.top_probs, axis=-1) <= 0).all()


def test_logit_lens_last_row_is_the_models_top_k(lm):
    lens = logit_lens(lm, IDS, attention_mask=MASK, k=3)
    logits = lm(IDS, attention_mask=MASK).logits  # [B, T, V]
    assert lens.top_ids.shape == (2, lm.config.n_layer + 1, IDS.shape[1], 3)
    np.testing.assert_array_equal(lens.top_ids[:, -1], np.argsort(-logits, axis=-1, kind="stable")[..., :3])


@pytest.mark.parametrize("k", [0, -1, 2.5, True, 10**9])
def test_logit_lens_refuses_a_bad_k(lm, k):
    with pytest.raises(InputError, match="k must be"):
        logit_lens(lm, IDS[0], k=k)


def test_logit_lens_needs_the_lm_head():
    with pytest.raises(InputError, match="BloomForCausalLM"):
        logit_lens(small(BloomModel), IDS[0])
