"""The demo photograph used by chapters 01, 02 and 06."""

from __future__ import annotations

import numpy as np
import torch

from nbhelpers.data.paths import EMBEDDED, find_data, record_source

DEMO_IMAGE_NAME = "shorty.png"


def demo_image(size: tuple[int, int] | None = None) -> torch.Tensor:
    """The demo photograph as a (1, 3, H, W) float32 tensor in [0, 1], RGB.

    ``shorty.png`` from the data folder (or mirror) when present, else scikit-image's bundled
    ``chelsea`` photograph (a cat, CC0), which works offline. ``demo_image.source`` afterwards
    tells which one was used (see ``nbhelpers.data.paths`` for this convention).

    Args:
        size: optional (H, W) to resize to (antialiased bilinear).
    """
    found = find_data(DEMO_IMAGE_NAME)
    if found is not None:
        path, source = found
        import cv2  # torchvision's image decoding is deprecated since 0.29

        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"OpenCV cannot read or decode the demo image {path}")
        X = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)  # (3, H, W) uint8
        record_source(demo_image, f"{source} ({path})")
    else:
        from skimage import data as skimage_data

        X = torch.from_numpy(np.ascontiguousarray(skimage_data.chelsea())).permute(2, 0, 1)
        record_source(demo_image, f"{EMBEDDED} (scikit-image chelsea)")
    X = X.unsqueeze(0).float() / 255.0
    if size is not None:
        X = torch.nn.functional.interpolate(X, size=size, mode="bilinear", antialias=True, align_corners=False)
        X = X.clamp(0.0, 1.0)
    return X


demo_image.source = None  # type: ignore[attr-defined]  # set by each call; see nbhelpers.data.paths
