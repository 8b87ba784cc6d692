"""Where data lives, and how a loader says where its data came from.

Data folders, read from the environment each time a function is called (not at import), so a
notebook or a test may set the variables after importing nbhelpers:

- ``NBHELPERS_DATA``: the writable data folder (default ``./data``);
- ``NBHELPERS_DATA_MIRROR``: a read-only folder in the same layout, tried second;
- ``NBHELPERS_OFFLINE``: when "1" (or "true"/"yes"), ``download`` refuses to touch the network,
  so loaders go straight from the folders to their embedded default.

Source recording, the one convention of this package: every loader function ``f`` sets
``f.source`` after each call to a short string that starts with one of the labels below and says
what was used, e.g. ``"mirror (/work/shared/data/MNIST)"`` or
``"embedded (scikit-learn digits, ...)"``. Print it in the banner:
``print(run_banner(load_names.source))``. Datasets additionally carry their own ``.source``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOCAL = "local"
MIRROR = "mirror"
DOWNLOAD = "download"
EMBEDDED = "embedded"
SOURCE_LABELS = (LOCAL, MIRROR, DOWNLOAD, EMBEDDED)

_TRUE_WORDS = ("1", "true", "yes", "on")


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


def offline() -> bool:
    """True when ``NBHELPERS_OFFLINE`` asks that nothing be downloaded."""
    return os.environ.get("NBHELPERS_OFFLINE", "").strip().lower() in _TRUE_WORDS


def data_roots() -> list[tuple[Path, str]]:
    """The folders to search, in order, with their source labels: data folder, then mirror."""
    roots = [(data_dir(), LOCAL)]
    mirror = mirror_dir()
    if mirror is not None:
        roots.append((mirror, MIRROR))
    return roots


def find_data(relative: str | Path) -> tuple[Path, str] | None:
    """The first of data folder and mirror holding ``relative``, with its source label.

    Returns:
        ``(path, "local")``, ``(path, "mirror")`` or ``None`` when neither has it.
    """
    for root, source in data_roots():
        if (root / relative).exists():
            return root / relative, source
    return None


def record_source(loader: Callable[..., Any], source: str) -> str:
    """Store ``source`` as ``loader.source`` (see the module docstring) and return it."""
    if source.split(" ", 1)[0] not in SOURCE_LABELS:
        raise ValueError(f"a source must start with one of {SOURCE_LABELS}, got {source!r}")
    loader.source = source  # type: ignore[attr-defined]
    return source
