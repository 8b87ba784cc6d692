"""Freezing and counting parameters (used for the two phases of transfer learning)."""

from __future__ import annotations

import torch
import torch.nn as nn


def set_trainable(module: nn.Module, trainable: bool) -> nn.Module:
    """Set ``requires_grad`` of every parameter of ``module`` to ``trainable``; returns ``module``.

    Freezing does not touch train/eval mode: a frozen backbone's BatchNorm layers still update
    their running statistics in train mode (as in the lecture notebook). Put them in eval mode to stop that.
    """
    if not isinstance(trainable, bool):
        raise ValueError(f"trainable must be True or False, got {trainable!r}")
    for parameter in module.parameters():
        parameter.requires_grad_(trainable)
    return module


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``model`` (shared parameters counted once)."""
    return sum(
        p.numel() for p in model.parameters() if p.requires_grad or not trainable_only
    )


def batchnorm_statistics(
    module: nn.Module,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Copies of the running statistics of every batch-norm layer in ``module``.

    Returns:
        layer name -> (running_mean, running_var), each a (C,) float32 CPU tensor; layers
        that keep no running statistics (``track_running_stats=False``) are left out.
    """
    kinds = (nn.modules.batchnorm._BatchNorm,)
    return {
        name: (
            layer.running_mean.detach().float().cpu().clone(),
            layer.running_var.detach().float().cpu().clone(),
        )
        for name, layer in module.named_modules()
        if isinstance(layer, kinds) and layer.running_mean is not None
    }
