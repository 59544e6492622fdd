"""Text generation: greedy decoding and sampling with a preallocated KV cache (beam search: beam_search.py).

The loop, as transformers' `GenerationMixin._sample` runs it:

    prefill: run the whole prompt once, filling the cache
    repeat:  scores = process(logits of the last position)      (repetition penalty, temperature, top-k/p)
             token  = argmax(scores) or a sample from softmax(scores)
             rows that already met EOS get pad_token_id instead
             stop when every row has met EOS or the length reaches max_length
             run the model on the one new token per row (the cache holds the rest)

Left-padded batches work because the attention mask grows by one 1 per step and ALiBi positions are
the mask's cumulative sum: each row's first real token stays at position 0.

Shape legend: B batch, L tokens so far, V vocab.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from ..cache import KVCache
from ..errors import CheckpointError, InputError, NonFiniteScoresError, warn_at_caller
from ..functional import softmax
from ..logits_process import process_scores
from ..losses import log_softmax
from ..outputs import GenerateDecoderOnlyOutput
from ..validation import as_array, check_attention_mask, check_ids


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
        eos = eos_list(self.eos_token_id)
        self.eos_token_id = [check_id("eos_token_id", i, 2**63) for i in eos]
        if any(i >= vocab_size for i in self.eos_token_id):
            raise InputError(f"eos_token_id {self.eos_token_id} is outside the vocabulary [0, {vocab_size})")
        for name in ("pad_token_id", "bos_token_id"):
            value = getattr(self, name)
            setattr(self, name, None if value is None else check_id(name, value, vocab_size))
        self.bad_words_ids = check_bad_words(self.bad_words_ids, vocab_size)
        self.stop_strings = check_stop_strings(self.stop_strings)
        self.warn_unused()

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


def is_int(value: Any) -> bool:
    """A Python or NumPy integer (bool is not one)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value: Any, minimum: int, optional: bool = False) -> int | None:
    """An integer >= minimum (NumPy integer scalars accepted), as a Python int; None if optional."""
    if value is None and optional:
        return None
    if not is_int(value) or value < minimum:
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
        raise InputError(f"{name} must be {kind}{' or None' if optional else ''}, got {value!r} "
                         f"({type(value).__name__})")
    return int(value)


def check_float(name: str, value: Any) -> float:
    """A finite real number (int, float or NumPy scalar), as a Python float."""
    if not (is_int(value) or isinstance(value, (float, np.floating))) or not np.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r} ({type(value).__name__})")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_id(name: str, value: Any, vocab_size: int) -> int:
    if not is_int(value):
        raise InputError(f"{name} must be a token id (an integer), got {value!r} ({type(value).__name__})")
    if not 0 <= value < vocab_size:
        raise InputError(f"{name} {value!r} is outside the vocabulary [0, {vocab_size})")
    return int(value)


def check_bad_words(words: Any, vocab_size: int) -> list[list[int]] | None:
    """None, or a non-empty list of non-empty lists of token ids."""
    if words is None:
        return None
    if not isinstance(words, (list, tuple)) or not words or \
            any(not isinstance(w, (list, tuple, np.ndarray)) or len(w) == 0 for w in words):
        raise InputError(f"bad_words_ids must be a non-empty list of non-empty lists of token ids, got {words!r}")
    return [[check_id("bad_words_ids", i, vocab_size) for i in w] for w in words]


def check_stop_strings(stop: Any) -> list[str] | None:
    if stop is None:
        return None
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, (list, tuple)) or not stop or any(not isinstance(s, str) or not s for s in stop):
        raise InputError(f"stop_strings must be a non-empty string or a list of them, got {stop!r}")
    return list(stop)


def eos_list(eos: Any) -> list[int]:
    """One EOS id or several -> a list (type-checked later, by `GenerationConfig.validate`)."""
    if eos is None:
        return []
    if isinstance(eos, (list, tuple, np.ndarray)):
        return list(eos)
    return [eos]


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


def prepare_inputs(input_ids: Any, attention_mask: Any, gen: GenerationConfig,
                   vocab_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Checked ids [B, L0], mask [B, L0] and the final length.

    Without a mask, as transformers: pad ids are masked out when pad_token_id is set and is not an
    EOS id, else every token counts. A batch whose last column holds a pad id gets transformers'
    right-padding warning: a decoder-only model continues from the last column, pad or not.
    """
    ids = check_ids(input_ids, vocab_size)
    B, L0 = ids.shape
    if attention_mask is not None:
        mask = check_attention_mask(attention_mask, B, L0)
    elif gen.pad_token_id is not None and gen.pad_token_id not in gen.eos_token_id and (ids == gen.pad_token_id).any():
        mask = (ids != gen.pad_token_id).astype(np.int64)
    else:
        mask = np.ones((B, L0), np.int64)
    if gen.pad_token_id is not None and B > 1 and (ids[:, -1] == gen.pad_token_id).any():
        warn_at_caller("A decoder-only architecture is being used, but right-padding was detected! For correct "
                       "generation results, please set `padding_side='left'` when initializing the tokenizer.")
    max_length = L0 + gen.max_new_tokens if gen.max_new_tokens is not None else gen.max_length
    if gen.max_new_tokens is None and getattr(gen, "max_length_is_default", False) and gen.max_length == 20:
        max_length = L0 + 20  # subtle: transformers' "by default let's always generate 20 new tokens"
    if L0 >= max_length:
        raise InputError(f"the prompt has {L0} tokens but max_length is {max_length}: set max_new_tokens "
                         "to the number of tokens to generate")
    return ids, mask, max_length


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """The random generator of a `seed` argument: None (fresh entropy), an integer >= 0, or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and not (is_int(seed) and seed >= 0):
        raise InputError(f"seed must be None, an integer >= 0 or a numpy.random.Generator, got {seed!r} "
                         f"({type(seed).__name__})")
    return np.random.default_rng(None if seed is None else int(seed))


def sample(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One token per row from probs [B, V], by inverting the cumulative distribution."""
    cumulative = np.cumsum(probs.astype(np.float64), axis=-1)  # [B, V]
    usable = np.isfinite(cumulative[:, -1]) & (cumulative[:, -1] > 0)  # NaN/inf scores give NaN probs
    if not usable.all():
        raise NonFiniteScoresError(f"sampling: the scores of batch row {int(np.argmin(usable))} are NaN or infinite "
                                   "(a NaN weight, or a temperature so small the scores overflow)")
    u = rng.random(probs.shape[0]) * cumulative[:, -1]  # [B]
    picked = (cumulative <= u[:, None]).sum(axis=-1)
    return np.minimum(picked, probs.shape[-1] - 1)


class StopStrings:
    """transformers' StopStringCriteria: a row stops once a stop string ends inside its last token.

    Each token stands for the text it decodes to on its own (a lone byte of a multi-byte character
    is U+FFFD, as transformers' cleaned vocabulary has it). A stop string matches when it occurs in
    the text of the row's last tokens and its final character lies within the last token: the
    token may run past it ("\n\n" stops on "\n"), and the string may start inside an earlier token.
    Ids the tokenizer does not know (a model vocab larger than the tokenizer's) match nothing.
    """

    def __init__(self, stop_strings: list[str], tokenizer):
        if tokenizer is None:
            raise InputError("stop_strings needs the tokenizer: generate(..., stop_strings=..., tokenizer=tok)")
        self.stop_strings, self.tokenizer = stop_strings, tokenizer
        self.window = max(len(s) for s in stop_strings)  # every token is at least one character long
        self.texts: dict[int, str | None] = {}

    def text(self, token: int) -> str | None:
        if token not in self.texts:
            known = token in self.tokenizer.id_to_token
            self.texts[token] = self.tokenizer.decode([token]) if known else None
        return self.texts[token]

    def matches(self, tokens: np.ndarray) -> np.ndarray:
        """[B] bool: does each row of tokens [B, L] end (in its last token) with a stop string?"""
        return np.array([self.row_matches(row[-self.window:].tolist()) for row in tokens], bool)

    def row_matches(self, row: list[int]) -> bool:
        pieces = []
        for token in reversed(row):
            piece = self.text(token)
            if piece is None:
                break
            pieces.append(piece)
        if not pieces or not pieces[0]:
            return False
        text, last = "".join(reversed(pieces)), len(pieces[0])
        return any(text.startswith(s, end - len(s)) for s in self.stop_strings
                   for end in range(max(len(text) - last + 1, len(s)), len(text) + 1))


def decode_steps(model, ids: np.ndarray, mask: np.ndarray, max_length: int, gen: GenerationConfig,
                 rng: np.random.Generator, cache: KVCache | None = None, stop: StopStrings | None = None,
                 ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Any]]:
    """Greedy or sampled decoding; yields (next tokens [B], all tokens [B, L], processed scores
    [B, V], raw logits [B, V], the model's output of the step) once per step. The output holds
    hidden_states / attentions when gen.output_hidden_states / output_attentions ask for them.

    cache: a KVCache already holding the first P tokens of `ids` (continuing an earlier generate):
    the prefill then runs only the P..L0 rest.
    """
    B, L = ids.shape
    L0 = L
    tokens = np.zeros((B, max_length), np.int64)  # preallocated: no concatenation per step
    tokens[:, :L] = ids
    full_mask = np.ones((B, max_length), mask.dtype)
    full_mask[:, :L] = mask
    if cache is None:
        cache = KVCache.for_config(model.config, B, max_length)
    unfinished = np.ones(B, bool)
    eos = np.array(gen.eos_token_id, np.int64)
    # subtle: as in transformers, min_new_tokens (0 included) replaces min_length when given
    min_length = gen.min_length if gen.min_new_tokens is None else gen.min_new_tokens + L0
    P = cache.length
    extra = output_flags(gen)
    out = model(ids[:, P:], attention_mask=mask, past_key_values=cache, logits_to_keep=1, **extra)
    logits = out.logits[:, -1]  # [B, V]
    while True:
        logits = logits.astype(np.float32)
        scores = process_scores(tokens[:, :L], logits, gen.do_sample, gen.repetition_penalty, gen.temperature,
                                gen.top_k, gen.top_p, no_repeat_ngram_size=gen.no_repeat_ngram_size,
                                bad_words_ids=gen.bad_words_ids, min_length=min_length,
                                min_new_tokens=gen.min_new_tokens or 0, prompt_length=L0,
                                eos_token_id=gen.eos_token_id)  # [B, V]
        next_tokens = sample(softmax(scores), rng) if gen.do_sample else np.argmax(scores, axis=-1)  # [B]
        if eos.size:
            next_tokens = np.where(unfinished, next_tokens, gen.pad_token_id)
        tokens[:, L] = next_tokens
        L += 1
        yield next_tokens, tokens[:, :L], scores, logits, out
        if eos.size:
            unfinished &= ~np.isin(next_tokens, eos)
        if stop is not None:
            unfinished &= ~stop.matches(tokens[:, :L])
        if L >= max_length or not unfinished.any():
            return
        out = model(next_tokens[:, None], attention_mask=full_mask[:, :L], past_key_values=cache, **extra)
        logits = out.logits[:, -1]


def output_flags(gen: GenerationConfig) -> dict[str, bool]:
    """The forward's output_hidden_states / output_attentions arguments a generate call asks for
    (only those set: a model without them, the GPU one, is called as before)."""
    return {name: True for name in ("output_hidden_states", "output_attentions")
            if getattr(gen, name) and gen.return_dict_in_generate}


def step_outputs(out: Any, length: int) -> dict[str, tuple[np.ndarray, ...] | None]:
    """One step's hidden_states and attentions as transformers' generate keeps them: the model's
    tuples as they are, attentions cut to the `length` keys seen so far ([B, N, T, length]; the
    preallocated cache has room for more)."""
    attentions = getattr(out, "attentions", None)
    if attentions is not None:
        attentions = tuple(np.ascontiguousarray(a[..., :length]) for a in attentions)
    return {"hidden_states": getattr(out, "hidden_states", None), "attentions": attentions}


def progress_bar(total: int, show: bool | None):
    """A tqdm bar on stderr for generations that run past 2 seconds (None: only on a terminal)."""
    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if show is None else not show
    return tqdm(total=total, unit="tok", desc="generating", delay=2.0, disable=disable, leave=False)


def continue_cache(model, past_key_values: Any, ids: np.ndarray, max_length: int) -> KVCache | None:
    """The caller's cache (a KVCache or transformers' legacy per-layer (key, value) pairs), checked
    against the prompt and given room for max_length positions. It is updated in place, as
    transformers updates a passed DynamicCache."""
    if past_key_values is None:
        return None
    cache = past_key_values if isinstance(past_key_values, KVCache) else KVCache.from_legacy(past_key_values)
    B, L0 = ids.shape
    if cache.batch_size != B:
        raise InputError(f"past_key_values holds {cache.batch_size} rows, input_ids has {B}")
    if len(cache.keys) != model.config.n_layer or cache.keys[0].shape[1] != model.config.n_head \
            or cache.keys[0].shape[3] != model.config.head_dim:
        raise InputError("past_key_values does not fit this model (layers, heads or head_dim differ)")
    if not cache.length < L0:
        raise InputError(f"past_key_values already holds {cache.length} positions; input_ids must hold those "
                         f"and at least one more (it has {L0}): pass the whole sequence so far")
    cache.reserve(max_length)
    return cache


def plan(model, input_ids: Any, attention_mask: Any = None, generation_config: GenerationConfig | None = None,
         streamer: Any = None, seed: Any = None, past_key_values: Any = None, tokenizer: Any = None,
         **kwargs: Any) -> tuple[GenerationConfig, StopStrings | None, np.ndarray, np.ndarray, int]:
    """Every check `generate` makes before its first array, with its arguments: (the settings,
    the stop-string matcher, ids [B, L0], mask [B, L0], max_length). A caller that prints before
    generating (the CLI) runs it first, so a bad setting or a length beyond the memory budget is
    reported before anything is shown."""
    from .beam_search import check_budget
    from ..cache import _check_size

    gen = make_config(model, generation_config, **kwargs)
    gen.validate(model.config.vocab_size)
    unsupported = gen.unsupported()
    if unsupported:  # read from a generation_config.json: decoding goes on without them, but says so
        shown = ", ".join(f"{k}={v!r}" for k, v in unsupported.items())
        warn_at_caller(f"generation settings {shown} are not implemented by minibloom and are ignored "
                       "(transformers would apply them): the tokens may differ from transformers'")
    as_generator(seed)  # a seed of the wrong type is refused before work, greedy or not
    stop = StopStrings(gen.stop_strings, tokenizer) if gen.stop_strings else None
    ids, mask, max_length = prepare_inputs(input_ids, attention_mask, gen, model.config.vocab_size)
    cfg, rows = model.config, ids.shape[0] * (gen.num_beams if gen.num_beams > 1 else gen.num_return_sequences)
    if gen.num_beams > 1:
        unsupported = [name for name, value in (("past_key_values", past_key_values), ("streamer", streamer),
                                                ("stop_strings", stop), ("no_repeat_ngram_size", gen.no_repeat_ngram_size),
                                                ("bad_words_ids", gen.bad_words_ids), ("min_length", gen.min_length),
                                                ("min_new_tokens", gen.min_new_tokens)) if value]
        if unsupported:
            raise InputError(f"{', '.join(unsupported)}: not supported with beam search (num_beams > 1) yet")
        check_budget(ids.shape[0], gen.num_beams, max(2, 1 + len(gen.eos_token_id)) * gen.num_beams,
                     cfg.vocab_size, max_length)
    if past_key_values is None:  # a caller's cache is checked (and grown) by continue_cache
        _check_size(cfg.n_layer, (rows, cfg.n_head, max_length, cfg.head_dim),
                    f"prompt + new tokens; keys and values of {cfg.n_layer} layers [B={rows}, N, S, D]")
    return gen, stop, ids, mask, max_length


def generate(model, input_ids: Any, attention_mask: Any = None, generation_config: GenerationConfig | None = None,
             streamer: Any = None, seed: int | np.random.Generator | None = None, progress: bool | None = None,
             past_key_values: Any = None, tokenizer: Any = None, **kwargs: Any):
    """Generate continuations; returns prompt + new tokens, [B * num_return_sequences, L], or, with
    return_dict_in_generate=True, a `GenerateDecoderOnlyOutput` (sequences; scores: the processed
    scores [B, V] of each step, with output_scores; logits: the raw ones, with output_logits;
    past_key_values: the cache, to continue from).

    kwargs are GenerationConfig fields, applied over `generation_config` (default: the model's):
    max_new_tokens, max_length, min_length, min_new_tokens, do_sample, temperature, top_k, top_p,
    repetition_penalty, no_repeat_ngram_size, bad_words_ids, stop_strings (needs `tokenizer`),
    num_beams, length_penalty, early_stopping, num_return_sequences, eos_token_id (an id or a list),
    pad_token_id, return_dict_in_generate, output_scores, output_logits, output_hidden_states and
    output_attentions (with return_dict_in_generate: one entry per generated token, each the
    model's tuple for that step: the prompt's [B, L0, H] / [B, N, L0, L0] first, then [B, 1, H] /
    [B, N, 1, L] with the cache, as transformers gives them).

    streamer: an object with transformers' put/end protocol (`streamers.TextStreamer`): put(prompt
    [B, L0]), put(tokens [B]) per step, end(); or a callable given each step's tokens [B].
    past_key_values: the cache of an earlier call (its output's past_key_values) holding the first
    P tokens of input_ids; only the rest is run. `seed` seeds sampling.
    """
    from .beam_search import beam_search

    gen, stop, ids, mask, max_length = plan(model, input_ids, attention_mask, generation_config, streamer, seed,
                                            past_key_values, tokenizer, **kwargs)
    if gen.num_beams > 1:
        result = beam_search(model, ids, mask, max_length, gen)
        return result if gen.return_dict_in_generate else result.sequences
    if gen.num_return_sequences > 1:  # sampling several continuations of each prompt
        ids, mask = (np.repeat(a, gen.num_return_sequences, axis=0) for a in (ids, mask))
    cache = continue_cache(model, past_key_values, ids, max_length) or \
        KVCache.for_config(model.config, ids.shape[0], max_length)
    put = streamer.put if hasattr(streamer, "put") else streamer
    if hasattr(streamer, "put"):
        streamer.put(ids.copy())
    tokens, scores, logits, hidden, attentions = ids, [], [], [], []
    steps = decode_steps(model, ids, mask, max_length, gen, as_generator(seed), cache, stop)
    with progress_bar(max_length - ids.shape[1], progress) as bar:
        for next_tokens, tokens, step_scores, step_logits, out in steps:
            bar.update(1)
            if gen.output_scores:
                scores.append(step_scores.copy())
            if gen.output_logits:
                logits.append(step_logits.copy())
            kept = step_outputs(out, tokens.shape[1] - 1)  # the keys of this step: every token but the new one
            hidden.append(kept["hidden_states"])
            attentions.append(kept["attentions"])
            if put is not None:
                put(next_tokens.copy())
    if hasattr(streamer, "end"):
        streamer.end()
    if not gen.return_dict_in_generate:
        return tokens.copy()
    return GenerateDecoderOnlyOutput(sequences=tokens.copy(), scores=tuple(scores) if gen.output_scores else None,
                                     logits=tuple(logits) if gen.output_logits else None,
                                     hidden_states=tuple(hidden) if gen.output_hidden_states else None,
                                     attentions=tuple(attentions) if gen.output_attentions else None,
                                     past_key_values=cache)


def stream(model, input_ids: Any, attention_mask: Any = None, seed: int | np.random.Generator | None = None,
           generation_config: GenerationConfig | None = None, tokenizer: Any = None,
           **kwargs: Any) -> Iterator[np.ndarray]:
    """Like `generate` (greedy or sampling), but yields each step's new tokens [B] as they come."""
    gen, stop, ids, mask, max_length = plan(model, input_ids, attention_mask, generation_config, seed=seed,
                                            tokenizer=tokenizer, **kwargs)
    if gen.num_beams > 1:
        raise InputError("streaming needs num_beams=1: beam search only knows its tokens at the end")
    if gen.num_return_sequences > 1:
        ids, mask = (np.repeat(a, gen.num_return_sequences, axis=0) for a in (ids, mask))
    for next_tokens, *_ in decode_steps(model, ids, mask, max_length, gen, as_generator(seed), stop=stop):
        yield next_tokens.copy()


def compute_transition_scores(sequences: Any, scores: Any, beam_indices: Any = None, normalize_logits: bool = False,
                              vocab_size: int | None = None) -> np.ndarray:
    """The score of each generated token, [B, steps], as transformers' `compute_transition_scores`.

    sequences [B, L] and scores (one [rows, V] per step) from generate with output_scores=True;
    the generated tokens are the last `steps` columns. Without beam_indices (greedy, sampling) row
    b's token at step t is scored by scores[t][b]; with beam search's beam_indices [B, steps] by
    the row of the beam it came from, and steps after a beam finished (index -1) score 0.
    normalize_logits: log-softmax the scores over the vocabulary first (sampling's processed
    scores are not log-probabilities).
    """
    if not isinstance(scores, (tuple, list)) or not scores:
        raise InputError("scores must be generate's non-empty tuple of per-step [rows, V] arrays "
                         "(output_scores=True, return_dict_in_generate=True)")
    stacked = np.stack([np.asarray(x, np.float32) for x in scores])  # [steps, rows, V]
    if stacked.ndim != 3 or (vocab_size is not None and stacked.shape[2] != vocab_size):
        raise InputError(f"scores: expected arrays [rows, {vocab_size or 'V'}], got {stacked.shape[1:]}")
    steps, rows, V = stacked.shape
    sequences = as_array(sequences, "sequences")
    if sequences.ndim != 2 or sequences.dtype.kind not in "iu":
        raise InputError(f"sequences must be integer token ids [B, L], got {sequences.dtype} {sequences.shape}")
    if not isinstance(normalize_logits, bool):
        raise InputError(f"normalize_logits must be True or False, got {normalize_logits!r}")
    if beam_indices is None:
        beam_indices = np.broadcast_to(np.arange(rows)[:, None], (rows, steps))
    beam_indices = np.asarray(beam_indices)
    if beam_indices.ndim != 2 or beam_indices.dtype.kind not in "iu" or beam_indices.shape[0] != sequences.shape[0] \
            or beam_indices.shape[1] > steps or (beam_indices >= rows).any():
        raise InputError(f"beam_indices: expected integers [{sequences.shape[0]}, <= {steps}] below {rows}, "
                         f"got {beam_indices.dtype} {beam_indices.shape}")
    if normalize_logits:
        stacked = log_softmax(stacked)
    finished = beam_indices < 0  # [B, steps]: the beam had ended
    length = int((~finished).sum(axis=-1).max())
    beam_indices, finished = np.where(finished, 0, beam_indices)[:, :length], finished[:, :length]
    if sequences.shape[1] < length:
        raise InputError(f"sequences has {sequences.shape[1]} columns, fewer than the {length} generated steps")
    tokens = np.where(finished, 0, sequences[:, sequences.shape[1] - length:])  # [B, length]
    if ((tokens < 0) | (tokens >= V)).any():
        raise InputError(f"sequences: a generated token is outside the scores' vocabulary [0, {V})")
    picked = stacked[np.arange(length)[None, :], beam_indices, tokens]  # [B, length]
    return np.where(finished, np.float32(0), picked).astype(np.float32)
