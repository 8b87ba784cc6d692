"""Ctrl-C between an optimiser step and its bookkeeping, held back until both are done.

A KeyboardInterrupt that lands after ``optimizer.step()`` but before the Trainer has counted the
step leaves the optimiser one step ahead of ``global_step`` and the logs; a checkpoint saved
then cannot resume exactly. ``StepInterrupts`` replaces the SIGINT handler for the length of a
run: outside a step, Ctrl-C raises at once as usual; inside one (between ``hold`` and
``release``), it is remembered and raised by ``release``, when the step is fully booked.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any


class StepInterrupts:
    """A context manager for one ``run``; ``hold()`` and ``release()`` bracket each step.

    Signal handlers can only be installed from the main thread: elsewhere (a worker thread) it
    does nothing and Ctrl-C behaves as Python's default.
    """

    def __init__(self) -> None:
        self._holding = False
        self._pending = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> StepInterrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
        self._holding = self._pending = False

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self._holding:
            self._pending = True
        else:
            self._deliver(frame)

    def _deliver(self, frame: FrameType | None) -> None:
        """What the handler in place before the run would have done."""
        if callable(self._previous):
            self._previous(signal.SIGINT, frame)
        elif self._previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    def hold(self) -> None:
        """From now on a Ctrl-C waits for ``release``."""
        self._holding = True

    def release(self) -> None:
        """The step is booked: raise the KeyboardInterrupt that waited, if any."""
        self._holding = False
        if self._pending:
            self._pending = False
            self._deliver(None)
