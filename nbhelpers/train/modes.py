"""Train/eval mode switching that puts every submodule back exactly as it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch.nn as nn


@contextmanager
def eval_context(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` and every submodule in eval mode for the body of a ``with`` block.

    On exit, also when the body raises, each submodule gets back its *own* previous
    mode: a model whose BatchNorm layers were deliberately frozen in eval mode while the
    rest trains keeps them frozen, which restoring only the top-level ``model.training``
    flag would undo.
    """
    previous = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, was_training in previous:
            module.training = was_training
