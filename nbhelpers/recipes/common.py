"""What the three recipes share: the profile table lookup, the Run they return, phases with checkpoints.

A recipe is a frozen dataclass (``MnistRecipe``, ``HistopathologyRecipe``, ``NamesRecipe``) with
the same three steps:

- ``XRecipe.for_profile(profile=None, **overrides)``: the sizes of a run profile (the table
  ``SIZES`` of the recipe class: "quick" and "full"), then the overrides, validated;
- ``recipe.prepare()``: the data, with ``.source`` saying where it came from;
- ``recipe.train(data, device=None, *, callbacks=(), verbose=True, checkpoint=None,
  stop_after=None)``: a ``Run``.

``train`` runs one or more phases (the histopathology recipe has two: the frozen backbone, then
fine-tuning). With ``checkpoint``, a checkpoint is written after every epoch; when the file
already exists, training continues from it, exactly where it stopped, after the file has been
checked against the recipe. ``stop_after=k`` stops after k epochs in all (counting across
phases), e.g. to resume later.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn as nn

from nbhelpers.device import PROFILES, get_device, profile
from nbhelpers.storage import DataSource
from nbhelpers.train import Callback, Trainer, distributed
from nbhelpers.train.checkpoint import check_checkpoint_path, read_meta
from nbhelpers.train.precision import PRECISIONS, fast_precision

RecipeT = TypeVar("RecipeT", bound="ProfiledRecipe")


class ProfiledRecipe:
    """Base of the recipe dataclasses: ``for_profile`` reads the class's ``SIZES`` table, and
    ``train`` runs what the recipe's ``plan`` builds, the same way for every recipe."""

    SIZES: ClassVar[dict[str, dict[str, Any]]]

    @classmethod
    def for_profile(
        cls: type[RecipeT], run_profile: str | None = None, **overrides: Any
    ) -> RecipeT:
        """The recipe with the sizes of ``SIZES[run_profile]``, then ``overrides`` applied.

        Args:
            run_profile: "quick" or "full"; None means ``nbhelpers.device.profile()``
                (``NBHELPERS_PROFILE``, else "full" with an accelerator and "quick" without).
            overrides: any field of the recipe, e.g. ``batch_size=256``.

        Raises:
            ValueError: an unknown profile, an unknown field, or a value the recipe refuses.
        """
        chosen = run_profile if run_profile is not None else profile()
        if chosen not in PROFILES:
            raise ValueError(
                f"unknown profile {chosen!r}; use one of {', '.join(PROFILES)}"
            )
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} field(s) {unknown}; known: {sorted(known)}"
            )
        return cls(**{**cls.SIZES[chosen], **overrides})

    def check_positive_ints(self, *names: str) -> None:
        """ValueError naming the first of these fields that is not an int >= 1 (bools refused)."""
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"{type(self).__name__}.{name} must be an int >= 1, got {value!r}"
                )

    def check_positive_numbers(self, *names: str) -> None:
        """ValueError naming the first of these fields that is not a finite number > 0."""
        for name in names:
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(
                    f"{type(self).__name__}.{name} must be a finite number > 0, got {value!r}"
                )

    def check_flags(self, *names: str) -> None:
        """ValueError naming the first of these fields that is not True or False."""
        for name in names:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"{type(self).__name__}.{name} must be True or False, got {getattr(self, name)!r}"
                )

    def check_precision_choice(self) -> None:
        """ValueError unless ``precision`` is "auto" or one the Trainer knows."""
        if self.precision not in ("auto", *PRECISIONS):
            raise ValueError(
                f"{type(self).__name__}.precision={self.precision!r}: use auto or one of {', '.join(PRECISIONS)}"
            )

    def check_seed(self) -> None:
        """ValueError unless ``seed`` is an int >= 0."""
        seed = self.seed
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(
                f"{type(self).__name__}.seed must be an int >= 0, got {seed!r}"
            )

    def plan(self, data: Any, device: torch.device) -> Plan:
        """The model, phases and batches to train on ``device``; every check before any work."""
        raise NotImplementedError

    def resolved(self: RecipeT, device: torch.device | str) -> RecipeT:
        """The recipe with ``precision="auto"`` replaced by what is fast on ``device`` (bf16 or 32)."""
        if getattr(self, "precision", None) != "auto":
            return self
        return dataclasses.replace(self, precision=fast_precision(device))  # type: ignore[type-var]

    def train(
        self,
        data: Any,
        device: torch.device | str | None = None,
        *,
        callbacks: Sequence[Callback] = (),
        verbose: bool = True,
        checkpoint: str | os.PathLike[str] | None = None,
        stop_after: int | None = None,
    ) -> Run:
        """Train on ``data`` (from ``prepare``) and validate after every epoch; returns the Run.

        Works alone and in each process of a ``torchrun`` launch whose process group was joined
        (``nbhelpers.train.distributed.join_process_group``): a bare "cuda" then means this
        process's GPU, and the Trainers shard DataLoader batches.

        Args:
            device: where to train; None means ``get_device()``.
            callbacks: extra Trainer callbacks (e.g. a ``SchedulerStatsRecorder``).
            verbose: progress bars and one line per epoch.
            checkpoint, stop_after: see ``run_phases``.

        Raises:
            ValueError: a setting the device or the launch cannot do, or a checkpoint of another
                recipe, before any step is taken.
        """
        device = torch.device(device) if device is not None else get_device()
        if distributed.world_size() > 1:
            device = distributed.process_device(device)
        recipe = self.resolved(device)
        plan = recipe.plan(data, device)
        options = {
            "callbacks": callbacks,
            "verbose": verbose,
            "checkpoint": checkpoint,
            "stop_after": stop_after,
        }
        run = run_phases(
            recipe,
            plan.model,
            plan.phases,
            plan.train_batches,
            plan.valid_batches,
            data.source,
            **options,
        )
        return dataclasses.replace(run, init=plan.init)


@dataclass
class Run:
    """What ``recipe.train`` produced.

    Attributes:
        recipe: the recipe that ran (with ``precision`` resolved for the device).
        model: the trained model, on the training device.
        trainers: phase name -> its Trainer, in the order they ran ("train" for one phase;
            "frozen" and "finetune" for the histopathology recipe). Each holds its logs.
        valid_loss, valid_accuracy: validation after the last epoch run (NaN if none ran).
        seconds: wall time per phase and "total" (this call only, not earlier resumed parts).
        source: where the training data came from.
        completed: False when ``stop_after`` stopped the run before its last epoch.
        init: where the initial weights came from ("random initialisation (seed 0)", or the
            origin of pretrained weights).
    """

    recipe: Any
    model: nn.Module
    trainers: dict[str, Trainer]
    valid_loss: float
    valid_accuracy: float
    seconds: dict[str, float]
    source: DataSource
    completed: bool
    init: str = "random initialisation"

    @property
    def trainer(self) -> Trainer:
        """The Trainer of the last phase."""
        return list(self.trainers.values())[-1]


@dataclass(frozen=True)
class Phase:
    """One training phase: its name, its epochs, and how to build its Trainer around the model.

    ``build(model, callbacks, verbose)`` prepares the model for the phase (e.g. freezes the
    backbone) and returns a Trainer with those callbacks whose optimizer and scheduler are laid
    out over ``epochs`` epochs. It must not draw random numbers (resume would then differ).
    """

    name: str
    epochs: int
    build: Callable[[nn.Module, list[Callback], bool], Trainer]


@dataclass(frozen=True)
class Plan:
    """What a recipe trains on one device: built by ``recipe.plan(data, device)``.

    Attributes:
        model: the network, seeded, on the device.
        phases: the training phases, in order (one for most recipes).
        train_batches, valid_batches: iterables of (x, y) batches for the Trainers.
        init: where the initial weights came from, for ``Run.init``.
    """

    model: nn.Module
    phases: list[Phase]
    train_batches: Any
    valid_batches: Any
    init: str


class _SaveEveryEpoch(Callback):
    """Writes the recipe's checkpoint, with its meta, after every epoch."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path, self.meta = path, meta

    def on_epoch_end(self, trainer: Trainer) -> None:
        trainer.save_checkpoint(self.path, meta=self.meta)


def run_phases(
    recipe: Any,
    model: nn.Module,
    phases: Sequence[Phase],
    train_batches: Any,
    valid_batches: Any,
    source: DataSource,
    *,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    stop_after: int | None = None,
) -> Run:
    """Run ``phases`` in order over the same batches, with checkpoints and resume.

    With ``checkpoint``, the file is written after every epoch (atomically). Its meta records the
    recipe (every field), the phase it was written in and the logs of the phases finished
    before; when the file exists at the start, it is checked against this recipe first, then
    loaded, and training continues exactly where it stopped. ``stop_after=k`` stops once k
    epochs of the recipe are complete, counted across phases from the very start (epochs done
    before a resume included).

    Raises:
        ValueError: ``stop_after`` < 1, or a checkpoint of another recipe (nothing is changed).
        FileNotFoundError / PermissionError: the checkpoint's folder is missing or not writable
            (checked before the first step).
    """
    if stop_after is not None and (
        not isinstance(stop_after, int)
        or isinstance(stop_after, bool)
        or stop_after < 1
    ):
        raise ValueError(f"stop_after must be None or an int >= 1, got {stop_after!r}")
    path = Path(checkpoint) if checkpoint is not None else None
    names = [phase.name for phase in phases]
    identity = {
        "recipe": type(recipe).__name__,
        "fields": dataclasses.asdict(recipe),
        "phases": names,
    }
    resumed: dict[str, Any] | None = None
    if path is not None:
        check_checkpoint_path(path)
        if path.exists():
            resumed = read_meta(path)
            _check_identity(resumed, identity, path)
    start = names.index(resumed["phase"]) if resumed is not None else 0

    trainers: dict[str, Trainer] = {}
    seconds: dict[str, float] = {}
    completed = True
    offset = 0  # epochs of the recipe completed before the current phase
    begin = time.perf_counter()
    for index, phase in enumerate(phases):
        finished = {name: _logs(trainers[name]) for name in names[:index]}
        saving = (
            [
                _SaveEveryEpoch(
                    path, {**identity, "phase": phase.name, "finished": finished}
                )
            ]
            if path
            else []
        )
        trainer = phase.build(model, [*callbacks, *saving], verbose)
        trainers[phase.name] = trainer
        if index < start:  # finished before the checkpoint was written: its logs only
            assert resumed is not None
            _restore_logs(trainer, resumed["finished"][phase.name])
            offset += phase.epochs
            continue
        if index == start and resumed is not None:
            trainer.load_checkpoint(path)
        stop_at = (
            None
            if stop_after is None
            else min(phase.epochs, max(stop_after - offset, 0))
        )
        target = phase.epochs if stop_at is None else stop_at
        if trainer.epoch < target:
            started = time.perf_counter()
            trainer.run(target - trainer.epoch, train_batches, valid_batches)
            _synchronize(trainer.device)
            seconds[phase.name] = time.perf_counter() - started
        if trainer.epoch < phase.epochs:
            completed = False
            break
        offset += phase.epochs
    seconds["total"] = time.perf_counter() - begin
    valid = list(trainers.values())[-1].valid_log
    loss = valid["loss"][-1] if valid["loss"] else math.nan
    accuracy = valid["accu"][-1] if valid["accu"] else math.nan
    return Run(recipe, model, trainers, loss, accuracy, seconds, source, completed)


def _logs(trainer: Trainer) -> dict[str, Any]:
    return {
        "train_log": {key: list(values) for key, values in trainer.train_log.items()},
        "valid_log": {key: list(values) for key, values in trainer.valid_log.items()},
        "epoch_end_steps": list(trainer.epoch_end_steps),
    }


def _restore_logs(trainer: Trainer, logs: dict[str, Any]) -> None:
    trainer.train_log = {key: list(values) for key, values in logs["train_log"].items()}
    trainer.valid_log = {key: list(values) for key, values in logs["valid_log"].items()}
    trainer.epoch_end_steps = list(logs["epoch_end_steps"])
    trainer.epoch = len(trainer.valid_log["loss"])
    trainer.global_step = trainer.epoch_end_steps[-1] if trainer.epoch_end_steps else 0


def _check_identity(meta: dict[str, Any], identity: dict[str, Any], path: Path) -> None:
    if (
        meta.get("recipe") != identity["recipe"]
        or meta.get("phases") != identity["phases"]
    ):
        raise ValueError(
            f"{path} is a checkpoint of {meta.get('recipe')!r} (phases {meta.get('phases')}), "
            f"not of {identity['recipe']} (phases {identity['phases']}); choose another checkpoint path"
        )
    saved, wanted = meta.get("fields", {}), identity["fields"]
    differing = sorted(
        key for key in set(saved) | set(wanted) if saved.get(key) != wanted.get(key)
    )
    if differing:
        details = ", ".join(
            f"{key}: {saved.get(key)!r} -> {wanted.get(key)!r}" for key in differing[:5]
        )
        raise ValueError(
            f"{path} was written by a different recipe ({details}); resume with the same recipe"
        )
    if meta.get("phase") not in identity["phases"]:
        raise ValueError(f"{path}: unknown phase {meta.get('phase')!r}")


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
