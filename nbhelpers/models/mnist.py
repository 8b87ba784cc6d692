"""The LeNet-style network of chapter 04 (MNIST), and the stages of LeNet-5 to compare."""

from __future__ import annotations

import torch.nn as nn

# LeNet-5's stages, (label, output shape), as published: LeCun, Bottou, Bengio and Haffner
# (1998), "Gradient-based learning applied to document recognition", Fig. 2 and Sec. II-B.
# C = convolution (5x5, no padding), S = subsampling (2x2 averages with a trainable
# coefficient and bias each), F6 = fully connected; the output has 10 Euclidean RBF units.
# C5 is a 5x5 convolution over 16@5x5 maps, so its 120 maps are 1x1: written as (120,).
LENET5_STAGES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("input", (1, 32, 32)),
    ("C1: conv 5x5", (6, 28, 28)),
    ("S2: subsample 2x2", (6, 14, 14)),
    ("C3: conv 5x5", (16, 10, 10)),
    ("S4: subsample 2x2", (16, 5, 5)),
    ("C5: conv 5x5", (120,)),
    ("F6: full", (84,)),
    ("output: RBF", (10,)),
)


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
