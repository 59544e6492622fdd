"""transformers' Auto classes, for the one model family minibloom implements.

A transformers user writes

    tok = AutoTokenizer.from_pretrained("bigscience/bloom-560m")
    lm = AutoModelForCausalLM.from_pretrained("bigscience/bloom-560m")

and the same lines work here: each Auto class reads the checkpoint's config.json, checks that its
model_type is "bloom" (anything else is a `ConfigError` naming the file: minibloom has no GPT-2 or
Llama to hand it to), and returns the BLOOM class of that task. Keyword arguments go to that
class's `from_pretrained` (backend, storage, num_labels, ...).
"""

from __future__ import annotations

import os
from typing import Any

from .config import BloomConfig
from .errors import InputError


class AutoConfig:
    """`AutoConfig.from_pretrained(dir_or_hub_name, **overrides)` -> a `BloomConfig`."""

    def __init__(self) -> None:
        raise TypeError("AutoConfig is not meant to be instantiated: use AutoConfig.from_pretrained(...)")

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs: Any) -> BloomConfig:
        """config.json of a checkpoint directory or hub name; kwargs set config fields (as transformers)."""
        config = BloomConfig.from_pretrained(name_or_path)  # model_type other than "bloom": ConfigError
        for key, value in kwargs.items():
            setattr(config, key, value)
        config.validate()
        return config

    @classmethod
    def for_model(cls, model_type: str, **kwargs: Any) -> BloomConfig:
        """A fresh config of `model_type` ("bloom" only) with `kwargs` set."""
        if model_type != "bloom":
            raise InputError(f"model_type {model_type!r}: minibloom implements 'bloom' only")
        return BloomConfig(**kwargs)


class AutoTokenizer:
    """`AutoTokenizer.from_pretrained(dir_or_hub_name, **kwargs)` -> a `BloomTokenizer` (a tokenizer.json
    whose pipeline is not BLOOM's is a `TokenizerFileError` naming the stage that differs)."""

    def __init__(self) -> None:
        raise TypeError("AutoTokenizer is not meant to be instantiated: use AutoTokenizer.from_pretrained(...)")

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs: Any):
        from .tokenizer import BloomTokenizer

        kwargs.pop("use_fast", None)  # there is one tokenizer, the fast one's behaviour
        return BloomTokenizer.from_pretrained(name_or_path, **kwargs)


class _AutoModelClass:
    """An Auto class: `from_pretrained` and `from_config` of one BLOOM class (`_target`)."""

    _target = ""  # the name of the class in minibloom

    def __init__(self) -> None:
        raise TypeError(f"{type(self).__name__} is not meant to be instantiated: use "
                        f"{type(self).__name__}.from_pretrained(...) or .from_config(config)")

    @classmethod
    def target(cls) -> type:
        import minibloom

        return getattr(minibloom, cls._target)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs: Any):
        """The checkpoint's weights in this task's BLOOM class (see its `from_pretrained`)."""
        return cls.target().from_pretrained(name_or_path, **kwargs)

    @classmethod
    def from_config(cls, config: BloomConfig, **kwargs: Any):
        """Random weights for `config` (transformers' `from_config`); kwargs go to the constructor (seed, ...)."""
        if not isinstance(config, BloomConfig):
            raise InputError(f"config must be a BloomConfig, got {type(config).__name__}")
        return cls.target()(config, **kwargs)


class AutoModel(_AutoModelClass):
    """-> `BloomModel` (hidden states)."""
    _target = "BloomModel"


class AutoModelForCausalLM(_AutoModelClass):
    """-> `BloomForCausalLM` (next-token logits, generate)."""
    _target = "BloomForCausalLM"


class AutoModelForSequenceClassification(_AutoModelClass):
    """-> `BloomForSequenceClassification`."""
    _target = "BloomForSequenceClassification"


class AutoModelForTokenClassification(_AutoModelClass):
    """-> `BloomForTokenClassification`."""
    _target = "BloomForTokenClassification"


class AutoModelForQuestionAnswering(_AutoModelClass):
    """-> `BloomForQuestionAnswering`."""
    _target = "BloomForQuestionAnswering"
