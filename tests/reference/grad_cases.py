"""The fixed gradient cases shared by the live test and `make_hf_grads.py` (NumPy only, no torch).

Each case: (head class name, config overrides, batch). Between them they cover the four heads,
tied and untied embeddings, non-power-of-two head counts, left and right padding (with fully padded
query rows), head_mask, slow_but_exact with pretraining_tp 2, and both residual modes.
"""

from __future__ import annotations

import numpy as np

PAD = 3
VOCAB, LAYERS = 40, 2
IDS = np.array([[PAD, PAD, 5, 6, 7, 8, 9], [10, 11, 12, 13, 14, PAD, PAD], [14, 15, 16, 17, 18, 19, 20]], np.int64)
MASK = (IDS != PAD).astype(np.int64)
LM_LABELS = np.where(MASK == 1, IDS, -100)
HEAD_MASK = np.array([[1.0, 0.0, 0.5], [0.25, 1.0, 1.0]], np.float32)  # [L, N] for n_head 3
BASE = {"input_ids": IDS, "attention_mask": MASK}

# name -> (class, config overrides, batch)
GRAD_CASES = {
    "causal_lm_tied": ("BloomForCausalLM", dict(hidden_size=16, n_head=4), {**BASE, "labels": LM_LABELS}),
    "causal_lm_untied_heads3": ("BloomForCausalLM", dict(hidden_size=18, n_head=3, tie_word_embeddings=False),
                                {**BASE, "labels": LM_LABELS}),
    "causal_lm_head_mask": ("BloomForCausalLM", dict(hidden_size=18, n_head=3),
                            {**BASE, "labels": LM_LABELS, "head_mask": HEAD_MASK}),
    "causal_lm_tp2_slow": ("BloomForCausalLM", dict(hidden_size=24, n_head=6, pretraining_tp=2, slow_but_exact=True),
                           {**BASE, "labels": LM_LABELS}),
    "causal_lm_post_ln": ("BloomForCausalLM", dict(hidden_size=16, n_head=4,
                                                    apply_residual_connection_post_layernorm=True),
                          {**BASE, "labels": LM_LABELS}),
    "seq_cls_regression": ("BloomForSequenceClassification", dict(hidden_size=20, n_head=5, num_labels=1),
                           {**BASE, "labels": np.array([0.5, -1.0, 2.0], np.float32)}),
    "seq_cls_single_label": ("BloomForSequenceClassification", dict(hidden_size=16, n_head=4, num_labels=3),
                             {**BASE, "labels": np.array([0, 2, 1], np.int64)}),
    "seq_cls_multi_label": ("BloomForSequenceClassification", dict(hidden_size=16, n_head=4, num_labels=4),
                            {**BASE, "labels": np.array([[1, 0, 0.5, 0], [0, 1, 1, 0], [0, 0, 0, 1]], np.float32)}),
    "token_cls": ("BloomForTokenClassification", dict(hidden_size=12, n_head=6, num_labels=5),
                  {**BASE, "labels": np.where(MASK == 1, np.arange(7) % 5, -100).astype(np.int64)}),
    "question_answering": ("BloomForQuestionAnswering", dict(hidden_size=16, n_head=2),
                           {**BASE, "start_positions": np.array([2, -3, 4], np.int64),
                            "end_positions": np.array([[4], [30], [6]], np.int64)}),
}


def config_kwargs(overrides: dict) -> dict:
    return dict(vocab_size=VOCAB, n_layer=LAYERS, pad_token_id=PAD, **overrides)
