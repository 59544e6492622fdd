"""Moved to minibloom/golden/generate.py. This alias keeps cli.py's `from . import golden_generate` working until
the CLI imports `from .golden import generate`; then delete this file."""

import sys

from .golden import generate

sys.modules[__name__] = generate
