"""The demo photograph used by chapters 01, 02 and 06."""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from nbhelpers import storage
from nbhelpers.storage import DataSource

DEMO_IMAGE_NAME = "shorty.png"
EMBEDDED_FILE = "chelsea.jpg"
EMBEDDED_DETAIL = "Chelsea the cat, CC0, by Stefan van der Walt (from scikit-image), shipped with nbhelpers"
MAX_SIDE = 8192


@dataclass(frozen=True, eq=False)
class DemoImage:
    """The demo photograph and where it came from.

    Attributes:
        image: (1, 3, H, W) float32 RGB in [0, 1].
        source: ``shorty.png`` in the data folder or mirror, or the photograph shipped with the
            package (embedded).
    """

    image: torch.Tensor
    source: DataSource


def demo_image(size: tuple[int, int] | None = None) -> DemoImage:
    """The demo photograph as a (1, 3, H, W) float32 tensor in [0, 1], RGB, with its source.

    ``shorty.png`` from the data folder (or mirror) when present, else the photograph of a cat
    shipped with the package (``chelsea.jpg``, 451x300, CC0, the one scikit-image ships),
    which works offline.

    Args:
        size: optional (H, W) to resize to (antialiased bilinear), each in 1..8192.

    Raises:
        ValueError: ``size`` is not None or a pair of ints in 1..8192, or ``shorty.png`` cannot
            be decoded as an image (the message names the file).
    """
    _check_size(size)
    found = _find_demo_file()
    if found is not None:
        assert found.path is not None
        rgb = _decode_rgb(found.path.read_bytes(), str(found.path))
        source = found
    else:
        packaged = resources.files("nbhelpers.data").joinpath("files", EMBEDDED_FILE)
        rgb = _decode_rgb(
            packaged.read_bytes(), f"nbhelpers/data/files/{EMBEDDED_FILE}"
        )
        path = Path(str(packaged)) if isinstance(packaged, Path) else None
        source = DataSource(storage.EMBEDDED, EMBEDDED_DETAIL, path)
    # (1, 3, H, W)
    X = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
    if size is not None:
        X = torch.nn.functional.interpolate(
            X, size=tuple(size), mode="bilinear", antialias=True, align_corners=False
        )
        X = X.clamp_(0.0, 1.0)
    return DemoImage(X.contiguous(), source)


def _check_size(size: object) -> None:
    if size is None:
        return
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(
            isinstance(side, numbers.Integral) and not isinstance(side, bool)
            for side in size
        )
        or not all(1 <= side <= MAX_SIDE for side in size)
    ):
        raise ValueError(
            f"size must be None or (H, W), two ints in 1..{MAX_SIDE}, got {size!r}"
        )


def _find_demo_file() -> DataSource | None:
    """``shorty.png`` in the first of data folder and mirror holding an entry of that name."""
    for root, kind in storage.data_roots():
        path = root / DEMO_IMAGE_NAME
        if not os.path.lexists(path):
            continue
        if not path.exists():
            raise ValueError(
                f"the demo image {path} is a dangling symbolic link (to {os.readlink(path)})"
            )
        if not path.is_file():
            raise ValueError(f"the demo image {path} is not a file")
        return DataSource(kind, storage.relative_detail(path, root, kind), path)
    return None


def _decode_rgb(data: bytes, label: str) -> np.ndarray:
    """Encoded image bytes -> (H, W, 3) uint8 RGB (OpenCV decodes to BGR; converted here)."""
    import cv2  # torchvision's image decoding is deprecated since 0.29

    bgr = (
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    )
    if bgr is None:
        raise ValueError(f"OpenCV cannot decode the demo image {label}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
