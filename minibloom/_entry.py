"""The `minibloom` command's entry point: load the CLI, then run it.

Loading takes most of a second (NumPy, Numba). A Ctrl-C in that second raises KeyboardInterrupt
in an import, before `cli.main` can catch anything, and Python would print a traceback. So the
import is done here, where that interrupt becomes the same one line and exit status 130 as one
during a command. This module and the package's `__init__` import nothing heavy.
"""

from __future__ import annotations

import sys


def run(argv: list[str] | None = None) -> int:
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("minibloom: interrupted", file=sys.stderr)
        return 130
    return main(argv)
