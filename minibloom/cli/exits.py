"""How a command ends: the exit status and the one line on stderr for each way it can fail.

    0    done
    1    failed: a write error (`> /dev/full`), an unexpected error (one line; the traceback with
         MINIBLOOM_DEBUG=1)
    2    bad input: a MinibloomError (a flag, a path, a file), checked before any work
    130  Ctrl-C, at any moment (`CtrlC` makes sure it is never lost)

A reader that leaves (`minibloom ... | head`) ends the command quietly, as Unix tools do. Warnings
(converting weights while loading, a new head) print as one line too.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time
import warnings
from typing import Callable

from ..errors import MinibloomError


class CtrlC:
    """Ctrl-C that is never lost. Python raises KeyboardInterrupt in whatever Python code runs next,
    and during Numba's first compile that is a callback from llvmlite's C code, where an exception
    is printed ("Exception ignored ...") and dropped: the command then ran to its end. So after a
    Ctrl-C, until `main` has caught it, the interrupt is raised again every quarter second, and
    the "ignored" report of a dropped one is silenced."""

    def __enter__(self) -> CtrlC:
        self.pending, self.caught = threading.Event(), False
        self.installed = threading.current_thread() is threading.main_thread()
        if self.installed:  # signal handlers belong to the main thread
            self.old_handler = signal.signal(signal.SIGINT, self._on_sigint)
            self.old_hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def __exit__(self, *exc: object) -> None:
        self.done()
        if self.installed:
            signal.signal(signal.SIGINT, self.old_handler)
            sys.unraisablehook = self.old_hook

    def done(self) -> None:
        """main has the KeyboardInterrupt (or finished): stop raising it."""
        self.caught = True
        self.pending.clear()

    def _on_sigint(self, signum: int, frame: object) -> None:
        if self.caught:
            return  # already on the way out with status 130
        if not self.pending.is_set():
            self.pending.set()
            threading.Thread(target=self._repeat, daemon=True).start()
        raise KeyboardInterrupt

    def _repeat(self) -> None:
        while True:
            time.sleep(0.25)
            if not self.pending.is_set():
                return
            _thread.interrupt_main(signal.SIGINT)  # runs _on_sigint in the main thread, as a real Ctrl-C

    def _unraisable(self, info: object) -> None:
        if not (self.pending.is_set() and isinstance(info.exc_value, KeyboardInterrupt)):
            self.old_hook(info)


CTRL_C = CtrlC()


def run(command: Callable[[], int]) -> int:
    """Run `command` (parse the flags, run one subcommand; returns its status) and turn whatever it
    raises into an exit status and one line on stderr."""
    with CTRL_C, warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        return _run_command(command)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning (converting weights while loading, a new head) as one line, not the source line too."""
    first = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
    _fail(0, f"warning: {first}")


def _run_command(command: Callable[[], int]) -> int:
    """The exit status of `command`, or of what it raised."""
    try:
        status = command()
        sys.stdout.flush()  # a full disk is reported here, not as noise at interpreter exit
        return status
    except MinibloomError as e:
        return _fail(2, f"error: {e}")
    except BrokenPipeError:  # `minibloom ... | head`: the reader left; stop quietly, as Unix tools do
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        CTRL_C.done()
        return _fail(130, "interrupted")
    except OSError as e:  # writing the output failed: `> /dev/full`, a closed terminal
        _silence_stdout()
        return _fail(1, f"error: cannot write the output: {e.strerror or e}")
    except Exception as e:  # noqa: BLE001 -- a bug: one line, the traceback on request
        if os.environ.get("MINIBLOOM_DEBUG"):
            raise
        return _fail(1, f"internal error: {type(e).__name__}: {e} (MINIBLOOM_DEBUG=1 shows the traceback)")


def _fail(status: int, message: str) -> int:
    """Print `minibloom: message` on stderr (never failing itself) and return `status`."""
    try:
        print(f"minibloom: {message}".encode("utf-8", "backslashreplace").decode("utf-8"), file=sys.stderr)
    except (OSError, ValueError):
        pass
    return status


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so what is still buffered cannot fail again at exit."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdout (captured in tests)
        pass
