"""Shared pieces of the fuzz suite: example counts per profile, JSON strategies, the failure rule.

Rule for every loader and entry point: on any input it either works or raises a `MinibloomError`
subclass whose message names what is wrong. Anything else (IndexError, KeyError, TypeError,
json/struct/NumPy errors, MemoryError from a lying header, a hang) is a bug.
"""

from __future__ import annotations

import contextlib
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from minibloom import MinibloomError

# examples per fuzz test: CI (derandomized) / the default dev run / the long local profile
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
EXAMPLES = {"ci": 300, "dev": 300, "long": 10_000}.get(PROFILE, 300)
fuzz_settings = settings(max_examples=EXAMPLES, deadline=5000, derandomize=PROFILE == "ci",
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                HealthCheck.function_scoped_fixture])

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                         st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                 st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=4)), max_leaves=12)


@contextlib.contextmanager
def only_minibloom_errors():
    """Accept success or a MinibloomError with a message; re-raise anything else."""
    try:
        yield
    except MinibloomError as e:
        assert str(e), f"{type(e).__name__} without a message"
