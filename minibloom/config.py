"""BloomConfig: the hyper-parameters of a BLOOM model, as transformers 4.57.1 stores them.

What it adds: every BloomConfig field with transformers' defaults, the few inherited
`PretrainedConfig` fields the task heads read (pad token, labels, problem_type), the legacy hub
spellings, validation with typed errors, and a `config.json` round trip that transformers reads back.

What it leaves out: the generation defaults and the many framework flags of `PretrainedConfig`
(`torchscript`, `pruned_heads`, ...). They are kept verbatim if a config.json carries them, so
nothing is lost on a round trip, but the model never reads them.

Legacy names (subtle, and not symmetric in transformers):
- `num_hidden_layers` and `num_attention_heads` are *aliases*: reading or writing them reaches
  `n_layer` / `n_head`.
- `n_embed` (bloomz-560m, bloom-176b) is *not* an alias: it overrides `hidden_size` when the
  config is built and is never stored.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

from .errors import CheckpointError, ConfigError

CONFIG_NAME = "config.json"

# name -> default, in transformers' order. These are the fields minibloom reads.
BLOOM_DEFAULTS: dict[str, Any] = {
    "vocab_size": 250880,
    "hidden_size": 64,
    "n_layer": 2,
    "n_head": 8,
    "layer_norm_epsilon": 1e-5,
    "initializer_range": 0.02,
    "use_cache": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "apply_residual_connection_post_layernorm": False,
    "hidden_dropout": 0.0,  # transformers' docstring says 0.1; the code says 0.0
    "attention_dropout": 0.0,
    "pretraining_tp": 1,
    "slow_but_exact": False,
    # Inherited from PretrainedConfig; the heads need them.
    "pad_token_id": None,
    "tie_word_embeddings": True,
    "problem_type": None,
    "classifier_dropout": None,  # not a PretrainedConfig field: written only when set
    "output_attentions": False,
    "output_hidden_states": False,
}

# Shapes of the released family (hidden / layers / heads); every member has vocab_size 250880.
BLOOM_FAMILY = {
    "bloom-560m": dict(hidden_size=1024, n_layer=24, n_head=16),
    "bloom-1b1": dict(hidden_size=1536, n_layer=24, n_head=16),
    "bloom-1b7": dict(hidden_size=2048, n_layer=24, n_head=16),
    "bloom-3b": dict(hidden_size=2560, n_layer=30, n_head=32),
    "bloom-7b1": dict(hidden_size=4096, n_layer=30, n_head=32),
    "bloom": dict(hidden_size=14336, n_layer=70, n_head=112, pretraining_tp=4),
}

ALIASES = {"num_hidden_layers": "n_layer", "num_attention_heads": "n_head"}
PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")
_POSITIVE_INTS = ("vocab_size", "hidden_size", "n_layer", "n_head", "pretraining_tp")
_BOOLS = ("use_cache", "apply_residual_connection_post_layernorm", "slow_but_exact",
          "tie_word_embeddings", "output_attentions", "output_hidden_states")
_PROBABILITIES = ("hidden_dropout", "attention_dropout")
_TOKEN_IDS = ("bos_token_id", "eos_token_id", "pad_token_id")
_OWN_ATTRIBUTES = ("id2label", "label2id", "extra")
# The largest real sizes: BLOOM-176B's vocab_size 250,880, hidden_size 14,336, n_layer 70, n_head 112,
# pretraining_tp 4. A size past 2**31 - 1 would not index a NumPy array on every platform anyway.
MAX_SIZE = 2**31 - 1
# num_labels builds {id: "LABEL_id"}: refused past this before the table is built. The largest real
# label sets are tens of thousands (ImageNet-21k's 21,843 classes); 2**17 labels make a 6.8 MB config.json.
MAX_LABELS = 2**17


def _plain_scalar(value: Any) -> Any:
    """NumPy scalars become Python ones: integers become ints and booleans bools (they are what they
    say, and JSON must be able to write them). Other values pass unchanged, to be checked."""
    if type(value).__module__ == "numpy":
        if type(value).__name__ in ("bool", "bool_"):  # np.bool_ (NumPy 1) / np.bool (NumPy 2)
            return bool(value)
        if hasattr(value, "__index__"):
            return int(value)
    return value


def _check_field(name: str, value: Any) -> None:
    """One field on its own (the constructor, `validate` and attribute assignment all use this)."""
    if name in _POSITIVE_INTS:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"config field {name!r} must be a positive integer, got {value!r}")
        if value > MAX_SIZE:
            raise ConfigError(f"config field {name!r} is {value}, beyond any model (at most {MAX_SIZE:,})")
    elif name in _BOOLS:
        if not isinstance(value, bool):
            raise ConfigError(f"config field {name!r} must be true or false, got {value!r}")
    elif name == "layer_norm_epsilon":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ConfigError(f"config field 'layer_norm_epsilon' must be a positive number, got {value!r}")
    elif name in _PROBABILITIES + ("classifier_dropout",):
        if value is None and name == "classifier_dropout":
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ConfigError(f"config field {name!r} must be a number in [0, 1], got {value!r}")
    elif name in _TOKEN_IDS:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ConfigError(f"config field {name!r} must be a non-negative integer or null, got {value!r}")
    elif name == "problem_type" and value not in PROBLEM_TYPES:
        raise ConfigError(f"config field 'problem_type' must be one of {PROBLEM_TYPES}, got {value!r}")


class BloomConfig:
    """Hyper-parameters of a BLOOM model. Same names and defaults as transformers' `BloomConfig`.

    >>> BloomConfig(n_embed=1024, num_attention_heads=16).hidden_size, BloomConfig(n_head=16).num_attention_heads
    (1024, 16)
    """

    model_type = "bloom"

    def __init__(self, **kwargs: Any):
        kwargs = dict(kwargs)
        n_embed = kwargs.pop("n_embed", None)
        for alias, name in ALIASES.items():
            if alias in kwargs:
                kwargs[name] = kwargs.pop(alias)
        for name, default in BLOOM_DEFAULTS.items():
            object.__setattr__(self, name, _plain_scalar(kwargs.pop(name, default)))
        if n_embed is not None:
            self.hidden_size = n_embed
        self.id2label, self.label2id = _labels(kwargs.pop("id2label", None), kwargs.pop("label2id", None),
                                               kwargs.pop("num_labels", None))
        kwargs.pop("model_type", None)
        # Unknown keys (seq_length, offset_alibi, architectures, ...) are kept and written back.
        self.extra: dict[str, Any] = kwargs
        self.validate()

    # -- aliases and unknown keys behave like attributes, as in transformers -------------------
    def __getattr__(self, name: str) -> Any:
        if name in ALIASES:
            return getattr(self, ALIASES[name])
        extra = self.__dict__.get("extra", {})
        if name in extra:
            return extra[name]
        raise AttributeError(f"'BloomConfig' has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        name = ALIASES.get(name, name)
        if name in BLOOM_DEFAULTS and "extra" in self.__dict__:  # constructed: check as the constructor does
            value = _plain_scalar(value)
            _check_field(name, value)
        if name in BLOOM_DEFAULTS or name in _OWN_ATTRIBUTES or isinstance(getattr(type(self), name, None), property):
            object.__setattr__(self, name, value)
        else:
            self.extra[name] = value  # new keys are written back too, as transformers does

    @property
    def num_labels(self) -> int:
        """Number of classes of the classification heads: `len(id2label)`."""
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, n: int) -> None:
        self.id2label, self.label2id = _labels(None, None, n)

    @property
    def head_dim(self) -> int:
        """D = hidden_size / n_head, the width of one attention head."""
        return self.hidden_size // self.n_head

    def validate(self) -> None:
        """Raise `ConfigError` naming the first field whose value the model cannot run with."""
        for name in BLOOM_DEFAULTS:
            _check_field(name, getattr(self, name))
        if self.hidden_size % self.n_head != 0:
            raise ConfigError(f"config field 'hidden_size' ({self.hidden_size}) must be divisible by "
                              f"'n_head' ({self.n_head})")
        if self.slow_but_exact and self.pretraining_tp > self.hidden_size:
            raise ConfigError(f"config field 'pretraining_tp' ({self.pretraining_tp}) must not exceed 'hidden_size' "
                              f"({self.hidden_size}) with slow_but_exact: each rank's slice would be empty")

    # -- dict / JSON round trip ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """All fields as plain JSON types, in the layout transformers writes (label keys as strings)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in BLOOM_DEFAULTS}
        if out["classifier_dropout"] is None:
            del out["classifier_dropout"]  # absent and None mean the same to transformers
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        out["label2id"] = dict(self.label2id)
        out.update(copy.deepcopy(self.extra))
        out["model_type"] = self.model_type
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BloomConfig":
        return cls(**data)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "BloomConfig":
        """Read a hub `config.json`; a missing file or invalid JSON raises `CheckpointError` naming it."""
        from .safe_read import read_json

        data = read_json(path, CheckpointError)  # regular files only, size and depth capped
        if not isinstance(data, dict):
            raise CheckpointError(f"{os.fspath(path)} must hold a JSON object, got {type(data).__name__}")
        mt = data.get("model_type", "bloom")
        if mt != "bloom":
            raise ConfigError(f"{os.fspath(path)}: config field 'model_type' is {mt!r}, expected 'bloom'")
        try:
            return cls.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{os.fspath(path)}: {e}") from None

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "BloomConfig":
        """Read `config.json` from a checkpoint directory (a path to the file itself also works) or
        a hub name (`hub.py`)."""
        from .hub import CONFIG_FILES, resolve

        path = resolve(directory, CONFIG_FILES)
        if not os.path.exists(path):
            raise CheckpointError(f"checkpoint directory not found: {path}")
        if os.path.isdir(path):
            path = os.path.join(path, CONFIG_NAME)
        return cls.from_json_file(path)

    def to_json_file(self, json_file_path: str | os.PathLike) -> None:
        """Write the config as JSON to `json_file_path` atomically (transformers' name)."""
        from .atomic import atomic_write_bytes

        atomic_write_bytes(os.fspath(json_file_path), self.to_json_string().encode("utf-8"))

    def save_pretrained(self, directory: str | os.PathLike) -> str:
        """Write `config.json` into `directory` atomically; returns the file's path."""
        from .atomic import transaction

        with transaction(directory) as txn:
            txn.write_bytes(CONFIG_NAME, self.to_json_string().encode("utf-8"))
        return os.path.join(os.fspath(directory), CONFIG_NAME)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BloomConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in ("vocab_size", "hidden_size", "n_layer", "n_head"))
        return f"BloomConfig({fields}, ...)"


def _labels(id2label: Any, label2id: Any, num_labels: Any) -> tuple[dict[int, str], dict[str, int]]:
    """Resolve the label maps as PretrainedConfig does: an explicit id2label wins over num_labels."""
    if id2label is None:
        n = 2 if num_labels is None else num_labels
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"config field 'num_labels' must be a non-negative integer, got {n!r}")
        if n > MAX_LABELS:  # checked before the label table is built
            raise ConfigError(f"config field 'num_labels' is {n}, more than the {MAX_LABELS:,} labels minibloom builds")
        id2label = {i: f"LABEL_{i}" for i in range(n)}
    if not isinstance(id2label, dict):
        raise ConfigError(f"config field 'id2label' must be an object, got {type(id2label).__name__}")
    try:
        id2label = {int(k): v for k, v in id2label.items()}
    except (TypeError, ValueError):
        raise ConfigError(f"config field 'id2label' keys must be integers, got {list(id2label)!r}") from None
    if label2id is None:
        label2id = {v: k for k, v in id2label.items()}
    if not isinstance(label2id, dict):
        raise ConfigError(f"config field 'label2id' must be an object, got {type(label2id).__name__}")
    return id2label, dict(label2id)
