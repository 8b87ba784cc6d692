"""nbhelpers.locks: one writer per path (refusals name the holder), stale temporary files removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbhelpers import locks

REPOSITORY = Path(__file__).resolve().parents[1]
needs_flock = pytest.mark.skipif(locks.fcntl is None, reason="no fcntl (Windows)")


def _child(code: str, *arguments: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *arguments],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


HOLD = """
import sys
from nbhelpers import locks
with locks.exclusive(sys.argv[1], "checkpoint"):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_second_holder_in_another_process_is_refused_by_name(tmp_path):
    target = tmp_path / "run.pt"
    child = _child(HOLD, str(target))
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(locks.FileInUseError) as refused:
            with locks.exclusive(target, "checkpoint"):
                pass
        message = str(refused.value)
        assert f"the checkpoint {target} is in use by another run" in message
        assert f"pid {child.pid} on " in message and "running " in message
        assert str(locks.lock_file_of(target)) in message
        assert refused.value.errno == 16  # EBUSY
    finally:
        child.communicate("\n", timeout=30)
    assert child.returncode == 0
    assert not locks.lock_file_of(target).exists()  # the holder removed it
    with locks.exclusive(target) as lock:  # free again
        assert json.loads(lock.read_text())["pid"] == os.getpid()


@needs_flock
def test_the_lock_of_a_killed_holder_is_free(tmp_path):
    target = tmp_path / "run.pt"
    child = _child(HOLD, str(target))
    assert child.stdout.readline().strip() == "held"
    child.kill()
    child.communicate(timeout=30)
    assert locks.lock_file_of(
        target
    ).exists()  # left by SIGKILL, unlocked by the kernel
    with locks.exclusive(target, "checkpoint") as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()


def test_the_lock_records_its_holder(tmp_path):
    with locks.exclusive(tmp_path / "a.pt") as lock:
        found = json.loads(lock.read_text())
    assert found["pid"] == os.getpid()
    assert set(found) == {"pid", "host", "started", "command"}
    assert sys.executable in found["command"]


def test_a_missing_folder_is_an_os_error_naming_the_lock_file(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="cannot create the lock file .*nowhere"
    ):
        with locks.exclusive(tmp_path / "nowhere" / "a.pt"):
            pass


def test_without_fcntl_the_lock_file_is_created_exclusively(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, "fcntl", None)
    target = tmp_path / "a.pt"
    with locks.exclusive(target, "checkpoint"):
        with pytest.raises(
            locks.FileInUseError, match="if no such process runs, remove"
        ):
            with locks.exclusive(target, "checkpoint"):
                pass
    assert not locks.lock_file_of(target).exists()


@needs_flock
def test_remove_stale_keeps_held_and_fresh_entries(tmp_path):
    stale_file = tmp_path / ".a.1.part"
    stale_folder = tmp_path / ".a.2.part"
    held = tmp_path / ".a.3.part"
    fresh = tmp_path / ".a.4.part"
    other = tmp_path / ".b.5.part"
    stale_file.write_bytes(b"x")
    stale_folder.mkdir()
    (stale_folder / "inside").write_bytes(b"y")
    held.write_bytes(b"z")
    other.write_bytes(b"w")
    past = time.time() - 10 * locks.STALE_AFTER_S
    for path in (stale_file, stale_folder, held, other):
        os.utime(path, (past, past))
    fresh.write_bytes(b"new")
    with locks.held(held):
        removed = locks.remove_stale(tmp_path, ".a.*.part")
    assert sorted(removed) == sorted([stale_file, stale_folder])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [held.name, fresh.name, other.name]
    )


@needs_flock
def test_a_folder_held_by_another_process_is_not_stale(tmp_path):
    folder = tmp_path / ".x.1.part"
    folder.mkdir()
    code = """
import sys
from pathlib import Path
from nbhelpers import locks
with locks.held(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.readline()
"""
    child = _child(code, str(folder))
    try:
        assert child.stdout.readline().strip() == "held"
        past = time.time() - 10 * locks.STALE_AFTER_S
        os.utime(folder, (past, past))
        assert locks.remove_stale(tmp_path, ".x.*.part") == []
    finally:
        child.communicate("\n", timeout=30)
    assert locks.remove_stale(tmp_path, ".x.*.part") == [folder]
