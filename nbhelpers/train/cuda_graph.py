"""An opt-in training step captured once in a CUDA graph and replayed for every batch.

Follows the "whole network capture" recipe of PyTorch's CUDA semantics notes: warm up on a side
stream, zero the gradients with ``set_to_none=True``, capture forward, loss, backward and the
optimizer step in ``torch.cuda.graph``, then for each batch copy it into static input tensors and
replay. Replaying launches the whole step as one graph, so the per-kernel launch cost of a small
model disappears.

Requirements (checked by ``check_cuda_graph_support`` or at the first step):
- a CUDA device, one process (no DDP), precision "32" or "bf16" (GradScaler needs host syncs);
- an optimizer built with ``capturable=True`` (e.g. ``torch.optim.AdamW(..., capturable=True)``),
  so that its step counter lives on the GPU;
- static shapes: every batch has the shape and dtype of the first (use ``drop_last=True``);
- no host synchronisation in the model or loss, no data-dependent control flow;
- a scheduler may only change hyperparameters stored as tensors (e.g. ``lr=torch.tensor(1e-3)``):
  a Python float is baked into the captured kernels, so a change would be silently ignored. The
  Trainer raises ValueError when a scheduler changes such a value (OneCycleLR's momentum
  cycling, for instance; pass ``cycle_momentum=False``).

The warm-up iterations really update the weights; the step restores the model's parameters and
buffers and the optimizer state to their values before warm-up, so that training with the graph
starts from the same point as training without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn as nn

from nbhelpers.train.metrics import step_pair

WARMUP_STEPS = 3


def check_cuda_graph_support(
    device: torch.device,
    optim: torch.optim.Optimizer | None,
    precision: str,
    distributed: bool,
) -> None:
    """Raise ValueError naming the first requirement of ``cuda_graph=True`` that is not met."""
    if device.type != "cuda":
        raise ValueError(f"cuda_graph=True needs a CUDA device, got {device}")
    if optim is None:
        raise ValueError("cuda_graph=True needs an optimizer")
    if not all(group.get("capturable", False) for group in optim.param_groups):
        raise ValueError(
            f"cuda_graph=True needs an optimizer built with capturable=True, got {type(optim).__name__} "
            "without it (e.g. torch.optim.AdamW(params, lr=..., capturable=True))"
        )
    if precision == "16":
        raise ValueError(
            "cuda_graph=True does not support precision='16' (GradScaler syncs with the host)"
        )
    if distributed:
        raise ValueError("cuda_graph=True is not supported in a distributed (DDP) run")


def fixed_hyperparameters(optim: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """The hyperparameters of each parameter group that a captured graph holds as constants."""
    return [
        {
            key: value
            for key, value in group.items()
            if key != "params" and not isinstance(value, torch.Tensor)
        }
        for group in optim.param_groups
    ]


class CapturedTrainStep:
    """Forward, loss, backward, optional clipping and optimizer step as one CUDA graph.

    Args:
        model: the module to train, on the CUDA device.
        optim: an optimizer with ``capturable=True``.
        loss_fn: ``loss_fn(preds, y)`` -> 0-dim loss.
        autocast: returns the (non-caching) autocast context of the precision.
        params: the parameters to clip; grad_clip_norm: max total norm or None.
    """

    def __init__(
        self,
        model: nn.Module,
        optim: torch.optim.Optimizer,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        autocast: Callable[[], AbstractContextManager[object]],
        params: Iterable[torch.Tensor],
        grad_clip_norm: float | None,
    ) -> None:
        self.model, self.optim, self.loss_fn, self.autocast = (
            model,
            optim,
            loss_fn,
            autocast,
        )
        self.params = list(params)
        self.grad_clip_norm = grad_clip_norm
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_x: torch.Tensor | None = None
        self.static_y: torch.Tensor | None = None
        self.static_pair: torch.Tensor | None = None
        self.captured_hyperparameters: list[dict[str, Any]] = []

    def _body(self) -> torch.Tensor:
        with self.autocast():
            preds = self.model(self.static_x)
            loss = self.loss_fn(preds, self.static_y)
        loss.backward()
        if self.grad_clip_norm is not None:
            nn.utils.clip_grad_norm_(self.params, self.grad_clip_norm, foreach=True)
        self.optim.step()
        accu = (preds.detach().argmax(dim=1) == self.static_y).float().mean()
        return step_pair(loss, accu)

    def _capture(self, x: torch.Tensor, y: torch.Tensor) -> None:
        device = next(self.model.parameters()).device
        self.static_x = torch.empty(x.shape, dtype=x.dtype, device=device)
        self.static_y = torch.empty(y.shape, dtype=y.dtype, device=device)
        self.static_x.copy_(x)
        self.static_y.copy_(y)
        model_before = {
            key: value.detach().clone()
            for key, value in self.model.state_dict().items()
        }
        optim_before = {
            id(p): {
                key: value.clone()
                for key, value in state.items()
                if isinstance(value, torch.Tensor)
            }
            for p, state in self.optim.state.items()
        }

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self.optim.zero_grad(set_to_none=True)
                self._body()
        torch.cuda.current_stream().wait_stream(side)

        # Gradients must be None at capture: backward then allocates them from the graph's
        # private pool, and every replay refills those same tensors.
        self.optim.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.static_pair = self._body()

        # Capture records kernels without running them, so the weights now hold the warm-up's
        # updates: put back the pre-warm-up values in place (the graph holds these addresses).
        with torch.no_grad():
            self.model.load_state_dict(model_before)
            for p, state in self.optim.state.items():
                saved = optim_before.get(id(p), {})
                for key, value in state.items():
                    if isinstance(value, torch.Tensor):
                        if key in saved:
                            value.copy_(saved[key])
                        else:
                            value.zero_()  # state created by the warm-up: a fresh optimizer's zeros
        self.graph = graph
        self.captured_hyperparameters = fixed_hyperparameters(self.optim)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One training step on (x, y); returns the (2,) tensor [loss, accuracy] on the device.

        Raises:
            ValueError: x or y differs in shape or dtype from the first batch.
        """
        if self.graph is None:
            self._capture(x, y)
        else:
            assert self.static_x is not None and self.static_y is not None
            for name, new, static in (("x", x, self.static_x), ("y", y, self.static_y)):
                if new.shape != static.shape or new.dtype != static.dtype:
                    raise ValueError(
                        f"cuda_graph=True needs static shapes: batch {name} has {tuple(new.shape)} {new.dtype}, "
                        f"the captured step {tuple(static.shape)} {static.dtype} (use drop_last=True)"
                    )
            self.static_x.copy_(x, non_blocking=True)
            self.static_y.copy_(y, non_blocking=True)
        assert self.graph is not None and self.static_pair is not None
        self.graph.replay()
        return self.static_pair.clone()

    def check_hyperparameters(self) -> None:
        """Raise ValueError if a constant baked into the graph was changed (e.g. by a scheduler)."""
        if not self.captured_hyperparameters:
            return
        for index, (now, then) in enumerate(
            zip(fixed_hyperparameters(self.optim), self.captured_hyperparameters)
        ):
            for key, value in now.items():
                if then.get(key) != value:
                    raise ValueError(
                        f"cuda_graph=True: param_groups[{index}][{key!r}] changed from {then.get(key)!r} to "
                        f"{value!r}, but the captured graph uses the old value; store it as a tensor or keep "
                        "it fixed (OneCycleLR: cycle_momentum=False and a tensor lr)"
                    )
