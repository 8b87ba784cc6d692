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
    "accuracy",
    "loss_avg",
    "accuracy_avg",
    "valid_loss",
    "valid_accuracy",
)


def history_frame(
    train_log: Mapping[str, Sequence[float]],
    valid_log: Mapping[str, Sequence[float]],
    window: int = 1,
) -> pd.DataFrame:
    """A DataFrame with one row per training step.

    Columns: ``step`` (1-based global step), ``epoch`` (1-based), ``loss`` and ``accuracy``
    (the train log), ``loss_avg`` and ``accuracy_avg`` (their trailing means over the last
    ``window`` steps, the lecture notebook's smoothed curves), ``valid_loss`` and
    ``valid_accuracy`` (filled on the last step of each epoch, NaN elsewhere).

    Args:
        train_log: {"loss", "accuracy"} -> one value per step.
        valid_log: {"step", "loss", "accuracy"} -> one value per epoch; "step" is the
            global step at the epoch's end.
        window: steps in each trailing mean (an int >= 1).
    """
    import pandas as pd  # pandas is only needed here; keep `import nbhelpers.train` light

    steps = range(1, len(train_log["loss"]) + 1)
    ends = list(valid_log["step"])
    valid_loss = [math.nan] * len(steps)
    valid_accuracy = [math.nan] * len(steps)
    for end, loss, accuracy in zip(ends, valid_log["loss"], valid_log["accuracy"]):
        if 1 <= end <= len(steps):
            valid_loss[end - 1], valid_accuracy[end - 1] = loss, accuracy
    frame = pd.DataFrame(
        {
            "step": list(steps),
            # steps up to and including ends[k] belong to epoch k + 1
            "epoch": [bisect.bisect_left(ends, step) + 1 for step in steps],
            "loss": list(train_log["loss"]),
            "accuracy": list(train_log["accuracy"]),
        }
    )
    for column in ("loss", "accuracy"):
        trailing = frame[column].rolling(window, min_periods=1).mean()
        frame[f"{column}_avg"] = trailing
    frame["valid_loss"], frame["valid_accuracy"] = valid_loss, valid_accuracy
    return frame[list(COLUMNS)]
