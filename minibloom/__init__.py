"""minibloom: the BLOOM language-model family in NumPy, readable and exact.

Start at `model.py` (the forward pass) and follow the imports: `block.py`, `attention.py`,
`alibi.py`, `masking.py`, `functional.py`. Checkpoints: `config.py`, `weights.py`.
"""

__version__ = "0.1.0"

from .config import BloomConfig
from .errors import (CheckpointError, ConfigError, InputError, MinibloomError, SafetensorsFormatError,
                     WeightsMismatchError)
from .model import BloomModel
from .outputs import BaseModelOutputWithPast

__all__ = [
    "BaseModelOutputWithPast", "BloomConfig", "BloomModel", "CheckpointError", "ConfigError", "InputError",
    "MinibloomError", "SafetensorsFormatError", "WeightsMismatchError", "__version__",
]
