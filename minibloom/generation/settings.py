"""Which settings one generate call uses, as transformers' `_prepare_generation_config` decides.

    the model's generation_config           (rebuilt from model.config by the legacy rule below)
      or the caller's generation_config     (its defaults filled from the model's)
    then the keyword arguments over it      (generate(..., max_new_tokens=5))
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import InputError, warn_at_caller
from .config import GenerationConfig, eos_list


# transformers' `PretrainedConfig._get_global_generation_defaults` (those minibloom implements): a model
# config.json holding one of these at another value asks, in the legacy way, to control generation.
CONFIG_GENERATION_DEFAULTS = {"max_length": 20, "min_length": 0, "do_sample": False, "early_stopping": False,
                              "num_beams": 1, "temperature": 1.0, "top_k": 50, "top_p": 1.0,
                              "repetition_penalty": 1.0, "length_penalty": 1.0, "no_repeat_ngram_size": 0,
                              "bad_words_ids": None, "num_return_sequences": 1, "output_scores": False,
                              "return_dict_in_generate": False}


def model_generation_config(model) -> GenerationConfig:
    """`model.generation_config`, after transformers' legacy rule (`_prepare_generation_config`): when
    it was made from the model config and never changed since, and the config now holds a generation
    setting at a non-default value (config.max_length = 30), it is made again from the config --
    picking up config.eos_token_id too -- with transformers' deprecation warning. Otherwise a change
    to `model.config` does not reach generate: change `model.generation_config` instead."""
    gen = getattr(model, "generation_config", None)
    if gen is None:
        return GenerationConfig.from_model_config(model.config)
    settings = model.config.to_dict()
    if getattr(gen, "from_model_config_", False) and getattr(gen, "original_state", None) == gen.to_json_string() \
            and any(settings.get(k, v) is not None and settings.get(k, v) != v
                    for k, v in CONFIG_GENERATION_DEFAULTS.items()):
        fresh = GenerationConfig.from_model_config(model.config)
        if fresh.to_json_string() != gen.to_json_string():
            warn_at_caller("You have modified the pretrained model configuration to control generation. This is a "
                           "deprecated strategy to control generation and will be removed in v5. Please use and "
                           "modify the model generation configuration (see https://huggingface.co/docs/transformers/"
                           "generation_strategies#default-text-generation-configuration )")
            model.generation_config = gen = fresh
    return gen


def with_model_defaults(passed: GenerationConfig, model_gen: GenerationConfig) -> GenerationConfig:
    """A caller's generation_config, completed as transformers (>= 4.50) completes it: each setting
    left at its global default takes the model's non-default one (a checkpoint written by an older
    transformers gives only its token ids)."""
    new = copy.deepcopy(passed)
    version = getattr(model_gen, "transformers_version", None)
    if isinstance(version, str) and _version_tuple(version) < (4, 50):
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if getattr(new, name) in (None, []):
                setattr(new, name, copy.deepcopy(getattr(model_gen, name)))
        return new
    default = GenerationConfig()
    for name in GenerationConfig.__dataclass_fields__:
        if getattr(new, name) == getattr(default, name) and getattr(model_gen, name) != getattr(default, name):
            setattr(new, name, copy.deepcopy(getattr(model_gen, name)))
    if new.temperature == 0.0:
        new.do_sample = False
    return new


def _version_tuple(version: str) -> tuple[int, ...]:
    """(major, minor) of a version string ("4.49.0.dev0" -> (4, 49)); junk reads as 0."""
    parts = []
    for part in version.split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit()) or "0"
        parts.append(int(digits[:6]))
    return tuple(parts)


def make_config(model, generation_config: GenerationConfig | None = None, **kwargs: Any) -> GenerationConfig:
    """The settings of one generate call, as transformers' `_prepare_generation_config`: the model's
    `generation_config` (`model_generation_config`), or the caller's `generation_config` with the
    model's non-default settings filling its defaults (`with_model_defaults`); then the keyword
    arguments over it."""
    if generation_config is not None and not isinstance(generation_config, GenerationConfig):
        raise InputError(f"generation_config must be a GenerationConfig, got {type(generation_config).__name__}")
    base = model_generation_config(model)
    if generation_config is not None:
        base = with_model_defaults(generation_config, base)
    gen = base.update(**kwargs)
    gen.max_length_is_default = kwargs.get("max_length") is None  # not the caller's: see prepare_inputs
    gen.eos_token_id = eos_list(gen.eos_token_id)
    if gen.pad_token_id is None and gen.eos_token_id:
        gen.pad_token_id = gen.eos_token_id[0]  # transformers does the same: finished rows are filled with EOS
    return gen
