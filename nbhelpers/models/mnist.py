"""The LeNet-style network of chapter 04 (MNIST)."""

from __future__ import annotations

import torch.nn as nn


def mnist_cnn() -> nn.Sequential:
    """Two convolution blocks and an MLP: (B, 1, 28, 28) -> (B, 10) logits, 233,578
    parameters; a flat ``nn.Sequential`` so that figures can walk ``model[k]``:

    ===  =======================================  ===============
    k    layer                                    output
    ===  =======================================  ===============
    0-2  Conv2d(1, 32, 3, padding=1), SELU, pool  (B, 32, 14, 14)
    3-5  Conv2d(32, 32, 5), SELU, pool            (B, 32, 5, 5)
    6    Flatten                                  (B, 800)
    7-9  Linear(800, 256), SELU, Dropout(0.5)     (B, 256)
    10   Linear(256, 10)                          (B, 10)
    ===  =======================================  ===============
    """
    return nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=3, padding=1),
        nn.SELU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(32, 32, kernel_size=5, padding=0),
        nn.SELU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(32 * 5 * 5, 256),
        nn.SELU(),
        nn.Dropout(0.5),
        nn.Linear(256, 10),
    )
