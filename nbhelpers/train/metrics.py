"""Per-step training metrics that stay on the device until the loop asks for them in chunks.

Calling ``.item()`` on a CUDA tensor waits for every queued kernel: doing it each step (as the
lecture notebook's loop does, twice) stops the CPU from running ahead of the GPU. Here each step
only stacks its (loss, accuracy) pair on the device; ``drain`` copies a whole chunk to the host
at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch


class StepMetrics:
    """A queue of per-step (loss, accuracy) pairs, each a (2,) tensor on the training device.

    Args:
        reduce: applied to the stacked (n, 2) chunk before it leaves the device, e.g. the mean
            over processes in a distributed run.
    """

    def __init__(
        self, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> None:
        self._pending: list[torch.Tensor] = []
        self._reduce = reduce

    def __len__(self) -> int:
        return len(self._pending)

    def append(self, pair: torch.Tensor) -> None:
        """Queue one step's (2,) tensor [loss, accuracy]; no host synchronisation."""
        self._pending.append(pair)

    def drain(self) -> list[tuple[float, float]]:
        """All queued pairs as Python floats, in step order (one device-to-host copy)."""
        if not self._pending:
            return []
        chunk = torch.stack(self._pending)
        self._pending.clear()
        if self._reduce is not None:
            chunk = self._reduce(chunk)
        return [(loss, accu) for loss, accu in chunk.tolist()]


def step_pair(loss: torch.Tensor, accu: torch.Tensor) -> torch.Tensor:
    """The (2,) float32 tensor [loss, accuracy] of one step, detached, on the loss's device."""
    return torch.stack((loss.detach().float(), accu.detach().float()))


def first_non_finite(values: Sequence[float]) -> int | None:
    """Index of the first NaN or infinite value, or None."""
    for index, value in enumerate(values):
        if not math.isfinite(value):
            return index
    return None
