"""Pretrained networks: the transfer-learning ResNet18 of chapter 05 and an ImageNet classifier (chapter 06).

Each builder returns the network together with where its weights came from (``weights_source``),
as a frozen dataclass: nothing is recorded on the ``nn.Module``.

Chapter 05's backbone starts with the normalisation its weights were trained with (``Normalize``):
with ImageNet weights the per-channel mean and standard deviation of their enum's
preprocessing, with random initialisation mean 0 and standard deviation 1, the identity. Every
caller (training, evaluation, inference on a raw patch, guided backpropagation) hands the model
[0, 1] pixels, and input gradients are with respect to those pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
from torchvision.models import ResNet18_Weights

from nbhelpers import checks

from .pretrained import (
    DOWNLOAD_DEADLINE_S,
    BuiltModel,
    build_network,
    check_arch,
    check_weight_mode,
    imagenet_categories,
    resolve_weights,
)

# The normalisation every torchvision ImageNet model expects (per RGB channel, on [0, 1] pixels),
# read from the preprocessing the weights' enum carries: one source of truth.
_PRESET = ResNet18_Weights.IMAGENET1K_V1.transforms()
IMAGENET_MEAN: tuple[float, ...] = tuple(_PRESET.mean)
IMAGENET_STD: tuple[float, ...] = tuple(_PRESET.std)


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel: ``(B, C, H, W) -> (B, C, H, W)``.

    ``mean`` and ``std`` are buffers (saved in the state dict, moved with the module, never
    trained). ``Normalize((0, 0, 0), (1, 1, 1))`` is the identity, bit for bit.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        checks.normalisation(mean, std)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


@dataclass(frozen=True)
class ImageNetClassifier:
    """A pretrained ImageNet classifier and what its outputs mean.

    Attributes:
        model: ``(B, 3, H, W)`` RGB on [0, 1] normalised with ``IMAGENET_MEAN``/``IMAGENET_STD``
            (224x224 is the training size) ``-> (B, 1000)`` logits; in eval mode.
        categories: the 1000 class names, logit index -> name.
        weights_source: where the weights came from, e.g. "imagenet (torchvision cache)".
    """

    model: nn.Module
    categories: list[str]
    weights_source: str


def resnet18_backbone(
    weights: str = "auto", *, deadline: float = DOWNLOAD_DEADLINE_S
) -> BuiltModel:
    """ResNet18 without its average pool and fc layer, after the normalisation of its weights.

    ``model``: an ``nn.Sequential`` of 9 layers, ``Normalize`` then ResNet18's first 8,
    ``(B, 3, H, W) -> (B, 512, ceil(H/32), ceil(W/32))`` (``(B, 512, 2, 2)`` for 49x49
    patches), taking RGB pixels in [0, 1]. ``Normalize`` uses ``IMAGENET_MEAN`` and
    ``IMAGENET_STD`` with ImageNet weights and is the identity (mean 0, std 1) with random
    initialisation, where no ImageNet statistics apply; the structure, and so the state dict's
    names, are the same either way. ``weights``: "auto", "imagenet" or "none", and
    ``deadline`` for a download, as in ``resolve_weights``, whose errors it raises.
    """
    resolved = resolve_weights(weights, "resnet18", deadline=deadline)
    resnet = build_network("resnet18", resolved)
    if resolved.pretrained:
        normalize = Normalize(IMAGENET_MEAN, IMAGENET_STD)
    else:
        normalize = Normalize((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    layers = [normalize, *list(resnet.children())[:-2]]
    return BuiltModel(nn.Sequential(*layers), resolved.source)


def histopathology_head(
    in_features: int = 512, num_hidden: int = 256, num_classes: int = 2
) -> nn.Sequential:
    """The lecture notebook's head on a feature map: (B, in_features, h, w) -> (B,
    num_classes). Average pool, then BatchNorm1d and Dropout(0.5) before each of two
    dense layers; in train mode a batch needs two samples or more (BatchNorm1d).
    """
    checks.positive_ints(
        in_features=in_features, num_hidden=num_hidden, num_classes=num_classes
    )
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.BatchNorm1d(in_features),
        nn.Dropout(0.5),
        nn.Linear(in_features, num_hidden),
        nn.ReLU(),
        nn.BatchNorm1d(num_hidden),
        nn.Dropout(0.5),
        nn.Linear(num_hidden, num_classes),
    )


def histopathology_resnet18(
    weights: str = "auto", *, deadline: float = DOWNLOAD_DEADLINE_S
) -> BuiltModel:
    """Chapter 05's transfer-learning model and where its backbone's weights came from.

    ``model`` is ``nn.Sequential(backbone, head)``: ``model[0]`` the ResNet18 backbone (freeze it
    with ``set_trainable(model[0], False)``), whose first layer normalises the input as its
    weights expect (see ``resnet18_backbone``), ``model[1]`` the lecture notebook's head. Shapes:
    ``(B, 3, H, W)`` RGB in [0, 1] ``-> (B, 2)`` logits, e.g. 49x49 patches.

    Args:
        weights: "auto" uses ImageNet's weights when torchvision's cache holds them intact or a
            download succeeds (never with ``NBHELPERS_OFFLINE`` set), else random
            initialisation; "imagenet" requires them; "none" is random. See ``resolve_weights``.
        deadline: seconds a download may take in all.

    ``weights_source`` says which happened, e.g. "imagenet (torchvision cache)" or
    "random initialisation (no pretrained weights: offline, ...)".

    Raises:
        TypeError, ValueError, WeightsUnavailableError, WeightsFileError: as ``resolve_weights``.
    """
    backbone = resnet18_backbone(weights, deadline=deadline)
    return BuiltModel(
        nn.Sequential(backbone.model, histopathology_head(in_features=512)),
        backbone.weights_source,
    )


def imagenet_classifier(
    weights: str = "auto",
    arch: str = "resnet18",
    *,
    deadline: float = DOWNLOAD_DEADLINE_S,
) -> ImageNetClassifier | None:
    """A torchvision ImageNet classifier with its pretrained weights, or None when they are unavailable.

    Args:
        weights: "auto" (None when the weights are neither cached intact nor downloadable) or
            "imagenet" (raise instead).
        arch: "resnet18" (45 MB of weights) or "alexnet" (the lecture notebook's choice, 233 MB).
        deadline: seconds a download may take in all.

    Returns:
        ``ImageNetClassifier(model, categories, weights_source)``, ``model`` in eval mode:
        ``(B, 3, H, W) -> (B, 1000)`` logits. ``resolve_weights(arch=arch).source`` says why None
        was returned.

    Raises:
        TypeError, ValueError: a bad ``weights`` (also "none": a classifier needs its weights) or ``arch``.
        WeightsUnavailableError, WeightsFileError: ``weights="imagenet"``, as ``resolve_weights``.
    """
    check_weight_mode(weights, allowed=("auto", "imagenet"))
    check_arch(arch)
    resolved = resolve_weights(weights, arch, deadline=deadline)
    if not resolved.pretrained:
        return None
    return ImageNetClassifier(
        build_network(arch, resolved).eval(), imagenet_categories(arch), resolved.source
    )
