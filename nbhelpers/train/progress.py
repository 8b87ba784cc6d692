"""The progress bar of the training loop: tqdm.auto (a widget in notebooks, text elsewhere)."""

from __future__ import annotations

import os

from tqdm.auto import tqdm

# At most a few redraws per second: a notebook widget that redraws on every step costs more
# than a small model's training step.
MIN_REFRESH_SECONDS = 0.5


def bars_disabled_by_environment() -> bool:
    """True when ``TQDM_DISABLE`` is set to a true value (1, true, yes), e.g. in CI or a book build."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true", "yes")


def progress_bar(total: int | None, desc: str, show: bool) -> tqdm:
    """A tqdm bar over ``total`` steps, or a disabled one when ``show`` is False or ``TQDM_DISABLE`` is set.

    The environment variable is checked here rather than left to tqdm: ``tqdm.notebook`` passes
    ``disable=False`` explicitly, which overrides tqdm's own reading of ``TQDM_DISABLE``.
    """
    disable = not show or bars_disabled_by_environment()
    return tqdm(
        total=total,
        desc=desc,
        mininterval=MIN_REFRESH_SECONDS,
        leave=False,
        dynamic_ncols=True,
        disable=disable,
    )
