"""Comparing two golden records and naming the first op where they part.

`compare` walks the names in forward order. An element passes when |actual - expected| <= allowed,
allowed = atol + rtol * |expected| (NaN equals NaN); the first tensor with a failing element is the
first divergence, reported with the position of its worst element (the largest |diff| / allowed) as
named axes (batch, token, head, channel...), since an error in one op spreads to every later one.
Without explicit atol / rtol the tolerance grows with depth and with the port's precision.
Writing a golden file is `record.py`; reading one (minibloom's or a port's) is `format.py`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import CheckpointError, InputError
from ..safe_read import read_json
from .format import (ALL_INPUTS, MODEL_CLASSES, GoldenFile, compile_globs, conform, is_documented, layer_of, read,
                     select, split_phase, step_of)
from .record import capture

__all__ = ["BASE_TOLERANCE", "DEPTH_SCALE", "Report", "TensorDiff", "check_tolerance", "compare", "default_tolerance",
           "diff_tensor", "format_report", "live_run", "load", "parse_layers", "plot_errors", "read_tolerances",
           "unknown_names"]


def load(path: str | os.PathLike) -> GoldenFile:
    """Read a golden file: minibloom's own or a port's plain safetensors / .npz / .npy directory
    (`format.read`); a file that is not one is a CheckpointError naming it."""
    return read(path)


# Default tolerances: tol = BASE[port dtype] * sqrt(1 + depth / DEPTH_SCALE), element allowed
# tol * (rms(expected) + |expected|). Measured in docs/golden.md ("Default tolerances"):
# tests/reference/measure_golden_tolerances.py prints the headroom correct ports use.
BASE_TOLERANCE = {"float64": 1e-5, "float32": 1e-5, "float16": 4e-2, "bfloat16": 1e-1}
DEPTH_SCALE = 4.0
PORT_DTYPES = ("float32", "float16", "bfloat16", "float64")


def check_tolerance(value: float, name: str) -> float:
    """A tolerance must be a finite number >= 0; `name` is the argument or flag blamed otherwise."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number >= 0, got {value!r}") from None
    if not np.isfinite(value) or value < 0:
        raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def read_tolerances(path: str | os.PathLike) -> list[tuple[str, float, float]]:
    """A tolerances file: a JSON object {name glob: {"atol": a, "rtol": r}}, in order; the first glob
    that matches a tensor's name sets its tolerances."""
    table = read_json(path, max_bytes=1 << 20)  # a regular file, size and nesting capped (safe_read)
    if not isinstance(table, dict):
        raise CheckpointError(f"{path}: a tolerances file is a JSON object {{glob: {{atol, rtol}}}}")
    compile_globs(table, f"--tolerances {path}", CheckpointError)  # bounded before any matching
    rules = []
    for glob, tol in table.items():
        if not isinstance(tol, dict) or not set(tol) <= {"atol", "rtol"} or not tol:
            raise CheckpointError(f"{path}: {glob!r} must map to {{\"atol\": a, \"rtol\": r}}, got {tol!r}")
        try:
            rules.append((glob, check_tolerance(tol.get("atol", 0.0), f"{path}: {glob} atol"),
                          check_tolerance(tol.get("rtol", 0.0), f"{path}: {glob} rtol")))
        except InputError as e:  # a bad value in a file is the file's fault
            raise CheckpointError(str(e)) from None
    return rules


def depth_of(name: str, n_layer: int) -> int:
    """0 for the embeddings, i + 1 for layer i, n_layer + 1 for ln_f and the heads. A training golden's
    backward goes on from there in reverse (`d.` / `grad.` of layer i: 2 n_layer + 1 - i, the
    embeddings' 2 n_layer + 2) and each optimizer step s adds s."""
    phase, base = split_phase(name)
    i = layer_of(base)
    forward = i + 1 if i is not None else 0 if base.startswith(("embeddings", "word_embeddings")) or \
        base in ALL_INPUTS else n_layer + 1
    if phase.startswith("step."):
        return 2 * (n_layer + 1) + step_of(name)
    if phase.startswith("gen."):  # decoding step s runs the layers once more on top of the cache
        return forward + step_of(name)
    return 2 * (n_layer + 1) - forward if phase else forward


def default_tolerance(name: str, n_layer: int, port_dtype: str) -> float:
    """The relative tolerance for `name` at its depth in a port computing in `port_dtype`."""
    growth = np.sqrt(1 + depth_of(name, n_layer) / DEPTH_SCALE)  # rounding errors add up like a random walk
    return float(BASE_TOLERANCE.get(port_dtype, BASE_TOLERANCE["float32"]) * growth)


@dataclass
class TensorDiff:
    name: str
    ok: bool
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: float = 0.0
    position: dict[str, int] = field(default_factory=dict)
    expected: float | None = None
    actual: float | None = None
    note: str = ""
    rel_norm: float = 0.0      # ||actual - expected|| / ||expected|| over the compared elements
    cosine: float = 1.0        # cosine similarity of the two over the compared elements
    headroom: float = 0.0      # max |diff| / allowed: > 1 fails
    atol: float = 0.0
    rtol: float = 0.0
    compared: int = 0          # how many elements were compared
    skipped: bool = False      # not recorded by the port (--skip-missing)
    padding: str = ""          # "query" / "key" when the worst position is padding
    allowed: float = 0.0       # the bound applied at the worst element: |diff| there <= allowed passes
    diff: float = 0.0          # |actual - expected| at the worst element
    rms: float = 0.0           # rms(expected) over the compared elements (the scale-aware bound's scale)
    scale_aware: bool = False  # allowed = atol * rms + rtol * |expected| (the defaults), else atol + rtol * |e|
    masked: bool = False       # the worst element is a masked score entry (the golden holds finfo.min)
    precision: str = ""        # the precision the port is assumed to compute in (sets the default budget)
    precision_from: str = ""   # why: "--port-dtype", or "stored" (the dtype the port stored it in)
    stored: str = ""           # the dtype the port stored the tensor in

    def where(self) -> str:
        where = ", ".join(f"{axis} {i}" for axis, i in self.position.items() if axis != "_")
        return where + (f"; the {self.padding} is padding" if self.padding else "")


@dataclass
class Report:
    """The rows, in forward order, and what fails the run besides them (`problems`): names compare
    cannot use, a selection that matches nothing, nothing compared. A compare passes only when
    every row passes, there is no problem, and at least one tensor other than the inputs was
    compared element by element."""

    rows: list[TensorDiff]
    atol: float | None
    rtol: float | None
    problems: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # names never compared: not in the format or the golden
    allow_unknown: bool = False

    @property
    def compared(self) -> int:
        """How many tensors were compared: recorded by both sides, not the inputs, at least one element."""
        return sum(1 for r in self.rows if r.compared and r.name not in ALL_INPUTS)

    @property
    def ok(self) -> bool:
        return not self.problems and self.compared > 0 and all(r.ok for r in self.rows)

    @property
    def first_divergence(self) -> TensorDiff | None:
        return next((r for r in self.rows if not r.ok), None)

    def phases(self) -> dict[str, TensorDiff | None]:
        """For a training or generation golden: the first failing row of the forward, the backward
        (walked from the loss back to the embeddings), the optimizer and the decoding (step by step),
        each None when it passes; empty for a forward golden."""
        groups = self.phase_rows()
        return {k: next((r for r in rows if not r.ok), None) for k, rows in groups.items()
                if any(r.name not in ALL_INPUTS for r in rows)}

    def phase_rows(self) -> dict[str, list[TensorDiff]]:
        """The rows of each phase of a training golden (forward, backward, optimizer); {} otherwise."""
        groups: dict[str, list[TensorDiff]] = {"forward": [], "backward": [], "optimizer": [], "decoding": []}
        for r in self.rows:
            phase = split_phase(r.name)[0]
            groups["forward" if not phase else "optimizer" if phase.startswith("step.") else
                   "decoding" if phase.startswith("gen.") else "backward"].append(r)
        return groups if groups["backward"] or groups["optimizer"] or groups["decoding"] else {}

    def layers(self) -> list[dict]:
        """One summary per layer (and 'embeddings' / 'head' around them): the worst headroom, which
        tensor has it, the largest relative-norm error and the lowest cosine."""
        groups: dict[str, list[TensorDiff]] = {}
        for r in self.rows:
            if r.skipped or r.name in ALL_INPUTS:
                continue
            i, (phase, base) = layer_of(r.name), split_phase(r.name)
            key = f"h.{i}" if i is not None else ("embeddings" if base.startswith(("embeddings", "word_embeddings"))
                                                  else "head")
            key = {"": "", "d": "backward ", "grad": "backward "}.get(phase, phase.replace(".", " ") + " ") + key
            groups.setdefault(key, []).append(r)
        out = []
        for key, rows in groups.items():
            worst = max(rows, key=lambda r: (not r.ok and bool(r.note), r.headroom))
            out.append({"layer": key, "ok": all(r.ok for r in rows), "tensors": len(rows),
                        "worst": worst.name, "headroom": worst.headroom,
                        "rel_norm": max(r.rel_norm for r in rows), "cosine": min(r.cosine for r in rows)})
        return out

    def to_dict(self) -> dict:
        first = self.first_divergence
        return _json_safe({"ok": self.ok, "atol": self.atol, "rtol": self.rtol, "compared": self.compared,
                           "problems": self.problems, "unknown": self.unknown,
                           "first_divergence": None if first is None else first.__dict__,
                           "phases": {k: None if r is None else r.name for k, r in self.phases().items()},
                           "layers": self.layers(), "tensors": [r.__dict__ for r in self.rows]})


def _json_safe(value):
    """Non-finite floats as the strings "inf", "-inf", "nan": strict JSON readers in other languages
    refuse Python's Infinity / NaN literals."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def ulp_spacing(values: np.ndarray, dtype: str) -> np.ndarray:
    """The distance to the next representable number of |values| in `dtype` (float64 result)."""
    v = np.abs(values)
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype == "float16":
            return np.spacing(v.astype(np.float16)).astype(np.float64)
        if dtype == "float64":
            return np.spacing(v)
        spacing = np.spacing(v.astype(np.float32)).astype(np.float64)
        return spacing * 65536.0 if dtype == "bfloat16" else spacing  # bf16 keeps 16 fewer mantissa bits


def padding_masks(name: str, shape: tuple[int, ...], axes: list[str], mask: np.ndarray | None):
    """(masked, pad_query, pad_key) boolean arrays of `shape` from the golden's attention_mask [B, S]:
    masked score entries (a future or padding key), padded query tokens, padded keys; None if the
    tensor has no such axis."""
    if mask is None or "batch" not in axes or shape[axes.index("batch")] != mask.shape[0]:
        return None, None, None
    pad = np.asarray(mask) == 0  # [B, S]
    B = pad.shape[0]

    def along(axis: str, values: np.ndarray):  # values [B, n] placed on `axis`, broadcast to shape
        if axis not in axes or shape[axes.index(axis)] != values.shape[1]:
            return None
        view = [1] * len(shape)
        view[axes.index("batch")], view[axes.index(axis)] = B, values.shape[1]
        return np.broadcast_to(values.reshape(view), shape)

    pad_query, pad_key = along("token", pad), along("key", pad)
    masked = None
    if pad_key is not None:
        masked = pad_key
        if "token" in axes:
            t = np.arange(shape[axes.index("token")])
            s = np.arange(shape[axes.index("key")])
            view = [1] * len(shape)
            view[axes.index("token")], view[axes.index("key")] = len(t), len(s)
            future = (s[None, :] > t[:, None]).reshape(view)
            masked = masked | np.broadcast_to(future, shape)
    return masked, pad_query, pad_key


def diff_tensor(name: str, expected: np.ndarray, actual: np.ndarray, axes: list[str], atol: float,
                rtol: float, scale_aware: bool = False, port_dtype: str = "float32", mask: np.ndarray | None = None,
                ignore_padding: bool = False, row_constant: bool = False, golden_dtype: str = "float32",
                storage_dtype: str | None = None) -> TensorDiff:
    """Differences of one tensor: max abs / rel / ULPs, relative-norm error, cosine, headroom and the
    position of its worst element (the largest |diff| / allowed).

    An element passes when |actual - expected| <= allowed = atol + rtol * |expected| (scale_aware:
    atol * rms(expected) + rtol * |expected|). NaN equals NaN. Masked score entries (a future or
    padding key, from the golden's mask) are equal when both sides are a mask value (-inf, or at most
    half the dtype's finfo.min). ignore_padding: padded queries/tokens and masked query/key pairs
    are not compared. row_constant: the differences along the last axis (keys) are compared after
    removing their mean over the compared keys, so scores that differ by a per-row constant pass.
    storage_dtype: a port computing in `port_dtype` stored the tensor in this narrower dtype; each
    element is allowed the half ULP of that rounding on top.
    """
    expected = np.asarray(expected)
    if row_constant and axes[-1:] == ["key"] and actual.ndim == expected.ndim == 4 and expected.shape[2] == 1:
        expected = np.broadcast_to(expected, actual.shape)  # [B, N, 1, S] alibi vs the paper's [B, N, T, S]
        axes = axes[:2] + ["token", "key"]
    conformed = conform(actual, expected.shape)
    if conformed is None:
        return TensorDiff(name, False, note=f"shape {tuple(np.shape(actual))} != expected {expected.shape}",
                          atol=atol, rtol=rtol)
    e, a = expected.astype(np.float64), conformed.astype(np.float64)
    masked, pad_query, pad_key = padding_masks(name, e.shape, axes, mask)
    compared = np.ones(e.shape, bool)
    for skip in ((pad_query, masked) if ignore_padding else ()) + ((masked,) if row_constant else ()):
        if skip is not None:
            compared &= ~skip  # (a constant shift of finfo.min means nothing: masked entries leave row mode)
    diff = element_diff(e, a, masked, golden_dtype, port_dtype)
    if row_constant and axes[-1:] == ["key"]:
        diff = without_row_shift(e, a, diff, compared)
    if not compared.any():
        return TensorDiff(name, True, atol=atol, rtol=rtol, note="nothing to compare")
    row = summarise(e, a, diff, compared, atol, rtol, scale_aware, port_dtype, storage_dtype)
    worst = np.unravel_index(row.pop("worst"), e.shape)
    padding = ("query" if "key" in axes else "token") if pad_query is not None and pad_query[worst] else \
        "key" if pad_key is not None and pad_key[worst] else ""
    allowed = row.pop("allowed")[worst]
    return TensorDiff(name, row["headroom"] <= 1.0, position=dict(zip(axes, map(int, worst))),
                      expected=float(e[worst]), actual=float(a[worst]), atol=atol, rtol=rtol, padding=padding,
                      allowed=float(allowed), diff=float(diff[worst]), scale_aware=scale_aware,
                      masked=bool(masked is not None and masked[worst]), **row)


def element_diff(e: np.ndarray, a: np.ndarray, masked: np.ndarray | None, golden_dtype: str,
                 port_dtype: str) -> np.ndarray:
    """|a - e| per element: equal values are 0 apart (+inf and +inf too: inf - inf is NaN), NaN vs NaN
    is 0 (the golden holds NaN there), NaN vs a number and inf vs anything else are inf, and in
    masked score entries two mask values (-inf, or at most half of each side's finfo.min) are 0 apart."""
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - e)
    diff[(a == e) | (np.isnan(e) & np.isnan(a))] = 0.0
    diff[np.isnan(diff)] = np.inf  # one side NaN, or infinities of opposite signs
    if masked is not None:
        lowest_e, lowest_a = (0.5 * float(np.finfo(np.float16 if d == "float16" else np.float32).min)
                              for d in (golden_dtype, port_dtype))
        diff[masked & (e <= lowest_e) & ((a <= lowest_a) | (a == -np.inf))] = 0.0
    return diff


def without_row_shift(e: np.ndarray, a: np.ndarray, diff: np.ndarray, compared: np.ndarray) -> np.ndarray:
    """|a - e - c| with c the mean of a - e over each row's compared keys: equal up to a per-row constant."""
    with np.errstate(invalid="ignore", over="ignore"):  # infinities: their rows fail elsewhere
        d = np.where(compared, a - e, 0.0)
        count = np.maximum(compared.sum(-1, keepdims=True), 1)
        shift = np.nan_to_num(d.sum(-1, keepdims=True) / count, nan=0.0, posinf=0.0, neginf=0.0)  # [..., 1]
        return np.where(compared & np.isfinite(a - e), np.abs(a - e - shift), diff)


def summarise(e: np.ndarray, a: np.ndarray, diff: np.ndarray, compared: np.ndarray, atol: float, rtol: float,
              scale_aware: bool, port_dtype: str, storage_dtype: str | None = None) -> dict:
    """The metrics over the compared elements (masked scores, |e| >= 1e30, left out of the norms),
    the flat index of the worst element and the bound applied to each element."""
    real = compared & np.isfinite(e) & (np.abs(e) < 1e30)
    ref = np.where(real, e, 0.0)
    rms = float(np.sqrt(np.mean(ref[compared] ** 2)))
    allowed = (atol * rms if scale_aware else atol) + rtol * np.abs(np.nan_to_num(e, posinf=0, neginf=0))
    if storage_dtype is not None:  # the port's own rounding to its storage dtype, half an ULP
        allowed = allowed + 0.5 * ulp_spacing(np.where(real, e, 0.0), storage_dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        badness = np.where(compared, np.where(diff == 0, 0.0, diff / allowed), -1.0)  # 0/0 passes; x/0 is inf
    with np.errstate(invalid="ignore"):
        err = np.where(real & np.isfinite(diff), a - e, 0.0)
    act = np.where(real & np.isfinite(a), a, 0.0)
    norm_e, norm_a, norm_d = (float(np.linalg.norm(x)) for x in (ref, act, err))
    cdiff = np.where(compared, diff, 0.0)
    magnitude = np.maximum(np.maximum(np.abs(e), np.abs(a)), rms)  # floored at the RMS: near-zero elements
    spacing = ulp_spacing(np.nan_to_num(magnitude, nan=0.0), port_dtype)  # would count noise in tiny ULPs
    with np.errstate(invalid="ignore"):  # inf / inf: an infinite difference at an infinite magnitude
        ulp = cdiff / np.where(np.isfinite(spacing) & (spacing > 0), spacing, np.inf)
    rel = cdiff / np.maximum(np.abs(np.nan_to_num(e)), max(rms, np.finfo(np.float32).tiny))
    both = norm_e > 0 and norm_a > 0
    return {"max_abs": float(cdiff.max()), "max_rel": float(rel.max()), "max_ulp": float(np.nanmax(ulp)),
            "rel_norm": norm_d / norm_e if norm_e > 0 else (np.inf if norm_d > 0 else 0.0),
            "cosine": float(np.sum(ref * act) / (norm_e * norm_a)) if both else float(norm_e == norm_a),
            "headroom": float(badness.max()), "compared": int(compared.sum()), "worst": int(np.argmax(badness)),
            "rms": rms, "allowed": np.broadcast_to(allowed, e.shape)}


def compare(expected: GoldenFile, actual: GoldenFile | dict[str, np.ndarray], atol: float | None = None,
            rtol: float | None = None, *, only: tuple[str, ...] | list[str] = (), layers: tuple | str | None = None,
            skip_missing: bool = False, logits_only: bool = False, ignore_padding: bool = False,
            tolerances: str | os.PathLike | list | None = None, scores_up_to_row_constant: bool = False,
            port_dtype: str | None = None, allow_unknown: bool = False) -> Report:
    """Compare the tensors of `expected` (the golden side), in forward order, with the same names in
    `actual` (a port's file or a dict of arrays). The options are those of `minibloom golden compare`
    (docs/golden-format.md): `only` name globs, `layers` (A, B) or "A:B" (layers A <= i < B),
    `skip_missing`, `logits_only`, `ignore_padding`, `tolerances` (a file or [(glob, atol, rtol)]),
    `scores_up_to_row_constant`, `port_dtype` (default: each tensor's stored dtype), `allow_unknown`.

    atol / rtol given: one tolerance for every tensor. Not given: the defaults that scale with depth
    and the port's dtype (`default_tolerance`), applied scale-aware.

    Fails closed (`Report.problems`): a name the golden does not hold (not in the format, as a port's
    `transformer.h.0...`, or not in this golden) fails unless `allow_unknown`; an `only` glob or a
    `layers` range that selects nothing fails; and so does a compare that compared no tensor but the
    inputs.
    """
    if atol is not None:
        atol = check_tolerance(atol, "atol")
    if rtol is not None:
        rtol = check_tolerance(rtol, "rtol")
    if port_dtype is not None and port_dtype not in PORT_DTYPES:
        raise InputError(f"port_dtype must be one of {', '.join(PORT_DTYPES)}, got {port_dtype!r}")
    rules = read_tolerances(tolerances) if isinstance(tolerances, (str, os.PathLike)) else list(tolerances or [])
    rule_globs = compile_globs([rule[0] for rule in rules], "tolerances")
    only = list(only)
    only_globs = compile_globs(only, "--only")
    if isinstance(layers, str):
        layers = parse_layers(layers)
    port = actual if isinstance(actual, GoldenFile) else GoldenFile(dict(actual))
    axes, n_layer = expected.axes, expected.n_layer
    mask = expected.tensors.get("attention_mask")
    rows = []
    for name in select(expected.order, only, layers, logits_only):
        if name not in port.tensors:
            inputs = name in ALL_INPUTS
            rows.append(TensorDiff(name, skip_missing or inputs, note="not recorded" if skip_missing or inputs
                                   else "missing", skipped=skip_missing or inputs))
            continue
        stored = port.dtype_of(name)
        dtype = port_dtype or stored
        dtype = dtype if dtype in PORT_DTYPES else "float32"  # integer tensors: the inputs
        rule = next(((a, r) for (_, a, r), g in zip(rules, rule_globs) if g.match(name)), None)
        if rule is not None:
            a_tol, r_tol, scaled = rule[0], rule[1], False
        elif atol is not None or rtol is not None:
            a_tol, r_tol, scaled = atol or 0.0, rtol or 0.0, False
        else:
            tol = default_tolerance(name, n_layer, dtype)
            a_tol, r_tol, scaled = tol, tol, True
        if name in ALL_INPUTS or split_phase(name)[1] == "token":
            a_tol, r_tol = 0.0, 0.0  # the inputs (and a sampled token) are equal or the comparison means nothing
        rows.append(diff_tensor(name, expected.tensors[name], np.asarray(port.tensors[name]), axes.get(name, []),
                                a_tol, r_tol, scaled, dtype, mask, ignore_padding,
                                scores_up_to_row_constant and name.rsplit(".", 1)[-1] in ("scores", "alibi"),
                                expected.dtype_of(name), _narrower(stored, dtype)))
        rows[-1].precision, rows[-1].stored = dtype, stored
        rows[-1].precision_from = "--port-dtype" if port_dtype else "stored"
        if split_phase(name)[1] == "token":  # an id, not a float: no budget, no precision
            rows[-1].precision = ""
            if not rows[-1].ok and not rows[-1].note:
                rows[-1].note = (f"the sampled token differs at {rows[-1].where()}: expected {rows[-1].expected:.0f}, "
                                 f"got {rows[-1].actual:.0f} (a token must match exactly)")
    report = Report(rows, atol, rtol, allow_unknown=allow_unknown)
    report.unknown = unknown_names(expected, port)
    if report.unknown and not allow_unknown:
        report.problems.append(f"{len(report.unknown)} names the golden does not hold (not in the format, "
                               f"docs/golden-format.md, or not in this golden file), never compared: "
                               f"{_some(report.unknown)}; --allow-unknown compares without them")
    empty = [f"--only {glob!r} matches no tensor of the golden" for glob, g in zip(only, only_globs)
             if not any(g.match(n) for n in expected.order)]
    if layers is not None and not any(_in_layers(i, layers) for i in range(n_layer)):
        lo, hi = ("" if b is None else b for b in layers)
        empty.append(f"--layers {lo}:{hi} selects none of the golden's {n_layer} layers")
    if report.compared == 0:
        report.problems.append("nothing compared: " + "; ".join(empty or [_why_nothing(rows)]))
    else:
        report.problems.extend(empty)
    return report


_MANTISSA_BITS = {"float64": 52, "float32": 23, "float16": 10, "bfloat16": 7}


def _narrower(stored: str, precision: str) -> str | None:
    """The stored dtype when it keeps fewer bits than the precision the port computes in (its rounding
    is then allowed on top of the budget), else None."""
    if stored in _MANTISSA_BITS and _MANTISSA_BITS[stored] < _MANTISSA_BITS.get(precision, 0):
        return stored
    return None


def precision_lines(report: "Report") -> list[str]:
    """Which precision each compared tensor's default budget assumed, and why: a port that stores
    float16 is budgeted as a float16 port unless --port-dtype says otherwise, and the report says so."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for r in report.rows:
        if r.precision and r.name not in ALL_INPUTS and not r.skipped:
            groups.setdefault((r.precision, r.precision_from, r.stored), []).append(r.name)
    lines = []
    for (precision, source, stored), names in groups.items():
        what = f"{len(names)} tensor{'s' if len(names) > 1 else ''}" + (
            f" ({_some(names, 2)})" if precision in ("float16", "bfloat16") else "")
        if source == "--port-dtype":
            extra = f"; stored as {stored}: half its ULP allowed on top" if _narrower(stored, precision) else ""
            lines.append(f"precision: {precision} for {what}, as --port-dtype says{extra}")
        else:
            lines.append(f"precision: {precision} for {what}, because the port stored them as {stored}"
                         + (f" (budget {BASE_TOLERANCE[precision]:g}, float32's is {BASE_TOLERANCE['float32']:g}; "
                            "a port computing in float32 that stores half precision: --port-dtype float32)"
                            if precision in ("float16", "bfloat16") else ""))
    return lines


def unknown_names(expected: GoldenFile, port: GoldenFile) -> list[str]:
    """The names compare never looks at: any the format does not define (on either side), and the
    port's names the golden does not hold (a layer past the golden's, another head's output)."""
    names = [n for n in expected.tensors if not is_documented(n)]
    names += [n for n in port.tensors if not is_documented(n) or n not in expected.tensors]
    return list(dict.fromkeys(str(n) for n in names))


def _in_layers(i: int, layers: tuple[int | None, int | None]) -> bool:
    lo, hi = layers
    return (lo is None or i >= lo) and (hi is None or i < hi)


def _why_nothing(rows: list[TensorDiff]) -> str:
    others = [r for r in rows if r.name not in ALL_INPUTS]
    if not others:
        return "the selection holds no tensor of the golden but the inputs, which say nothing of a port" if rows \
            else "the selection holds no tensor of the golden"
    if all(r.skipped for r in others):
        return f"the port recorded none of the {len(others)} selected tensors (all 'not recorded')"
    return "no element of the selected tensors was compared"


def _some(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(n[:80]) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def parse_layers(text: str) -> tuple[int | None, int | None]:
    """'A:B' -> (A, B), either side may be empty: the layers A <= i < B."""
    lo, sep, hi = str(text).partition(":")
    try:
        if not sep:
            raise ValueError
        bounds = (int(lo) if lo.strip() else None, int(hi) if hi.strip() else None)
    except ValueError:
        raise InputError(f"--layers must be A:B (layers A <= i < B, either may be empty), got {text!r}") from None
    if any(b is not None and b < 0 for b in bounds):
        raise InputError(f"--layers bounds must be >= 0, got {text!r}")
    return bounds


def live_run(expected: GoldenFile, checkpoint: str | os.PathLike, backend: str = "numpy") -> dict[str, np.ndarray]:
    """Run a checkpoint directory on a golden file's inputs and capture its intermediates."""
    from .. import heads
    from ..model import BloomModel

    cls_name = expected.model_class
    if cls_name not in MODEL_CLASSES:
        raise InputError(f"golden file names an unknown model class {cls_name[:80]!r}; "
                         f"one of {', '.join(MODEL_CLASSES)}")
    if "input_ids" not in expected.tensors:
        raise InputError("the golden file has no input_ids: a live run needs the inputs")
    cls = BloomModel if cls_name == "BloomModel" else getattr(heads, cls_name)
    model = cls.from_pretrained(checkpoint, backend=backend)
    ids = expected.tensors["input_ids"]
    return capture(model, ids, expected.tensors.get("attention_mask", np.ones_like(ids)))


def _tol_text(report: Report) -> str:
    if report.atol is None and report.rtol is None:
        return "default tolerances (by depth and dtype)"
    return f"atol={report.atol or 0:g}, rtol={report.rtol or 0:g}"


def format_report(report: Report, limit: int | None = None, failures_only: bool = False,
                  per_layer: bool = True) -> str:
    """A table of the tensors (or only the failing ones), a one-line summary per layer, then the
    verdict with the first divergence."""
    lines = [f"{'tensor':40} {'max abs':>9} {'rel norm':>9} {'cosine':>10} {'max ulp':>9} {'headroom':>9}  status"]
    for r in [r for r in report.rows if not (failures_only and r.ok)][:limit]:
        status = "not recorded" if r.skipped else "ok" if r.ok else ("FAIL " + r.note if r.note else "FAIL")
        lines.append(f"{r.name:40} {r.max_abs:9.3g} {r.rel_norm:9.3g} {r.cosine:10.7f} {r.max_ulp:9.3g} "
                     f"{r.headroom:9.3g}  {status}")
    if per_layer:
        lines.append("per layer: worst headroom (tensor), max rel norm, min cosine")
        for g in report.layers():
            if failures_only and g["ok"]:
                continue
            lines.append(f"  {g['layer']:12} {'ok  ' if g['ok'] else 'FAIL'} headroom {g['headroom']:8.3g} "
                         f"({g['worst']}), rel norm {g['rel_norm']:.3g}, cosine {g['cosine']:.7f}")
    first = report.first_divergence
    skipped = sum(r.skipped for r in report.rows)
    if report.atol is None and report.rtol is None:
        lines += precision_lines(report)
    if report.unknown and report.allow_unknown:
        lines.append(f"not compared (--allow-unknown): {len(report.unknown)} names the golden does not hold: "
                     f"{_some(report.unknown)}")
    lines += phase_lines(report)
    if report.ok:
        lines.append(f"PASS: {len(report.rows) - skipped} tensors within {_tol_text(report)}"
                     + (f"; {skipped} not recorded" if skipped else ""))
    lines += [f"FAIL: {problem}" for problem in report.problems]
    if first is None and not report.ok and not report.problems:
        lines.append("FAIL: nothing compared")
    if first is not None and first.note:
        lines.append(f"FAIL: first divergence at {first.name}: {first.note}")
    elif first is not None:
        lines.append(f"FAIL: first divergence at {first.name} ({first.where()}): expected {_value(first, first.expected)}, "
                     f"got {_value(first, first.actual)}: {bound_text(first)}")
    return "\n".join(lines)


def phase_lines(report: Report) -> list[str]:
    """A training golden's verdict per phase: the first divergent forward op, backward op (walking the
    layers in reverse) and optimizer step; each phase is checked even when an earlier one fails."""
    lines, rows = [], report.phase_rows()
    for phase, r in report.phases().items():
        step = step_of(r.name) if r is not None else None
        where = "" if r is None or r.note else f" ({r.where()})" if r.where() else ""
        compared = sum(1 for x in rows[phase] if x.compared and x.name not in ALL_INPUTS)
        what = (f"ok ({compared} tensors)" if compared else "not recorded") if r is None else (f"first divergent step {step}, at {r.name}" if step is not None
                                       else f"first divergence at {r.name}") + where + (
            f": {r.note}" if r.note else f", headroom {r.headroom:.3g}")
        lines.append(f"{phase}: {what}")
    return lines


def _value(row: TensorDiff, value: float) -> str:
    """A value as printed: "masked" for a mask value (at most -1e30) in a masked score entry."""
    return "masked" if row.masked and value <= -1e30 else f"{value:.9g}"


def bound_text(row: TensorDiff) -> str:
    """The bound actually applied at the worst element, with its terms, so the headroom can be
    recomputed from the printed numbers."""
    if row.masked and row.expected <= -1e30:
        return "a masked score entry holds a mask value: -inf, or at most half the port dtype's finfo.min"
    if row.scale_aware:
        terms = f"{row.atol:.3g} * (rms {row.rms:.6g} + |expected| {abs(row.expected):.6g})"
    else:
        terms = f"atol {row.atol:g} + rtol {row.rtol:g} * |expected| {abs(row.expected):.6g}"
    storage = " + half a storage ULP" if row.precision_from == "--port-dtype" and _narrower(row.stored, row.precision) \
        else ""
    prec = f", {row.precision} budget" if row.scale_aware and row.precision else ""
    return (f"|diff| {row.diff:.6g} > allowed {row.allowed:.6g} = {terms}{storage}{prec} "
            f"(headroom {row.headroom:.3g})")


def plot_errors(report: Report, path: str | os.PathLike) -> None:
    """Write a PNG of the relative-norm error and the headroom of each layer's output against depth
    (needs matplotlib: pip install minibloom[docs])."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib (pip install 'minibloom[docs]')") from None
    rows = [r for r in report.rows if not r.skipped and not r.note and r.name not in ("input_ids", "attention_mask")]
    layers = report.layers()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    x = range(len(layers))
    ax1.semilogy(x, [max(g["rel_norm"], 1e-12) for g in layers], "o-")
    ax1.set_ylabel("max relative-norm error")
    ax2.semilogy(x, [max(g["headroom"], 1e-12) for g in layers], "o-")
    ax2.axhline(1.0, color="red", lw=1)
    ax2.set_ylabel("headroom (max |diff| / allowed)")
    for ax in (ax1, ax2):
        ax.set_xticks(list(x), [g["layer"] for g in layers], rotation=90, fontsize=7)
        ax.set_xlabel("depth")
    fig.suptitle(f"golden compare: {len(rows)} tensors")
    fig.tight_layout()
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
