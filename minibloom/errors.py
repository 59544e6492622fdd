"""Typed errors: every failure minibloom reports is a `MinibloomError`.

Each subclass says *what kind* of thing was wrong, and its message names *which* thing: the file,
tensor, config field, argument or position at fault. Callers can catch `MinibloomError` for all of them.
Each is also the built-in exception a Python user would catch, so code written for transformers
keeps working: a bad value or argument is a `ValueError` (ConfigError, InputError), a file that
cannot be read or written an `OSError` (CheckpointError and its subclasses, TokenizerFileError),
a backend this machine cannot run a `RuntimeError`.
"""


class MinibloomError(Exception):
    """Base class of every error minibloom raises on purpose."""


class ConfigError(MinibloomError, ValueError):
    """A config value is missing, of the wrong type or out of range; the message names the field."""


class CheckpointError(MinibloomError, OSError):
    """A checkpoint file or directory cannot be read or written; the message names the file."""


class SafetensorsFormatError(CheckpointError):
    """A .safetensors file breaks the format (header, dtype, offsets); names the file and tensor."""


class WeightsMismatchError(CheckpointError):
    """Tensors are missing, unexpected or mis-shaped for the model; names each tensor and both shapes."""


class InputError(MinibloomError, ValueError):
    """An argument to a public function is wrong (dtype, rank, shape, range); names the argument."""


class TokenizerFileError(MinibloomError, OSError):
    """A tokenizer.json is missing, not JSON, or asks for a pipeline minibloom does not implement;
    the message names the file and the component at fault."""


class BackendUnavailableError(MinibloomError, RuntimeError):
    """A backend was asked for on a machine that cannot run it (the CUDA backend with no GPU)."""


class MemoryBudgetError(InputError, MemoryError):
    """A size argument or file field asks for more memory than the budget (`validation.check_allocation`):
    refused before allocating, naming the argument. Also a MemoryError, for code that catches that."""


class NonFiniteScoresError(InputError, ArithmeticError):
    """Sampling met NaN or infinite scores (a NaN weight, temperature near 0): no distribution to draw from."""


def warn_at_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """`warnings.warn` at the first frame outside minibloom: the user's line, however deep inside the
    library the warning was raised (a fixed stacklevel points at library internals when the call
    path changes, e.g. a head's `from_pretrained` calling the base class's)."""
    import os
    import sys
    import warnings

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 2  # stacklevel 2: the caller of warn_at_caller
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
