"""Hostile inputs against nbhelpers.storage: environment variables, atomic writes, downloads."""

from __future__ import annotations

import os
import stat

import pytest
from harness import Case, Route, Workspace, run_case, within

from nbhelpers import storage


def _write(ws: Workspace, relative: str, content: bytes = b"old") -> None:
    path = ws.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def _read_only(ws: Workspace, relative: str) -> None:
    _write(ws, relative)
    os.chmod(ws.root / relative, 0o444)


def _atomic(ws: Workspace, relative: str) -> None:
    with storage.atomic_write(ws.root / relative) as out:
        out.write(b"new")


def _interrupted(ws: Workspace) -> None:
    with storage.atomic_write(ws.data / "file.bin") as out:
        out.write(b"half")
        raise KeyboardInterrupt("simulated Ctrl-C")


def _mode_is_umask_default(_result: object, ws: Workspace) -> None:
    mode = stat.S_IMODE((ws.data / "new.bin").stat().st_mode)
    assert mode == 0o666 & ~storage.current_umask(), oct(mode)


def _is_none(result: object) -> None:
    assert result is None, result


def _download(
    ws: Workspace, path: str, dest: str = "file.bin", **kwargs: object
) -> object:
    ws.env.delenv("NBHELPERS_OFFLINE")
    return storage.download(
        ws.server.url(path), ws.data / dest, progress=False, backoff=0.01, **kwargs
    )


def _trickled(ws: Workspace, path: str, body_only: bool) -> None:
    """One byte every 2 s: the status line and headers too, or only the body."""
    ws.server.routes[path] = Route(
        body=b"x" * 1000, trickle=2.0, trickle_body_only=body_only
    )


def _fill_disk(ws: Workspace) -> None:
    disk = ws.small_disk("data/disk", 64)
    (disk / "old.bin").write_bytes(b"old")


def _big_write(ws: Workspace, relative: str) -> None:
    with storage.atomic_write(ws.root / relative) as out:
        out.write(b"\0" * (1 << 20))


def _dangling_link(ws: Workspace) -> None:
    (ws.data / "file.bin").symlink_to(ws.root / "elsewhere.bin")


CASES = [
    Case(
        "offline-typo",
        "environment",
        "offline",
        "NBHELPERS_OFFLINE=treu (a typo)",
        "ValueError naming the variable and its value",
        act=lambda ws: (ws.env.setenv("NBHELPERS_OFFLINE", "treu"), storage.offline()),
        raises=ValueError,
        names="NBHELPERS_OFFLINE='treu'",
    ),
    Case(
        "data-is-a-file",
        "environment",
        "data_dir",
        "NBHELPERS_DATA names a file",
        "ValueError naming the variable",
        setup=lambda ws: _write(ws, "afile"),
        act=lambda ws: (
            ws.env.setenv("NBHELPERS_DATA", str(ws.root / "afile")),
            storage.data_dir(),
        ),
        raises=ValueError,
        names="NBHELPERS_DATA=.*afile.* is a file",
    ),
    Case(
        "mirror-missing",
        "environment",
        "mirror_dir",
        "NBHELPERS_DATA_MIRROR names a missing folder",
        "FileNotFoundError naming the variable and the folder",
        act=lambda ws: (
            ws.env.setenv("NBHELPERS_DATA_MIRROR", str(ws.root / "nowhere")),
            storage.mirror_dir(),
        ),
        raises=FileNotFoundError,
        names="NBHELPERS_DATA_MIRROR=.*nowhere",
    ),
    Case(
        "read-only-data-folder",
        "environment",
        "writable_data_dir",
        "NBHELPERS_DATA is a read-only folder",
        "None: loaders fall back instead of failing",
        setup=lambda ws: os.chmod(ws.data, 0o555),
        act=lambda ws: storage.writable_data_dir(),
        expect=lambda result, ws: _is_none(result),
    ),
    Case(
        "replace-read-only-file",
        "files",
        "atomic_write",
        "write over a read-only (0444) file",
        "PermissionError naming the file; the file unchanged",
        setup=lambda ws: _read_only(ws, "data/locked.bin"),
        act=lambda ws: _atomic(ws, "data/locked.bin"),
        raises=PermissionError,
        names="locked.bin is read-only",
    ),
    Case(
        "write-into-missing-folder",
        "files",
        "atomic_write",
        "write into a folder that does not exist",
        "FileNotFoundError naming the folder",
        act=lambda ws: _atomic(ws, "data/no/such/dir/file.bin"),
        raises=FileNotFoundError,
        names="no/such/dir",
    ),
    Case(
        "interrupted-write",
        "files",
        "atomic_write",
        "Ctrl-C in the middle of a write over an existing file",
        "KeyboardInterrupt passes; the old file intact, no temporary file",
        setup=lambda ws: _write(ws, "data/file.bin"),
        act=lambda ws: _interrupted(ws),
        raises=KeyboardInterrupt,
        names="simulated",
    ),
    Case(
        "new-file-mode",
        "files",
        "atomic_write",
        "a new file written through a temporary file",
        "mode 0666 less the umask (not tempfile's 0600)",
        act=lambda ws: _atomic(ws, "data/new.bin"),
        expect=_mode_is_umask_default,
        may_create=("data/new.bin",),
    ),
    Case(
        "download-html-instead-of-file",
        "network",
        "download",
        "HTTP 200 with an HTML page where a file with a known sha256 was expected",
        "DownloadError naming the url and both digests; nothing written",
        setup=lambda ws: ws.server.routes.update(
            {"/f": Route(body=b"<html>captive portal</html>")}
        ),
        act=lambda ws: _download(ws, "/f", sha256="0" * 64),
        raises=storage.DownloadError,
        names="sha256 mismatch for http://127.0.0.1:[0-9]+/f",
    ),
    Case(
        "download-redirect-loop",
        "network",
        "download",
        "a redirect to itself, forever",
        "DownloadError naming the url",
        setup=lambda ws: ws.server.routes.update(
            {"/loop": Route(status=302, headers={"Location": "/loop"})}
        ),
        act=lambda ws: _download(ws, "/loop", retries=0),
        raises=storage.DownloadError,
        names="/loop",
    ),
    Case(
        "download-connection-reset",
        "network",
        "download",
        "the server closes the connection without answering, every time",
        "DownloadError after the retries, naming the url",
        setup=lambda ws: ws.server.routes.update({"/reset": Route(reset=True)}),
        act=lambda ws: _download(ws, "/reset", retries=1),
        raises=storage.DownloadError,
        names="/reset",
    ),
    Case(
        "download-through-dangling-link",
        "files",
        "download",
        "the destination is a dangling symbolic link",
        "ValueError naming the link; nothing written at its target",
        setup=_dangling_link,
        act=lambda ws: _download(ws, "/f"),
        raises=ValueError,
        names="file.bin is a symbolic link",
    ),
    Case(
        "download-stalled-server",
        "network",
        "download",
        "the server waits 2 s before answering; the deadline is 0.5 s",
        "DownloadError within the deadline, naming the url",
        setup=lambda ws: ws.server.routes.update(
            {"/stall": Route(body=b"late", delay=2.0)}
        ),
        act=lambda ws: _download(ws, "/stall", retries=3, timeout=30.0, deadline=0.5),
        raises=storage.DownloadError,
        names="/stall",
    ),
    Case(
        "download-404-into-new-folders",
        "network",
        "download",
        "HTTP 404 for a file whose folders do not exist yet",
        "DownloadError naming the url and status; no empty folders left",
        act=lambda ws: _download(ws, "/missing", dest="a/b/file.bin"),
        raises=storage.DownloadError,
        names="HTTP 404 .*/missing",
    ),
]


THROTTLED = [
    Case(
        "download-throttled-body",
        "throttled servers",
        "download",
        "the body comes one byte every 2 s (each read meets no socket timeout); "
        "deadline 3 s",
        "DownloadError naming the url and the deadline, within 3 s + one byte's wait",
        setup=lambda ws: _trickled(ws, "/slow", body_only=True),
        act=lambda ws: within(
            6.0, _download, ws, "/slow", retries=3, timeout=30.0, deadline=3.0
        ),
        raises=storage.DownloadError,
        names=r"downloading http://127.0.0.1:\d+/slow took more than 3 s; gave up",
    ),
    Case(
        "download-throttled-headers",
        "throttled servers",
        "download",
        "the status line and headers come one byte every 2 s; deadline 3 s",
        "DownloadError naming the url and the deadline, within 3 s + one byte's wait",
        setup=lambda ws: _trickled(ws, "/slow", body_only=False),
        act=lambda ws: within(
            6.0, _download, ws, "/slow", retries=3, timeout=30.0, deadline=3.0
        ),
        raises=storage.DownloadError,
        names=r"downloading http://127.0.0.1:\d+/slow took more than 3 s; gave up",
    ),
]

FULL_DISK = [
    Case(
        "atomic-write-full-disk",
        "full disk",
        "atomic_write",
        "write 1 MiB onto a real 64 KiB tmpfs holding another file",
        "OSError (ENOSPC) naming the file; the other file intact, no temporary file",
        setup=_fill_disk,
        act=lambda ws: _big_write(ws, "data/disk/new.bin"),
        raises=OSError,
        names=r"\[Errno 28\] could not write .*data/disk/new.bin: No space left on device",
    ),
    Case(
        "download-full-disk",
        "full disk",
        "download",
        "download 1 MiB onto a real 64 KiB tmpfs",
        "OSError (ENOSPC) naming the file, not retried; no temporary file",
        setup=lambda ws: (
            _fill_disk(ws),
            ws.server.routes.update({"/big": Route(body=b"\0" * (1 << 20))}),
        ),
        act=lambda ws: _download(ws, "/big", dest="disk/big.bin"),
        raises=OSError,
        names=r"could not write .*data/disk/big.bin: No space left on device",
    ),
]

SPECIAL_FILES = [
    Case(
        "atomic-write-onto-fifo",
        "files",
        "atomic_write",
        "write to a path that is a FIFO (named pipe)",
        "ValueError naming the FIFO; the FIFO left as it is",
        setup=lambda ws: os.mkfifo(ws.data / "pipe"),
        act=lambda ws: _atomic(ws, "data/pipe"),
        raises=ValueError,
        names=r"data/pipe is a FIFO \(named pipe\), not a regular file",
    ),
]

CASES += THROTTLED + FULL_DISK + SPECIAL_FILES


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_storage_case(case: Case, workspace: Workspace) -> None:
    run_case(case, workspace)
