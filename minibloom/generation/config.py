"""The settings of a generate call: transformers' `GenerationConfig`, its file, and its checks.

Names and defaults are transformers' (greedy, max_length 20, top_k 50 when sampling), so a
generation_config.json written by transformers reads here unchanged and one written here reads
there. `validate` checks every setting before any array work; the checks of single values
(`check_int`, `check_id`, ...) are `minibloom.validation`'s.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CheckpointError, InputError, warn_at_caller
from ..validation import check_bad_words, check_bool, check_float, check_id, check_int, check_stop_strings

GENERATION_CONFIG_NAME = "generation_config.json"

# transformers' GenerationConfig fields that change the tokens chosen and that minibloom does not
# implement, each with the value that turns it off (transformers 4.57.1's default; guidance_scale 1.0
# is off too). Read from a file, they are kept (`GenerationConfig.unsupported`) so that a caller can
# refuse them instead of silently decoding differently from transformers. Fields that change only
# speed, caching or what is returned (use_cache, cache_implementation, output_attentions,
# prompt_lookup_num_tokens, renormalize_logits, remove_invalid_values, ...) are not listed.
UNSUPPORTED_FIELDS: dict[str, Any] = {
    "max_time": None, "min_p": None, "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0,
    "encoder_repetition_penalty": 1.0, "encoder_no_repeat_ngram_size": 0, "forced_bos_token_id": None,
    "forced_eos_token_id": None, "exponential_decay_length_penalty": None, "suppress_tokens": None,
    "begin_suppress_tokens": None, "sequence_bias": None, "token_healing": False, "guidance_scale": None,
    "watermarking_config": None, "penalty_alpha": None, "dola_layers": None, "diversity_penalty": 0.0,
    "num_beam_groups": 1, "constraints": None, "force_words_ids": None,
}


@dataclass
class GenerationConfig:
    """Decoding settings, with transformers' names and defaults (greedy, max_length 20, top_k 50
    when sampling). Read and written as generation_config.json (`from_pretrained`, `save_pretrained`)."""

    max_new_tokens: int | None = None
    max_length: int = 20
    min_length: int = 0
    min_new_tokens: int | None = None
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = 50
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    bad_words_ids: list[list[int]] | None = None
    stop_strings: str | list[str] | None = None
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    num_return_sequences: int = 1
    return_dict_in_generate: bool = False
    output_scores: bool = False
    output_logits: bool = False
    output_hidden_states: bool = False
    output_attentions: bool = False
    bos_token_id: int | None = None
    eos_token_id: list[int] = field(default_factory=list)
    pad_token_id: int | None = None

    # ------------------------------------------------------------------------- checks

    def validate(self, vocab_size: int) -> None:
        """Check every setting's type and range (`InputError` naming the first bad one), normalising
        NumPy scalars to Python numbers; warn, as transformers does, about sampling settings that
        greedy decoding ignores."""
        self._check_types()
        self._check_ranges()
        self._check_token_ids(vocab_size)
        self.warn_unused()

    def _check_types(self) -> None:
        """Each number, flag and count of the right type, as a plain Python value."""
        for name in ("max_new_tokens", "min_new_tokens"):
            setattr(self, name, check_int(name, getattr(self, name), 0 if name == "min_new_tokens" else 1,
                                          optional=True))
        self.max_length = check_int("max_length", self.max_length, 1)
        self.min_length = check_int("min_length", self.min_length, 0)
        self.top_k = check_int("top_k", self.top_k, 0, optional=True)
        self.no_repeat_ngram_size = check_int("no_repeat_ngram_size", self.no_repeat_ngram_size, 0, optional=True) or 0
        self.num_beams = check_int("num_beams", self.num_beams, 1)
        self.num_return_sequences = check_int("num_return_sequences", self.num_return_sequences, 1)
        for name in ("do_sample", "return_dict_in_generate", "output_scores", "output_logits", "output_hidden_states",
                     "output_attentions"):
            setattr(self, name, check_bool(name, getattr(self, name)))
        for name in ("temperature", "top_p", "repetition_penalty", "length_penalty"):
            setattr(self, name, check_float(name, getattr(self, name)))

    def _check_ranges(self) -> None:
        """The ranges, and the combinations minibloom can decode (no beam sampling)."""
        if self.do_sample and not self.temperature > 0:
            raise InputError(f"temperature must be > 0 when sampling, got {self.temperature!r} "
                             "(for greedy decoding set do_sample=False)")
        if not 0 < self.top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not self.repetition_penalty > 0:
            raise InputError(f"repetition_penalty must be > 0, got {self.repetition_penalty!r}")
        if self.num_beams > 1 and self.do_sample:
            raise InputError("beam sampling (num_beams > 1 with do_sample=True) is not supported; "
                             "use num_beams=1 to sample or do_sample=False for beam search")
        if self.early_stopping not in (True, False, "never") or isinstance(self.early_stopping, (int, float)) \
                and not isinstance(self.early_stopping, bool):
            raise InputError(f"early_stopping must be True, False or 'never', got {self.early_stopping!r}")
        limit = self.num_beams if self.num_beams > 1 else (None if self.do_sample else 1)
        if limit is not None and self.num_return_sequences > limit:
            raise InputError(f"num_return_sequences must be in [1, {limit}] here, "
                             f"got {self.num_return_sequences!r}")

    def _check_token_ids(self, vocab_size: int) -> None:
        """eos, pad and bos ids, bad_words_ids and stop_strings, against the vocabulary."""
        eos = eos_list(self.eos_token_id)
        self.eos_token_id = [check_id("eos_token_id", i, 2**63) for i in eos]
        if any(i >= vocab_size for i in self.eos_token_id):
            raise InputError(f"eos_token_id {self.eos_token_id} is outside the vocabulary [0, {vocab_size})")
        for name in ("pad_token_id", "bos_token_id"):
            value = getattr(self, name)
            setattr(self, name, None if value is None else check_id(name, value, vocab_size))
        self.bad_words_ids = check_bad_words(self.bad_words_ids, vocab_size)
        self.stop_strings = check_stop_strings(self.stop_strings)

    def warn_unused(self) -> None:
        """transformers' warning when sampling-only settings are given for greedy decoding: the same
        first line (the flags' names), then the explanation transformers logs at info level."""
        if self.do_sample:
            return
        issues = {name: f"`do_sample` is set to `False`. However, `{name}` is set to `{getattr(self, name)}` -- this "
                        f"flag is only used in sample-based generation modes. You should set `do_sample=True` or "
                        f"unset `{name}`."
                  for name, neutral in (("temperature", 1.0), ("top_p", 1.0), ("top_k", 50))
                  if getattr(self, name) is not None and getattr(self, name) != neutral}
        if issues:
            details = "".join(f"\n- `{name}`: {text}" for name, text in issues.items())
            warn_at_caller(f"The following generation flags are not valid and may be ignored: {list(issues)}."
                           + details)  # at the caller of generate, however deep this runs

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_model_config(cls, config) -> "GenerationConfig":
        """The defaults a model config implies (what transformers does when a checkpoint has no
        generation_config.json): its bos, eos and pad ids, and any generation setting the config
        holds (an old config.json's max_length, num_beams, ...). Marked as made from the model
        config, with its state at creation, for `make_config`'s legacy rule."""
        data = {k: v for k, v in config.to_dict().items() if k in cls.__dataclass_fields__ and v is not None}
        gen = cls.from_dict(data)
        gen.from_model_config_ = True
        gen.original_state = gen.to_json_string()
        return gen

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GenerationConfig":
        """From a dict of transformers' names; keys minibloom does not use (transformers_version,
        _from_model_config, use_cache, ...) are ignored."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "eos_token_id" in known:
            known["eos_token_id"] = eos_list(known["eos_token_id"])
        config = cls(**known)
        config.unread = {k: v for k, v in data.items() if k in UNSUPPORTED_FIELDS}
        config.from_model_config_ = data.get("_from_model_config") is True
        config.original_state = config.to_json_string()
        config.transformers_version = data.get("transformers_version")
        return config

    def unsupported(self) -> dict[str, Any]:
        """The settings read by `from_dict` that transformers would apply and minibloom does not
        implement ({name: value}; those at their off value are left out), e.g. typical_p=0.9."""
        unread = getattr(self, "unread", {})
        return {k: v for k, v in unread.items() if v != UNSUPPORTED_FIELDS[k]
                and not (k == "guidance_scale" and v == 1)}

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike,
                        config_file_name: str = GENERATION_CONFIG_NAME) -> "GenerationConfig":
        """Read generation_config.json from a checkpoint directory (or a hub name)."""
        from ..hub import resolve

        from ..safe_read import read_json

        path = os.path.join(resolve(directory, (config_file_name,)), config_file_name)
        data = read_json(path)  # a regular file, size and nesting capped; errors name the file
        if not isinstance(data, dict):
            raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """Every setting, under transformers' names (one EOS id as an int, several as a list)."""
        data = {name: copy.deepcopy(getattr(self, name)) for name in self.__dataclass_fields__}
        eos = data["eos_token_id"]
        data["eos_token_id"] = None if not eos else eos[0] if len(eos) == 1 else eos
        return data

    def to_diff_dict(self) -> dict[str, Any]:
        """Only the settings that differ from the defaults (what transformers writes to the file)."""
        default = GenerationConfig().to_dict()
        return {k: v for k, v in self.to_dict().items() if v != default[k]}

    def to_json_string(self) -> str:
        """The non-default settings as generation_config.json holds them (sorted keys, indented)."""
        return json.dumps(self.to_diff_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, directory: str | os.PathLike,
                        config_file_name: str = GENERATION_CONFIG_NAME) -> str:
        """Write generation_config.json (the non-default settings) in a transaction (`atomic`), as
        every save into a checkpoint directory; returns its path."""
        from ..atomic import transaction

        with transaction(directory) as txn:
            txn.write_bytes(config_file_name, self.to_json_string().encode("utf-8"))
        return os.path.join(os.fspath(directory), config_file_name)

    def update(self, **kwargs: Any) -> "GenerationConfig":
        """A copy with `kwargs` applied; an unknown name is an `InputError`."""
        unknown = set(kwargs) - set(self.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown generation arguments: {sorted(unknown)}")
        new = copy.deepcopy(self)
        for name, value in kwargs.items():
            setattr(new, name, value)
        return new


def eos_list(eos: Any) -> list[int]:
    """One EOS id or several -> a list (type-checked later, by `GenerationConfig.validate`)."""
    if eos is None:
        return []
    if isinstance(eos, (list, tuple, np.ndarray)):
        return list(eos)
    return [eos]
