"""Small timing helpers shared by the benchmark scripts (never imported by the package)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(
    fn: Callable[[], object],
    repeats: int = 5,
    number: int = 10,
    sync: Callable[[], None] | None = None,
) -> float:
    """Best mean seconds per call of ``fn`` over ``repeats`` rounds of ``number`` calls (one warm-up call).

    ``sync`` (e.g. ``torch.cuda.synchronize``) is called before reading the clock so that
    asynchronous devices are timed for the work, not for the launch.
    """
    fn()
    if sync:
        sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        if sync:
            sync()
        best = min(best, (time.perf_counter() - start) / number)
    return best
