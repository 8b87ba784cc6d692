"""The networks of the book and how their weights are obtained.

- ``mnist_cnn()``: chapter 04's LeNet-style network (MNIST).
- ``CharCNN``: chapter 07's character-level CNN (names).
- ``histopathology_resnet18()``: chapter 05's ResNet18 backbone + head; ``set_trainable``,
  ``count_parameters`` for its two training phases.
- ``imagenet_classifier()``: a pretrained ImageNet ResNet18/AlexNet for chapter 06, or None offline.
- ``resolve_weights``: the cache / download / random-initialisation decision (``NBHELPERS_OFFLINE=1``
  forbids downloads).
"""

from .charcnn import CharCNN
from .mnist import mnist_cnn
from .parameters import count_parameters, set_trainable
from .pretrained import (
    OFFLINE_ENV,
    ResolvedWeights,
    WeightsUnavailableError,
    cached_weights_path,
    offline,
    resolve_weights,
)
from .transfer import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    histopathology_head,
    histopathology_resnet18,
    imagenet_categories,
    imagenet_classifier,
    imagenet_weights,
    resnet18_backbone,
)

__all__ = [
    "OFFLINE_ENV",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CharCNN",
    "ResolvedWeights",
    "WeightsUnavailableError",
    "cached_weights_path",
    "count_parameters",
    "histopathology_head",
    "histopathology_resnet18",
    "imagenet_categories",
    "imagenet_classifier",
    "imagenet_weights",
    "mnist_cnn",
    "offline",
    "resnet18_backbone",
    "resolve_weights",
    "set_trainable",
]
