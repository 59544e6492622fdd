"""The golden-file format as a port sees it (docs/golden-format.md): names, their order and axes,
and a reader for the three containers a port may write.

A port writes tensors under the documented names into a plain `.safetensors` file, an `.npz`, or a
directory of `NAME.npy` files; nothing else is required. What minibloom needs beyond the names --
the forward order, the axis names used to report positions, which positions are padding -- it
derives from the names and from the *golden* side, never from the port's file. A file that
minibloom wrote itself carries the same facts in its `__metadata__`, which is then used as is.

Shape legend: B batch, T tokens, S keys, H hidden, N heads, D head_dim, V vocab, C labels.
"""

from __future__ import annotations

import fnmatch
import io
import json
import math
import os
import re
import tokenize
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np
from numpy.lib import format as npy_format

from ..errors import CheckpointError, InputError, MinibloomError, SafetensorsFormatError
from ..safe_read import loads, open_regular
from ..safetensors_io import STORAGE_DTYPES, read_header, read_tensor
from ..validation import check_allocation

FORMAT = "minibloom-golden"
FORMAT_VERSION = "1"
INPUTS = ("input_ids", "attention_mask")
HEAD_OUTPUTS = ("logits", "start_logits", "end_logits")
MODEL_CLASSES = ("BloomModel", "BloomForCausalLM", "BloomForSequenceClassification",
                 "BloomForTokenClassification", "BloomForQuestionAnswering")
# the per-layer names, in forward order: h.{i}.<op>
LAYER_OPS = ("input_layernorm", "self_attention.qkv", "self_attention.q", "self_attention.k", "self_attention.v",
             "self_attention.alibi", "self_attention.scores", "self_attention.probs", "self_attention.context",
             "self_attention.dense", "post_attention_layernorm", "mlp.dense_h_to_4h", "mlp.gelu",
             "mlp.dense_4h_to_h", "output")
BEFORE_LAYERS = (*INPUTS, "embeddings", "embeddings_layernorm")
AFTER_LAYERS = ("ln_f", "last_hidden_state", *HEAD_OUTPUTS)
LAYER_NAME = re.compile(r"h\.(0|[1-9][0-9]*)\.(.+)")  # canonical ASCII indices: h.01.output is no name
# A training golden (train.py) adds the targets, the loss, `d.<name>` (the gradient arriving at
# an intermediate), `grad.<parameter>` and the optimizer's `step.<s>.<kind>.<parameter>` / `step.<s>.loss`.
TRAIN_INPUTS = ("labels", "gen.tokens", "gen.draws")
ALL_INPUTS = (*INPUTS, *TRAIN_INPUTS)
LAYER_PARAMS = ("input_layernorm.weight", "input_layernorm.bias", "self_attention.query_key_value.weight",
                "self_attention.query_key_value.bias", "self_attention.dense.weight", "self_attention.dense.bias",
                "post_attention_layernorm.weight", "post_attention_layernorm.bias", "mlp.dense_h_to_4h.weight",
                "mlp.dense_h_to_4h.bias", "mlp.dense_4h_to_h.weight", "mlp.dense_4h_to_h.bias")
OUTER_PARAMS = ("word_embeddings.weight", "word_embeddings_layernorm.weight", "word_embeddings_layernorm.bias",
                "ln_f.weight", "ln_f.bias", "lm_head.weight")
# a generation golden (generate.py): the chosen tokens, and per decoding step s the cache rows
# each layer wrote and the last position's logits; a sampling golden adds the draws, and per step the
# processed scores, their probabilities and the token the draw chose
GEN_NAME = re.compile(r"gen\.(0|[1-9][0-9]*)\.(logits|scores|probs|token|h\.(?:0|[1-9][0-9]*)\.[kv])")
STEP_NAME = re.compile(r"step\.([1-9][0-9]*)\.(?:loss|(?:grad|param|m|v)\.(.+))")


def split_phase(name: str) -> tuple[str, str]:
    """(phase, base name): ("", name) for the forward, ("d", x) for `d.x`, ("grad", p) for `grad.p`,
    ("step.<s>", p) for `step.<s>.<kind>.p` and ("step.<s>", "loss") for `step.<s>.loss`."""
    if name.startswith(("d.", "grad.")):
        phase, _, base = name.partition(".")
        return phase, base
    m = STEP_NAME.fullmatch(name)
    if m:
        return f"step.{m.group(1)}", m.group(2) or "loss"
    m = GEN_NAME.fullmatch(name)
    if m:
        return f"gen.{m.group(1)}", m.group(2)
    return "", name


def step_of(name: str) -> int | None:
    """The optimizer step s of `step.<s>.*` (the decoding step of `gen.<s>.*`), None for any other name."""
    m = STEP_NAME.fullmatch(name) or GEN_NAME.fullmatch(name)
    return int(m.group(1)) if m else None


def is_param(name: str) -> bool:
    """A parameter's checkpoint name without `transformer.` (BloomForCausalLM's)."""
    m = LAYER_NAME.fullmatch(name)
    return (m.group(2) in LAYER_PARAMS) if m else name in OUTER_PARAMS
# `--only` / `--tolerances` globs: a glob's match costs its length times the name's, and thousands of
# distinct globs thrash the regex cache (40,000 took 48 s on a 66-tensor golden); the longest name is
# under 40 characters and a port's tolerances file holds a handful of globs
MAX_GLOBS = 256
MAX_GLOB_CHARS = 256


def layer_of(name: str) -> int | None:
    """The layer index of `h.{i}.<op>` (and of its `d.` / `grad.` / `step.` names), None outside the layers."""
    m = LAYER_NAME.fullmatch(split_phase(name)[1])
    return int(m.group(1)) if m else None


def is_documented(name: str) -> bool:
    """Whether `name` is one the format defines (docs/golden.md); compare fails on any other."""
    if not isinstance(name, str):
        return False
    phase, base = split_phase(name)
    if phase == "d":  # every recorded intermediate but the inputs and the ALiBi bias (a constant)
        return is_documented(base) and base not in INPUTS and not base.endswith(".alibi") and not phase_of_base(base)
    if phase.startswith("gen."):
        return True  # GEN_NAME matched it whole
    if phase:
        return base == "loss" or is_param(base)
    if name in ("loss", *TRAIN_INPUTS):
        return True
    m = LAYER_NAME.fullmatch(name)
    return (m.group(2) in LAYER_OPS) if m else name in BEFORE_LAYERS + AFTER_LAYERS


def phase_of_base(base: str) -> bool:
    """Whether a `d.` name's base is itself a training name (`d.d.x`, `d.grad.p`: no name)."""
    return bool(split_phase(base)[0]) or base in ("loss", *TRAIN_INPUTS)


def forward_order(names) -> list[str]:
    """The names sorted in forward order: inputs, embeddings, layer by layer op by op, ln_f, outputs;
    names that are not documented keep their relative order at the end."""
    def key(item):
        pos, name = item
        m = LAYER_NAME.fullmatch(name)
        if m and m.group(2) in LAYER_OPS:
            return (1, int(m.group(1)), LAYER_OPS.index(m.group(2)))
        if name in BEFORE_LAYERS:
            return (0, BEFORE_LAYERS.index(name), 0)
        if name in AFTER_LAYERS:
            return (2, AFTER_LAYERS.index(name), 0)
        return (3, pos, 0)
    return [n for _, n in sorted(enumerate(names), key=key)]


def guess_model_class(names) -> str:
    """The head that wrote these names, for a file without metadata (only used to name axes)."""
    names = set(names)
    if "start_logits" in names:
        return "BloomForQuestionAnswering"
    if "logits" not in names and "last_hidden_state" in names:
        return "BloomModel"
    return "BloomForCausalLM"


def axes_of(name: str, ndim: int, model_class: str) -> list[str]:
    """Names of the axes of tensor `name`, for reporting positions."""
    phase, base = split_phase(name)
    if phase == "d":
        return axes_of(base, ndim, model_class)
    if base == "loss":
        return ["_"] * ndim
    if phase.startswith("gen."):
        return ["batch"] if base == "token" else ["batch", "vocab"] if base in ("logits", "scores", "probs") \
            else ["batch", "head", "token", "dim"]
    if phase:  # a parameter (its gradient, its value or moment after a step), or a loss
        vocab = base in ("word_embeddings.weight", "lm_head.weight")
        return (["vocab", "channel"] if vocab else ["out", "in"]) if ndim == 2 else ["channel"][:ndim]
    leaf = name.rsplit(".", 1)[-1]
    if leaf in ("scores", "probs"):
        return ["batch", "head", "token", "key"]
    if leaf == "alibi":
        return ["batch", "head", "_", "key"] if ndim == 4 else ["batch", "head", "token", "key"]
    if leaf in ("q", "k", "v") and layer_of(name) is not None:
        return ["batch", "head", "token", "dim"]
    if name == "logits" and (model_class == "BloomForSequenceClassification" or ndim == 2):
        return ["batch", "label"]
    if name == "logits":
        return ["batch", "token", "vocab" if model_class == "BloomForCausalLM" else "label"]
    return ["batch", "token", "channel"][:ndim] if ndim <= 3 else [f"axis{i}" for i in range(ndim)]


@dataclass
class GoldenFile:
    """Tensors by name, the file's metadata (empty for a plain file) and each tensor's stored dtype."""

    tensors: dict[str, np.ndarray]
    metadata: dict[str, str] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)

    @property
    def order(self) -> list[str]:
        if "order" in self.metadata:
            return json.loads(self.metadata["order"])
        return forward_order(self.tensors)

    @property
    def model_class(self) -> str:
        return self.metadata.get("model_class") or guess_model_class(self.tensors)

    @property
    def axes(self) -> dict[str, list[str]]:
        axes = json.loads(self.metadata.get("axes", "{}"))
        cls = self.model_class
        return {n: axes.get(n) or axes_of(n, np.ndim(t), cls) for n, t in self.tensors.items()}

    @property
    def n_layer(self) -> int:
        layers = [layer_of(n) for n in self.tensors]
        return max([i for i in layers if i is not None], default=-1) + 1

    def dtype_of(self, name: str) -> str:
        return self.dtypes.get(name) or np.asarray(self.tensors[name]).dtype.name


def _read_npy_dir(path: str) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, str]]:
    tensors, used = {}, 0
    for entry in sorted(os.listdir(path)):
        if entry.endswith(".npy"):
            file, name = os.path.join(path, entry), entry[:-4]
            with open_regular(file, CheckpointError) as f:  # never a FIFO (a hang) or /dev/zero
                tensors[name] = _read_npy(f, os.fstat(f.fileno()).st_size, f"{file}: tensor {name!r}", used)
            used += tensors[name].nbytes
    if not tensors:
        raise CheckpointError(f"{path}: a golden directory must hold NAME.npy files, found none")
    return tensors, {}, {}


NPY_MAGIC = b"\x93NUMPY"
MAX_NPY_HEADER = 65536  # numpy writes under 1 KiB for any array here (its own reader's default cap: 10,000)


def _read_npy(f, size: int, where: str, used: int) -> np.ndarray:
    """One .npy array from `f`, which holds `size` bytes (a file, or an .npz member). The header is
    checked before anything is allocated: its length against `size`, its shape and dtype against the
    data that follows (exactly as many bytes, no more), and the array against the memory budget with
    the `used` bytes already read -- a 200-byte file cannot ask for 4 TiB."""
    dtype, shape, fortran, offset = _npy_header(f, size, where)
    nbytes = math.prod(shape) * dtype.itemsize
    if offset + nbytes != size:
        raise CheckpointError(f"{where}: the header's shape {shape} of {dtype} needs {nbytes:,} bytes of data, "
                              f"the file holds {size - offset:,}")
    check_allocation(used + nbytes, f"{where} ({shape} {dtype}, with the tensors read before it)")
    flat = np.empty(math.prod(shape), dtype)
    view, pos = memoryview(flat.view(np.uint8)), 0
    while pos < nbytes:
        chunk = f.read(min(nbytes - pos, 1 << 24))
        if not chunk:
            raise CheckpointError(f"{where}: the data ends after {pos:,} of {nbytes:,} bytes")
        view[pos:pos + len(chunk)] = chunk
        pos += len(chunk)
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)  # as numpy.load builds it


def _npy_header(f, size: int, where: str) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """(dtype, shape, fortran_order, offset of the data) of an .npy header, parsed by NumPy's own
    header reader once its length is known to be small and inside the file."""
    head = f.read(12)
    if len(head) < 10 or head[:6] != NPY_MAGIC:
        raise CheckpointError(f"{where}: not an .npy array (no \\x93NUMPY signature)")
    major = head[6]
    if head[6:8] not in (b"\x01\x00", b"\x02\x00"):  # 3.0: structured dtypes with non-Latin-1 field names
        raise CheckpointError(f"{where}: .npy format version {major}.{head[7]}; golden tensors are 1.0 or 2.0")
    start = 10 if major == 1 else 12
    n = int.from_bytes(head[8:start], "little")
    if len(head) < start or not 12 <= start + n <= size or n > MAX_NPY_HEADER:
        raise CheckpointError(f"{where}: .npy header length {n:,} does not fit the file ({size:,} bytes, "
                              f"headers up to {MAX_NPY_HEADER:,})")
    raw = head + f.read(start + n - len(head))
    parse = npy_format.read_array_header_1_0 if major == 1 else npy_format.read_array_header_2_0
    try:
        with warnings.catch_warnings():  # a hostile header's string escapes would warn from literal_eval
            warnings.simplefilter("ignore", (SyntaxWarning, DeprecationWarning))
            shape, fortran, dtype = parse(io.BytesIO(raw[8:]), max_header_size=MAX_NPY_HEADER)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError, OverflowError, KeyError,
            tokenize.TokenError) as e:  # numpy tokenizes the header before its literal_eval
        raise CheckpointError(f"{where}: not a valid .npy header: {e}") from None
    if not all(type(d) is int and d >= 0 for d in shape) or len(shape) > 64:
        raise CheckpointError(f"{where}: .npy shape {shape!r:.100} is not a list of at most 64 sizes >= 0")
    if dtype.kind not in "biuf" or dtype.hasobject:
        raise CheckpointError(f"{where}: dtype {dtype}; golden tensors are numbers")
    if math.prod(d for d in shape if d) * dtype.itemsize > np.iinfo(np.intp).max:
        raise CheckpointError(f"{where}: shape {shape} is too large for NumPy to build, even empty")
    return dtype, shape, bool(fortran), start + n


# the containers numpy.savez / savez_compressed write; deflate expands at most ~1032:1
NPZ_EXPANSION = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: 1032}


def _read_npz(path: str) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, str]]:
    tensors, members, used = {}, {}, 0
    with open_regular(path, CheckpointError) as raw:
        size = os.fstat(raw.fileno()).st_size
        try:
            with zipfile.ZipFile(raw) as z:
                for info in z.infolist():
                    name = info.filename.removesuffix(".npy")  # numpy.load's name for the member
                    where = f"{path}: tensor {name!r} (member {info.filename!r})"
                    if name in members:
                        raise CheckpointError(f"{path}: the name {name!r} is stored twice (members "
                                              f"{members[name]!r} and {info.filename!r}); each name once")
                    members[name] = info.filename
                    ratio = NPZ_EXPANSION.get(info.compress_type)
                    if ratio is None:
                        raise CheckpointError(f"{where}: compression method {info.compress_type}; an .npz is "
                                              "stored or deflated (numpy.savez / savez_compressed)")
                    if info.compress_size > size or info.file_size > ratio * info.compress_size + 64:
                        raise CheckpointError(f"{where}: claims {info.file_size:,} bytes from {info.compress_size:,} "
                                              f"stored, in a file of {size:,}")
                    with z.open(info) as f:
                        tensors[name] = _read_npy(f, info.file_size, where, used)
                    used += tensors[name].nbytes
        except MinibloomError:
            raise
        except (OSError, ValueError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile,
                zlib.error) as e:
            raise CheckpointError(f"{path}: not a readable .npz file: {e}") from None
    return tensors, {}, {}


def _read_safetensors(path: str) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, str]]:
    infos, metadata = read_header(path)  # every offset and shape checked against the file's size
    _refuse_repeated_names(path)
    used = 0
    for name, info in infos.items():  # bfloat16 becomes float32: 4 bytes an element in memory
        used += math.prod(info.shape) * (4 if info.dtype == "BF16" else STORAGE_DTYPES[info.dtype].itemsize)
        check_allocation(used, f"{path}: tensor {name!r} ({list(info.shape)} {info.dtype}, with the tensors "
                               "before it)")
    tensors = {name: read_tensor(path, info) for name, info in infos.items()}
    dtypes = {name: {"BF16": "bfloat16", "F16": "float16", "F32": "float32", "F64": "float64"}.get(info.dtype, "")
              for name, info in infos.items()}
    return tensors, metadata, {k: v for k, v in dtypes.items() if v}


def _refuse_repeated_names(path: str) -> None:
    """The safetensors package keeps the last of a name written twice (and so does `read_header`, which
    refuses the gap the first one's bytes leave -- unless they are empty). A golden file holds each
    name once: the header is read again and any repeated key refused."""
    def unique(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the name {key!r} appears twice; each name once")
            seen.add(key)
        return dict(pairs)

    with open_regular(path, SafetensorsFormatError) as f:  # read_header checked this length
        raw = f.read(int.from_bytes(f.read(8), "little"))
    loads(raw, f"{path}: header", SafetensorsFormatError, object_pairs_hook=unique)


def read(path: str | os.PathLike) -> GoldenFile:
    """Read a golden file: minibloom's own, or a port's plain safetensors / .npz / .npy directory.

    Metadata is used only when it says `format: minibloom-golden`; any other metadata (transformers
    writes `format: pt`) is ignored. Refused, as a CheckpointError naming the file: a path that does
    not exist, a file that none of the containers can read, a file holding no documented name, a
    non-numeric tensor, and minibloom metadata that is inconsistent (version, order, model class).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        tensors, metadata, dtypes = _read_npy_dir(path)
    elif not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such golden file")
    else:
        with open(path, "rb") as f:
            magic = f.read(4)
        tensors, metadata, dtypes = (_read_npz if magic == b"PK\x03\x04" else _read_safetensors)(path)
    for name, t in tensors.items():
        if t.dtype.kind not in "biuf":
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {t.dtype}; golden tensors are numbers")
    if not any(is_documented(n) for n in tensors):
        raise CheckpointError(f"{path}: holds none of the documented golden names (docs/golden-format.md); "
                              f"it has {sorted(tensors)[:5]}")
    if metadata.get("format") == FORMAT:
        _check_metadata(path, metadata, tensors)
    else:
        metadata = {}
    return GoldenFile(tensors, metadata, dtypes)


def _check_metadata(path: str, metadata: dict[str, str], tensors: dict[str, np.ndarray]) -> None:
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: golden format version {metadata.get('format_version')!r}, "
                              f"this minibloom reads {FORMAT_VERSION!r}")
    cls = metadata.get("model_class")
    if cls is not None and cls not in MODEL_CLASSES:
        raise CheckpointError(f"{path}: golden metadata model_class {cls[:80]!r} is not one of "
                              f"{', '.join(MODEL_CLASSES)}")
    try:
        order, axes = json.loads(metadata.get("order", "[]")), json.loads(metadata.get("axes", "{}"))
    except (TypeError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{path}: golden metadata 'order' / 'axes' is not valid JSON: {e}") from None
    if not (isinstance(order, list) and all(isinstance(n, str) for n in order) and isinstance(axes, dict)
            and all(isinstance(a, list) and all(isinstance(x, str) for x in a) for a in axes.values())):
        raise CheckpointError(f"{path}: golden metadata 'order' must be a list of names and 'axes' an object "
                              "of lists of axis names")
    missing = [n for n in order if n not in tensors]
    if missing or not set(INPUTS) <= set(tensors):
        raise CheckpointError(f"{path}: tensors named in the metadata are missing: "
                              f"{(missing or ['input_ids / attention_mask'])[:3]}")


def compile_globs(globs, option: str, error: type[Exception] = InputError) -> list[re.Pattern]:
    """Name globs (fnmatch syntax, case-sensitive), compiled once; at most MAX_GLOBS of at most
    MAX_GLOB_CHARS characters each, else `error` naming `option`."""
    globs = list(globs)
    if len(globs) > MAX_GLOBS:
        raise error(f"{option}: {len(globs):,} globs, at most {MAX_GLOBS} are allowed")
    for glob in globs:
        if not isinstance(glob, str):
            raise error(f"{option}: a glob must be a string, got {glob!r:.80}")
        if len(glob) > MAX_GLOB_CHARS:
            raise error(f"{option}: the glob {glob[:40]!r}... has {len(glob):,} characters, at most "
                        f"{MAX_GLOB_CHARS} are allowed")
    return [re.compile(fnmatch.translate(glob)) for glob in globs]


def select(names, only=(), layers: tuple[int | None, int | None] | None = None, logits_only: bool = False) -> list[str]:
    """The names a compare looks at: `only` globs (any may match), the layers A <= i < B, or the head
    outputs alone. Tensors outside the layers are kept by `layers` (drop them with `only`)."""
    patterns = compile_globs(only, "--only")
    kept = []
    for name in names:
        if patterns and not any(p.match(name) for p in patterns):
            continue
        if logits_only and name not in (*HEAD_OUTPUTS, "last_hidden_state"):
            continue
        i = layer_of(name)
        if layers is not None and i is not None:
            lo, hi = layers
            if (lo is not None and i < lo) or (hi is not None and i >= hi):
                continue
        kept.append(name)
    return kept


def conform(actual: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """`actual` viewed with the golden `shape` when its shape is a natural layout of it: the same
    elements in the same (C) order with adjacent axes merged or axes of length 1 added or dropped,
    e.g. transformers' [B*N, T, S] for [B, N, T, S]. None when it is not."""
    actual = np.asarray(actual)
    if actual.shape == tuple(shape):
        return actual
    if actual.size != int(np.prod(shape)):
        return None
    want = [d for d in shape if d != 1]
    have = [d for d in actual.shape if d != 1]
    j = 0
    for d in have:  # each of the port's axes must be a product of consecutive golden axes
        prod = 1
        while j < len(want) and prod < d:
            prod *= want[j]
            j += 1
        if prod != d:
            return None
    return actual.reshape(shape) if j == len(want) else None
