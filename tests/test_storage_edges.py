"""storage at its edges: write errors named by path, special files refused, stale temporaries."""

from __future__ import annotations

import errno
import os
import time

import pytest

from nbhelpers import locks, storage


def test_torch_short_writes_become_os_errors_naming_the_file(tmp_path, monkeypatch):
    target = tmp_path / "ckpt.pt"
    failure = RuntimeError(
        "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"
    )
    monkeypatch.setattr(storage, "_disk_full", lambda folder: True)
    full = storage.write_error(failure, target)
    assert isinstance(full, OSError) and full.errno == errno.ENOSPC
    assert str(full) == f"[Errno 28] could not write {target}: No space left on device"
    monkeypatch.setattr(storage, "_disk_full", lambda folder: False)
    other = storage.write_error(failure, target)
    assert other.errno == errno.EIO
    assert "torch's writer failed ([enforce fail at inline_container.cc" in str(other)


def test_other_errors_pass_as_they_are(tmp_path):
    target = tmp_path / "f.bin"
    for error in (
        RuntimeError("cannot pickle 'generator' object"),
        storage.DownloadError("sha256 mismatch for http://x"),
        PermissionError(errno.EACCES, "Permission denied"),
        OSError(errno.ENOSPC, "No space left on device", str(target)),
        KeyboardInterrupt(),
    ):
        assert storage.write_error(error, target) is error


def test_a_write_error_naming_no_file_gets_the_target(tmp_path):
    wrapped = storage.write_error(
        OSError(errno.EDQUOT, "Disk quota exceeded"), tmp_path
    )
    assert (
        str(wrapped)
        == f"[Errno {errno.EDQUOT}] could not write {tmp_path}: Disk quota exceeded"
    )


def test_atomic_path_wraps_torch_failures(tmp_path):
    target = tmp_path / "f.bin"
    with pytest.raises(OSError, match=f"could not write {target}"):
        with storage.atomic_path(target):
            raise RuntimeError("PytorchStreamWriter failed writing file data/0")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_special_files_are_not_replaced(tmp_path, kind):
    if kind == "fifo":
        target = tmp_path / "pipe"
        os.mkfifo(target)
        words = "is a FIFO"
    else:
        target = os.devnull
        words = "is a character device"
    with pytest.raises(ValueError, match=words):
        storage.check_writable_file(target)


@pytest.mark.skipif(locks.fcntl is None, reason="no fcntl (Windows)")
def test_the_next_write_removes_a_dead_writers_temporary_file(tmp_path):
    target = tmp_path / "f.bin"
    dead = tmp_path / ".f.bin.abc123.part"
    dead.write_bytes(b"half")
    past = time.time() - 10 * locks.STALE_AFTER_S
    os.utime(dead, (past, past))
    unrelated = tmp_path / ".g.bin.abc123.part"
    unrelated.write_bytes(b"another target's")
    os.utime(unrelated, (past, past))
    with storage.atomic_write(target) as out:
        out.write(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [unrelated.name, "f.bin"]


def test_progress_bars_follow_tqdm_disable(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert storage.progress_disabled_by_environment()
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert not storage.progress_disabled_by_environment()
