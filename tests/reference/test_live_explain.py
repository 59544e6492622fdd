"""Live: the logit lens and `minibloom explain`'s attentions against transformers 4.57.1 on the
embedded model (hidden_states through its ln_f and LM head; output_attentions)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.reference.reference_utils import torch, transformers

from minibloom import EMBEDDED_CHECKPOINT, BloomForCausalLM, BloomTokenizer
from minibloom.explain import logit_lens

TEXTS = ["To be, or not to be: that is the question.", "ROMEO. But soft, what light"]


@pytest.fixture(scope="module")
def models():
    theirs = transformers.BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT, dtype=torch.float32).eval()
    return theirs, BloomForCausalLM.from_pretrained(EMBEDDED_CHECKPOINT), BloomTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)


def their_lens(theirs, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[L+1, T, V] probabilities of lm_head(ln_f(h_i)), the last row from the model's own logits."""
    with torch.no_grad():
        out = theirs(torch.from_numpy(ids[None]), output_hidden_states=True, output_attentions=True)
        rows = [theirs.lm_head(theirs.transformer.ln_f(h)) for h in out.hidden_states[:-1]] + [out.logits]
        probs = torch.softmax(torch.cat(rows), dim=-1).numpy()  # [L+1, T, V]
    return probs, np.stack([a[0].numpy() for a in out.attentions])  # [L, N, T, T]


def check_lens(top_ids: np.ndarray, top_probs: np.ndarray, probs: np.ndarray) -> None:
    """Our top-k probabilities are transformers' at our ids and its k largest; ids equal wherever the
    gap to the next candidate is clear of float32 noise."""
    k = top_ids.shape[-1]
    np.testing.assert_allclose(top_probs, np.take_along_axis(probs, top_ids, -1), rtol=1e-5, atol=2e-6)
    ranked = np.sort(probs, -1)[..., ::-1][..., :k + 1]
    np.testing.assert_allclose(top_probs, ranked[..., :k], rtol=1e-5, atol=2e-6)
    theirs = np.argsort(-probs, -1, kind="stable")[..., :k]
    clear = np.abs(np.diff(ranked, axis=-1)) > 1e-5  # [.., k]: entry j is apart from j+1
    clear[..., 1:] &= clear[..., :-1]
    assert clear.sum() > top_ids.size // 2, "the ids comparison compared almost nothing"
    np.testing.assert_array_equal(top_ids[clear], theirs[clear])


@pytest.mark.parametrize("text", TEXTS)
def test_logit_lens_equals_transformers_hidden_states_through_ln_f_and_lm_head(models, text):
    theirs, ours, tok = models
    ids = np.array(tok(text)["input_ids"])
    lens = logit_lens(ours, ids, k=5)
    probs, _ = their_lens(theirs, ids)
    assert lens.top_ids.shape == (ours.config.n_layer + 1, len(ids), 5)
    check_lens(lens.top_ids, lens.top_probs, probs)


def test_explain_json_lens_and_attentions_equal_transformers(models, tmp_path):
    import json

    from minibloom.explain.report import explain, write_report

    theirs, ours, tok = models
    write_report(tmp_path, explain(ours, tok, TEXTS[0], k=5))
    data = json.loads((tmp_path / "explain.json").read_text(encoding="utf-8"))
    probs, attentions = their_lens(theirs, np.array(data["input_ids"]))
    check_lens(np.array(data["logit_lens"]["top_ids"]), np.array(data["logit_lens"]["top_probs"]), probs)
    np.testing.assert_allclose(np.array(data["attentions"]), attentions, atol=2e-6)  # JSON keeps 6 decimals
