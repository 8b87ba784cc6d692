"""The progress bar of the training loop: tqdm.auto (a widget in notebooks, text elsewhere).

Text bars follow tqdm's own settings (``TQDM_DISABLE=1`` hides them). Notebook bars ignore that
variable (``tqdm.notebook`` passes ``disable=False`` itself), so a chapter's preamble, which
reads the environment, turns them off with ``show_bars(False)``; nothing here reads it.
"""

from __future__ import annotations

from tqdm.auto import tqdm

# At most a few redraws per second: a notebook widget that redraws on every step costs more
# than a small model's training step.
MIN_REFRESH_SECONDS = 0.5
_SETTINGS = {"bars": True}


def show_bars(enabled: bool) -> None:
    """Show progress bars (the default) or none at all, in this process."""
    _SETTINGS["bars"] = enabled


def progress_bar(total: int | None, desc: str, show: bool) -> tqdm:
    """A tqdm bar over ``total`` steps; a disabled one when ``show`` is False or bars are off."""
    options = {} if show and _SETTINGS["bars"] else {"disable": True}
    return tqdm(
        total=total,
        desc=desc,
        mininterval=MIN_REFRESH_SECONDS,
        leave=False,
        dynamic_ncols=True,
        **options,
    )
