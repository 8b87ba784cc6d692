"""Where data lives: the user's data folder, then a read-only mirror.

Both are read from the environment each time a function is called (not at import), so a notebook
or a test may set ``NBHELPERS_DATA`` / ``NBHELPERS_DATA_MIRROR`` after importing nbhelpers.
"""

from __future__ import annotations

import os
from pathlib import Path

LOCAL = "local"
MIRROR = "mirror"
DOWNLOAD = "download"
EMBEDDED = "embedded"


def data_dir(create: bool = False) -> Path:
    """The writable data folder: ``NBHELPERS_DATA``, default ``./data`` (absolute path)."""
    path = Path(os.environ.get("NBHELPERS_DATA") or "data").expanduser().resolve()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def mirror_dir() -> Path | None:
    """The read-only mirror ``NBHELPERS_DATA_MIRROR`` (same layout as the data folder), if set.

    Raises:
        FileNotFoundError: the variable is set but names no existing folder.
    """
    value = os.environ.get("NBHELPERS_DATA_MIRROR")
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"NBHELPERS_DATA_MIRROR={value!r} is not an existing folder")
    return path


def find_data(relative: str | Path) -> tuple[Path, str] | None:
    """The first of data folder and mirror holding ``relative``, with its source label.

    Returns:
        ``(path, "local")``, ``(path, "mirror")`` or ``None`` when neither has it.
    """
    for root, source in ((data_dir(), LOCAL), (mirror_dir(), MIRROR)):
        if root is not None and (root / relative).exists():
            return root / relative, source
    return None
