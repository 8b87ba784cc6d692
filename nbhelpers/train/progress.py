"""The progress bar of the training loop: tqdm.auto (a widget in notebooks, text elsewhere)."""

from __future__ import annotations

from tqdm.auto import tqdm

# At most a few redraws per second: a notebook widget that redraws on every step costs more
# than a small model's training step.
MIN_REFRESH_SECONDS = 0.5


def progress_bar(total: int | None, desc: str, show: bool) -> tqdm:
    """A tqdm bar over ``total`` steps, or a disabled one when ``show`` is False.

    ``disable`` is passed only to switch the bar off: left unset, tqdm's own default applies, and
    tqdm reads that default from the environment variable ``TQDM_DISABLE`` (set it to 1 to
    silence every bar, e.g. in CI).
    """
    options = {} if show else {"disable": True}
    return tqdm(total=total, desc=desc, mininterval=MIN_REFRESH_SECONDS, leave=False, dynamic_ncols=True, **options)
