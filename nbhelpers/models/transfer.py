"""Pretrained ResNet18 models: the transfer-learning network of chapter 05 and an ImageNet classifier."""

from __future__ import annotations

import torch.nn as nn
from torchvision import models
from torchvision.models import AlexNet_Weights, ResNet18_Weights, WeightsEnum

from .pretrained import ResolvedWeights, resolve_weights

# The normalisation every torchvision ImageNet model expects (per RGB channel, on [0, 1] pixels).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_IMAGENET_ARCHS: dict[str, tuple[WeightsEnum, object]] = {
    "resnet18": (ResNet18_Weights.DEFAULT, models.resnet18),
    "alexnet": (AlexNet_Weights.DEFAULT, models.alexnet),
}


def resnet18_backbone(weights: str = "auto") -> nn.Sequential:
    """ResNet18 without its average pool and fc layer: ``(B, 3, H, W) -> (B, 512, H/32, W/32)``
    (rounded up; ``(B, 512, 2, 2)`` for 49x49 patches).

    ``weights``: "auto", "imagenet" or "none" (see ``resolve_weights``). The outcome is recorded
    in ``backbone.weights_source``.
    """
    resolved = resolve_weights(ResNet18_Weights.DEFAULT, weights)
    resnet = models.resnet18(weights=resolved.weights)
    backbone = nn.Sequential(*list(resnet.children())[:-2])
    backbone.weights_source = resolved.source
    return backbone


def histopathology_head(in_features: int = 512, num_hidden: int = 256, num_classes: int = 2) -> nn.Sequential:
    """The seed's classification head on a feature map: ``(B, in_features, h, w) -> (B, num_classes)``.

    Adaptive average pool, then two BatchNorm1d + Dropout(0.5) blocks around a hidden layer.
    In train mode the batch needs at least two samples (BatchNorm1d).
    """
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


def histopathology_resnet18(weights: str = "auto") -> nn.Sequential:
    """Chapter 05's transfer-learning model: ``nn.Sequential(backbone, head)``.

    ``model[0]`` is the ResNet18 backbone (freeze it with ``set_trainable(model[0], False)``),
    ``model[1]`` the seed's head. Shapes: ``(B, 3, H, W) -> (B, 2)`` logits, e.g. 49x49 patches.

    Args:
        weights: "auto" uses ``ResNet18_Weights.DEFAULT`` when torchvision's cache has them or a
            download succeeds (never with ``NBHELPERS_OFFLINE=1``), else random initialisation;
            "imagenet" requires them (``WeightsUnavailableError`` otherwise); "none" is random.

    The model's ``weights_source`` attribute says which happened, e.g.
    "imagenet (torchvision cache)" or "random initialisation (no pretrained weights: offline, ...)".
    """
    backbone = resnet18_backbone(weights)
    model = nn.Sequential(backbone, histopathology_head(in_features=512))
    model.weights_source = backbone.weights_source
    return model


def imagenet_classifier(weights: str = "auto", arch: str = "resnet18") -> nn.Module | None:
    """A torchvision ImageNet classifier with its pretrained weights, or None when they are unavailable.

    ``(B, 3, H, W)`` RGB images on [0, 1] normalised with ``IMAGENET_MEAN``/``IMAGENET_STD``
    (224x224 is the training size) ``-> (B, 1000)`` logits. Returned in eval mode, with
    ``model.weights_source`` and ``model.categories`` (the 1000 class names, for titles).

    Args:
        weights: "auto" (None when neither cached nor downloadable) or "imagenet" (raise instead).
        arch: "resnet18" (45 MB of weights) or "alexnet" (the seed's choice, 233 MB).

    Call ``resolve_weights(imagenet_weights(arch))`` to learn why None was returned.
    """
    if weights not in ("auto", "imagenet"):
        raise ValueError(f"weights must be 'auto' or 'imagenet' for an ImageNet classifier, got {weights!r}")
    wanted, builder = _arch(arch)
    resolved: ResolvedWeights = resolve_weights(wanted, weights)
    if resolved.weights is None:
        return None
    model = builder(weights=resolved.weights).eval()
    model.weights_source = resolved.source
    model.categories = list(resolved.weights.meta["categories"])
    return model


def imagenet_weights(arch: str = "resnet18") -> WeightsEnum:
    """The torchvision weights ``imagenet_classifier(arch=arch)`` loads."""
    return _arch(arch)[0]


def imagenet_categories(arch: str = "resnet18") -> list[str]:
    """The 1000 ImageNet class names, index -> name (from the weights' metadata; no download)."""
    return list(imagenet_weights(arch).meta["categories"])


def _arch(arch: str) -> tuple[WeightsEnum, object]:
    if arch not in _IMAGENET_ARCHS:
        raise ValueError(f"arch must be one of {tuple(_IMAGENET_ARCHS)}, got {arch!r}")
    return _IMAGENET_ARCHS[arch]
