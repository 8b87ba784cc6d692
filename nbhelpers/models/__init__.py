"""The networks of the book and how their weights are obtained.

- ``bar_cnn()``: chapter 03's small network for the bar images.
- ``mnist_cnn()``: chapter 04's LeNet-style network (MNIST); ``LENET5_STAGES``: the published
  stages of LeNet-5 it is compared with.
- ``CharCNN``: chapter 07's character-level CNN (names); ``TextCNN``: several widths at once.
- ``histopathology_resnet18()``: chapter 05's ResNet18 backbone + head, as a ``BuiltModel(model,
  weights_source)``, its backbone starting with ``Normalize``; ``set_trainable``,
  ``count_parameters``, ``batchnorm_statistics`` for its two training phases.
- ``imagenet_classifier()``: a pretrained ImageNet ResNet18/AlexNet for chapter 06, as an
  ``ImageNetClassifier(model, categories, weights_source)``, or None without its weights.
- ``resolve_weights``: the cache / download / random-initialisation decision; the cached file is
  hash-checked and loaded with ``weights_only=True`` on every load (``NBHELPERS_OFFLINE`` forbids
  downloads).
"""

from .bars import bar_cnn
from .charcnn import CharCNN, TextCNN
from .mnist import LENET5_STAGES, mnist_cnn
from .parameters import batchnorm_statistics, count_parameters, set_trainable
from .pretrained import (
    WEIGHT_MODES,
    WEIGHTS_URLS,
    BuiltModel,
    ResolvedWeights,
    WeightsFileError,
    WeightsUnavailableError,
    build_network,
    cached_weights_path,
    imagenet_categories,
    resolve_weights,
    weights_cache_dir,
)
from .transfer import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageNetClassifier,
    Normalize,
    histopathology_head,
    histopathology_resnet18,
    imagenet_classifier,
    resnet18_backbone,
)

__all__ = [
    "bar_cnn",
    "batchnorm_statistics",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LENET5_STAGES",
    "WEIGHTS_URLS",
    "WEIGHT_MODES",
    "BuiltModel",
    "CharCNN",
    "TextCNN",
    "ImageNetClassifier",
    "Normalize",
    "ResolvedWeights",
    "WeightsFileError",
    "WeightsUnavailableError",
    "build_network",
    "cached_weights_path",
    "count_parameters",
    "histopathology_head",
    "histopathology_resnet18",
    "imagenet_categories",
    "imagenet_classifier",
    "mnist_cnn",
    "resnet18_backbone",
    "resolve_weights",
    "set_trainable",
    "weights_cache_dir",
]
