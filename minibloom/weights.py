"""BLOOM checkpoints on disk, laid out exactly as the Hugging Face hub lays them out.

A checkpoint directory holds `config.json` and either

- `model.safetensors`, one file with every tensor, or
- `model.safetensors.index.json` = {"metadata": {"total_size": N}, "weight_map": {name: file}}
  plus the shards it names (`model-00001-of-00002.safetensors`; bloom-176b spells it
  `model_00001-of-00072.safetensors`: only the index is trusted, never the file names).

Tensor names are transformers' module paths (`h.0.self_attention.query_key_value.weight`).
Checkpoints saved from a task head carry a `transformer.` prefix on the base model's tensors;
official BLOOM checkpoints (converted from Megatron) have none. Both load.

The parameter table (`bloom_param_shapes`) is the one place that says which tensors a BLOOM
model has and what shapes they take; the loader checks every tensor against it.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from .atomic import Snapshot, Transaction, transaction
from .config import BloomConfig
from .errors import CheckpointError, InputError, SafetensorsFormatError, WeightsMismatchError
from .safe_read import read_json
from .safetensors_io import FLOAT_CODES, map_tensor, read_header, read_tensor, save_file

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
BASE_PREFIX = "transformer."
SHARD_NAME = re.compile(r"^model[-_]\d+-of-\d+\.safetensors$")


def bloom_param_shapes(config: BloomConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of a BloomModel with its shape (E = hidden, V = vocab; 12 tensors per layer)."""
    E, V = config.hidden_size, config.vocab_size
    shapes = {"word_embeddings.weight": (V, E),
              "word_embeddings_layernorm.weight": (E,), "word_embeddings_layernorm.bias": (E,)}
    for i in range(config.n_layer):
        h = f"h.{i}."
        shapes.update({
            h + "input_layernorm.weight": (E,), h + "input_layernorm.bias": (E,),
            h + "self_attention.query_key_value.weight": (3 * E, E),  # rows: head, then q/k/v, then dim
            h + "self_attention.query_key_value.bias": (3 * E,),
            h + "self_attention.dense.weight": (E, E), h + "self_attention.dense.bias": (E,),
            h + "post_attention_layernorm.weight": (E,), h + "post_attention_layernorm.bias": (E,),
            h + "mlp.dense_h_to_4h.weight": (4 * E, E), h + "mlp.dense_h_to_4h.bias": (4 * E,),
            h + "mlp.dense_4h_to_h.weight": (E, 4 * E), h + "mlp.dense_4h_to_h.bias": (E,),
        })
    shapes.update({"ln_f.weight": (E,), "ln_f.bias": (E,)})
    return shapes


def param_count(config: BloomConfig) -> int:
    """Number of parameters of a BloomModel, by arithmetic: no table built, so it is instant for
    any config (12 E^2 + 13 E per layer, the embeddings and three layer norms)."""
    E, V = config.hidden_size, config.vocab_size
    return V * E + 2 * E + config.n_layer * (12 * E * E + 13 * E) + 2 * E


_LAYER = re.compile(r"^(?:transformer\.)?h\.(\d+)\.")


def check_sizes_against_tensors(config: BloomConfig, shapes: dict[str, tuple[int, ...]], where: str) -> None:
    """Check before work: the config's n_layer, vocab_size and hidden_size against the tensors a
    checkpoint holds ({name: shape}, from the headers), before any per-layer table is built.
    A config.json claiming 10**9 layers is refused here in microseconds."""
    layers = {int(m.group(1)) for n in shapes if (m := _LAYER.match(n)) and len(m.group(1)) < 10}
    if config.n_layer > len(layers):  # more layers than stored: refused before the table of them is built
        raise WeightsMismatchError(f"{where}: the config says n_layer={config.n_layer}, the checkpoint holds "
                                   f"tensors of {len(layers)} layers")
    for name in ("word_embeddings.weight", BASE_PREFIX + "word_embeddings.weight"):
        if name in shapes and tuple(shapes[name]) != (config.vocab_size, config.hidden_size):
            raise WeightsMismatchError(f"{where}: tensor {name!r} has shape {tuple(shapes[name])}, the config needs "
                                       f"{(config.vocab_size, config.hidden_size)} (vocab_size, hidden_size)")


def init_params(shapes: dict[str, tuple[int, ...]], initializer_range: float = 0.02,
                seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights as transformers initialises them: matrices ~ N(0, initializer_range),
    biases 0, LayerNorm weights 1. For tests, demos and benchmarks; never a trained model."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in shapes.items():
        if len(shape) == 2:
            params[name] = rng.normal(0.0, initializer_range, size=shape).astype(np.float32)
        elif "layernorm" in name or name.startswith("ln_f"):
            params[name] = np.ones(shape, np.float32) if name.endswith("weight") else np.zeros(shape, np.float32)
        else:
            params[name] = np.zeros(shape, np.float32)
    return params


INIT_BLOCK = 2**20  # elements drawn, narrowed and written at a time by `write_random_weights` (~16 MB)


def write_random_weights(path: str, shapes: dict[str, tuple[int, ...]], dtype: str = "float32",
                         initializer_range: float = 0.02, seed: int = 0) -> None:
    """Write `init_params(shapes, initializer_range, seed)` to one .safetensors file, byte for byte
    as `save_file` writes them, without holding them: a few MB at a time, not the model.

    The file lists tensors by sorted name, with their offsets in the header; the random stream runs
    in `shapes` order. So the header is written first, then each tensor is drawn in `shapes` order,
    INIT_BLOCK elements at a time (a Generator's stream does not depend on how the draws are
    split), and written at its own offset."""
    from .atomic import atomic_open
    from .safetensors_io import DTYPE_CODES, encode

    itemsize = 4 if dtype == "float32" else 2
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offsets, offset = {}, 0
    for name in sorted(shapes):
        size = itemsize * int(np.prod(shapes[name]))
        header[name] = {"dtype": DTYPE_CODES[dtype], "shape": list(shapes[name]), "data_offsets": [offset, offset + size]}
        offsets[name], offset = offset, offset + size
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # as save_file: the data region starts 8-byte aligned
    rng = np.random.default_rng(seed)
    with atomic_open(path) as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        start = f.tell()
        for name, shape in shapes.items():  # init_params' order, so its random stream
            f.seek(start + offsets[name])
            if len(shape) != 2:  # vectors: as init_params makes them
                f.write(encode(init_params({name: shape})[name], dtype))
                continue
            rows = max(1, INIT_BLOCK // shape[1])
            for r in range(0, shape[0], rows):
                block = rng.normal(0.0, initializer_range, size=(min(rows, shape[0] - r), shape[1]))
                f.write(encode(block.astype(np.float32), dtype))


# -- reading -----------------------------------------------------------------------------------
def checkpoint_files(directory: str | os.PathLike | Snapshot) -> dict[str, str]:
    """Map each tensor name to the file that holds it, from the single file or the shard index.
    A `Snapshot` (`atomic.reading`) resolves each file name as the save it reads decided."""
    files = directory if isinstance(directory, Snapshot) else Snapshot(os.fspath(directory))
    directory = files.directory
    if not os.path.isdir(directory):
        raise CheckpointError(f"checkpoint directory not found: {directory}")
    single = files.path(SAFE_WEIGHTS_NAME)
    index = files.path(SAFE_WEIGHTS_INDEX_NAME)
    if os.path.isfile(single):  # transformers also looks for the single file first
        infos, _ = read_header(single)
        return {name: single for name in infos}
    if os.path.isfile(index):
        return {name: files.path(f) for name, f in _read_index(index, files).items()}
    others = sorted(f for f in os.listdir(directory) if f.endswith((".bin", ".pt", ".h5", ".msgpack")))
    hint = f" (found {', '.join(others)}: convert them to safetensors first)" if others else ""
    raise CheckpointError(f"{directory} holds neither {SAFE_WEIGHTS_NAME} nor {SAFE_WEIGHTS_INDEX_NAME}{hint}")


def _read_index(path: str, files: Snapshot) -> dict[str, str]:
    index = read_json(path, CheckpointError)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(f"{path}: 'weight_map' must be an object of tensor name -> file name")
    for name, shard in weight_map.items():
        if os.path.basename(shard) != shard or shard in ("", ".", ".."):
            raise CheckpointError(f"{path}: tensor {name!r} names shard {shard!r}, which is not a plain file name")
        if not os.path.isfile(files.path(shard)):
            raise CheckpointError(f"{path}: tensor {name!r} is in shard {shard!r}, which is missing")
    return weight_map


def load_state_dict(directory: str | os.PathLike | Snapshot,
                    dtype: np.dtype | None = np.float32) -> dict[str, np.ndarray]:
    """Read every tensor of a checkpoint directory, decoded to `dtype`, under its stored name.
    dtype None: memory-map each tensor as stored (see `safetensors_io.map_tensor`), copying nothing."""
    state = {}
    for path, names in _group_by_file(checkpoint_files(directory)).items():
        infos, _ = read_header(path)
        for name in names:
            if name not in infos:
                raise CheckpointError(f"the shard index says tensor {name!r} is in {path}, but it is not there")
            if infos[name].dtype not in FLOAT_CODES:
                raise SafetensorsFormatError(f"{path}: tensor {name!r} is stored as {infos[name].dtype}; "
                                             f"weights must be one of {', '.join(FLOAT_CODES)}")
            state[name] = map_tensor(path, infos[name]) if dtype is None else read_tensor(path, infos[name], dtype)
    return state


def _group_by_file(files: dict[str, str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, path in files.items():
        grouped.setdefault(path, []).append(name)
    return grouped


def strip_base_prefix(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop the `transformer.` prefix that head checkpoints put on the base model's tensors."""
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        key = name[len(BASE_PREFIX):] if name.startswith(BASE_PREFIX) else name
        if key in out:
            raise WeightsMismatchError(f"tensor {key!r} is stored twice, with and without the "
                                       f"{BASE_PREFIX!r} prefix")
        out[key] = value
    return out


def check_state_dict(state: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]],
                     ignored: tuple[str, ...] = (), where: str = "checkpoint") -> None:
    """Raise `WeightsMismatchError` listing every missing, unexpected or mis-shaped tensor.

    `ignored` names tensors that may be present and are not used (e.g. another head's weights).
    """
    problems = [f"missing tensor {n!r} (expected shape {tuple(s)})" for n, s in expected.items() if n not in state]
    problems += [f"unexpected tensor {n!r} (shape {tuple(v.shape)})" for n, v in state.items()
                 if n not in expected and n not in ignored]
    problems += [f"tensor {n!r} has shape {tuple(state[n].shape)}, the config needs {tuple(s)}"
                 for n, s in expected.items() if n in state and tuple(state[n].shape) != tuple(s)]
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise WeightsMismatchError(f"{where}: {shown}")


# -- writing -----------------------------------------------------------------------------------
def parse_size(size: int | str) -> int:
    """'5GB' -> 5 * 10**9, '20KiB' -> 20 * 2**10, 1000 -> 1000 (transformers' max_shard_size units)."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        if size <= 0:
            raise InputError(f"max_shard_size must be a positive number of bytes, got {size!r}")
        return int(size)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B\s*", size, re.IGNORECASE) \
        if isinstance(size, str) and len(size) < 64 else None
    if not match:
        raise InputError(f"max_shard_size must be bytes or like '5GB' / '200MiB', got {size!r}")
    number, unit, binary = match.groups()
    power = " KMGT".index(unit.upper() or " ")
    value = int(float(number) * (1024 if binary else 1000) ** power)
    if value <= 0:
        raise InputError(f"max_shard_size must be a positive number of bytes, got {size!r}")
    return value


def save_state_dict(state: dict[str, np.ndarray], directory: str | os.PathLike, dtype: str = "float32",
                    max_shard_size: int | str | None = None, txn: Transaction | None = None) -> list[str]:
    """Write tensors into `directory` in the hub layout, all files in one transaction (`atomic`).

    One `model.safetensors` when the tensors fit in `max_shard_size` (or it is None), else
    `model-0000k-of-0000n.safetensors` shards plus the index. Weight files of an earlier save that
    the new layout does not use are deleted when the new files go in. `txn`: stage the files in a
    transaction the caller commits (with config.json, say) instead of one of their own.
    """
    limit = parse_size(max_shard_size) if max_shard_size is not None else None
    if txn is None:
        with transaction(directory) as own:
            return save_state_dict(state, directory, dtype, max_shard_size, own)
    itemsize = 4 if dtype == "float32" else 2
    shards = _plan_shards(state, itemsize, limit)
    if len(shards) == 1:
        written = [SAFE_WEIGHTS_NAME]
        save_file(state, txn.path(SAFE_WEIGHTS_NAME), dtype)
    else:
        written, weight_map = [], {}
        for k, names in enumerate(shards, start=1):
            fname = f"model-{k:05d}-of-{len(shards):05d}.safetensors"
            save_file({n: state[n] for n in names}, txn.path(fname), dtype)
            written.append(fname)
            weight_map.update({n: fname for n in names})
        total = sum(int(np.size(v)) * itemsize for v in state.values())
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        written.append(SAFE_WEIGHTS_INDEX_NAME)
        txn.write_bytes(SAFE_WEIGHTS_INDEX_NAME, (json.dumps(index, indent=2) + "\n").encode("utf-8"))
    for fname in os.listdir(txn.directory):  # the other layout's files, and shards of another count
        if fname in (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME) or SHARD_NAME.match(fname):
            txn.remove(fname)
    return [os.path.join(os.fspath(directory), f) for f in written]


def _plan_shards(state: dict[str, np.ndarray], itemsize: int, limit: int | None) -> list[list[str]]:
    shards: list[list[str]] = [[]]
    used = 0
    for name in sorted(state):
        size = int(np.size(state[name])) * itemsize
        if limit is not None and shards[-1] and used + size > limit:
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += size
    return shards
