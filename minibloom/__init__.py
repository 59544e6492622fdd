"""minibloom: the BLOOM language-model family in NumPy, readable and exact.

Start at `model.py` (the forward pass) and follow the imports: `block.py`, `attention.py`,
`alibi.py`, `masking.py`, `functional.py`. Checkpoints: `config.py`, `weights.py`.
"""

__version__ = "0.1.0"

from .config import BloomConfig
from .errors import (CheckpointError, ConfigError, InputError, MinibloomError, SafetensorsFormatError,
                     WeightsMismatchError)
from .heads import (BloomForCausalLM, BloomForQuestionAnswering, BloomForSequenceClassification,
                    BloomForTokenClassification)
from .model import BloomModel
from .outputs import (BaseModelOutputWithPast, CausalLMOutputWithCrossAttentions, QuestionAnsweringModelOutput,
                      SequenceClassifierOutputWithPast, TokenClassifierOutput)

__all__ = [
    "BaseModelOutputWithPast", "BloomConfig", "BloomForCausalLM", "BloomForQuestionAnswering",
    "BloomForSequenceClassification", "BloomForTokenClassification", "BloomModel",
    "CausalLMOutputWithCrossAttentions", "CheckpointError", "ConfigError", "InputError", "MinibloomError",
    "QuestionAnsweringModelOutput", "SafetensorsFormatError", "SequenceClassifierOutputWithPast",
    "TokenClassifierOutput", "WeightsMismatchError", "__version__",
]
