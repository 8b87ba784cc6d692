"""The training logs as one table: a row per step, validation results at the epoch ends."""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = (
    "step",
    "epoch",
    "loss",
    "accu",
    "loss_avg",
    "accu_avg",
    "val_loss",
    "val_accu",
)


def history_frame(
    train_log: Mapping[str, Sequence[float]],
    valid_log: Mapping[str, Sequence[float]],
    epoch_end_steps: Sequence[int],
) -> pd.DataFrame:
    """A DataFrame with one row per training step.

    Columns: ``step`` (1-based global step), ``epoch`` (1-based), ``loss``, ``accu``,
    ``loss_avg``, ``accu_avg`` (the train log), ``val_loss`` and ``val_accu`` (filled on the last
    step of each epoch, NaN elsewhere).

    Args:
        epoch_end_steps: the global step count at the end of each epoch, one per ``valid_log`` entry.
    """
    import pandas as pd  # pandas is only needed here; keep `import nbhelpers.train` light

    if len(epoch_end_steps) != len(valid_log["loss"]):
        raise ValueError(
            f"{len(epoch_end_steps)} epoch ends but {len(valid_log['loss'])} validation entries"
        )
    steps = range(1, len(train_log["loss"]) + 1)
    val_loss = [math.nan] * len(steps)
    val_accu = [math.nan] * len(steps)
    for end, loss, accu in zip(epoch_end_steps, valid_log["loss"], valid_log["accu"]):
        if 1 <= end <= len(steps):
            val_loss[end - 1], val_accu[end - 1] = loss, accu
    frame = pd.DataFrame(
        {
            "step": list(steps),
            # steps up to and including epoch_end_steps[k] belong to epoch k + 1
            "epoch": [bisect.bisect_left(epoch_end_steps, step) + 1 for step in steps],
            "loss": list(train_log["loss"]),
            "accu": list(train_log["accu"]),
            "loss_avg": list(train_log["loss_avg"]),
            "accu_avg": list(train_log["accu_avg"]),
            "val_loss": val_loss,
            "val_accu": val_accu,
        },
        columns=list(COLUMNS),
    )
    return frame
