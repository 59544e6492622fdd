"""Golden outputs for porters, one concept per module:

    format.py    the port-facing format: tensor names, forward order, axes, the plain-file reader
    record.py    recording a forward pass into a golden file (`dump`, `capture`)
    diff.py      comparing two records and naming the first divergent op (`compare`, `format_report`)
    lowp.py      float16 / bfloat16 goldens computed as transformers computes them
    tokens.py    tokenizer goldens (JSON Lines: ids, offsets, decoded text) and their compare
    train.py     training goldens: the backward and AdamW steps
    generate.py  generation goldens: each step's logits and cache rows, greedy or sampled

`minibloom.golden` holds the names of format, record and diff that docs/golden.md documents; the
tokens, train and generate goldens are `minibloom.golden.tokens` and so on.
"""

from .diff import (BASE_TOLERANCE, DEPTH_SCALE, Report, TensorDiff, check_tolerance, compare, default_tolerance,
                   diff_tensor, format_report, live_run, load, parse_layers, plot_errors, read_tolerances,
                   unknown_names)
from .format import FORMAT, FORMAT_VERSION, MODEL_CLASSES, GoldenFile, axes_of, compile_globs
from .record import C_WRITER_HEADER, capture, checkpoint_storage, config_sha256, dump, metadata_of

__all__ = ["BASE_TOLERANCE", "C_WRITER_HEADER", "DEPTH_SCALE", "FORMAT", "FORMAT_VERSION", "MODEL_CLASSES", "GoldenFile",
           "Report", "TensorDiff", "axes_of", "capture", "check_tolerance", "checkpoint_storage", "compare",
           "compile_globs", "config_sha256", "default_tolerance", "diff_tensor", "dump", "format_report", "live_run",
           "load", "parse_layers", "plot_errors", "read_tolerances", "unknown_names"]
