"""The `minibloom` command under hostile conditions: one line on stderr and a meaningful status, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "PYTHONPATH": REPO}


def run(args, **kwargs):
    return subprocess.run([sys.executable, "-m", "minibloom", *args], capture_output="stdout" not in kwargs,
                          env=ENV, timeout=120, **kwargs)


def one_line(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_writing_to_a_full_device_exits_1_with_one_line():
    with open("/dev/full", "w") as full:
        proc = run(["tokenize", "hello world"], stdout=full, stderr=subprocess.PIPE)
    assert proc.returncode == 1
    assert "No space left on device" in one_line(proc.stderr)


def test_ctrl_c_exits_130_with_one_line():
    proc = subprocess.Popen([sys.executable, "-m", "minibloom", "generate", "ROMEO.", "--max-new-tokens", "100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    assert proc.stdout.read(6) == b"ROMEO."  # generating now (the model is loaded and compiled)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert one_line(stderr) == "minibloom: interrupted"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX argv bytes")
def test_an_argument_that_is_not_utf8_is_an_input_error():
    proc = subprocess.run([sys.executable, "-m", "minibloom", "tokenize", b"caf\xe9 \xff"], capture_output=True,
                          env=ENV, timeout=120)
    assert proc.returncode == 2
    assert "lone surrogate" in one_line(proc.stderr)


def test_init_into_a_file_is_one_line(tmp_path):
    (tmp_path / "f").write_text("x")
    proc = run(["init", str(tmp_path / "f" / "ckpt")])
    assert proc.returncode == 2
    assert str(tmp_path / "f") in one_line(proc.stderr)


DROPPED_CTRL_C = """
import ctypes, os, signal, sys, time
from minibloom import cli

def command(args):
    # A Ctrl-C arriving while C code calls back into Python (llvmlite does during Numba's first
    # compile): the KeyboardInterrupt is raised in the callback, where ctypes prints and drops it.
    callback = ctypes.CFUNCTYPE(None)(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.05)))
    callback()
    for _ in range(400):  # 20 s of work that a lost Ctrl-C would let finish
        time.sleep(0.05)
    print("finished")

cli.COMMANDS["tokenize"] = command
sys.exit(cli.main(["tokenize", "x"]))
"""


def test_a_ctrl_c_dropped_inside_a_c_callback_still_stops_the_command():
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", DROPPED_CTRL_C], capture_output=True, env=ENV, timeout=120)
    assert proc.returncode == 130 and b"finished" not in proc.stdout
    assert one_line(proc.stderr) == "minibloom: interrupted"
    assert time.monotonic() - start < 15


CTRL_C_WHILE_LOADING = """
import builtins, os, signal, sys
real_import = builtins.__import__

def import_with_ctrl_c(name, globals=None, locals=None, fromlist=(), level=0):
    if name == "cli" and level == 1:  # the entry point loading the CLI and, through it, NumPy and Numba
        os.kill(os.getpid(), signal.SIGINT)
    return real_import(name, globals, locals, fromlist, level)

builtins.__import__ = import_with_ctrl_c
from minibloom._entry import run
sys.exit(run(["tokenize", "x"]))
"""


def test_a_ctrl_c_while_the_command_loads_is_one_line():
    proc = subprocess.run([sys.executable, "-c", CTRL_C_WHILE_LOADING], capture_output=True, env=ENV, timeout=120)
    assert proc.returncode == 130
    assert one_line(proc.stderr) == "minibloom: interrupted"


def test_the_package_imports_nothing_heavy():
    """`import minibloom` stays light (names load on first use), so the entry point above runs
    before NumPy and Numba load, and `minibloom --help` starts fast."""
    code = "import sys, minibloom; print(sorted(m for m in ('numpy', 'numba', 'regex') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, env=ENV, timeout=120, text=True)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
    code = "import minibloom; from minibloom import BloomModel, InputError; print(minibloom.heads.__name__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, env=ENV, timeout=120, text=True)
    assert proc.stdout.strip() == "minibloom.heads", proc.stderr


# issue 23: hostile flags are one line on stderr, exit 2, and nothing on stdout (checked before printing)
HF_EXPECTED = os.path.join(REPO, "tests", "hf_expected")


@pytest.mark.parametrize("args, needle", [
    (["generate", "ROMEO.", "-n", "2", "--temp", "1", "--seed", "-1"], "--seed"),
    (["generate", "ROMEO.", "-n", "2", "--temp", "inf"], "--temp"),
    (["generate", "ROMEO.", "-n", "2", "--temp", "nan"], "--temp"),
    (["generate", "ROMEO.", "-n", "2", "--top-p", "2"], "--top-p"),
    (["generate", "ROMEO.", "-n", "-3"], "--max-new-tokens"),
    (["generate", "ROMEO.", "-n", "2", "--repeat-penalty", "inf"], "--repeat-penalty"),
    (["generate", "ROMEO.", "-n", str(10**12)], "memory budget"),
    (["generate", "ROMEO.", "-n", "2", "--num-beams", str(10**7)], "num_beams"),
    (["generate", "", "-n", "2"], "no tokens"),
    (["generate", "ROMEO.", "--checkpoint", os.path.join(HF_EXPECTED, "MANIFEST.json")], "not a directory"),
    (["forward", os.path.join(HF_EXPECTED, "heads8"), "--ids", str(10**20)], "--ids"),
    (["forward", os.path.join(HF_EXPECTED, "heads8"), "--ids", "-1"], "input_ids[0, 0] = -1 is outside"),
    (["init", "{tmp}/a", "--seed", "-1"], "--seed"),
    (["init", "{tmp}/b", "--hidden-size", str(10**8), "--n-head", "1"], "bytes on disk"),
    (["init", "{tmp}/c", "--n-layer", "0"], "n_layer"),
])
def test_hostile_flags_are_one_line_and_exit_2_before_any_output(tmp_path, args, needle):
    proc = run([a.format(tmp=tmp_path) for a in args])
    assert proc.returncode == 2, proc.stderr
    assert needle in one_line(proc.stderr)
    assert proc.stdout == b""


def test_a_warning_is_one_line():
    proc = run(["forward", os.path.join(HF_EXPECTED, "bf16"), "--ids", "4", "--storage", "float32"])
    assert proc.returncode == 0
    assert one_line(proc.stderr).startswith("minibloom: warning: ") and b"converting" in proc.stderr
