"""Write the expected gradients under tests/hf_expected/grads/ with torch autograd (needs the `reference` extra).

    python tests/reference/make_hf_grads.py

For each case of `grad_cases.GRAD_CASES`: a tiny random transformers BLOOM with a head, saved by
transformers' own `save_pretrained`, and `expected.safetensors` holding the batch (`input/<arg>`), the
loss and the gradient of every parameter (`grad/<name>`, names without `transformer.`), computed by
torch in float32. Also `adamw/expected.safetensors`: ten torch.optim.AdamW steps on fixed gradients.
The plain test run (no torch) checks minibloom against these files: tests/test_hf_grads.py.
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.reference.grad_cases import GRAD_CASES, config_kwargs  # noqa: E402
from tests.reference.make_hf_expected import randomize  # noqa: E402
from tests.reference.torch_grads import torch_value_and_grad  # noqa: E402

GRADS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hf_expected", "grads")
REGENERATE = "python tests/reference/make_hf_grads.py"
ADAMW = dict(lr=3e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)
METADATA = {"format_version": "1", "transformers": transformers.__version__, "torch": torch.__version__,
            "regenerate": REGENERATE}


def make_case(name: str, seed: int) -> None:
    cls_name, overrides, batch = GRAD_CASES[name]
    cls = getattr(transformers, cls_name)
    torch.manual_seed(seed)
    model = cls(transformers.BloomConfig(**config_kwargs(overrides)))
    randomize(model, seed, embedding_std=0.5, matrix_std=0.3)
    case_dir = os.path.join(GRADS_DIR, name)
    shutil.rmtree(case_dir, ignore_errors=True)
    model.save_pretrained(case_dir, safe_serialization=True)
    loaded = cls.from_pretrained(case_dir, dtype=torch.float32)
    loss, grads = torch_value_and_grad(loaded, batch)
    tensors = {f"input/{k}": np.asarray(v) for k, v in batch.items()}
    tensors["loss"] = np.array(loss, np.float32)
    tensors.update({f"grad/{k}": v for k, v in grads.items()})
    save_file({k: np.array(v, order="C") for k, v in tensors.items()}, os.path.join(case_dir, "expected.safetensors"),
              metadata={**METADATA, "class": cls_name})


def make_adamw(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shapes = {"a": (5, 7), "b": (3,)}
    tensors = {f"init/{n}": rng.normal(size=s).astype(np.float32) for n, s in shapes.items()}
    params = [torch.nn.Parameter(torch.from_numpy(tensors[f"init/{n}"].copy())) for n in shapes]
    opt = torch.optim.AdamW(params, **ADAMW)
    for step in range(10):
        for p, n in zip(params, shapes):
            g = (rng.normal(size=shapes[n]) * 10 ** rng.uniform(-3, 1)).astype(np.float32)
            tensors[f"step{step}/grad/{n}"] = g
            p.grad = torch.from_numpy(g.copy())
        opt.step()
        for p, n in zip(params, shapes):
            tensors[f"step{step}/param/{n}"] = p.detach().numpy().copy()
    os.makedirs(os.path.join(GRADS_DIR, "adamw"), exist_ok=True)
    save_file(tensors, os.path.join(GRADS_DIR, "adamw", "expected.safetensors"),
              metadata={**METADATA, "adamw": json.dumps(ADAMW)})


def main() -> None:
    os.makedirs(GRADS_DIR, exist_ok=True)
    for i, name in enumerate(sorted(GRAD_CASES)):
        make_case(name, seed=100 + i)
        print("wrote", name)
    make_adamw(seed=5)
    with open(os.path.join(GRADS_DIR, "MANIFEST.json"), "w") as f:
        json.dump({**METADATA, "cases": {n: GRAD_CASES[n][0] for n in sorted(GRAD_CASES)}, "adamw": ADAMW}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
