"""Moved to minibloom/golden/train.py. This alias keeps cli.py's `from . import golden_train` working until
the CLI imports `from .golden import train`; then delete this file."""

import sys

from .golden import train

sys.modules[__name__] = train
