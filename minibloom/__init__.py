"""minibloom: the BLOOM language-model family in NumPy, readable and exact.

Start at `model.py` (the forward pass) and follow the imports: `block.py`, `attention.py`,
`alibi.py`, `masking.py`, `functional.py`. Checkpoints: `config.py`, `weights.py`. Heads and
losses: `heads.py`, `losses.py`. Generation: `cache.py`, `generation/` (with `logits_process.py`)
(the settings, the decoding loop, beam search, streamers). Tokenizer: `tokenizer/`.
"""

__version__ = "0.1.0"

import importlib
import os
from typing import TYPE_CHECKING

# Waiting threads sleep instead of spinning (why: `minibloom.threads`). Read once, when NumPy's
# OpenBLAS and Numba's OpenMP layer load, so set here, first; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

# Public names -> the module that defines them. Imported on first use (PEP 562), so `import
# minibloom` costs milliseconds and the `minibloom` command can catch a Ctrl-C while the heavy
# modules (NumPy, Numba) load; `from minibloom import BloomModel` works as with eager imports.
_EXPORTS = {
    "KVCache": "cache", "BloomConfig": "config", "EMBEDDED_CHECKPOINT": "embedded",
    **dict.fromkeys(("BackendUnavailableError", "CheckpointError", "ConfigError", "InputError", "MinibloomError",
                     "SafetensorsFormatError", "TokenizerFileError", "WeightsMismatchError"), "errors"),
    **dict.fromkeys(("BloomForCausalLM", "BloomForQuestionAnswering", "BloomForSequenceClassification",
                     "BloomForTokenClassification"), "heads"),
    "GenerationConfig": "generation", "TextStreamer": "generation.streamers",
    "TextIteratorStreamer": "generation.streamers",
    **dict.fromkeys(("AutoConfig", "AutoModel", "AutoModelForCausalLM", "AutoModelForQuestionAnswering",
                     "AutoModelForSequenceClassification", "AutoModelForTokenClassification", "AutoTokenizer"),
                    "auto"), "BloomModel": "model",
    "get_num_threads": "threads", "set_num_threads": "threads", "BloomTokenizer": "tokenizer",
    **dict.fromkeys(("BaseModelOutputWithPast", "CausalLMOutputWithCrossAttentions", "QuestionAnsweringModelOutput",
                     "SequenceClassifierOutputWithPast", "TokenClassifierOutput"), "outputs"),
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        try:  # a submodule: `minibloom.heads` after `import minibloom`, as with eager imports
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise  # the submodule exists but needs something missing: say what
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .auto import (AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForQuestionAnswering,
                       AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer)
    from .cache import KVCache
    from .config import BloomConfig
    from .embedded import EMBEDDED_CHECKPOINT
    from .errors import (BackendUnavailableError, CheckpointError, ConfigError, InputError, MinibloomError,
                         SafetensorsFormatError, TokenizerFileError, WeightsMismatchError)
    from .generation import GenerationConfig
    from .heads import (BloomForCausalLM, BloomForQuestionAnswering, BloomForSequenceClassification,
                        BloomForTokenClassification)
    from .model import BloomModel
    from .outputs import (BaseModelOutputWithPast, CausalLMOutputWithCrossAttentions, QuestionAnsweringModelOutput,
                          SequenceClassifierOutputWithPast, TokenClassifierOutput)
    from .generation.streamers import TextIteratorStreamer, TextStreamer
    from .threads import get_num_threads, set_num_threads
    from .tokenizer import BloomTokenizer

__all__ = [
    "AutoConfig", "AutoModel", "AutoModelForCausalLM", "AutoModelForQuestionAnswering",
    "AutoModelForSequenceClassification", "AutoModelForTokenClassification", "AutoTokenizer",
    "BackendUnavailableError", "BaseModelOutputWithPast", "BloomConfig", "BloomTokenizer", "BloomForCausalLM", "BloomForQuestionAnswering",
    "BloomForSequenceClassification", "BloomForTokenClassification", "BloomModel",
    "CausalLMOutputWithCrossAttentions", "CheckpointError", "ConfigError", "EMBEDDED_CHECKPOINT", "GenerationConfig", "InputError", "KVCache",
    "MinibloomError",
    "QuestionAnsweringModelOutput", "SafetensorsFormatError", "SequenceClassifierOutputWithPast",
    "TextIteratorStreamer", "TextStreamer", "TokenClassifierOutput", "TokenizerFileError", "WeightsMismatchError", "__version__",
    "get_num_threads", "set_num_threads",
]
