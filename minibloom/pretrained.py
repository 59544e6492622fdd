"""Loading and saving models the way transformers' `from_pretrained` / `save_pretrained` do.

Every model class holds its tensors in `self.params`, a flat dict keyed by checkpoint names
*without* the `transformer.` prefix (`h.0.mlp.dense_h_to_4h.weight`, `score.weight`). Classes that
transformers saves with the prefix (the task heads) set `save_prefix = True`.
"""

from __future__ import annotations

import copy
import os
import warnings

import numpy as np
from tqdm.auto import tqdm

from .backends import get_backend
from .config import BloomConfig
from .errors import InputError
from .storage import STORAGE_DTYPES, as_array, check_storage, resolve_storage, storage_of, store, to_float32
from .int8_io import is_int8_checkpoint, load_int8, save_int8
from .threads import set_num_threads, use_default_threads
from .weights import (BASE_PREFIX, bloom_param_shapes, check_state_dict, init_params, load_state_dict,
                      save_state_dict, strip_base_prefix)

# Tensors of transformers' task heads: present in head checkpoints, ignored by classes that lack them.
HEAD_TENSORS = ("lm_head.weight", "score.weight", "classifier.weight", "classifier.bias",
                "qa_outputs.weight", "qa_outputs.bias")
SAVE_DTYPES = ("float32", "float16", "bfloat16")


class PreTrainedBloom:
    """Base of every minibloom model class: construction, checks, from_pretrained, save_pretrained."""

    save_prefix = False  # head classes save the base model's tensors as `transformer.*`

    def __init__(self, config: BloomConfig, params: dict[str, np.ndarray] | None = None, seed: int = 0,
                 backend: str = "numpy", storage: str = "auto", threads: int | None = None):
        """Build from a config and tensors (checkpoint names); random weights when `params` is None.

        backend: "numpy" (the readable reference) or "numba" (compiled kernels), see `backends`.
        storage: how weight matrices are held, "float32", "float16", "bfloat16" or "int8" (per-row
        absmax codes, `storage.Int8Matrix`); compute is float32 either way, and fewer bytes mean
        less RAM and fewer bytes read per decoded token. Or
        "auto": as the given tensors are (float32 for random weights).
        threads: compute threads for this process (`minibloom.set_num_threads`); None keeps the
        current setting, one thread unless something set it (see `minibloom.threads` for why).
        """
        shapes = self.param_shapes(config)
        if params is None:
            params = init_params(shapes, config.initializer_range, seed)
        check_state_dict(params, shapes, where=f"{type(self).__name__} parameters")
        self.config = config
        storage = resolve_storage(storage, params)
        self.backend, self.storage = backend, storage
        self.ops = get_backend(backend)
        dtype = STORAGE_DTYPES[storage]
        if threads is not None:
            set_num_threads(threads)
        else:
            use_default_threads()
        names = tqdm(shapes, desc="loading weights", unit="tensor", delay=2.0, leave=False,
                     disable=None)  # shown only on a terminal, and only when it takes over 2 s
        self.params = {name: store(name, as_array(params[name]), dtype) for name in names}

    @classmethod
    def param_shapes(cls, config: BloomConfig) -> dict[str, tuple[int, ...]]:
        """Every tensor this class needs, by checkpoint name (no prefix), with its shape."""
        return {**bloom_param_shapes(config), **cls.head_shapes(config)}

    @classmethod
    def head_shapes(cls, config: BloomConfig) -> dict[str, tuple[int, ...]]:
        """The tensors of the task head on top of the base model (none for BloomModel)."""
        return {}

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, seed: int = 0, backend: str = "numpy",
                        storage: str = "auto", threads: int | None = None, **config_overrides):
        """Load config.json and the safetensors weights of a local checkpoint directory.

        Accepts checkpoints saved by any BLOOM class (with or without the `transformer.` prefix);
        other heads' tensors are ignored, anything else unexpected or mis-shaped is an error.
        `config_overrides` (e.g. `num_labels=3`) change the config before the weights are checked.
        As in transformers, a head missing from the checkpoint (fine-tuning a base model) is
        initialised from `seed`, with a warning naming its tensors.

        Tensors are memory-mapped (`safetensors_io.map_tensor`): weights already in the `storage`
        dtype are used in place, so loading takes no time and RAM holds only the weights' bytes.
        storage="auto" (the default) keeps the checkpoint's dtype; another storage converts the
        weights tensor by tensor while loading, and says so with a warning.
        """
        config = BloomConfig.from_pretrained(directory)
        for key, value in config_overrides.items():
            setattr(config, key, value)
        config.validate()
        check_storage(storage)
        get_backend(backend)
        if threads is not None:
            set_num_threads(threads)  # checks it before any work
        state = strip_base_prefix(load_int8(directory) if is_int8_checkpoint(directory)
                                  else load_state_dict(directory, dtype=None))
        shapes = cls.param_shapes(config)
        fresh = {n: s for n, s in cls.head_shapes(config).items() if n not in state}
        if fresh:
            warnings.warn(f"{cls.__name__}: {sorted(fresh)} not in {os.fspath(directory)}; newly initialised "
                          "(train them before use)", stacklevel=2)
            state.update(init_params(fresh, config.initializer_range, seed))
        ignored = tuple(name for name in HEAD_TENSORS if name not in shapes)
        where = os.fspath(directory) + (f" with {config_overrides}" if config_overrides else "")
        check_state_dict(state, shapes, ignored=ignored, where=where)
        stored = storage_of(state["word_embeddings.weight"])
        if storage not in ("auto", stored):
            warnings.warn(f"{os.fspath(directory)}: converting the {stored} weights to {storage} while loading "
                          f"(storage='auto' keeps {stored}; save_pretrained(dtype=...) once to skip this)",
                          stacklevel=2)
        return cls(config, {name: state[name] for name in shapes}, backend=backend, storage=storage, threads=threads)

    def state_dict(self) -> dict[str, np.ndarray]:
        """The tensors under the names transformers saves this class with."""
        params = {k: to_float32(v) for k, v in self.params.items()}
        if not self.save_prefix:
            return params
        base = bloom_param_shapes(self.config)
        return {(BASE_PREFIX + k if k in base else k): v for k, v in params.items()}

    def save_pretrained(self, directory: str | os.PathLike, dtype: str = "float32",
                        max_shard_size: int | str | None = None) -> None:
        """Write config.json and safetensors weights (stored as `dtype`) that transformers loads.
        dtype "int8": minibloom's own int8 layout (`int8_io`), which transformers does not load."""
        if dtype == "int8":
            return self._save_int8(directory)
        if dtype not in SAVE_DTYPES:
            raise InputError(f"dtype must be one of {SAVE_DTYPES}, got {dtype!r}")
        config = copy.deepcopy(self.config)
        config.architectures = [type(self).__name__]
        save_state_dict(self.state_dict(), directory, dtype=dtype, max_shard_size=max_shard_size)
        config.save_pretrained(directory)

    def _save_int8(self, directory: str | os.PathLike) -> None:
        """save_pretrained(dtype="int8"): the int8 codes and row absmax as held (bit-exact reload)."""
        base = bloom_param_shapes(self.config)
        prefix = BASE_PREFIX if self.save_prefix else ""
        save_int8({(prefix + k if k in base else k): v for k, v in self.params.items()}, directory)
        config = copy.deepcopy(self.config)
        config.architectures = [type(self).__name__]
        config.save_pretrained(directory)
