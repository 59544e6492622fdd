"""Write the expected outputs under tests/hf_expected/ with transformers itself (needs the `reference` extra).

    python tests/reference/make_hf_expected.py

Each case is a tiny random BLOOM checkpoint saved by transformers' own `save_pretrained`
(safetensors), so the file layout is the real one, plus `expected.safetensors`: the inputs and
transformers' float32 outputs for them. The plain test run (no torch) compares minibloom against
these files. Weights are drawn with a wide spread and non-zero biases so that every quirk shows
(the dense biases dropped by `slow_but_exact` change the outputs by ~0.5).
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import torch
import transformers
from safetensors.numpy import save_file
from transformers import (BloomConfig, BloomForCausalLM, BloomForQuestionAnswering, BloomForSequenceClassification,
                          BloomForTokenClassification, BloomModel)

HF_EXPECTED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hf_expected")
FORMAT_VERSION = "1"
REGENERATE = "python tests/reference/make_hf_expected.py"
VOCAB, LAYERS, BATCH, SEQ = 64, 2, 3, 7

# name -> (config overrides, class saved, save dtype, max_shard_size)
CASES = {
    "heads8": (dict(hidden_size=32, n_head=8), BloomModel, torch.float32, None),
    "heads12_prefixed": (dict(hidden_size=48, n_head=12), BloomForCausalLM, torch.float32, None),
    "heads6_tp2_slow": (dict(hidden_size=48, n_head=6, pretraining_tp=2, slow_but_exact=True), BloomModel,
                        torch.float32, None),
    "post_ln_residual": (dict(hidden_size=32, n_head=4, apply_residual_connection_post_layernorm=True),
                         BloomModel, torch.float32, None),
    "bf16": (dict(hidden_size=32, n_head=8), BloomModel, torch.bfloat16, None),
    "fp16": (dict(hidden_size=32, n_head=8), BloomModel, torch.float16, None),
    "sharded": (dict(hidden_size=32, n_head=4), BloomForCausalLM, torch.float32, "20KB"),
}


# head cases: name -> (class, config overrides, {input set: extra inputs (labels, positions)})
PAD = 3
HEAD_IDS = np.array([[PAD, PAD, 5, 6, 7, 8, 9], [10, 11, PAD, 12, 13, PAD, PAD], [14, 15, 16, 17, 18, 19, 20],
                     [PAD] * 7], dtype=np.int64)
HEAD_MASK = (HEAD_IDS != PAD).astype(np.int64)
LM_LABELS = np.where(HEAD_MASK == 1, HEAD_IDS, -100)
HEAD_CASES = {
    "causal_lm_tied": (BloomForCausalLM, {}, {"labels": {"labels": LM_LABELS},
                                              "all_ignored": {"labels": np.full_like(HEAD_IDS, -100)}}),
    "causal_lm_untied": (BloomForCausalLM, {"tie_word_embeddings": False}, {"labels": {"labels": LM_LABELS}}),
    "seq_cls_regression": (BloomForSequenceClassification, {"num_labels": 1},
                           {"labels": {"labels": np.array([0.5, -1.0, 2.0, 0.25], np.float32)}}),
    "seq_cls_single_label": (BloomForSequenceClassification, {"num_labels": 3},
                             {"labels": {"labels": np.array([0, 2, 1, 1], np.int64)}}),
    "seq_cls_multi_label": (BloomForSequenceClassification, {"num_labels": 4},
                            {"labels": {"labels": np.eye(4, dtype=np.float32)[[0, 3, 1, 2]] + np.float32(0.5) *
                                        np.eye(4, dtype=np.float32)[[1, 1, 1, 1]]}}),
    "token_cls": (BloomForTokenClassification, {"num_labels": 5},
                  {"labels": {"labels": np.where(HEAD_MASK == 1, np.arange(7) % 5, -100).astype(np.int64)}}),
    "question_answering": (BloomForQuestionAnswering, {},
                           {"spans": {"start_positions": np.array([2, 0, 9, -2], np.int64),
                                      "end_positions": np.array([[4], [1], [6], [30]], np.int64)}}),
}


# generation: prompts of mixed lengths, left-padded; a vocabulary small enough that EOS comes up
GEN_PROMPTS = np.array([[PAD, PAD, PAD, 5, 6], [7, 8, 9, 10, 11], [PAD, 12, 13, 14, 15]], dtype=np.int64)
GEN_SETTINGS = {
    "greedy": dict(max_new_tokens=12),
    "greedy_two_eos_repetition": dict(max_new_tokens=12, eos_token_id=[2, 9], repetition_penalty=1.4),
    "beam3": dict(max_new_tokens=10, num_beams=3),
    "beam2_early_length_penalty": dict(max_new_tokens=10, num_beams=2, early_stopping=True, length_penalty=0.6),
    "beam4_never_two_returned": dict(max_new_tokens=8, num_beams=4, early_stopping="never", num_return_sequences=2),
}


def make_generation_case(seed: int) -> None:
    config = BloomConfig(vocab_size=20, n_layer=LAYERS, hidden_size=24, n_head=6, pad_token_id=PAD, eos_token_id=2)
    torch.manual_seed(seed)
    model = BloomForCausalLM(config).eval()
    # Small embeddings, large matrices: otherwise the tied head keeps repeating the last token and never says EOS.
    randomize(model, seed, embedding_std=0.3, matrix_std=1.0)
    case_dir = os.path.join(HF_EXPECTED_DIR, "generation")
    shutil.rmtree(case_dir, ignore_errors=True)
    model.save_pretrained(case_dir, safe_serialization=True)
    loaded = BloomForCausalLM.from_pretrained(case_dir, dtype=torch.float32).eval()
    mask = (GEN_PROMPTS != PAD).astype(np.int64)
    tensors = {"input/input_ids": GEN_PROMPTS, "input/attention_mask": mask}
    for name, settings in GEN_SETTINGS.items():
        with torch.no_grad():
            out = loaded.generate(torch.from_numpy(GEN_PROMPTS), attention_mask=torch.from_numpy(mask),
                                  do_sample=False, **settings)
        # subtle: beam search returns a strided view; safetensors.numpy writes raw buffers, so copy to C order
        tensors[f"{name}/sequences"] = np.array(out.numpy(), order="C")
    metadata = {"format_version": FORMAT_VERSION, "transformers": transformers.__version__,
                "torch": torch.__version__, "settings": json.dumps(GEN_SETTINGS), "regenerate": REGENERATE}
    save_file(tensors, os.path.join(case_dir, "expected.safetensors"), metadata=metadata)


def randomize(model: torch.nn.Module, seed: int, embedding_std: float = 1.0, matrix_std: float = 0.15) -> None:
    """Spread every parameter: matrices N(0, matrix_std), embeddings N(0, embedding_std), biases N(0, 0.1),
    LN weights 1 + N(0, 0.1)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if "word_embeddings.weight" in name:
                p.copy_(embedding_std * noise)
            elif p.ndim == 2:
                p.copy_(matrix_std * noise)
            elif "layernorm" in name or "ln_f" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * noise)
            else:
                p.copy_(0.1 * noise)


def make_inputs(n_head: int, hidden_size: int, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Input sets: no mask, right/left padding (left: fully padded first positions), head_mask, inputs_embeds."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB, size=(BATCH, SEQ)).astype(np.int64)
    right = np.array([[1] * SEQ, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4], dtype=np.int64)
    left = right[:, ::-1].copy()
    head_mask = rng.choice([0.0, 0.5, 1.0], size=(LAYERS, n_head)).astype(np.float32)
    return {
        "plain": {"input_ids": ids},
        "right_padded": {"input_ids": ids, "attention_mask": right},
        "left_padded": {"input_ids": ids, "attention_mask": left},
        "left_padded_head_mask": {"input_ids": ids, "attention_mask": left, "head_mask": head_mask},
        "embeds": {"inputs_embeds": rng.normal(size=(2, 5, hidden_size)).astype(np.float32)},
    }


def run_reference(model: BloomModel, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    kwargs = {k: torch.from_numpy(v) for k, v in inputs.items()}
    with torch.no_grad():
        out = model(**kwargs, output_hidden_states=True, output_attentions=True, use_cache=False)
    result = {"last_hidden_state": out.last_hidden_state.numpy()}
    result.update({f"hidden_states.{i}": h.numpy() for i, h in enumerate(out.hidden_states)})
    result.update({f"attentions.{i}": a.numpy() for i, a in enumerate(out.attentions)})
    return result


def make_case(name: str, seed: int) -> None:
    overrides, cls, dtype, shard = CASES[name]
    config = BloomConfig(vocab_size=VOCAB, n_layer=LAYERS, **overrides)
    torch.manual_seed(seed)
    model = cls(config).eval()
    randomize(model, seed)
    case_dir = os.path.join(HF_EXPECTED_DIR, name)
    shutil.rmtree(case_dir, ignore_errors=True)
    kwargs = {"max_shard_size": shard} if shard else {}
    model.to(dtype).save_pretrained(case_dir, safe_serialization=True, **kwargs)
    # The reference outputs come from loading the saved files in float32, as a user would.
    loaded = cls.from_pretrained(case_dir, dtype=torch.float32).eval()
    base = loaded.transformer if cls is BloomForCausalLM else loaded
    tensors: dict[str, np.ndarray] = {}
    for set_name, inputs in make_inputs(config.n_head, config.hidden_size, seed).items():
        tensors.update({f"{set_name}/input/{k}": v for k, v in inputs.items()})
        tensors.update({f"{set_name}/output/{k}": v for k, v in run_reference(base, inputs).items()})
    metadata = {"format_version": FORMAT_VERSION, "transformers": transformers.__version__,
                "torch": torch.__version__, "dtype": "float32", "saved_dtype": str(dtype),
                "regenerate": REGENERATE}
    save_file({k: np.array(v, order="C") for k, v in tensors.items()},
              os.path.join(case_dir, "expected.safetensors"), metadata=metadata)


def make_head_case(name: str, seed: int) -> None:
    cls, overrides, label_sets = HEAD_CASES[name]
    config = BloomConfig(vocab_size=VOCAB, n_layer=LAYERS, hidden_size=24, n_head=6, pad_token_id=PAD, **overrides)
    torch.manual_seed(seed)
    model = cls(config).eval()
    randomize(model, seed)
    case_dir = os.path.join(HF_EXPECTED_DIR, name)
    shutil.rmtree(case_dir, ignore_errors=True)
    model.save_pretrained(case_dir, safe_serialization=True)
    loaded = cls.from_pretrained(case_dir, dtype=torch.float32).eval()
    tensors: dict[str, np.ndarray] = {}
    base_inputs = {"input_ids": HEAD_IDS, "attention_mask": HEAD_MASK}
    for set_name, extra in {"plain": {}, **label_sets}.items():
        inputs = {**base_inputs, **extra}
        kwargs = {k: torch.from_numpy(v) for k, v in inputs.items()}
        if cls is not BloomForQuestionAnswering:  # the QA head takes no use_cache
            kwargs["use_cache"] = False
        with torch.no_grad():
            out = loaded(**kwargs)
        tensors.update({f"{set_name}/input/{k}": v for k, v in inputs.items()})
        for field in ("loss", "logits", "start_logits", "end_logits"):
            value = getattr(out, field, None)
            if value is not None:
                tensors[f"{set_name}/output/{field}"] = value.numpy()
    metadata = {"format_version": FORMAT_VERSION, "transformers": transformers.__version__,
                "torch": torch.__version__, "class": cls.__name__, "regenerate": REGENERATE}
    save_file({k: np.array(v, order="C") for k, v in tensors.items()},
              os.path.join(case_dir, "expected.safetensors"), metadata=metadata)


def main() -> None:
    if transformers.__version__ != "4.57.1":
        sys.exit(f"the expected outputs must come from transformers 4.57.1, found {transformers.__version__}")
    os.makedirs(HF_EXPECTED_DIR, exist_ok=True)
    for seed, name in enumerate(CASES):
        make_case(name, seed)
    for seed, name in enumerate(HEAD_CASES, start=100):
        make_head_case(name, seed)
    make_generation_case(200)
    heads = {name: cls.__name__ for name, (cls, _, _) in HEAD_CASES.items()}
    with open(os.path.join(HF_EXPECTED_DIR, "MANIFEST.json"), "w") as f:
        json.dump({"format_version": FORMAT_VERSION, "transformers": transformers.__version__,
                   "torch": torch.__version__, "cases": sorted(CASES), "head_cases": heads,
                   "regenerate": REGENERATE}, f, indent=2)
        f.write("\n")
    print(f"wrote {len(CASES)} model cases and {len(heads)} head cases to {HF_EXPECTED_DIR}")


if __name__ == "__main__":
    main()
