"""What a trained network computes: layer outputs, guided backpropagation ([SDBR14]), display helpers.

``layer_outputs`` walks a sequential network one layer at a time (chapter 04's feature maps).
``tumour_heat_map`` slides chapter 05's patch classifier over a larger image.
``guided_backprop`` computes; the display helpers (``standardize_and_clip``, ``channel_max``,
``normalize01``) turn its result into images; ``plotting.plot_guided_backprop`` draws them.

How the ReLUs are guided: a forward hook on every ``nn.ReLU`` module replaces the module's output
``y`` by ``_GuidedGate(y)``, which is the identity going forward and, going backward, keeps only
the positive part of the incoming gradient where ``y > 0``. Together with ReLU's own backward
(which multiplies by ``[y > 0]``) the gradient that reaches the ReLU's input is
``clamp(dL/dy, min=0) * [y > 0]``: the guided-backprop rule. Working on the *output* makes two
cases that break module backward hooks harmless:

- in-place ReLU (torchvision's ResNet): the input was overwritten, but the output is what we need;
- one ReLU module called several times in a forward (torchvision's ``BasicBlock.relu``): the hook
  runs at every call and each call gets its own gate in the autograd graph.

Only modules are guided (as in Captum): a ``torch.nn.functional.relu`` call inside a
``forward`` is invisible to hooks and would keep its plain gradient, so ``guided_gates`` counts
the gates that fired and raises ValueError when none did (a model that declares ``nn.ReLU``
modules but calls ``F.relu`` would otherwise return the plain gradient without a word).

``activations``: the gate reads "active" as "output > 0", exact for ReLU. For an activation that
is positive exactly where its input is (SELU, ELU, LeakyReLU) the result is the guided rule
times the activation's slope above zero (for SELU a constant, its scale, about 1.05), and its
negative part counts as inactive, as ReLU's flat part does.

``guided_backprop`` and ``plain_gradient`` run the model in eval mode (each submodule's own mode
restored afterwards, so BatchNorm statistics do not change), remove their hooks even when the
forward raises, take the gradient with ``torch.autograd.grad`` with respect to the input only
(no parameter's ``.grad`` changes) and refuse to run under ``torch.inference_mode``, where no
autograd graph exists, rather than silently leaving it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

from nbhelpers import checks
from nbhelpers.data.patches import CROP
from nbhelpers.train.modes import eval_context


class _GuidedGate(torch.autograd.Function):
    """Identity on a ReLU output y; backward: clamp(grad, min=0) * [y > 0]."""

    @staticmethod
    def forward(ctx, relu_output: torch.Tensor) -> torch.Tensor:  # type: ignore
        ctx.save_for_backward(relu_output > 0)
        # A fresh tensor: later in-place ops on it cannot invalidate what autograd saved
        return relu_output.clone()

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:  # type: ignore
        (positive,) = ctx.saved_tensors
        return grad_output.clamp(min=0) * positive


def guided_backprop(
    model: nn.Module,
    x: torch.Tensor,
    target: int | Sequence[int] | torch.Tensor | None = None,
    activations: tuple[type[nn.Module], ...] = (nn.ReLU,),
) -> torch.Tensor:
    """The guided-backpropagation gradient d logit[target] / dx, one map per sample.

    Args:
        model: a classifier (B, ...) -> (B, K) logits with modules of ``activations``.
        x: (B, C, H, W) floating inputs on the model's device (any (B, ...) works).
        target: the class per sample (an int, a (B,) tensor) or None for each argmax.
        activations: the module classes whose outputs are gated (see the API page).

    Returns:
        (B, C, H, W), shaped like ``x``: the raw guided gradient, detached.
    """
    checks.guided_backprop_arguments(model, x, activations)
    with guided_gates(model, activations):
        return plain_gradient(model, x, target)  # one backward pass through the gates


@contextmanager
def guided_gates(
    model: nn.Module, activations: tuple[type[nn.Module], ...]
) -> Iterator[None]:
    """For the body of a ``with``, every ``activations`` module's output passes through
    ``_GuidedGate``; ValueError if none of them ran (an ``F.relu`` call has no hook)."""
    modules = [module for module in model.modules() if isinstance(module, activations)]
    fired = []

    def gate(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        fired.append(module)
        return _GuidedGate.apply(output)

    handles = [module.register_forward_hook(gate) for module in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
    if not fired:
        raise ValueError(
            f"none of the {len(modules)} gated modules of {type(model).__name__} "
            "ran in the forward pass (F.relu calls cannot be hooked): the result "
            "would be the plain gradient"
        )


def plain_gradient(
    model: nn.Module,
    x: torch.Tensor,
    target: int | Sequence[int] | torch.Tensor | None = None,
) -> torch.Tensor:
    """The gradient d logit[target] / dx by autograd, in eval mode, one map per sample.

    Args and returns as ``guided_backprop`` (which is this with its gates hooked in): x (B, ...)
    floating, target an int, a (B,) tensor or None (each sample's argmax); returns the
    gradient shaped like ``x``, detached. Parameters' ``.grad`` are left alone.

    Raises:
        RuntimeError: called under ``torch.inference_mode``.
        ValueError: ``x`` not a floating (B, ...) tensor, logits not (B, num_classes), or a bad
            target.
    """
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            "gradients need autograd and cannot be taken under torch.inference_mode(); "
            "call this outside that block (torch.no_grad is fine: it re-enables gradients itself)"
        )
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a floating (B, ...) tensor, got {shape}")
    x_leaf = x.detach().clone().requires_grad_(True)
    with eval_context(model), torch.enable_grad():
        logits = model(x_leaf)
        if logits.dim() != 2 or logits.shape[0] != x.shape[0]:
            raise ValueError(
                f"expected (B={x.shape[0]}, num_classes) logits, got {tuple(logits.shape)}"
            )
        index = _target_index(target, logits)
        selected = logits.gather(
            1, index[:, None]
        ).sum()  # samples are independent in eval mode
        (gradient,) = torch.autograd.grad(selected, x_leaf)
    return gradient.detach()


def _target_index(
    target: int | Sequence[int] | torch.Tensor | None, logits: torch.Tensor
) -> torch.Tensor:
    """(B,) int64 class index on the logits' device."""
    batch, num_classes = logits.shape
    if target is None:
        return logits.detach().argmax(dim=1)
    if isinstance(target, bool):
        raise ValueError(
            f"target must be an int, a (B,) tensor or None, got {target!r}"
        )
    if isinstance(target, int):
        index = torch.full((batch,), target, dtype=torch.long)
    else:
        index = torch.as_tensor(target)
        if (
            index.is_floating_point()
            or index.dtype == torch.bool
            or index.shape not in ((batch,), ())
        ):
            raise ValueError(
                f"target must hold {batch} class indices, got {tuple(index.shape)} of {index.dtype}"
            )
        index = index.long().expand(batch)
    low, high = int(index.min()), int(index.max())
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"target {low if low < 0 else high} is outside [0, {num_classes})"
        )
    return index.to(logits.device)


def predict_proba(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class probabilities in eval mode without gradients: x (B, ...) -> (B, num_classes) softmax."""
    with eval_context(model), torch.no_grad():
        return F.softmax(model(x), dim=1)


def tumour_heat_map(
    model: nn.Module,
    slide: torch.Tensor,
    window: int = CROP,
    stride: int = 16,
    batch_size: int = 256,
) -> torch.Tensor:
    """p(tumour) of every ``window`` x ``window`` window of ``slide``, in eval mode.

    slide: (3, H, W) RGB in [0, 1] on the model's device. Window (i, j) starts at row
    i * stride and column j * stride; its probability speaks for the window's centre
    square (the rest of the window is context), so the map's cells are ``stride`` apart.
    Returns (rows, cols) float32, rows = (H - window) // stride + 1.
    """
    checks.heat_map_arguments(model, slide, window, stride, batch_size)
    tiles = slide.unfold(1, window, stride).unfold(2, window, stride)  # (3, r, c, w, w)
    rows, cols = tiles.shape[1:3]
    windows = tiles.permute(1, 2, 0, 3, 4).reshape(rows * cols, 3, window, window)
    with torch.inference_mode(), eval_context(model):
        logits = torch.cat([model(batch) for batch in windows.split(batch_size)])
    return F.softmax(logits.float(), dim=1)[:, 1].reshape(rows, cols)


def standardize_and_clip(
    g: torch.Tensor,
    min_val: float = 0.0,
    max_val: float = 1.0,
    saturation: float = 0.1,
    brightness: float = 0.5,
) -> torch.Tensor:
    """The lecture notebook's display scaling: standardise over the whole tensor, then
    ``clamp(z * saturation + brightness, min_val, max_val)``. Any shape in, same shape out (CPU).

    Pass one image's map at a time: mean and standard deviation (floored at 1e-7) are global.
    """
    if min_val > max_val:
        raise ValueError(f"min_val={min_val} is above max_val={max_val}")
    g = g.detach().cpu().float()
    std = max(float(g.std()), 1e-7) if g.numel() > 1 else 1e-7
    return ((g - g.mean()) / std * saturation + brightness).clamp(min_val, max_val)


def channel_max(g: torch.Tensor) -> torch.Tensor:
    """Grey map per image: the maximum over channels. (B, C, H, W) -> (B, H, W); (C, H, W) -> (H, W)."""
    if g.dim() not in (3, 4):
        raise ValueError(f"expected (C, H, W) or (B, C, H, W), got {tuple(g.shape)}")
    return g.amax(dim=-3)


def normalize01(x: torch.Tensor) -> torch.Tensor:
    """Map values linearly onto [0, 1] over the whole tensor (a constant tensor gives zeros)."""
    x = x.detach().float()
    low, high = x.min(), x.max()
    if high == low:
        return torch.zeros_like(x)
    return (x - low) / (high - low)


def layer_outputs(
    model: nn.Sequential, x: torch.Tensor
) -> list[tuple[str, torch.Tensor]]:
    """The output of every layer of a sequential ``model`` for one input, in eval mode.

    Args:
        model: an ``nn.Sequential`` such as ``mnist_cnn()``.
        x: one input with its batch dimension, e.g. (1, 1, 28, 28), on any device.

    Returns:
        One pair ``(layer class name, output without the batch dimension)`` per layer, on the
        CPU; for ``mnist_cnn()`` the shapes are (32, 28, 28), (32, 28, 28), (32, 14, 14), ...,
        (800,), ..., (10,).

    Raises:
        ValueError: ``model`` is not an ``nn.Sequential``, or ``x`` is not one input.
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError(
            f"layer_outputs walks an nn.Sequential, got {type(model).__name__}"
        )
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[0] != 1:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected one input with a batch dimension of 1, got {shape}")
    device = next(model.parameters()).device
    outputs = []
    with torch.inference_mode(), eval_context(model):
        h = x.to(device)
        for layer in model:
            h = layer(h)
            outputs.append((type(layer).__name__, h[0].cpu()))
    return outputs
