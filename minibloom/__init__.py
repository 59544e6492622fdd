"""minibloom: the BLOOM language-model family in NumPy, readable and exact.

Start at `model.py` (the forward pass) and follow the imports: `block.py`, `attention.py`,
`alibi.py`, `masking.py`, `functional.py`. Checkpoints: `config.py`, `weights.py`. Heads and
losses: `heads.py`, `losses.py`. Generation: `cache.py`, `generation.py`, `logits_process.py`,
`beam_search.py`. Tokenizer: `tokenizer/`.
"""

__version__ = "0.1.0"

from .cache import KVCache
from .config import BloomConfig
from .embedded import EMBEDDED_CHECKPOINT
from .errors import (BackendUnavailableError, CheckpointError, ConfigError, InputError, MinibloomError, SafetensorsFormatError,
                     TokenizerFileError, WeightsMismatchError)
from .heads import (BloomForCausalLM, BloomForQuestionAnswering, BloomForSequenceClassification,
                    BloomForTokenClassification)
from .generation import GenerationConfig
from .streamers import TextStreamer
from .model import BloomModel
from .threads import get_num_threads, set_num_threads
from .tokenizer import BloomTokenizer
from .outputs import (BaseModelOutputWithPast, CausalLMOutputWithCrossAttentions, QuestionAnsweringModelOutput,
                      SequenceClassifierOutputWithPast, TokenClassifierOutput)

__all__ = [
    "BackendUnavailableError", "BaseModelOutputWithPast", "BloomConfig", "BloomTokenizer", "BloomForCausalLM", "BloomForQuestionAnswering",
    "BloomForSequenceClassification", "BloomForTokenClassification", "BloomModel",
    "CausalLMOutputWithCrossAttentions", "CheckpointError", "ConfigError", "EMBEDDED_CHECKPOINT", "GenerationConfig", "InputError", "KVCache",
    "MinibloomError",
    "QuestionAnsweringModelOutput", "SafetensorsFormatError", "SequenceClassifierOutputWithPast",
    "TextStreamer", "TokenClassifierOutput", "TokenizerFileError", "WeightsMismatchError", "__version__",
    "get_num_threads", "set_num_threads",
]
