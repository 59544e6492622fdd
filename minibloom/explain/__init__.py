"""The learner's microscope: look inside a forward pass and the tokenizer (docs/explain.md).

- `run_with_cache` / `run_with_hooks` (methods of every model, `hooks.py`): every intermediate by its
  golden name, and activation patching.
- `logit_lens(model, input_ids)`: what each layer would predict (`lens.py`).
- `merge_trace(tokenizer, text)`: each piece's bytes and the BPE merges applied, in order (`tokens.py`).
- `explain(model, tokenizer, text)` and `write_report(...)`: the data and the offline page of
  `minibloom explain` (`report.py`).
"""

from .hooks import HookedRun, HookedTrace, hook_names
from .lens import LogitLens, logit_lens

__all__ = ["HookedRun", "HookedTrace", "LogitLens", "hook_names", "logit_lens"]
