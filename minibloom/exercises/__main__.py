"""`python -m minibloom.exercises [NAME [SOLUTION] [--template] [--function F]]`: see the package docstring.

Exit 0 when the solution agrees with the reference, 1 when it differs (or is not written yet), 2 on
a usage mistake (an unknown exercise, a missing file or function), with one line saying which.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from . import EXERCISES, check, load_function, template
from ..errors import InputError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minibloom.exercises",
                                     description="Write one of BLOOM's ops and check it against minibloom's.")
    parser.add_argument("name", nargs="?", help="the exercise (no name: list them)")
    parser.add_argument("solution", nargs="?", help="a .py file or a module name that defines the function")
    parser.add_argument("--template", action="store_true", help="print a stub to fill in")
    parser.add_argument("--function", help="the function's name in SOLUTION (default: the exercise's)")
    args = parser.parse_args(argv)
    if args.name is None:
        print("exercises (python -m minibloom.exercises NAME --template > mine.py, then NAME mine.py):")
        for ex in EXERCISES.values():
            print(f"  {ex.name:20} {ex.function}(): {ex.summary}")
        return 0
    if args.name not in EXERCISES:
        print(f"error: no exercise {args.name!r}; there are {', '.join(EXERCISES)}", file=sys.stderr)
        return 2
    ex = EXERCISES[args.name]
    if args.template:
        print(template(ex), end="")
        return 0
    if args.solution is None:
        print(f"error: give the file that defines {ex.function}() (start from "
              f"`python -m minibloom.exercises {ex.name} --template`)", file=sys.stderr)
        return 2
    try:
        fn = load_function(args.solution, args.function or ex.function)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with np.errstate(all="ignore"):  # overflow in a learner's exp is reported as a difference, not a warning
        result = check(ex, fn)
    print(result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
