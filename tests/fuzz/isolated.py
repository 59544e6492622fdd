"""Hostile cases run one by one in forked children, so that a case that hangs, crashes or exhausts
memory fails that case alone (used by the scripts of test_hostile_files and test_golden_failclosed)."""

from __future__ import annotations

import json
import os
import resource
from typing import Any, Callable


def cap_address_space(extra: int = 100 * 2**20) -> None:
    """RLIMIT_AS at what this process has mapped now plus `extra` bytes: an allocation a lying
    header asks for fails here instead of taking the machine's memory."""
    mapped = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (mapped + extra,) * 2)


def in_forked_children(cases: list[tuple[Any, ...]], run_case: Callable[..., str | None]) -> list[str]:
    """Run `run_case(*args)` for each `(label, *args)` in its own forked child; it returns None when
    the case behaved, else what went wrong. Returns 'label: what went wrong' for each failure (a
    child that died without answering, from a hang its alarm ended or from memory, fails too)."""
    failures = []
    for label, *args in cases:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                result = run_case(*args)
            except BaseException as e:
                result = f"harness: {e!r}"
            os.write(write_end, json.dumps(result).encode())
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as f:
            text = f.read()
        os.waitpid(pid, 0)
        result = json.loads(text) if text else "the child died (a hang killed by the alarm, or out of memory)"
        if result is not None:
            failures.append(f"{label}: {result}")
    return failures
