"""Chapter 03's small problem: noisy images of one bar, labelled by its orientation."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from nbhelpers import checks

ORIENTATIONS = ("horizontal", "vertical", "diagonal")


def bar_images(
    n: int, size: int = 12, noise: float = 0.6, seed: int = 0
) -> TensorDataset:
    """``n`` noisy images of one bright bar, labelled by the bar's orientation.

    Returns:
        A TensorDataset of X (n, 1, size, size) float32 (the bar's pixels 1, plus
        Gaussian noise of standard deviation ``noise``) and y (n,) int64: 0 horizontal,
        1 vertical, 2 diagonal (``ORIENTATIONS``). The same ``seed``, the same images.
    """
    checks.bar_images_arguments(n, size, noise, seed)
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    position = torch.randint(2, size - 2, (n, 1, 1), generator=g)
    rows = torch.arange(size).view(1, size, 1)
    cols = torch.arange(size).view(1, 1, size)
    horizontal = (rows == position).expand(n, size, size)
    vertical = (cols == position).expand(n, size, size)
    diagonal = cols - rows == position - size // 2
    shapes = torch.stack([horizontal, vertical, diagonal], dim=1)  # (n, 3, size, size)
    bar = shapes[torch.arange(n), labels].unsqueeze(1).float()  # (n, 1, size, size)
    X = noise * torch.randn(n, 1, size, size, generator=g) + bar
    return TensorDataset(X, labels)
