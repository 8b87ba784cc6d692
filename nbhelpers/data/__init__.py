"""Data for the chapters, found in this order: data folder, mirror, download, embedded default.

Every loader returns its data together with where it came from, a ``nbhelpers.storage.DataSource``
(kind "local", "mirror", "download" or "embedded", and a detail without absolute paths):
``load_mnist().source``, ``load_names().source``, ``demo_image().source``,
``find_kaggle_patches()`` and ``synthetic_patches(n)`` (a ``PatchFolder`` with ``.source``).
Nothing is recorded on functions or modules. See ``nbhelpers.storage`` for the environment
variables (``NBHELPERS_DATA``, ``NBHELPERS_DATA_MIRROR``, ``NBHELPERS_OFFLINE``).

Names are exported lazily (PEP 562), so that ``from nbhelpers.data import demo_image`` does not
pay for pandas and torchvision. No exported name is also the name of a submodule: importing a
submodule sets the package attribute of that name, which would then shadow the export (a test
checks this for every export).
"""

from __future__ import annotations

import importlib
from typing import Any

# Module -> the public names it exports through ``nbhelpers.data``.
_EXPORTS = {
    "nbhelpers.data.bars": ("ORIENTATIONS", "bar_images"),
    "nbhelpers.data.histopathology": (
        "HistopathologicDataset",
        "PatchFolder",
        "find_kaggle_patches",
        "infer_transform",
        "load_histopathology_labels",
        "read_patch",
        "synthetic_patches",
        "train_transform",
    ),
    "nbhelpers.data.images": ("DemoImage", "demo_image"),
    "nbhelpers.data.loaders": ("DeviceBatches",),
    "nbhelpers.data.mnist": ("MNISTDataset", "embedded_digits", "load_mnist"),
    "nbhelpers.data.pcam": (
        "PcamFolder",
        "download_pcam",
        "find_pcam",
        "pcam_patches",
        "resolve_pcam",
    ),
    "nbhelpers.data.names": (
        "GENDERS",
        "NamesDataset",
        "NamesTable",
        "embedded_names",
        "load_names",
    ),
    "nbhelpers.data.tokens": ("CHARS", "MAX_LEN", "decode", "encode", "normalize_name"),
    "nbhelpers.data.synthetic_histopathology": (
        "SyntheticPatch",
        "SyntheticSlide",
        "make_synthetic_histopathology",
        "synthetic_patch",
        "synthetic_slide",
        "window_labels",
    ),
    # Where every loader's provenance and downloads come from, for convenience.
    "nbhelpers.storage": ("DataSource", "DownloadError", "download"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'nbhelpers.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))


__all__ = sorted(_MODULE_OF)
