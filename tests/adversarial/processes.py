"""Real subprocesses for the hostile suite: programs to signal, kill and run side by side.

A case starts a child Python with the workspace's environment (its data folder, offline mode,
torch home), waits until the child has reached the state to attack (a temporary file on disk, a
lock taken, a first checkpoint written), then signals it. Every wait is bounded: a child that
never gets there fails the case instead of hanging the suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import Workspace

REPOSITORY = Path(__file__).resolve().parents[2]
# generous: importing torch takes seconds on a busy two-core machine
START_TIMEOUT_S = 120.0


@dataclass
class Ended:
    """How a child ended: its status (negative: killed by that signal) and its output."""

    status: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def environment() -> dict[str, str]:
    """The environment of the case (set by the workspace), with this repository importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPOSITORY), *filter(None, [env.get("PYTHONPATH")])]
    )
    env["TQDM_DISABLE"] = "1"
    env.pop("NBHELPERS_RELIABILITY_RECORD", None)
    return env


def start(ws: Workspace, arguments: list[str]) -> subprocess.Popen[str]:
    """Start ``python <arguments>`` in the workspace root, output captured."""
    return subprocess.Popen(
        [sys.executable, *arguments],
        cwd=ws.root,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def python(ws: Workspace, code: str, *arguments: str) -> subprocess.Popen[str]:
    """Start ``python -c code arguments...``."""
    return start(ws, ["-c", code, *arguments])


def cli(ws: Workspace, arguments: list[str]) -> subprocess.Popen[str]:
    """Start the command line ``python -m nbhelpers.examples.mnist <arguments>``."""
    return start(ws, ["-m", "nbhelpers.examples.mnist", *arguments])


def finish(child: subprocess.Popen[str], timeout: float = START_TIMEOUT_S) -> Ended:
    """Wait for ``child`` (killing it after ``timeout``) and return how it ended."""
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        raise AssertionError(
            f"the child did not end within {timeout:g} s: {err[-500:]}"
        ) from None
    return Ended(child.returncode, out, err)


def wait_until(
    condition: Callable[[], bool],
    what: str,
    child: subprocess.Popen[str] | None = None,
    timeout: float = START_TIMEOUT_S,
) -> None:
    """Poll ``condition`` until it holds; AssertionError naming ``what`` after ``timeout``.

    With ``child``: also fail (with its output) when it ends before the condition holds.
    """
    end = time.monotonic() + timeout
    while not condition():
        if child is not None and child.poll() is not None:
            ended = finish(child)
            raise AssertionError(
                f"the child ended (status {ended.status}) before {what}: "
                f"{ended.stderr[-800:]}"
            )
        if time.monotonic() > end:
            if child is not None:
                child.kill()
                child.communicate()
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(0.02)


def send(child: subprocess.Popen[str], signum: int) -> Ended:
    """Send ``signum`` to ``child`` and wait for it to end."""
    child.send_signal(signum)
    return finish(child)


def parts(folder: Path) -> list[Path]:
    """The temporary files and folders (``.*.part``) directly in ``folder``."""
    return sorted(folder.glob(".*.part")) if folder.is_dir() else []


def stop(child: subprocess.Popen[str]) -> None:
    """End ``child`` if it still runs (SIGKILL), for cleanup."""
    if child.poll() is None:
        child.send_signal(signal.SIGKILL)
        child.communicate()
