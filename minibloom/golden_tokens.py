"""Moved to minibloom/golden/tokens.py. This alias keeps cli.py's `from . import golden_tokens` working until
the CLI imports `from .golden import tokens`; then delete this file."""

import sys

from .golden import tokens

sys.modules[__name__] = tokens
