"""nbhelpers.signals: SIGTERM unwinds a write like Ctrl-C, then ends the process as SIGTERM does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nbhelpers import signals

REPOSITORY = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _run(code: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    return subprocess.run(
        [sys.executable, "-c", code, *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_sigterm_inside_the_block_runs_finally_then_ends_by_sigterm(tmp_path):
    marker = tmp_path / "cleaned"
    code = """
import os, signal, sys
from nbhelpers.signals import cleanup_on_sigterm
with cleanup_on_sigterm():
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()
    finally:
        open(sys.argv[1], "w").close()
print("not reached")
"""
    done = _run(code, str(marker))
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert marker.exists()
    assert "not reached" not in done.stdout
    assert "Traceback" not in done.stderr


def test_a_program_with_its_own_handler_keeps_it(tmp_path):
    code = """
import os, signal
from nbhelpers.signals import cleanup_on_sigterm
signal.signal(signal.SIGTERM, lambda *a: print("own handler", flush=True))
with cleanup_on_sigterm():
    os.kill(os.getpid(), signal.SIGTERM)
print("still running")
"""
    done = _run(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["own", "handler", "still", "running"]


def test_the_default_handler_is_restored_after_the_block():
    before = signal.getsignal(signal.SIGTERM)
    with signals.cleanup_on_sigterm():
        inside = signal.getsignal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before
    if before is signal.SIG_DFL:
        assert inside is not signal.SIG_DFL


def test_sigterm_as_interrupt_goes_through_the_sigint_handler():
    calls = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    try:
        with signals.sigterm_as_interrupt() as received:
            signal.raise_signal(signal.SIGTERM)
        assert received == [signal.SIGTERM]
        assert calls == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_sigterm_as_interrupt_raises_keyboard_interrupt_by_default():
    with pytest.raises(KeyboardInterrupt):
        with signals.sigterm_as_interrupt() as received:
            signal.raise_signal(signal.SIGTERM)
    assert received == [signal.SIGTERM]


def test_paths_handed_to_the_guard_are_removed_when_sigterm_ends_the_process(tmp_path):
    left = tmp_path / ".f.bin.abc.part"
    code = """
import os, signal, sys
from pathlib import Path
from nbhelpers.signals import cleanup_on_sigterm
with cleanup_on_sigterm() as leftovers:
    path = Path(sys.argv[1])
    leftovers.append(path)
    path.write_bytes(b"half")
    os.kill(os.getpid(), signal.SIGTERM)  # no finally of its own removes it
    signal.pause()
"""
    done = _run(code, str(left))
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert not left.exists()
