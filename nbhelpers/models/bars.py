"""Chapter 03's network for the bar images: two small convolution blocks and a linear layer."""

from __future__ import annotations

import torch.nn as nn


def bar_cnn() -> nn.Sequential:
    """(B, 1, H, W) -> (B, 3) logits for the three bar orientations (any H, W >= 2).

    A 3x3 convolution with batch normalisation, ReLU and 2x2 max-pooling, a second
    3x3 convolution and ReLU, a global max-pool (the bar may be anywhere), dropout and a
    linear layer: 1,315 parameters.
    """
    return nn.Sequential(
        nn.Conv2d(1, 8, kernel_size=3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(16, 3),
    )
