"""Callbacks: code the Trainer calls at fixed points of training, and four ready-made ones.

Events (fastai's idea of named hook points, without the magic): ``on_train_begin`` and
``on_train_end`` once per ``run``, ``on_step_end`` after every optimizer (and scheduler) step,
``on_epoch_end`` after each epoch's validation. Each receives the Trainer. A callback stops
training with ``trainer.request_stop(reason)``; the loop honours it after the current step
(``on_step_end``) or the current epoch (``on_epoch_end``).
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

import torch

from nbhelpers import checks

if TYPE_CHECKING:
    from nbhelpers.train.trainer import Trainer


class Callback:
    """Base class: override the events you need; the others do nothing."""

    def on_train_begin(self, trainer: Trainer) -> None:
        """Before the first step of ``run``."""

    def on_step_end(self, trainer: Trainer) -> None:
        """After each optimizer step and scheduler step.

        ``trainer.train_log`` may lag up to ``trainer.log_every`` steps behind here (the full
        ``Trainer`` copies per-step metrics to the host in chunks); ``trainer.global_step``
        is always current.
        """

    def on_epoch_end(self, trainer: Trainer) -> None:
        """After each epoch's validation; ``train_log`` and ``valid_log`` are complete here."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After the last epoch of ``run``, or after a requested stop."""


class SchedulerStatsRecorder(Callback):
    """Records the learning rate and momentum of the first parameter group after every step.

    Momentum is ``betas[0]`` for the Adam family and ``momentum`` for SGD (NaN when the optimizer
    has neither). Values are read after the scheduler has stepped, as in the lecture notebook: entry i is the
    rate that step i + 1 will use.

    Args:
        optim: the optimizer to watch; None means the Trainer's optimizer.
    """

    def __init__(self, optim: torch.optim.Optimizer | None = None) -> None:
        if optim is not None and not isinstance(optim, torch.optim.Optimizer):
            raise ValueError(
                f"optim must be a torch.optim.Optimizer or None, got {optim!r}"
            )
        self.optim = optim
        self.lr: list[float] = []
        self.momentum: list[float] = []

    def on_train_begin(self, trainer: Trainer) -> None:
        if self.optim is None:
            if trainer.optim is None:
                raise ValueError(
                    "SchedulerStatsRecorder needs an optimizer; the Trainer has none"
                )
            self.optim = trainer.optim

    def on_step_end(self, trainer: Trainer) -> None:
        assert self.optim is not None
        group = self.optim.param_groups[0]
        self.lr.append(_as_float(group["lr"]))
        if "betas" in group:
            self.momentum.append(_as_float(group["betas"][0]))
        else:
            self.momentum.append(_as_float(group.get("momentum", math.nan)))


def _as_float(value: float | torch.Tensor) -> float:
    # A tensor learning rate (capturable optimizers) lives on the CPU unless the user moved it.
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)


class LRRangeTest(Callback):
    """The learning-rate range test (Smith, 2017): one short run at a growing rate.

    Step i (from 0) trains at ``start * (end / start) ** (i / (steps - 1))``, a geometric
    sweep from ``start`` to ``end``, in every parameter group. After each step the callback
    records the step's rate and loss and a moving average of the losses (weight ``beta`` on
    the past, bias-corrected as in Adam). The run stops after ``steps`` steps, or once the
    smoothed loss exceeds ``diverge`` times its lowest value so far (or is not finite).

    It needs a Trainer without a scheduler and with ``log_every=1`` (each step's loss on the
    host when the step ends); it says so at ``on_train_begin`` otherwise. It restores
    nothing: the weights, the optimizer's state and its rate (the last one tried) stay as the
    sweep left them. Build a fresh model and optimizer for it and throw them away afterwards.

    Args:
        start, end: the first and the last rate, 0 < start < end.
        steps: the most steps, an int >= 2 (more than an epoch: run several epochs).
        diverge: the factor over the best smoothed loss that ends the sweep (> 1).
        beta: the averaging weight of the smoothed loss, in [0, 1).

    Records, reset by each ``run``, one entry per step: ``lrs``, ``losses``, ``smoothed``.
    """

    def __init__(
        self,
        start: float = 1e-5,
        end: float = 1.0,
        steps: int = 100,
        diverge: float = 4.0,
        beta: float = 0.9,
    ) -> None:
        checks.lr_range_test_arguments(start, end, steps, diverge, beta)
        self.start, self.end, self.steps = start, end, steps
        self.diverge, self.beta = diverge, beta
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self._average = 0.0

    def lr_at(self, step: int) -> float:
        """The rate of step ``step`` (0-based) of the sweep."""
        return self.start * (self.end / self.start) ** (step / (self.steps - 1))

    def on_train_begin(self, trainer: Trainer) -> None:
        checks.lr_range_test_trainer(trainer)
        self.lrs, self.losses, self.smoothed, self._average = [], [], [], 0.0
        set_lr(trainer.optim, self.lr_at(0))

    def on_step_end(self, trainer: Trainer) -> None:
        loss = trainer.train_log["loss"][-1]  # this step's loss (log_every=1)
        self.lrs.append(self.lr_at(len(self.lrs)))  # the rate this step used
        self.losses.append(loss)
        self._average = self.beta * self._average + (1 - self.beta) * loss
        smoothed = self._average / (1 - self.beta ** len(self.losses))
        self.smoothed.append(smoothed)
        if not smoothed <= self.diverge * min(self.smoothed):  # NaN included
            trainer.request_stop(
                f"LRRangeTest: the loss diverged at lr {self.lrs[-1]:.3g}"
            )
        elif len(self.lrs) == self.steps:
            trainer.request_stop(f"LRRangeTest: {self.steps} steps done")
        else:
            set_lr(trainer.optim, self.lr_at(len(self.lrs)))

    def steepest_lr(self) -> float | None:
        """The rate where the smoothed loss fell fastest (per factor of the rate), from the
        records: the middle of the steepest two-step fall; None with fewer than 3 steps."""
        falls = [
            (self.smoothed[i + 1] - self.smoothed[i - 1], i)
            for i in range(1, len(self.smoothed) - 1)
        ]
        return self.lrs[min(falls)[1]] if falls else None

    def diverged_lr(self) -> float | None:
        """The rate of the first step whose smoothed loss broke the ``diverge`` rule (the
        step the sweep stopped at), from the records; None if the sweep never diverged."""
        best = math.inf
        for lr, smoothed in zip(self.lrs, self.smoothed):
            best = min(best, smoothed)
            if not smoothed <= self.diverge * best:
                return lr
        return None


def set_lr(optim: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group of ``optim`` to ``lr`` (written into
    the tensor in place when the rate is a tensor, as for a capturable optimizer)."""
    for group in optim.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


class EarlyStopping(Callback):
    """Stops training when a validation metric has not improved for ``patience`` epochs.

    Args:
        monitor: "valid_loss" or "valid_accuracy" (``valid_log["loss"]`` or
            ``valid_log["accuracy"]``).
        patience: epochs without improvement tolerated before stopping (>= 1).
        min_delta: an improvement must beat the best value by more than this (>= 0).
        mode: "min" or "max"; None picks "min" for the loss and "max" for the accuracy.
        restore_best: at the end of training, load the weights of the best epoch into the model.

    Attributes after training: ``best`` (best value), ``best_epoch`` (1-based epoch of the Trainer's
    count), ``stopped_epoch`` (epoch after which it stopped, or None).
    """

    METRICS = {"valid_loss": "loss", "valid_accuracy": "accuracy"}

    def __init__(
        self,
        monitor: str = "valid_loss",
        patience: int = 3,
        min_delta: float = 0.0,
        mode: str | None = None,
        restore_best: bool = False,
    ) -> None:
        checks.choice(monitor, "monitor", self.METRICS)
        checks.integer(patience, "patience")
        checks.non_negative_number(min_delta, "min_delta")
        checks.flag(restore_best, "restore_best")
        default = "min" if monitor == "valid_loss" else "max"
        mode = checks.choice(
            mode if mode is not None else default, "mode", ("min", "max")
        )
        self.monitor, self.patience, self.min_delta, self.mode = (
            monitor,
            patience,
            min_delta,
            mode,
        )
        self.restore_best = restore_best
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.wait = 0
        self._best_state: dict[str, torch.Tensor] | None = None

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, trainer: Trainer) -> None:
        value = trainer.valid_log[self.METRICS[self.monitor]][-1]
        if math.isnan(value):
            raise ValueError(f"EarlyStopping watches {self.monitor}: no valid_loader")
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, trainer.epoch, 0
            if self.restore_best:
                self._best_state = copy.deepcopy(trainer.model.state_dict())
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = trainer.epoch
            trainer.request_stop(
                f"EarlyStopping: {self.monitor} did not improve for {self.patience} "
                f"epoch(s); best {self.best:.4f} at epoch {self.best_epoch}"
            )

    def on_train_end(self, trainer: Trainer) -> None:
        if self.restore_best and self._best_state is not None:
            trainer.model.load_state_dict(self._best_state)


class StopAfter(Callback):
    """Stops training once the Trainer has completed ``epochs`` epochs in all.

    Epochs resumed from a checkpoint count: a run of 3 epochs stopped with ``StopAfter(1)``
    and resumed later continues with epochs 2 and 3.
    """

    def __init__(self, epochs: int) -> None:
        self.epochs = checks.integer(epochs, "stop_after")

    def on_epoch_end(self, trainer: Trainer) -> None:
        if trainer.epoch >= self.epochs:
            trainer.request_stop(f"stop_after={self.epochs}")
