"""Locks between processes: one writer per file, and temporary files a killed writer left behind.

Two uses, both built on ``flock`` (POSIX; the kernel releases a lock when its process ends, even
by SIGKILL, so no lock outlives its holder):

- ``exclusive(path)``: a program that will write ``path`` again and again (a checkpoint after
  every epoch) holds ``<path>.lock`` for its whole run. A second program asking for the same
  path is refused with ``FileInUseError``, whose message names the holder: pid, host, start
  time and command, which the holder wrote into the lock file.
- ``held(path)`` and ``remove_stale(folder, pattern)``: a writer holds a lock on its temporary
  file or folder while it fills it; the next writer of the same target removes the temporary
  files nobody holds, which are those of writers that were killed. A live writer's are kept.

Where ``fcntl`` is missing (Windows), ``exclusive`` takes the lock file by creating it
exclusively (a crash then leaves it, and the message says to remove it), ``held`` does nothing
and ``remove_stale`` removes nothing: without a lock it cannot tell a live writer from a dead one.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import shlex
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".lock"
# A temporary file is locked microseconds after it is created; one not modified for this long
# and not locked belongs to no live writer.
STALE_AFTER_S = 1.0


class FileInUseError(OSError):
    """Another process holds the lock of a path; the message names it (pid, host, start, command)."""


def lock_file_of(path: str | os.PathLike[str]) -> Path:
    """The lock file of ``path``: ``<path>.lock`` beside it."""
    path = Path(path)
    return path.with_name(path.name + LOCK_SUFFIX)


@contextlib.contextmanager
def exclusive(path: str | os.PathLike[str], what: str = "file") -> Iterator[Path]:
    """Hold ``<path>.lock`` for the block; refuse at once if another process holds it.

    The lock file records who holds it (``holder()``) and is removed when the block ends.

    Args:
        what: what ``path`` is, for the message ("checkpoint").

    Yields:
        The lock file.

    Raises:
        FileInUseError: another process holds the lock (the message names it and the lock file).
        OSError: the lock file cannot be created (a missing or read-only folder).
    """
    lock = lock_file_of(path)
    handle = _acquire(lock, what, Path(path))
    try:
        yield lock
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()  # before unlocking: a waiter then retries on a new file
        os.close(handle)


def holder() -> dict[str, object]:
    """Who this process is, as a lock file records it: pid, host, start time, command."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
    }


def _acquire(lock: Path, what: str, path: Path) -> int:
    while True:
        if fcntl is None:
            return _create_exclusively(lock, what, path)
        handle = _open(lock, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(handle)
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise _in_use(lock, what, path) from None
        try:
            same = os.path.samestat(os.fstat(handle), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:  # not a file its last holder removed while we opened it
            _record(handle, lock)
            return handle
        os.close(handle)


def _create_exclusively(lock: Path, what: str, path: Path) -> int:
    try:
        handle = _open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        raise _in_use(lock, what, path, remove_hint=True) from None
    _record(handle, lock)
    return handle


def _open(lock: Path, flags: int) -> int:
    try:
        return os.open(lock, flags, 0o666)
    except FileExistsError:
        raise
    except OSError as error:
        raise OSError(
            error.errno, f"cannot create the lock file {lock}: {error.strerror}"
        ) from None


def _record(handle: int, lock: Path) -> None:
    try:
        os.ftruncate(handle, 0)
        os.write(handle, (json.dumps(holder()) + "\n").encode())
    except OSError as error:  # a full disk
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(handle)
        raise OSError(
            error.errno, f"cannot write the lock file {lock}: {error.strerror}"
        ) from None


def _in_use(
    lock: Path, what: str, path: Path, remove_hint: bool = False
) -> FileInUseError:
    try:
        found = json.loads(lock.read_text(encoding="utf-8"))
        who = (
            f"pid {found['pid']} on {found['host']}, since {found['started']}, "
            f"running {found['command']}"
        )
    except (OSError, ValueError, TypeError, KeyError):
        who = "a process that has not yet written its name"
    hint = f"; if no such process runs, remove {lock}" if remove_hint else ""
    return FileInUseError(
        errno.EBUSY,
        f"the {what} {path} is in use by another run ({who}); lock file {lock}{hint}",
    )


@contextlib.contextmanager
def held(path: Path) -> Iterator[None]:
    """Hold a lock on the file or folder ``path`` for the block (nothing where fcntl is missing)."""
    if fcntl is None:
        yield
        return
    handle = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(handle)


def remove_stale(folder: Path, pattern: str) -> list[Path]:
    """Remove the entries of ``folder`` matching ``pattern`` that no process holds (see ``held``).

    An entry is stale when nobody holds its lock and it has not changed for ``STALE_AFTER_S``
    (a writer locks its file right after creating it). Nothing is removed where fcntl is missing.

    Returns:
        The entries removed.
    """
    if fcntl is None or not folder.is_dir():
        return []
    removed = []
    for entry in folder.glob(pattern):
        if _is_stale(entry):
            remove_path(entry)
            removed.append(entry)
    return removed


def remove_path(path: Path) -> None:
    """Remove the file or folder ``path`` if it is there (a link itself, not its target)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _is_stale(entry: Path) -> bool:
    try:
        if time.time() - entry.lstat().st_mtime < STALE_AFTER_S or entry.is_symlink():
            return False
        handle = os.open(entry, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live writer holds it
    finally:
        os.close(handle)
    return True
