"""Loading and saving models the way transformers' `from_pretrained` / `save_pretrained` do.

Every model class holds its tensors in `self.params`, a flat dict keyed by checkpoint names
*without* the `transformer.` prefix (`h.0.mlp.dense_h_to_4h.weight`, `score.weight`). Classes that
transformers saves with the prefix (the task heads) set `save_prefix = True`.
"""

from __future__ import annotations

import copy
import math
import os

import numpy as np
from tqdm.auto import tqdm

from . import hub
from .atomic import reading, transaction
from .backends import get_backend, resolve_backend
from .config import CONFIG_NAME, BloomConfig
from .errors import CheckpointError, InputError, warn_at_caller
from .int8_io import is_int8_checkpoint, load_int8, save_int8
from .storage import STORAGE_DTYPES, as_array, check_storage, resolve_storage, storage_of, store, to_float32
from .threads import set_num_threads, use_default_threads
from .validation import check_allocation
from .weights import (BASE_PREFIX, SAFE_WEIGHTS_NAME, bloom_param_shapes, check_sizes_against_tensors, check_state_dict,
                      init_params, load_state_dict, param_count, parse_size, save_state_dict, strip_base_prefix)

# Tensors of transformers' task heads: present in head checkpoints, ignored by classes that lack them.
HEAD_TENSORS = ("lm_head.weight", "score.weight", "classifier.weight", "classifier.bias",
                "qa_outputs.weight", "qa_outputs.bias")
SAVE_DTYPES = ("float32", "float16", "bfloat16")
# Files some class writes beside config.json and the weights (`_extra_files`): a save of a class
# that does not write one removes it, so the directory never mixes two saves' files.
EXTRA_FILES = ("generation_config.json",)


def _is_dtype_name(value: str) -> bool:
    return value in ("float32", "float16", "bfloat16", "float64", "int8", "half", "float")


def _as_dtype(value) -> np.dtype | str:
    """A NumPy dtype, or torch's dtype by name (torch.float32 -> "float32"), without importing torch."""
    name = str(value).removeprefix("torch.")
    if type(value).__name__ == "dtype" and type(value).__module__ == "torch" or isinstance(value, str):
        return np.dtype("float32") if name in ("float32", "float") else name
    try:
        return np.dtype(value)
    except TypeError:
        raise InputError(f"to({value!r}): not a device or dtype") from None


class PreTrainedBloom:
    """Base of every minibloom model class: construction, checks, from_pretrained, save_pretrained."""

    save_prefix = False  # head classes save the base model's tensors as `transformer.*`

    def __init__(self, config: BloomConfig, params: dict[str, np.ndarray] | None = None, seed: int = 0,
                 backend: str = "auto", storage: str = "auto", threads: int | None = None):
        """Build from a config and tensors (checkpoint names); random weights when `params` is None.

        The given tensors are never changed: those already in the chosen storage are shared, not
        copied (a memory-mapped checkpoint is not read twice), and the others are converted into
        new arrays. Shared means shared: training this model in place changes them for whoever
        else holds them, so pass copies to train two models apart.

        backend: "numpy" (the readable reference), "numba" (compiled kernels, the same arithmetic
        faster), or "auto" (the default): "numba" where it imports, else "numpy" (`backends`).
        storage: how weight matrices are held, "float32", "float16", "bfloat16" or "int8" (per-row
        absmax codes, `storage.Int8Matrix`); compute is float32 either way, and fewer bytes mean
        less RAM and fewer bytes read per decoded token. Or
        "auto": as the given tensors are (float32 for random weights).
        threads: compute threads for this process (`minibloom.set_num_threads`); None keeps the
        current setting, the cores this process may run on unless something set it
        (`minibloom.threads` says why; 1 on a machine other programs keep busy).
        """
        config.validate()
        if params is None:  # check before work: a huge config is refused before any table is built
            head = sum(math.prod(s) for s in self.head_shapes(config).values())
            check_allocation(4 * (param_count(config) + head), f"{type(self).__name__}({config!r}) random weights")
        else:
            check_sizes_against_tensors(config, {n: np.shape(v) for n, v in params.items()},
                                        f"{type(self).__name__} parameters")
        shapes = self.param_shapes(config)
        if params is None:
            params = init_params(shapes, config.initializer_range, seed)
        check_state_dict(params, shapes, where=f"{type(self).__name__} parameters")
        self.config = config
        storage = resolve_storage(storage, params)
        self.backend, self.storage = resolve_backend(backend), storage
        self.ops = get_backend(self.backend, checked=False)  # the model builds every argument itself
        if self.backend == "numpy" and storage != "float32":  # same message twice (a head's base): shown once
            warn_at_caller(f"backend='numpy' widens the {storage} weights to float32 in every product (1.1-10x "
                           "float32's time); backend='numba' reads them as stored, storage='float32' widens once")
        dtype = STORAGE_DTYPES[storage]
        if threads is not None:
            set_num_threads(threads)
        else:
            use_default_threads()
        total = sum(as_array(params[name]).nbytes for name in shapes)
        with tqdm(total=total, desc="loading weights", unit="B", unit_scale=True, unit_divisor=1024, delay=2.0,
                  leave=False, disable=None) as bar:  # in bytes: one 1 GB embedding is most of the work
            self.params = {}
            for name in shapes:  # shown only on a terminal, and only when it takes over 2 s
                self.params[name] = store(name, as_array(params[name]), dtype)
                bar.update(as_array(params[name]).nbytes)

    @classmethod
    def param_shapes(cls, config: BloomConfig) -> dict[str, tuple[int, ...]]:
        """Every tensor this class needs, by checkpoint name (no prefix), with its shape."""
        return {**bloom_param_shapes(config), **cls.head_shapes(config)}

    @classmethod
    def head_shapes(cls, config: BloomConfig) -> dict[str, tuple[int, ...]]:
        """The tensors of the task head on top of the base model (none for BloomModel)."""
        return {}

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, seed: int = 0, backend: str = "auto",
                        storage: str = "auto", threads: int | None = None, **config_overrides):
        """Load config.json and the safetensors weights of a local checkpoint directory, or of a hub
        name ("bigscience/bloom-560m", through huggingface_hub and its cache: see `hub.py`).

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
        check_storage(storage)  # the arguments first: before a download or a read
        backend = resolve_backend(backend)
        if threads is not None:
            set_num_threads(threads)
        directory = hub.resolve(directory)  # a hub name -> its snapshot in the HF cache
        if not os.path.isdir(directory):
            raise CheckpointError(f"checkpoint directory not found: {os.fspath(directory)}")
        with reading(directory) as files:  # one save's files, even of a save a kill interrupted (atomic.py)
            config = BloomConfig.from_json_file(files.path(CONFIG_NAME))
            weights = os.path.dirname(files.path(SAFE_WEIGHTS_NAME))  # int8: one file, read where it lies
            state = strip_base_prefix(load_int8(weights) if is_int8_checkpoint(weights)
                                      else load_state_dict(files, dtype=None))
            extra = cls._read_extra_files(files)  # under the same lock: from the same save as the weights
        for key, value in config_overrides.items():
            setattr(config, key, value)
        config.validate()
        check_sizes_against_tensors(config, {n: v.shape for n, v in state.items()}, os.fspath(directory))
        shapes = cls.param_shapes(config)
        fresh = {n: s for n, s in cls.head_shapes(config).items() if n not in state}
        if fresh:
            check_allocation(4 * sum(math.prod(s) for s in fresh.values()), f"the new head {sorted(fresh)}")
            warn_at_caller(f"{cls.__name__}: {sorted(fresh)} not in {os.fspath(directory)}; newly initialised "
                           "(train them before use)")
            state.update(init_params(fresh, config.initializer_range, seed))
        ignored = tuple(name for name in HEAD_TENSORS if name not in shapes)
        where = os.fspath(directory) + (f" with {config_overrides}" if config_overrides else "")
        check_state_dict(state, shapes, ignored=ignored, where=where)
        stored = storage_of(state["word_embeddings.weight"])
        if storage not in ("auto", stored):
            warn_at_caller(f"{os.fspath(directory)}: converting the {stored} weights to {storage} while loading "
                           f"(storage='auto' keeps {stored}; save_pretrained(dtype=...) once to skip this)")
        model = cls(config, {name: state[name] for name in shapes}, backend=backend, storage=storage, threads=threads)
        for name, value in extra.items():
            setattr(model, name, value)
        return model

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
        dtype "int8": minibloom's own int8 layout (`int8_io`), which transformers does not load.

        The whole checkpoint is one transaction (`atomic.transaction`): killed at any instant, the
        directory holds the complete old checkpoint or the complete new one."""
        if dtype == "int8":
            if max_shard_size is not None:
                raise InputError("max_shard_size: an int8 checkpoint is one file (int8_io); pass None")
            base = bloom_param_shapes(self.config)  # the int8 codes and row absmax as held (bit-exact reload)
            prefix = BASE_PREFIX if self.save_prefix else ""
            state = {(prefix + k if k in base else k): v for k, v in self.params.items()}
            return self._save(directory, lambda txn: save_int8(state, txn))
        if dtype not in SAVE_DTYPES:
            raise InputError(f"dtype must be one of {SAVE_DTYPES}, got {dtype!r}")
        if max_shard_size is not None:
            parse_size(max_shard_size)  # a bad size is refused before anything is written
        self._save(directory, lambda txn: save_state_dict(self.state_dict(), directory, dtype=dtype,
                                                          max_shard_size=max_shard_size, txn=txn))

    def _save(self, directory: str | os.PathLike, write_weights) -> None:
        """One transaction: the weight files (`write_weights(txn)`), config.json and the class's extra
        files switch together (atomic.py)."""
        config = copy.deepcopy(self.config)
        config.architectures = [type(self).__name__]
        with transaction(directory) as txn:
            write_weights(txn)
            txn.write_bytes(CONFIG_NAME, config.to_json_string().encode("utf-8"))
            extra = self._extra_files()
            for name, data in extra.items():
                txn.write_bytes(name, data)
            for name in EXTRA_FILES:
                if name not in extra:  # a causal LM's generation_config.json, left by the save this replaces
                    txn.remove(name)

    @classmethod
    def _read_extra_files(cls, files) -> dict[str, object]:
        """What a class reads beside config.json and the weights (`files`: atomic.Snapshot), as
        {attribute: value} set on the loaded model."""
        return {}

    def _extra_files(self) -> dict[str, bytes]:
        """Files a class saves beside config.json and the weights, in the same transaction (names
        from EXTRA_FILES; those the class does not write are removed by the save)."""
        return {}

    # ----------------------------------------------------- transformers' PreTrainedModel helpers

    training = False  # transformers' nn.Module flag; from_pretrained models start in eval mode, as there

    def eval(self) -> "PreTrainedBloom":
        """Inference mode (the default); returns self, as transformers' `model.eval()`."""
        return self.train(False)

    def train(self, mode: bool = True) -> "PreTrainedBloom":
        """Set the `training` flag; returns self.

        subtle: minibloom implements no dropout, so the forward is the same in both modes. With
        BLOOM's dropout probabilities at 0.0 (every released checkpoint) that *is* transformers'
        training forward; with a non-zero one it is not, and train(True) says so in a warning.
        Training itself is `minibloom.training` (value_and_grad, fit), which needs no flag."""
        if not isinstance(mode, bool):
            raise InputError(f"train(mode): mode must be True or False, got {mode!r}")
        if mode:
            rates = {k: getattr(self.config, k, None) for k in ("hidden_dropout", "attention_dropout",
                                                                "classifier_dropout")}
            rates = {k: v for k, v in rates.items() if v}
            if rates:
                warn_at_caller(f"{type(self).__name__}.train(): dropout is not implemented, so {rates} are "
                               "ignored: the training-mode forward is the eval forward")
        self.training = mode
        for part in (getattr(self, "transformer", None),):
            if part is not None:
                part.training = mode
        return self

    @property
    def device(self) -> str:
        """Where the arrays live: "cpu" (NumPy; the GPU model is `minibloom.cuda.CudaBloomForCausalLM`)."""
        return "cpu"

    @property
    def dtype(self) -> np.dtype:
        """The compute dtype, float32 (transformers' `model.dtype`); weights may be *held* in fewer
        bytes, see `storage`."""
        return np.dtype(np.float32)

    def to(self, *args, **kwargs) -> "PreTrainedBloom":
        """transformers' `model.to(device / dtype)`: returns self for "cpu" and float32, the only place
        and dtype these NumPy models compute in. Anything else is an `InputError` saying what to use
        instead: `minibloom.cuda.CudaBloomForCausalLM` for a GPU, `from_pretrained(storage=...)` for
        weights held as float16/bfloat16/int8."""
        unknown = set(kwargs) - {"device", "dtype", "non_blocking", "copy"}
        if unknown:
            raise InputError(f"to(): unknown arguments {sorted(unknown)}")
        for value in (*args, kwargs.get("device"), kwargs.get("dtype")):
            if value is None:
                continue
            if isinstance(value, str) and not _is_dtype_name(value) or type(value).__name__ == "device":
                if str(value).split(":")[0] != "cpu":
                    raise InputError(f"to({value!r}): this model computes with NumPy on the CPU; for a GPU load "
                                     "minibloom.cuda.CudaBloomForCausalLM.from_pretrained(...)")
            elif _as_dtype(value) != np.float32:
                raise InputError(f"to({value!r}): compute is float32; to hold the weights in fewer bytes load "
                                 "with from_pretrained(..., storage='float16' | 'bfloat16' | 'int8')")
        return self

    @classmethod
    def can_generate(cls) -> bool:
        """True for classes with a `generate` method (BloomForCausalLM), as in transformers."""
        return callable(getattr(cls, "generate", None))

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """How many numbers the model holds; a tied lm_head is the embedding matrix and counts once.
        exclude_embeddings leaves out the word embeddings (transformers' nn.Embedding weights);
        every parameter is trainable here, so only_trainable changes nothing."""
        skip = {"word_embeddings.weight"} if exclude_embeddings else set()
        return int(sum(np.asarray(v).size for k, v in self.params.items() if k not in skip))

    def get_input_embeddings(self) -> np.ndarray:
        """The word-embedding matrix [V, H] (transformers returns the nn.Embedding holding it)."""
        return self.params["word_embeddings.weight"]

    def set_input_embeddings(self, value) -> None:
        """Replace the word embeddings with `value` [V', H]; config.vocab_size becomes V'. With tied
        embeddings the LM head follows (it *is* this matrix)."""
        value = np.asarray(value)
        H = self.config.hidden_size
        if value.ndim != 2 or value.shape[1] != H or value.shape[0] < 1 or value.dtype.kind != "f":
            raise InputError(f"input embeddings must be a float array [vocab, {H}], got {value.dtype} {value.shape}")
        stored = store("word_embeddings.weight", value, STORAGE_DTYPES[self.storage])
        for model in (self, getattr(self, "transformer", None)):
            if model is not None:
                model.params["word_embeddings.weight"] = stored
        self.config.vocab_size = value.shape[0]

    def resize_token_embeddings(self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None,
                                mean_resizing: bool = True) -> np.ndarray:
        """Grow or shrink the vocabulary to new_num_tokens rows (rounded up to pad_to_multiple_of);
        returns the new embedding matrix [V', H].

        Kept rows are unchanged; new rows are the mean of the old ones (mean_resizing, so new tokens
        start as an average token: transformers samples them close to that mean) or N(0,
        initializer_range) draws. An untied lm_head is resized the same way.
        """
        from .validation import check_int

        old = to_float32(self.get_input_embeddings())  # [V, H]
        V = old.shape[0] if new_num_tokens is None else check_int("new_num_tokens", new_num_tokens, 1)
        if pad_to_multiple_of is not None:
            m = check_int("pad_to_multiple_of", pad_to_multiple_of, 1)
            V = -(-V // m) * m
        if not isinstance(mean_resizing, bool):
            raise InputError(f"mean_resizing must be True or False, got {mean_resizing!r}")
        rng = np.random.default_rng(0)

        def resized(matrix: np.ndarray) -> np.ndarray:
            extra = V - matrix.shape[0]
            if extra <= 0:
                return matrix[:V].copy()
            fill = (np.broadcast_to(matrix.mean(axis=0), (extra, matrix.shape[1])) if mean_resizing else
                    rng.normal(0.0, self.config.initializer_range, (extra, matrix.shape[1])))
            return np.concatenate([matrix, fill.astype(np.float32)])  # [V', H]

        if "lm_head.weight" in self.params:
            self.params["lm_head.weight"] = store("lm_head.weight", resized(to_float32(self.params["lm_head.weight"])),
                                                  STORAGE_DTYPES[self.storage])
        self.set_input_embeddings(resized(old))
        return self.get_input_embeddings()
