"""SIGTERM handled like Ctrl-C where files are being written, so temporary files are removed.

By default SIGTERM (``kill``, a batch scheduler's time limit, a container stopping) ends Python at
once: no ``finally`` clause runs, and a half-written temporary file stays. Ctrl-C (SIGINT) instead
raises ``KeyboardInterrupt``, whose unwinding removes it. ``cleanup_on_sigterm`` gives SIGTERM the
same unwinding for the length of a write, then ends the process as SIGTERM would have; the
command line (``sigterm_as_interrupt``) turns SIGTERM into a Ctrl-C for the whole run.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from nbhelpers.locks import remove_path


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program was, so that its cleanup runs as for a Ctrl-C."""


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def cleanup_on_sigterm() -> Iterator[list[Path]]:
    """Within the block, SIGTERM raises ``Terminated``; once the block has unwound, the process ends.

    Yields a list: paths appended to it are removed before the process ends, even when the
    signal lands inside a ``finally`` clause that was about to remove them.

    Only where SIGTERM still has its default action and only in the main thread (Python runs
    signal handlers there): a program with its own SIGTERM handler keeps it, and nested blocks
    leave the outermost one in charge. The process ends by SIGTERM itself, so its parent sees
    the usual status (-15, or 143 in a shell).
    """
    leftovers: list[Path] = []
    if not _in_main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield leftovers
        return

    def raise_terminated(signum: int, frame: FrameType | None) -> None:
        raise Terminated(f"terminated by signal {signum} (SIGTERM)")

    try:
        signal.signal(signal.SIGTERM, raise_terminated)
        yield leftovers
    except Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for path in leftovers:
            remove_path(path)
        signal.raise_signal(signal.SIGTERM)
        raise  # only where the signal could not end the process
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[list[int]]:
    """For the block, SIGTERM does what Ctrl-C would (through the SIGINT handler in force).

    Yields a list to which the numbers of the signals received are appended, so that a program
    can exit with 128 + the signal's number. Does nothing outside the main thread.
    """
    received: list[int] = []
    if not _in_main_thread():
        yield received
        return

    def as_interrupt(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            raise Terminated(f"terminated by signal {signum} (SIGTERM)")

    previous = signal.signal(signal.SIGTERM, as_interrupt)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)
