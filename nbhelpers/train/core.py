"""The core of the training engine: training, validation and prediction on one screen.

``nbhelpers.train.Trainer`` is this class plus what long runs on accelerators need:
argument checks, mixed precision, several processes, CUDA graphs, metrics read in chunks,
a progress bar, checkpoints and exact resume. Chapter 3 shows the class whole; the
appendix shows what each addition changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.nn as nn

from nbhelpers.train.modes import eval_context

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class TrainerCore:
    """Trains a classifier on batches (x, y): x (B, ...), y (B,) class indices.

    ``train_log``: each step's loss and accuracy. ``valid_log``: each validation's step,
    loss and accuracy. The model trains in the modes it is in: layers put in eval mode
    (a frozen batch normalisation) stay so. Callbacks hear the four ``on_...`` events.
    """

    def __init__(
        self,
        model: nn.Module,
        optim: torch.optim.Optimizer | None,
        loss_fn: LossFn | None,
        scheduler: Any | None = None,
        callbacks: Iterable[Any] = (),
        device: torch.device | str = "cpu",
        verbose: bool = True,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.optim, self.loss_fn, self.scheduler = optim, loss_fn, scheduler
        self.callbacks, self.verbose = list(callbacks), verbose
        self.train_log: dict[str, list] = {"loss": [], "accuracy": []}
        self.valid_log: dict[str, list] = {"step": [], "loss": [], "accuracy": []}
        self.epoch = self.global_step = 0
        self.stop_reason: str | None = None

    def train_step(self, x: Any, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step on a batch; its loss and accuracy (0-dim tensors)."""
        preds = self.model(x)
        loss = self.loss_fn(preds, y)
        loss.backward()
        self.optim.step()
        self.optim.zero_grad()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.detach(), (preds.detach().argmax(dim=1) == y).float().mean()

    def run(
        self, epochs: int, train_loader: Iterable, valid_loader: Iterable | None = None
    ):
        """Train ``epochs`` more epochs, validating after each one."""
        self.stop_reason = None
        self.emit("on_train_begin")
        for _ in range(epochs):
            for x, y in self.epoch_batches(train_loader):
                loss, accuracy = self.train_step(x, y)
                self.global_step += 1
                self.log_step(loss, accuracy)
                self.emit("on_step_end")
                if self.stop_reason:
                    break
            self.end_epoch(valid_loader)
            if self.stop_reason:
                break
        self.emit("on_train_end")

    def log_step(self, loss: torch.Tensor, accuracy: torch.Tensor) -> None:
        """Keep one step's numbers (``.item()`` makes the host wait for the device)."""
        self.train_log["loss"].append(loss.item())
        self.train_log["accuracy"].append(accuracy.item())

    def end_epoch(self, valid_loader: Iterable | None) -> None:
        """Validate, log the result, count the epoch, tell the callbacks."""
        nan = {"loss": math.nan, "accuracy": math.nan}
        result = self.evaluate(valid_loader) if valid_loader is not None else nan
        self.valid_log["step"].append(self.global_step)
        self.valid_log["loss"].append(result["loss"])
        self.valid_log["accuracy"].append(result["accuracy"])
        self.epoch += 1
        if self.verbose:
            print(self.epoch_summary(), flush=True)
        self.emit("on_epoch_end")

    def evaluate(self, loader: Iterable) -> dict[str, float]:
        """Mean loss and accuracy over the examples of ``loader`` (not its batches)."""
        loss_sum, correct, count = 0.0, 0, 0
        with torch.inference_mode(), eval_context(self.model):
            for x, y in self.batches(loader):
                preds = self.model(x)
                loss_sum += self.loss_fn(preds, y).item() * len(y)
                correct += (preds.argmax(dim=1) == y).sum().item()
                count += len(y)
        return {"loss": loss_sum / count, "accuracy": correct / count}

    def __call__(self, x: Any) -> torch.Tensor:
        """The model on ``x`` as it is (training mode, autograd graph kept)."""
        return self.model(self.move(x))

    @torch.inference_mode()
    def predict(self, x: Any) -> torch.Tensor:
        """Outputs for one batch in eval mode, without a graph: (B, ...) -> (B, K)."""
        with eval_context(self.model):
            return self.model(self.move(x))

    @torch.inference_mode()
    def batch_predict(self, batches: Iterable) -> torch.Tensor:
        """``predict`` over batches (x, or (x, y) with y ignored), joined: (N, K)."""
        with eval_context(self.model):
            inputs = (b[0] if isinstance(b, tuple | list) else b for b in batches)
            return torch.cat([self.model(self.move(x)) for x in inputs])

    def batches(self, loader: Iterable) -> Iterator[tuple[Any, torch.Tensor]]:
        """The (x, y) batches of ``loader``, on the device."""
        for x, y in loader:
            yield self.move(x), self.move(y)

    def epoch_batches(self, loader: Iterable) -> Iterator[tuple[Any, torch.Tensor]]:
        """The batches of one training epoch."""
        return self.batches(loader)

    def move(self, x: Any) -> Any:
        """``x`` on the Trainer's device."""
        return x.to(self.device)

    def emit(self, event: str) -> None:
        """Call ``event`` (e.g. "on_step_end") on every callback."""
        for callback in self.callbacks:
            getattr(callback, event)(self)

    def request_stop(self, reason: str) -> None:
        """Stop ``run`` after the current step; for callbacks."""
        self.stop_reason = reason

    def epoch_summary(self) -> str:
        """One line: the epoch and its validation result."""
        loss, accuracy = self.valid_log["loss"][-1], self.valid_log["accuracy"][-1]
        return (
            f"epoch {self.epoch}: valid_loss {loss:.4f} valid_accuracy {accuracy:.4f}"
        )
