"""Every walkthrough script runs on its own and its assertions hold (exit code 0)."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(glob.glob(os.path.join(ROOT, "walkthrough", "[0-9][0-9]_*.py")))


def test_the_walkthrough_has_its_thirteen_steps():
    assert [os.path.basename(s)[:2] for s in SCRIPTS] == [f"{i:02d}" for i in range(1, 14)]


@pytest.mark.parametrize("script", SCRIPTS, ids=os.path.basename)
def test_walkthrough_script_runs(script, tmp_path):
    done = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert done.stdout.strip(), "a walkthrough script prints what it computes"
    assert not os.listdir(tmp_path), f"the script wrote {os.listdir(tmp_path)} into the directory it ran in"
    noise = re.findall(r"\d\.\d{9,}", done.stdout)  # float32 noise such as 0.01561999972909689
    assert not noise, f"print numbers for people (fractions, rounding), not {noise[:3]}"
    if "FAIL" in done.stdout:  # a deliberate failure is said to be one where it is printed
        assert "deliberate" in done.stdout, "explain the FAIL in the output itself"
