"""Atomic writes: a reader sees the old file (or checkpoint) or the new one, never half of one.

One file (`atomic_open`, `atomic_write_bytes`): write to a temporary file in the *same directory*
(so the final rename never crosses a filesystem), flush and fsync it, then `os.replace` it over the
target, which POSIX and Windows both perform atomically. On any failure the temporary file is
removed and the old file is untouched. The writer holds an advisory lock on its temporary, so a
later write of the same file can tell a temporary left by a killed writer (removed) from one that
is still being written (left alone). One instant has no lock yet: between `mkstemp` creating the
file and the writer locking it. A temporary that is empty and younger than a minute may be in that
instant, so the sweep leaves it (it holds no bytes; a later sweep takes it), and the writer waits
for its lock, which a sweep holds only while it looks.

Several files that belong together (`transaction`: a checkpoint's config.json + shards + index, a
tokenizer's two files) need more, because no rename switches two files at once. The protocol, a
redo log in the spirit of a database journal:

    1. lock     flock(LOCK_EX) on the directory itself (readers take LOCK_SH; a killed process's
                lock is released by the kernel). Recover first: finish a committed save left by a
                kill (step 4), delete uncommitted staging directories and stale temporaries.
    2. stage    every new file is written, fsynced, into a fresh hidden staging directory
                `DIR/.minibloom-save-XXXXXXXX/`; the live files are not touched.
    3. commit   `COMMIT` (the list of files to install and of stale files to delete) is written
                atomically into the staging directory. This rename is the commit point: before
                it the old checkpoint is intact and the staging directory is garbage; after it
                the new checkpoint is decided.
    4. apply    each staged file is renamed into place (weights, then index, then config.json),
                stale files are deleted, the directory is fsynced, the staging directory removed.
                Every step can be redone, so a save killed here is finished by whoever opens the
                directory next (`reading`, used by every loader, or the next save).

So a kill at any instant leaves either the complete old or the complete new checkpoint as seen by
minibloom's loaders. Other programs (transformers) see a mix only while step 4 runs (a few renames).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from typing import BinaryIO, Iterator

from .errors import CheckpointError

try:  # advisory locks: POSIX only; on Windows the locks are no-ops (one writer at a time is then on you)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

STAGING_PREFIX = ".minibloom-save-"
COMMIT_NAME = "COMMIT"
STALE_EMPTY_SECONDS = 60  # an unlocked, empty temporary younger than this may be a writer's, not yet locked
_TEMP_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # what mkstemp names `atomic_open`'s temporaries


# -- one file --------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path` for binary writing; rename it onto `path` on success."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    remove_stale_temporaries(directory, os.path.basename(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    except OSError as e:
        raise CheckpointError(f"cannot write {path}: {e}") from None
    f = os.fdopen(fd, "wb")
    try:
        _lock(f.fileno(), shared=False, wait=True)  # marks the temporary as live (a sweep holds it an instant)
        yield f
        f.flush()
        os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # subtle: mkstemp makes 0600 files; give the usual mode
        if fcntl is None:
            f.close()  # Windows renames no open file (and has no lock to keep)
        os.replace(tmp, path)  # still locked until here: closing first would let a sweep take it
        f.close()
    except BaseException as e:
        with contextlib.suppress(OSError):  # a full disk fails the close's flush again
            f.close()
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(e, OSError) and not isinstance(e, CheckpointError):
            raise CheckpointError(f"cannot write {path}: {e}") from None
        raise


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path) as f:
        f.write(data)


def remove_stale_temporaries(directory: str, basename: str | None = None) -> None:
    """Delete `atomic_open` temporaries (of `basename`, or of any file) whose writer is gone."""
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            if _TEMP_RE.match(name) and (basename is None or name.startswith("." + basename + ".")):
                _remove_if_unlocked(os.path.join(directory, name))


def _remove_if_unlocked(path: str) -> None:
    """Remove one temporary unless a live writer may own it: locked, or (between `mkstemp` and the
    writer's lock, or where the filesystem has no locks) recently modified."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        locked = _lock(fd, shared=False, wait=False)
        if locked is False:
            return  # a live writer holds it
        st = os.fstat(fd)
        fresh = time.time() - st.st_mtime < STALE_EMPTY_SECONDS
        if fresh and (locked is None or st.st_size == 0):
            return  # perhaps created an instant ago by a writer that has not locked it yet
        if os.stat(path).st_ino == st.st_ino:  # still the file we looked at
            os.remove(path)
    except OSError:
        pass
    finally:
        os.close(fd)


def _lock(fd: int, shared: bool, wait: bool) -> bool | None:
    """flock `fd`: True once held, False when `wait` is False and another process holds a
    conflicting lock, None where the filesystem has no locks (some network mounts; Windows)."""
    if fcntl is None:
        return None
    flags = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
    try:
        fcntl.flock(fd, flags)
    except BlockingIOError:
        return False
    except OSError:  # filesystems without flock: carry on unlocked
        return None
    return True


# -- several files: the transaction ----------------------------------------------------------------
class Transaction:
    """The staging side of a multi-file save; see the module docstring for the protocol.

    Write each new file to `txn.path(name)` (or with `write_bytes`), name files to delete with
    `remove`; nothing is visible in the directory until the `transaction` block exits cleanly.
    """

    def __init__(self, directory: str, staging: str):
        self.directory, self.staging = directory, staging
        self.installs: list[str] = []
        self.removals: set[str] = set()

    def path(self, name: str) -> str:
        """Where to write the new version of `name` (a plain file name inside the directory)."""
        if os.path.basename(name) != name or name in ("", ".", "..", COMMIT_NAME):
            raise CheckpointError(f"{self.directory}: {name!r} is not a plain file name")
        if name not in self.installs:
            self.installs.append(name)
        self.removals.discard(name)
        return os.path.join(self.staging, name)

    def write_bytes(self, name: str, data: bytes) -> str:
        path = self.path(name)
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return path

    def remove(self, name: str) -> None:
        """Delete `name` from the directory when the new files go in (a stale file of an old layout)."""
        if name not in self.installs:
            self.removals.add(name)

    def _commit(self) -> None:
        missing = [n for n in self.installs if not os.path.isfile(os.path.join(self.staging, n))]
        if missing:
            raise CheckpointError(f"{self.directory}: files {missing} were never written")
        order = sorted(self.installs, key=_install_order)
        manifest = {"install": order, "remove": sorted(self.removals)}
        atomic_write_bytes(os.path.join(self.staging, COMMIT_NAME), json.dumps(manifest).encode("utf-8"))
        _fsync_dir(self.staging)


def _install_order(name: str) -> tuple[int, str]:
    """Weights first, then the index that points at them, config.json last of all."""
    rank = 2 if name == "config.json" else 1 if name.endswith(".json") else 0
    return rank, name


@contextlib.contextmanager
def transaction(directory: str | os.PathLike) -> Iterator[Transaction]:
    """Stage files for `directory` and install them all at once (or none of them) on exit."""
    directory = os.fspath(directory)
    _make_directory(directory)
    with _locked(directory, shared=False):
        recover(directory, locked=True)
        try:
            staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=directory)
        except OSError as e:
            raise CheckpointError(f"cannot write into {directory}: {e}") from None
        txn = Transaction(directory, staging)
        try:
            yield txn
            txn._commit()
        except BaseException as e:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(e, OSError) and not isinstance(e, CheckpointError):
                raise CheckpointError(f"cannot write into {directory}: {e}") from None
            raise
        _apply(directory, staging)


def _make_directory(directory: str) -> None:
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise CheckpointError(f"cannot save into {directory}: it exists and is not a directory")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:  # a parent that is a file, a read-only parent, ...
        raise CheckpointError(f"cannot create the directory {directory}: {e.strerror or e}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CheckpointError(f"cannot save into {directory}: the directory is not writable")


def _apply(directory: str, staging: str) -> None:
    """Step 4: install a committed staging directory. Idempotent, so a killed apply can be redone."""
    try:
        with open(os.path.join(staging, COMMIT_NAME), encoding="utf-8") as f:
            manifest = json.load(f)
        for name in manifest["install"]:
            source = os.path.join(staging, name)
            if os.path.exists(source):  # absent: installed before the kill
                os.replace(source, os.path.join(directory, name))
        for name in manifest["remove"]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(directory, name))
        _fsync_dir(directory)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{directory}: cannot finish the interrupted save in {staging}: {e}") from None
    shutil.rmtree(staging, ignore_errors=True)


def recover(directory: str, locked: bool = False) -> None:
    """Finish committed saves killed during step 4; delete uncommitted staging dirs and temporaries.

    Needs the exclusive lock (`locked=True` when the caller holds it)."""
    if not locked:
        with _locked(directory, shared=False):
            return recover(directory, locked=True)
    for staging in _staging_dirs(directory):
        if os.path.isfile(os.path.join(staging, COMMIT_NAME)):
            _apply(directory, staging)
        else:
            shutil.rmtree(staging, ignore_errors=True)
    remove_stale_temporaries(directory)


def _staging_dirs(directory: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(os.path.join(directory, n) for n in names if n.startswith(STAGING_PREFIX))


@contextlib.contextmanager
def reading(directory: str | os.PathLike) -> Iterator[None]:
    """Hold a shared lock on `directory` while its files are read, so no save switches them midway;
    first finish a committed save that a kill interrupted (this needs write access, once)."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        yield
        return
    if any(os.path.isfile(os.path.join(s, COMMIT_NAME)) for s in _staging_dirs(directory)):
        try:
            recover(directory)
        except CheckpointError as e:
            raise CheckpointError(f"{e} (a save into this directory was interrupted; it needs write "
                                  "access once to be completed)") from None
    with _locked(directory, shared=True):
        yield


@contextlib.contextmanager
def _locked(directory: str, shared: bool) -> Iterator[None]:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError as e:
        raise CheckpointError(f"cannot open the directory {directory}: {e.strerror or e}") from None
    try:
        _lock(fd, shared=shared, wait=True)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _fsync_dir(directory: str) -> None:
    """Make the renames in `directory` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
