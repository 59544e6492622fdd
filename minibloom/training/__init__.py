"""Training minibloom models: gradients by an explicit backward pass, AdamW, a schedule, a loop.

Each op's backward sits beside its forward (`functional.py`, `attention.py`, `block.py`, `model.py`,
`heads.py`, `losses.py`); this package holds only what concerns training as a whole:

- `value_and_grad(model, **batch)` -> (loss, grads by parameter name)          (`grad.py`)
- `AdamW`, `cosine_schedule`, `clip_grad_norm`                                (`optim.py`)
- `fit`, `evaluate`, checkpoints and the loss curve                            (`loop.py`)
- batches from a text file or labelled JSONL/CSV rows                          (`data.py`)
"""

from .grad import value_and_grad
from .loop import NonFiniteLossError, evaluate, evaluate_metrics, fit, load_checkpoint, plot_losses, save_checkpoint
from .optim import AdamW, clip_grad_norm, cosine_schedule

__all__ = ["AdamW", "NonFiniteLossError", "clip_grad_norm", "cosine_schedule", "evaluate", "evaluate_metrics", "fit", "load_checkpoint", "plot_losses",
           "save_checkpoint", "value_and_grad"]
