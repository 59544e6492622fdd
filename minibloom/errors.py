"""Typed errors: every failure minibloom reports is a `MinibloomError`.

Each subclass says *what kind* of thing was wrong, and its message names *which* thing: the file,
tensor, config field, argument or position at fault. Callers can catch `MinibloomError` for all of them.
The ones caused by a bad value also subclass `ValueError`, so code written for transformers
(which raises `ValueError`) keeps working.
"""


class MinibloomError(Exception):
    """Base class of every error minibloom raises on purpose."""


class ConfigError(MinibloomError, ValueError):
    """A config value is missing, of the wrong type or out of range; the message names the field."""


class CheckpointError(MinibloomError):
    """A checkpoint file or directory cannot be read or written; the message names the file."""


class SafetensorsFormatError(CheckpointError):
    """A .safetensors file breaks the format (header, dtype, offsets); names the file and tensor."""


class WeightsMismatchError(CheckpointError):
    """Tensors are missing, unexpected or mis-shaped for the model; names each tensor and both shapes."""


class InputError(MinibloomError, ValueError):
    """An argument to a public function is wrong (dtype, rank, shape, range); names the argument."""


class TokenizerFileError(MinibloomError):
    """A tokenizer.json is missing, not JSON, or asks for a pipeline minibloom does not implement;
    the message names the file and the component at fault."""


class BackendUnavailableError(MinibloomError):
    """A backend was asked for on a machine that cannot run it (the CUDA backend with no GPU)."""
