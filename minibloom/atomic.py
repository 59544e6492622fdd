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
redo log in the spirit of a database journal. Only a save writes; a read never does:

    1. lock     flock(LOCK_EX) on the directory itself (readers take LOCK_SH; the kernel drops a
                killed process's lock). Then settle what a killed save left: apply a committed
                save (step 4), discard uncommitted staging directories marked as ours, sweep
                `atomic_open` temporaries whose writer is gone.
    2. stage    every new file is written and fsynced into a fresh `DIR/.minibloom-save-XXXXXXXX/`,
                marked as ours by an empty file `STAGING` created first; the live files are untouched.
    3. commit   `COMMIT` = {"format": "minibloom-save/1", "install": [...], "remove": [...]} is
                written atomically into the staging directory: the commit point. Before it the old
                checkpoint stands, after it the new one is decided.
    4. apply    rename each staged file into place (weights, then index, config.json last), delete
                the removed files, fsync the directory, discard the staging directory (COMMIT first).
                Every step can be redone, so the next save finishes a save killed here.

A reader (`reading`, held by every loader) that finds a save killed in step 4 reads through its
manifest (`Snapshot`): a name is the staged file while that is still in staging, absent if the save
removes it, else the live file. So a kill at any instant leaves what minibloom's loaders see as
exactly the old or exactly the new checkpoint, and loading moves, creates and deletes nothing.
Other programs (transformers) see a mix while a save killed in step 4 waits for the next save.

A manifest is followed (by a save) or read through (by a reader) only if it is exactly what step 3
writes (`_check_manifest`): a regular COMMIT of at most 1 MiB, a JSON object with exactly those
three keys and that format, at most 10,000 names, each a plain file name of the directory (no
separator, NUL, '', '.', '..', COMMIT or STAGING) named once; staged files and the files it replaces
or deletes regular files (no symlinks); nothing else in the staging directory; one committed save
at most; every `.minibloom-save-*` entry a real directory. Anything else is a CheckpointError naming
the entry, for readers and saves alike, and is never followed. A staging directory without the
`STAGING` marker is not ours: a save leaves it (it removes it only when it is empty, which loses
nothing and follows no link).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import time
from typing import Any, BinaryIO, Iterator

from .errors import CheckpointError
from .safe_read import read_json

try:  # advisory locks: POSIX only; on Windows the locks are no-ops (one writer at a time is then on you)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

STAGING_PREFIX = ".minibloom-save-"
STAGING_MARKER = "STAGING"  # an empty file: this staging directory is minibloom's own
COMMIT_NAME = "COMMIT"
MANIFEST_FORMAT = "minibloom-save/1"
MAX_MANIFEST_BYTES = 2**20  # 10,000 names of 100 bytes
MAX_MANIFEST_NAMES = 10_000  # bloom-176b has 72 shards + 3 files; a save of 10,000 files is not one we write
STALE_EMPTY_SECONDS = 60  # an unlocked, empty temporary younger than this may be a writer's, not yet locked
TEMP_TAG = ".minibloom-"  # in every `atomic_open` temporary's name: the sweep takes no one else's
_TEMP_RE = re.compile(r"^\..+\.minibloom-[A-Za-z0-9_]{8}\.tmp$")  # what mkstemp names them


# -- one file --------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path` for binary writing; rename it onto `path` on success."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    remove_stale_temporaries(directory, os.path.basename(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + TEMP_TAG, suffix=".tmp", dir=directory)
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
        _fsync_dir(directory)  # the rename itself survives a power loss
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
            if _TEMP_RE.match(name) and (basename is None or name.startswith("." + basename + TEMP_TAG)):
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
        _check_name(name, self.directory)
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

    def _commit(self) -> dict[str, Any]:
        missing = [n for n in self.installs if not os.path.isfile(os.path.join(self.staging, n))]
        if missing:
            raise CheckpointError(f"{self.directory}: files {missing} were never written")
        manifest = {"format": MANIFEST_FORMAT, "install": sorted(self.installs, key=_install_order),
                    "remove": sorted(self.removals)}
        _check_manifest(self.directory, self.staging, manifest, self.directory)  # what the next reader checks
        atomic_write_bytes(os.path.join(self.staging, COMMIT_NAME), json.dumps(manifest).encode("utf-8"))
        _fsync_dir(self.staging)
        return manifest


def _install_order(name: str) -> tuple[int, str]:
    """Weights first, then the index that points at them, config.json last of all."""
    rank = 2 if name == "config.json" else 1 if name.endswith(".json") else 0
    return rank, name


@contextlib.contextmanager
def transaction(directory: str | os.PathLike) -> Iterator[Transaction]:
    """Stage files for `directory` and install them all at once (or none of them) on exit."""
    directory = os.fspath(directory)
    if isinstance(directory, str) and "\x00" in directory:  # checked before anything is created
        raise CheckpointError(f"cannot save into {directory!r}: a path cannot hold a NUL character")
    _make_directory(directory)
    with _locked(directory, shared=False):
        _settle(directory)
        staging = _new_staging(directory)
        txn = Transaction(directory, staging)
        try:
            yield txn
            manifest = txn._commit()
        except BaseException as e:
            _discard(staging)
            if isinstance(e, OSError) and not isinstance(e, CheckpointError):
                raise CheckpointError(f"cannot write into {directory}: {e}") from None
            raise
        _apply(directory, staging, manifest)


def _make_directory(directory: str) -> None:
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise CheckpointError(f"cannot save into {directory}: it exists and is not a directory")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:  # a parent that is a file, a read-only parent, ...
        raise CheckpointError(f"cannot create the directory {directory}: {e.strerror or e}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CheckpointError(f"cannot save into {directory}: the directory is not writable")


def _new_staging(directory: str) -> str:
    try:
        staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=directory)
        os.close(os.open(os.path.join(staging, STAGING_MARKER), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except OSError as e:
        raise CheckpointError(f"cannot write into {directory}: {e}") from None
    return staging


def _settle(directory: str) -> None:
    """Step 1, under the save's lock: finish a committed save a kill interrupted, discard the
    uncommitted ones, sweep stale temporaries. A hostile entry stops the save (`_pending`)."""
    pending = _pending(directory)
    if pending is not None:
        _apply(directory, *pending)
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            if name.startswith(STAGING_PREFIX):
                _discard(os.path.join(directory, name))
    remove_stale_temporaries(directory)


def _apply(directory: str, staging: str, manifest: dict[str, Any]) -> None:
    """Step 4: install a committed, checked staging directory. Idempotent, so a killed apply can be redone."""
    try:
        for name in manifest["install"]:
            source = os.path.join(staging, name)
            if os.path.lexists(source):  # absent: installed before the kill
                os.replace(source, os.path.join(directory, name))
        for name in manifest["remove"]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(directory, name))
        _fsync_dir(directory)
    except OSError as e:
        raise CheckpointError(f"{directory}: cannot finish the save committed in {staging}: {e}") from None
    _discard(staging)


def _discard(staging: str) -> None:
    """Delete a staging directory of ours: its files (COMMIT first: the save is done or void, the
    marker last), then the directory. One without the marker is not ours: left, unless empty."""
    with contextlib.suppress(OSError):
        if not stat.S_ISDIR(os.lstat(staging).st_mode):
            return
        names = os.listdir(staging)
        if STAGING_MARKER in names and stat.S_ISREG(os.lstat(os.path.join(staging, STAGING_MARKER)).st_mode):
            for name in sorted(names, key=lambda n: (n != COMMIT_NAME, n == STAGING_MARKER)):
                path = os.path.join(staging, name)
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    os.unlink(path)  # a file, or a link itself: never what it points at
        os.rmdir(staging)  # only an empty directory; never through a link


def _pending(directory: str) -> tuple[str, dict[str, Any]] | None:
    """The committed, unapplied save in `directory` (its staging directory and checked manifest),
    or None. Uncommitted staging directories do not count (a save discards them; readers ignore them)."""
    found = []
    try:
        for name in sorted(os.listdir(directory)):
            if not name.startswith(STAGING_PREFIX):
                continue
            staging = os.path.join(directory, name)
            mode = os.lstat(staging).st_mode
            if not stat.S_ISDIR(mode):
                _refuse(staging, f"{'a symlink' if stat.S_ISLNK(mode) else 'not a directory'} where a staging "
                                 "directory would be")
            if os.path.lexists(os.path.join(staging, COMMIT_NAME)):
                found.append((staging, _read_manifest(directory, staging)))
        if len(found) > 1:
            _refuse(directory, f"{len(found)} committed saves ({', '.join(os.path.basename(s) for s, _ in found)}); "
                               "a save leaves at most one")
    except CheckpointError as e:
        raise CheckpointError(f"{e}. A save into this directory was interrupted, or it holds a staging entry "
                              "minibloom did not write; nothing in it is followed: inspect it and remove it") from None
    except OSError as e:  # an entry vanished, or cannot be listed
        raise CheckpointError(f"cannot read the directory {directory}: {e.strerror or e}") from None
    return found[0] if found else None


def _read_manifest(directory: str, staging: str) -> dict[str, Any]:
    path = os.path.join(staging, COMMIT_NAME)
    if not stat.S_ISREG(os.lstat(path).st_mode):
        _refuse(path, "not a regular file")
    manifest = read_json(path, CheckpointError, MAX_MANIFEST_BYTES)  # size and nesting capped
    _check_manifest(directory, staging, manifest, path)
    return manifest


def _check_manifest(directory: str, staging: str, manifest: Any, where: str) -> None:
    """Refuse (CheckpointError naming `where` and the entry) anything but a manifest as step 3
    writes it; see the module docstring for the list."""
    if not isinstance(manifest, dict) or set(manifest) != {"format", "install", "remove"} or \
            manifest["format"] != MANIFEST_FORMAT:
        _refuse(where, f'not a manifest of minibloom\'s (a JSON object {{"format": "{MANIFEST_FORMAT}", '
                       '"install": [...], "remove": [...]}})')
    seen: set[str] = set()
    for key in ("install", "remove"):
        names = manifest[key]
        if not isinstance(names, list) or len(names) > MAX_MANIFEST_NAMES:
            shown = f"{len(names):,} names" if isinstance(names, list) else _show(names)
            _refuse(where, f"{key!r} must be a list of at most {MAX_MANIFEST_NAMES:,} file names, got {shown}")
        for name in names:
            _check_name(name, where)
            if name in seen:
                _refuse(where, f"{_show(name)} is named twice")
            seen.add(name)
            for path in (os.path.join(directory, name), os.path.join(staging, name) if key == "install" else None):
                if path and os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
                    _refuse(where, f"{_show(name)}: {path} is not a regular file (a symlink or a directory)")
    extra = sorted(set(os.listdir(staging)) - {COMMIT_NAME, STAGING_MARKER} - set(manifest["install"]))
    if extra or not os.path.isfile(os.path.join(staging, STAGING_MARKER)):
        _refuse(where, f"{staging} holds {_show(extra[0])}, which the manifest does not install" if extra else
                f"{staging} has no {STAGING_MARKER} marker")


def _check_name(name: Any, where: str) -> None:
    """A plain file name of the directory: no path, nothing the protocol itself uses."""
    if not isinstance(name, str) or name in ("", ".", "..", COMMIT_NAME, STAGING_MARKER) or "\x00" in name or \
            os.sep in name or (os.altsep and os.altsep in name) or name.startswith(STAGING_PREFIX) or len(name) > 255:
        _refuse(where, f"{_show(name)} is not a plain file name of the directory")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _refuse(where: str, what: str) -> None:
    raise CheckpointError(f"{where}: {what}; refused")


class Snapshot:
    """What a reader reads in `directory`: each name is the live file or, where a save was killed
    after its commit (`staging`, `manifest`), what that save decided: its staged file while that is
    still in staging, none for a file it removes (a path in staging, which holds no such file)."""

    def __init__(self, directory: str, staging: str | None = None, manifest: dict[str, Any] | None = None):
        self.directory, self.staging = directory, staging
        self.installs = set(manifest["install"]) if manifest else set()
        self.removals = set(manifest["remove"]) if manifest else set()

    def path(self, name: str) -> str:
        """The path to read `name` from (it may not exist: the caller's own check says so)."""
        if self.staging is not None and (name in self.removals or (
                name in self.installs and os.path.lexists(os.path.join(self.staging, name)))):
            return os.path.join(self.staging, name)
        return os.path.join(self.directory, name)


@contextlib.contextmanager
def reading(directory: str | os.PathLike) -> Iterator[Snapshot]:
    """Hold a shared lock on `directory` while its files are read, so no save switches them midway,
    and yield the `Snapshot` to read them through. Writes nothing; refuses a hostile staging entry."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        yield Snapshot(directory)
        return
    with _locked(directory, shared=True):
        pending = _pending(directory)
        yield Snapshot(directory, *pending) if pending else Snapshot(directory)


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
