"""Signals sent to real subprocesses while they write, and writers running side by side.

SIGTERM during a write must leave no temporary file (the write unwinds as for Ctrl-C, then the
process ends by SIGTERM); SIGKILL cannot be caught, so the temporary file it leaves is removed
by the next write of the same target, but never one a live writer still holds.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from harness import Case, Route, Workspace, run_case
from processes import Ended, finish, parts, python, send, stop, wait_until

from nbhelpers import locks, storage
from nbhelpers.data import synthetic_histopathology as synthetic
from nbhelpers.train.checkpoint import load_safely, save_atomically

# ---- children ------------------------------------------------------------------------------

# writes a 50 MB checkpoint again and again: a signal lands in the middle of a write
SAVING = """
import sys, torch
from nbhelpers.train.checkpoint import save_atomically
state = {"w": torch.zeros(12_500_000)}
while True:
    save_atomically(state, sys.argv[1])
"""
GENERATING = """
import sys
from nbhelpers.data.synthetic_histopathology import make_synthetic_histopathology
make_synthetic_histopathology(sys.argv[1], n=100_000)
"""
DOWNLOADING = """
import sys
from nbhelpers import storage
storage.download(sys.argv[1], sys.argv[2], deadline=300, progress=False)
"""
HOLDING_LOCK = """
import sys, time
from nbhelpers import locks
with locks.exclusive(sys.argv[1], "checkpoint"):
    print("held", flush=True)
    time.sleep(300)
"""
# writes its temporary file, then holds it open (and locked) for a while before renaming it
SLOW_WRITER = """
import sys, time
from nbhelpers import storage
with storage.atomic_write(sys.argv[1]) as out:
    out.write(b"from the slow writer")
    out.flush()
    print("writing", flush=True)
    time.sleep(float(sys.argv[2]))
"""
SYNTHETIC = ".synthetic.*.part"


def _parts_with_files(folder: Path) -> bool:
    return any(part.is_file() or any(part.rglob("*.tif")) for part in parts(folder))


def _interrupted(ws: Workspace, code: str, arguments: list[str], signum: int) -> Ended:
    """Start ``code``, wait until it has a temporary file under the data folder, signal it."""
    child = python(ws, code, *arguments)
    try:
        wait_until(
            lambda: _parts_with_files(ws.data), "a temporary file to appear", child
        )
        return send(child, signum)
    finally:
        stop(child)


def _killed_leaving_parts(ws: Workspace, code: str, arguments: list[str]) -> None:
    """Setup: SIGKILL the child mid-write; its temporary file stays (checked) and grows stale."""
    ended = _interrupted(ws, code, arguments, signal.SIGKILL)
    assert ended.status == -signal.SIGKILL, ended
    assert parts(ws.data), "SIGKILL left no temporary file: the fault did not happen"
    time.sleep(locks.STALE_AFTER_S + 0.1)


def _ended_by_sigterm(result: Any, ws: Workspace) -> None:
    assert isinstance(result, Ended), result
    assert result.status == -signal.SIGTERM, result
    assert "Traceback" not in result.stderr, result.stderr[-800:]
    assert parts(ws.data) == [], parts(ws.data)


def _checkpoint_complete(result: Any, ws: Workspace) -> None:
    _ended_by_sigterm(result, ws)
    path = ws.data / "ckpt.pt"
    if path.exists():  # an earlier write completed: it must be whole
        assert load_safely(path)["w"].numel() == 12_500_000


def _trickle(ws: Workspace) -> str:
    ws.server.routes["/slow"] = Route(
        body=b"x" * 1000, trickle=0.05, trickle_body_only=True
    )
    return ws.server.url("/slow")


def _serve(ws: Workspace, body: bytes) -> str:
    ws.server.routes["/slow"] = Route(body=body)
    return ws.server.url("/slow")


def _saved_ones(result: Any, ws: Workspace) -> None:
    assert parts(ws.data) == [], parts(ws.data)
    assert load_safely(result)["w"].tolist() == [1.0, 1.0, 1.0]


def _complete_set(result: Any, ws: Workspace) -> None:
    assert parts(ws.data) == [], parts(ws.data)
    synthetic.check_synthetic_folder(result, 4, 0)


def _downloaded(result: Any, ws: Workspace) -> None:
    assert parts(ws.data) == [], parts(ws.data)
    assert result.read_bytes() == b"complete"


def _taken_here(result: Any, ws: Workspace) -> None:
    assert result == os.getpid(), f"lock file names pid {result}, not this process"
    assert not (ws.data / "ckpt.pt.lock").exists()


def _lock_refused(ws: Workspace) -> None:
    target = ws.data / "ckpt.pt"
    child = python(ws, HOLDING_LOCK, str(target))
    try:
        assert child.stdout.readline().strip() == "held"
        try:
            with locks.exclusive(target, "checkpoint"):
                pass
        except locks.FileInUseError as refused:
            assert f"pid {child.pid} " in str(refused), str(refused)
            raise
    finally:
        send(child, signal.SIGINT)


def _lock_of_killed_holder(ws: Workspace) -> None:
    child = python(ws, HOLDING_LOCK, str(ws.data / "ckpt.pt"))
    assert child.stdout.readline().strip() == "held"
    assert send(child, signal.SIGKILL).status == -signal.SIGKILL


def _take_lock(ws: Workspace) -> int:
    with locks.exclusive(ws.data / "ckpt.pt", "checkpoint") as lock:
        return json.loads(lock.read_text())["pid"]


def _beside_a_live_writer(ws: Workspace) -> tuple[list[str], Ended]:
    """A slow writer holds its temporary file past STALE_AFTER_S; write the same target meanwhile."""
    target = ws.data / "file.bin"
    child = python(ws, SLOW_WRITER, str(target), str(locks.STALE_AFTER_S + 3))
    try:
        assert child.stdout.readline().strip() == "writing"
        time.sleep(locks.STALE_AFTER_S + 0.5)
        with storage.atomic_write(target) as out:
            out.write(b"from the fast writer")
        kept = [part.name for part in parts(ws.data)]
        return kept, finish(child)
    finally:
        stop(child)


def _live_writer_kept(result: Any, ws: Workspace) -> None:
    kept, ended = result
    assert len(kept) == 1, f"the live writer's temporary file was removed: {kept}"
    assert ended.status == 0, ended.stderr[-800:]
    assert (ws.data / "file.bin").read_bytes() == b"from the slow writer"


CASES = [
    # ---- signals
    Case(
        "checkpoint-write-sigterm",
        "signals",
        "save_atomically",
        "SIGTERM to a process in the middle of writing a 50 MB checkpoint",
        "the process ends by SIGTERM, no temporary file left, the checkpoint whole",
        act=lambda ws: _interrupted(
            ws, SAVING, [str(ws.data / "ckpt.pt")], signal.SIGTERM
        ),
        expect=_checkpoint_complete,
        may_create=("data/ckpt.pt",),
    ),
    Case(
        "checkpoint-write-sigkill-then-save",
        "signals",
        "save_atomically",
        "SIGKILL in the middle of a checkpoint write leaves .ckpt.pt.*.part; then a new save",
        "the next save removes the dead writer's temporary file",
        setup=lambda ws: _killed_leaving_parts(ws, SAVING, [str(ws.data / "ckpt.pt")]),
        act=lambda ws: save_atomically({"w": torch.ones(3)}, ws.data / "ckpt.pt"),
        expect=_saved_ones,
        may_create=("data/ckpt.pt",),
        may_change=("data/.ckpt.pt.*.part", "data/ckpt.pt"),
    ),
    Case(
        "synthetic-sigterm",
        "signals",
        "make_synthetic_histopathology",
        "SIGTERM to a process generating 100,000 synthetic patches",
        "the process ends by SIGTERM; no .part folder, no half set",
        act=lambda ws: _interrupted(
            ws, GENERATING, [str(ws.data / "synthetic")], signal.SIGTERM
        ),
        expect=_ended_by_sigterm,
    ),
    Case(
        "synthetic-sigkill-then-generate",
        "signals",
        "make_synthetic_histopathology",
        "SIGKILL during generation leaves a .synthetic.*.part folder; then a new run",
        "the next run removes it and writes the complete set",
        setup=lambda ws: _killed_leaving_parts(
            ws, GENERATING, [str(ws.data / "synthetic")]
        ),
        act=lambda ws: synthetic.make_synthetic_histopathology(
            ws.data / "synthetic", n=4, n_test=0
        ),
        expect=_complete_set,
        may_create=("data/synthetic", "data/synthetic/*"),
        may_change=("data/" + SYNTHETIC + "*",),
    ),
    Case(
        "download-sigterm",
        "signals",
        "download",
        "SIGTERM to a process downloading from a slow server",
        "the process ends by SIGTERM; no temporary file left",
        act=lambda ws: (
            ws.env.delenv("NBHELPERS_OFFLINE"),
            _interrupted(
                ws, DOWNLOADING, [_trickle(ws), str(ws.data / "f.bin")], signal.SIGTERM
            ),
        )[1],
        expect=_ended_by_sigterm,
    ),
    Case(
        "download-sigkill-then-download",
        "signals",
        "download",
        "SIGKILL during a download leaves .f.bin.*.part; then the download again",
        "the next download removes it and completes",
        setup=lambda ws: (
            ws.env.delenv("NBHELPERS_OFFLINE"),
            _killed_leaving_parts(
                ws, DOWNLOADING, [_trickle(ws), str(ws.data / "f.bin")]
            ),
        ),
        act=lambda ws: storage.download(
            _serve(ws, b"complete"), ws.data / "f.bin", progress=False
        ),
        expect=_downloaded,
        may_create=("data/f.bin",),
        may_change=("data/.f.bin.*.part",),
    ),
    # ---- concurrent writers
    Case(
        "lock-held-by-another-process",
        "concurrent writers",
        "locks.exclusive",
        "a second process asks for the lock of a checkpoint another process holds",
        "FileInUseError naming the holder (pid, host, start, command) and the lock file",
        act=_lock_refused,
        raises=locks.FileInUseError,
        names=r"the checkpoint .*ckpt.pt is in use by another run \(pid \d+ on .+, "
        r"since .+, running .+\); lock file .*ckpt.pt.lock",
        may_create=("data/ckpt.pt.lock",),
    ),
    Case(
        "lock-of-a-killed-holder",
        "concurrent writers",
        "locks.exclusive",
        "the holder of a checkpoint's lock was killed (SIGKILL); its lock file remains",
        "the lock is free: taken at once, the lock file removed after",
        setup=_lock_of_killed_holder,
        act=_take_lock,
        expect=_taken_here,
        may_change=("data/ckpt.pt.lock",),
    ),
    Case(
        "live-writer-temporary-kept",
        "concurrent writers",
        "atomic_write",
        "another process is writing the same file (its temporary file older than "
        "STALE_AFTER_S) while this one writes it",
        "the live writer's temporary file is not removed; both writes complete whole",
        act=_beside_a_live_writer,
        expect=_live_writer_kept,
        may_create=("data/file.bin",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_process_case(case: Case, workspace: Workspace) -> None:
    run_case(case, workspace)
