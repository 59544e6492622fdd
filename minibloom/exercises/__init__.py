"""Exercises: write one of BLOOM's ops yourself and check it against minibloom's own.

    python -m minibloom.exercises                        list the exercises
    python -m minibloom.exercises alibi --template       print a stub to fill in (> my_alibi.py)
    python -m minibloom.exercises alibi my_alibi.py      run your function against the reference

Each exercise names a function with a documented signature (the stub's docstring). The checker calls
yours and the reference (the op minibloom itself runs) on a few inputs, chosen so that the usual
mistakes show, and reports the first case and the first position where they part: expected, got,
and a hint. It passes only when every case agrees (and a case that compared nothing fails).

Shape legend: B batch, N heads, T query length, S key length, D head_dim, M rows, C classes, V vocab.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .cases import EXERCISES, Case, Exercise

__all__ = ["EXERCISES", "Case", "Exercise", "Result", "check", "load_function", "template"]


@dataclass
class Result:
    """The verdict of `check`: ok, and one line per case (the first failing one says where and why)."""

    ok: bool
    lines: list[str]

    def __str__(self) -> str:
        return "\n".join(self.lines)


def first_difference(expected: Any, got: Any, atol: float, rtol: float) -> str | None:
    """Where `got` first differs from `expected`, as text, or None when they agree.

    Arrays compare element by element with |got - expected| <= atol + rtol * |expected|; NaN only
    equals NaN and an infinity only itself (so -inf is not finfo.min). Lists compare item by item.
    """
    if isinstance(expected, list):
        if isinstance(got, str):  # a string is compared character by character
            got = list(got)
        if not isinstance(got, (list, tuple)):
            return f"expected a list, got {type(got).__name__}"
        for i, (e, g) in enumerate(zip(expected, got)):
            if e != g:
                return f"first difference at item {i}: expected {e!r}, got {g!r}"
        if len(expected) != len(got):
            return f"expected {len(expected)} items {expected!r}, got {len(got)} {list(got)!r}"
        return None
    expected = np.asarray(expected)
    try:
        got = np.asarray(got, dtype=np.float64 if expected.dtype.kind == "f" else None)
    except (TypeError, ValueError) as e:
        return f"the result is not an array of numbers ({e})"
    if got.shape != expected.shape:
        return f"expected shape {expected.shape}, got {got.shape}"
    if expected.dtype.kind != "f":
        bad = np.argwhere(got != expected)
    else:
        e64, g64 = expected.astype(np.float64), got
        with np.errstate(invalid="ignore", over="ignore"):
            close = np.isclose(g64, e64, atol=atol, rtol=rtol, equal_nan=True)
        bad = np.argwhere(~close)
    if len(bad) == 0:  # not bad.size: a 0-d array's argwhere has shape (1, 0) when it differs
        return None
    where = tuple(int(i) for i in bad[0])
    at = f"position {list(where)} ({len(bad)} of {expected.size} differ)" if where else "the value"
    return f"first difference at {at}: expected {show(expected[where])}, got {show(got[where])}"


def show(value: Any) -> str:
    """A number as people read it: 8 significant digits, nan, inf, -3.4028235e+38."""
    value = value.item() if isinstance(value, np.generic) else value
    return f"{value:.8g}" if isinstance(value, float) else repr(value)


def check(exercise: str | Exercise, fn: Callable[..., Any]) -> Result:
    """Run `fn` against the reference on every case of `exercise`; the first failing case ends it."""
    ex = EXERCISES[exercise] if isinstance(exercise, str) else exercise
    lines, compared = [], 0
    for k, case in enumerate(ex.cases(), 1):
        expected = ex.reference(*case.args)
        try:
            got = fn(*(a.copy() if isinstance(a, np.ndarray) else a for a in case.args))
        except NotImplementedError:
            return Result(False, lines + [f"FAIL {ex.name}: {ex.function} is not written yet (it raised "
                                          "NotImplementedError); see the stub's docstring"])
        except Exception as e:  # the learner's code: any error is a finding, reported on one line
            return Result(False, lines + [f"FAIL {ex.name} case {k} ({case.what}): {ex.function} raised "
                                          f"{type(e).__name__}: {e}"])
        diff = first_difference(expected, got, ex.atol, ex.rtol)
        if diff is not None:
            return Result(False, lines + [f"FAIL {ex.name} case {k} ({case.what}): {diff}",
                                          f"  hint: {case.hint or ex.hint}"])
        compared += 1
        lines.append(f"ok   {ex.name} case {k} ({case.what})")
    if compared == 0:  # fail closed: a check that compared nothing is not a pass
        return Result(False, lines + [f"FAIL {ex.name}: no case was compared"])
    return Result(True, lines + [f"PASS {ex.name}: {compared} cases agree with minibloom's {ex.reference_name}"])


def load_function(source: str, name: str) -> Callable[..., Any]:
    """The function `name` from a .py file path or an importable module name.

    Raises InputError (a ValueError) naming the file or module and the function when it is not there.
    """
    from ..errors import InputError

    if source.endswith(".py") or os.sep in source or "/" in source:
        if not os.path.isfile(source):
            raise InputError(f"{source}: no such file (give the .py file that defines {name})")
        spec = importlib.util.spec_from_file_location("learner_solution", source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(source)
        except ImportError as e:
            raise InputError(f"cannot import the module {source!r}: {e}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise InputError(f"{source} defines no function {name}() (the exercise calls it by that name; "
                         "--function NAME picks another)")
    return fn


def template(exercise: str | Exercise) -> str:
    """A stub for the learner: the signature and the docstring, raising NotImplementedError."""
    ex = EXERCISES[exercise] if isinstance(exercise, str) else exercise
    doc = "\n".join(("    " + line).rstrip() for line in ex.doc.strip("\n").splitlines())
    return (f'"""Exercise {ex.name}: write {ex.function}, then run\n\n'
            f'    python -m minibloom.exercises {ex.name} THIS_FILE.py\n"""\n\n'
            f"import numpy as np\n\n\ndef {ex.function}{ex.signature}:\n"
            f'    """{doc.lstrip()}\n    """\n    raise NotImplementedError\n')
