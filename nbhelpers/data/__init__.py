"""Data for the chapters, found in this order: data folder, mirror, download, embedded default.

Every loader function records where its data came from in its ``source`` attribute after each
call (``load_names.source``, ``histopathology_root.source``, ...); datasets carry ``.source``
too. See ``nbhelpers.data.paths`` for the environment variables and this convention.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> submodule. Submodules are imported on first use (PEP 562), so that
# ``from nbhelpers.data import demo_image`` does not pay for pandas, OpenCV and torchvision.
_EXPORTS = {
    "download": ("DownloadError", "download"),
    "histopathology": (
        "HistopathologicDataset",
        "histopathology_root",
        "infer_transform",
        "load_histopathology_labels",
        "read_patch",
        "train_transform",
    ),
    "images": ("demo_image",),
    "loaders": ("DeviceBatches",),
    "mnist": ("MNISTDataset", "embedded_digits", "load_mnist"),
    "names": ("GENDERS", "NamesDataset", "embedded_names", "load_names"),
    "tokens": ("CHARS", "MAX_LEN"),
    "paths": ("DOWNLOAD", "EMBEDDED", "LOCAL", "MIRROR", "data_dir", "find_data", "mirror_dir", "offline"),
    "synthetic_histopathology": ("SyntheticPatch", "make_synthetic_histopathology", "synthetic_patch"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'nbhelpers.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"nbhelpers.data.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))


__all__ = [
    "CHARS",
    "DOWNLOAD",
    "DeviceBatches",
    "DownloadError",
    "EMBEDDED",
    "GENDERS",
    "HistopathologicDataset",
    "LOCAL",
    "MAX_LEN",
    "MIRROR",
    "MNISTDataset",
    "NamesDataset",
    "SyntheticPatch",
    "data_dir",
    "demo_image",
    "download",
    "embedded_digits",
    "embedded_names",
    "find_data",
    "histopathology_root",
    "infer_transform",
    "load_histopathology_labels",
    "load_mnist",
    "load_names",
    "make_synthetic_histopathology",
    "mirror_dir",
    "offline",
    "read_patch",
    "synthetic_patch",
    "train_transform",
]
