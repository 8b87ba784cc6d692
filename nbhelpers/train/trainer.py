"""The Trainer: ``TrainerCore`` plus what long runs on accelerators need.

Each addition overrides one method of the core (``core.py``) and is shown in the appendix:

- ``__init__``: arguments checked once (``arguments.py``), the device resolved, mixed precision
  (autocast bf16/fp16, GradScaler for fp16), DistributedDataParallel inside a process group the
  script joined, an opt-in CUDA-graph step;
- ``train_step``: precision, gradient clipping, the captured step, a per-step or per-epoch
  scheduler, Ctrl-C held back until the step is counted (``interrupts.py``);
- ``log_step``: no host synchronisation per step; (loss, accuracy) pairs stay on the device and
  reach the host in chunks of ``log_every`` steps (``metrics.py``), where a NaN or infinite loss
  raises FloatingPointError naming its step;
- ``epoch_batches``: each epoch's order a function of the seed and the epoch (exact resume), a
  progress bar, checked batches, non-blocking copies to CUDA;
- ``end_epoch``: a non-finite validation loss stops the run; a checkpoint after every epoch;
- ``evaluate``: sums kept on the device, all-reduced across processes;
- ``run``: holds the lock of ``checkpoint`` (one writer per file), resumes from it when the
  file exists (checked against ``meta`` and this Trainer first, all or nothing) and writes it
  after every epoch;
- ``save_checkpoint`` / ``load_checkpoint``: atomic writes, verified all-or-nothing reads.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.utils.data import RandomSampler
from torch.utils.data.distributed import DistributedSampler

from nbhelpers import locks
from nbhelpers.train import distributed
from nbhelpers.train.arguments import (
    check_inputs,
    check_iterable,
    check_run,
    check_settings,
    check_trainer,
    pair,
    require_training_parts,
    resolve_device,
)
from nbhelpers.train.callbacks import Callback
from nbhelpers.train.checkpoint import (
    FORMAT,
    capture_rng_state,
    check_checkpoint_path,
    check_meta,
    check_trainer_state,
    load_safely,
    optimizer_state,
    part_state,
    read_meta,
    restore_rng_state,
    save_atomically,
)
from nbhelpers.train.core import LossFn, TrainerCore
from nbhelpers.train.cuda_graph import CapturedTrainStep, check_cuda_graph_support
from nbhelpers.train.history import history_frame
from nbhelpers.train.interrupts import StepInterrupts
from nbhelpers.train.metrics import StepMetrics, first_non_finite, step_pair
from nbhelpers.train.modes import eval_context
from nbhelpers.train.precision import autocast, grad_scaler, resolve_precision
from nbhelpers.train.progress import progress_bar


class Trainer(TrainerCore):
    """Trains, evaluates and runs a classifier ``model`` on batches ``(x, y)``.

    Args:
        model: maps inputs x to scores (B, K); moved to ``device``.
        optim: the optimizer over (some of) ``model``'s parameters; None for inference only.
        loss_fn: ``loss_fn(preds, y)`` -> the batch *mean* loss (``F.cross_entropy``); None
            for inference only.
        scheduler: a learning-rate scheduler of ``optim``, stepped after every optimizer step,
            or after every epoch with ``scheduler_interval="epoch"`` (ReduceLROnPlateau: per
            epoch, on the validation loss).
        callbacks: ``Callback`` objects (see ``callbacks.py``).
        device: where to compute; None means ``get_device()``. Inside a process group, a bare
            "cuda" means this process's GPU.
        verbose: a progress bar and one summary line per epoch (rank 0 only).
        scheduler_interval: "step" or "epoch".
        grad_clip_norm: clip the total gradient norm to this value (finite, > 0); None: off.
        precision: "32", "bf16" (autocast on CUDA or CPU), "16" (autocast + GradScaler, CUDA)
            or "auto" (bf16 where it is fast on ``device``, else 32).
        log_every: steps between copies of the per-step metrics to the host (an int >= 1).
        cuda_graph: capture the training step in a CUDA graph (CUDA, static shapes, a
            capturable optimizer; see ``cuda_graph.py``).

    The Trainer never joins a process group: it uses the one a script joined (world size > 1,
    see ``distributed.join_process_group``), and runs as a single process otherwise.

    Attributes:
        train_log: {"loss", "accuracy"} -> one float per step.
        valid_log: {"step", "loss", "accuracy"} -> one entry per epoch (NaN without a
            valid_loader); "step" is the global step at the epoch's end.
        epoch, global_step: epochs and optimizer steps completed (resumed from checkpoints).
        window_size: steps averaged in ``history``'s smoothed columns (set by ``run``).

    Raises:
        ValueError: an argument that is not what is described above (the message names it).
    """

    def __init__(
        self,
        model: nn.Module,
        optim: torch.optim.Optimizer | None,
        loss_fn: LossFn | None,
        scheduler: Any | None = None,
        callbacks: Iterable[Callback] = (),
        device: torch.device | str | None = None,
        verbose: bool = True,
        *,
        scheduler_interval: str = "step",
        grad_clip_norm: float | None = None,
        precision: str = "32",
        log_every: int = 50,
        cuda_graph: bool = False,
    ) -> None:
        callbacks = check_trainer(model, optim, loss_fn, scheduler, callbacks)
        check_settings(
            scheduler,
            verbose,
            scheduler_interval,
            grad_clip_norm,
            log_every,
            cuda_graph,
        )
        in_group = distributed.is_distributed()
        device = resolve_device(device, in_group)
        super().__init__(model, optim, loss_fn, scheduler, callbacks, device, verbose)
        self.precision = resolve_precision(precision, self.device)
        self.scheduler_interval = scheduler_interval
        self.grad_clip_norm = grad_clip_norm
        self.log_every = log_every
        self.cuda_graph = cuda_graph
        self.distributed = in_group
        self.rank = distributed.rank()
        self.world_size = distributed.world_size()
        self.window_size = 1

        # Training steps call DDP's wrapper (it averages gradients across processes) in a
        # distributed run, the model itself otherwise; inference always uses self.model.
        self._net: nn.Module = self.model
        if in_group and optim is not None:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self._net = DistributedDataParallel(self.model, device_ids=device_ids)
        self._scaler = grad_scaler(self.precision, self.device)
        self._graph_step: CapturedTrainStep | None = None
        if cuda_graph:
            check_cuda_graph_support(self.device, optim, self.precision, in_group)
            self._graph_step = self._new_graph_step()
        reduce = distributed.all_reduce_mean if in_group else None
        self._metrics = StepMetrics(reduce=reduce)
        self._non_blocking = self.device.type == "cuda"
        self._interrupts = StepInterrupts()
        self._bar: Any = None
        self._last_epoch = 0
        self._saving: tuple[Path, dict[str, Any]] | None = None
        self._shuffle_bases: dict[int, tuple[torch.Generator, int]] = {}
        self._sharded: dict[int, tuple[Any, Any]] = {}
        # The train loader of the latest run (its state is checkpointed), and the batch state
        # a loaded checkpoint holds for the next run.
        self._train_loader: Any = None
        self._loader_state: tuple[Path, dict[str, Any]] | None = None

    # ---- the step ----------------------------------------------------------------------------

    def train_step(self, x: Any, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on (x, y); returns 0-dim device tensors (loss, accuracy).

        A Ctrl-C from here until the step is counted (``log_step``) is held back.
        """
        require_training_parts(self.optim, self.loss_fn)
        self._interrupts.hold()
        optim, scaler = self.optim, self._scaler
        if self._graph_step is not None:  # the whole step, captured once, replayed
            loss, accuracy = self._graph_step(x, y).unbind()
        else:
            with autocast(self.precision, self.device):
                preds = self._net(x)  # DDP's wrapper in a process group
                loss = self.loss_fn(preds, y)
            (scaler.scale(loss) if scaler is not None else loss).backward()
            if self.grad_clip_norm is not None:
                if scaler is not None:
                    scaler.unscale_(optim)
                nn.utils.clip_grad_norm_(self._parameters(), self.grad_clip_norm)
            if scaler is not None:
                scaler.step(optim)  # skips the step when a gradient overflowed
                scaler.update()
            else:
                optim.step()
            optim.zero_grad(set_to_none=True)
            accuracy = (preds.detach().argmax(dim=1) == y).float().mean()
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()
            if self._graph_step is not None:
                self._graph_step.check_hyperparameters()
        return loss.detach(), accuracy

    def log_step(self, loss: torch.Tensor, accuracy: torch.Tensor) -> None:
        """Queue the step's numbers on the device; to the host every ``log_every``."""
        self._metrics.append(step_pair(loss, accuracy))
        if len(self._metrics) >= self.log_every:
            self._flush()
        self._interrupts.release()

    def _flush(self, check_finite: bool = True) -> None:
        """Queued metrics to train_log (one host sync); NaN or inf raises."""
        pairs = self._metrics.drain()
        if not pairs:
            return
        self.train_log["loss"].extend(loss for loss, _ in pairs)
        self.train_log["accuracy"].extend(accuracy for _, accuracy in pairs)
        if self._bar is not None:
            recent = self.train_log["loss"][-self.window_size :]
            self._bar.set_postfix(
                loss=f"{sum(recent) / len(recent):.4f}", refresh=False
            )
        bad = first_non_finite([loss for loss, _ in pairs]) if check_finite else None
        if bad is not None:
            step = self.global_step - len(pairs) + bad + 1
            raise FloatingPointError(
                f"loss is {pairs[bad][0]} at global step {step} "
                f"(epoch {self.epoch + 1}); training stopped at step "
                f"{self.global_step} (losses reach the host every "
                f"log_every={self.log_every} steps)"
            )

    # ---- epochs ------------------------------------------------------------------------------

    def epoch_batches(self, loader: Iterable) -> Iterator[tuple[Any, torch.Tensor]]:
        """The epoch's batches in the epoch's order, checked, on the device, with a bar."""
        self._seed_shuffling(loader, self.epoch)
        show = self.verbose and self.rank == 0
        label = f"epoch {self.epoch + 1}/{self._last_epoch}"
        self._bar = progress_bar(_length(loader), label, show)
        count = 0
        try:
            for batch in loader:
                x, y = pair(batch)
                yield self.move(x), self.move(y)
                count += 1
                self._bar.update()
        finally:
            self._bar.close()
            self._bar = None
        if count == 0:
            raise ValueError(
                f"train_loader yielded no batches in epoch {self.epoch + 1}"
            )

    def end_epoch(self, valid_loader: Iterable | None) -> None:
        """The epoch's metrics to the host, validation (finite), logs, checkpoint, callbacks."""
        self._flush()
        result = {"loss": math.nan, "accuracy": math.nan}
        if valid_loader is not None:
            result = self.evaluate(valid_loader)
            if not math.isfinite(result["loss"]):
                raise FloatingPointError(
                    f"validation loss is {result['loss']} after epoch {self.epoch + 1} "
                    f"(global step {self.global_step}); the model's outputs or the "
                    "valid_loader's data are not finite"
                )
        self.valid_log["step"].append(self.global_step)
        self.valid_log["loss"].append(result["loss"])
        self.valid_log["accuracy"].append(result["accuracy"])
        self.epoch += 1
        self._step_scheduler_per_epoch()
        if self.verbose and self.rank == 0:
            print(self.epoch_summary(), flush=True)
        if (
            self._saving is not None
        ):  # before the callbacks: one of them may end the run
            self.save_checkpoint(*self._saving)
        self.emit("on_epoch_end")

    def epoch_summary(self) -> str:
        """One line: the epoch's mean training loss and accuracy, then validation."""
        steps = self.valid_log["step"]
        first = steps[-2] if len(steps) > 1 else 0
        losses, accuracies = (
            self.train_log[key][first:] for key in ("loss", "accuracy")
        )
        width = len(str(self._last_epoch))
        text = (
            f"epoch {self.epoch:{width}d}/{self._last_epoch}: "
            f"loss {_mean(losses):.4f} accuracy {_mean(accuracies):.4f}"
        )
        valid_loss, valid_accuracy = (
            self.valid_log["loss"][-1],
            self.valid_log["accuracy"][-1],
        )
        if not math.isnan(valid_loss):
            text += (
                f" | valid_loss {valid_loss:.4f} valid_accuracy {valid_accuracy:.4f}"
            )
        return text

    def _step_scheduler_per_epoch(self) -> None:
        if self.scheduler is None or self.scheduler_interval != "epoch":
            return
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(self.valid_log["loss"][-1])
        else:
            self.scheduler.step()

    # ---- the run -----------------------------------------------------------------------------

    def run(
        self,
        epochs: int,
        train_loader: Iterable,
        valid_loader: Iterable | None = None,
        window_size: int | None = None,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Train for ``epochs`` more epochs, validating after each one.

        Args:
            epochs: an int >= 1.
            train_loader, valid_loader: iterables of (x, y) batches (DataLoaders in a
                distributed run). Without valid_loader, valid_log gets NaN for the epoch.
            window_size: steps averaged in ``history``'s smoothed columns and the progress
                bar (an int >= 1); default 5% of an epoch.
            checkpoint: a file written after every epoch. When it exists at the start, it is
                checked against ``meta`` and this Trainer, loaded, and the run continues
                where it stopped: the epochs it holds count towards ``epochs``.
            meta: plain values describing what trains (e.g. the recipe), stored with the
                checkpoint; an existing checkpoint with other values is refused.

        Raises:
            ValueError: a bad argument; a loader that yields no batches or not (x, y) pairs; a
                per-step scheduler of fixed length (OneCycleLR) with fewer steps left than the
                run needs; a checkpoint of another run or that does not fit.
            FloatingPointError: a NaN or infinite training or validation loss.
        """
        check_run(self, epochs, train_loader, valid_loader, window_size, meta)
        target = self.epoch + epochs
        path = check_checkpoint_path(checkpoint) if checkpoint is not None else None
        # One writer per checkpoint: a second run given the same file is refused, naming
        # the first (two runs would overwrite each other's state every epoch).
        writes = path is not None and self.rank == 0
        with locks.exclusive(path, "checkpoint") if writes else nullcontext():
            if path is not None and path.exists():
                check_meta(read_meta(path), meta, path)
                self.load_checkpoint(path)
            if self.epoch < target:
                self._train_until(
                    target, train_loader, valid_loader, window_size, path, meta
                )
        if self.verbose and self.rank == 0 and self.stop_reason:
            print(f"stopped after epoch {self.epoch}: {self.stop_reason}", flush=True)

    def _train_until(
        self,
        target: int,
        train_loader: Iterable,
        valid_loader: Iterable | None,
        window_size: int | None,
        path: Path | None,
        meta: dict[str, Any] | None,
    ) -> None:
        """The epochs up to ``target``, after the last checks of the loaders and schedule."""
        train = self._prepare_loader(train_loader, train=True)
        valid = (
            None if valid_loader is None else self._prepare_loader(valid_loader, False)
        )
        steps = _length(train)
        if steps == 0:
            raise ValueError(
                f"train_loader {train_loader!r} has no batches (len() is 0)"
            )
        self._check_scheduler_steps(target - self.epoch, steps)
        self._restore_loader_state(train_loader)
        self._train_loader = train_loader
        self.window_size = window_size or max(1, int(0.05 * (steps or 0)))
        self._last_epoch = target
        self._saving = (path, dict(meta or {})) if path is not None else None
        try:
            with self._interrupts:
                super().run(target - self.epoch, train, valid)
        finally:
            self._saving = None
            # keep train_log aligned with global_step (one entry per completed step)
            if not self.distributed:
                self._flush(check_finite=False)

    def _check_scheduler_steps(self, epochs: int, steps_per_epoch: int | None) -> None:
        """Refuse a run that would step a fixed-length scheduler (OneCycleLR) past its end."""
        total = getattr(self.scheduler, "total_steps", None)
        per_step = self.scheduler_interval == "step"
        if not isinstance(total, int) or (steps_per_epoch is None and per_step):
            return
        done = getattr(self.scheduler, "last_epoch", 0)
        left = total - done
        per_epoch = steps_per_epoch if per_step else 1
        needed = epochs * per_epoch  # type: ignore[operator]
        if needed > left:
            unit = "steps" if per_step else "epoch steps"
            raise ValueError(
                f"the scheduler ({type(self.scheduler).__name__}, total_steps={total}) has "
                f"{left} {unit} left (it has stepped {done} times), but run({epochs}) needs "
                f"{needed} ({epochs} epoch(s) x {per_epoch}); after an interrupted or "
                "earlier run, build a new scheduler for the remaining steps or run fewer "
                "epochs"
            )

    def _restore_loader_state(self, train_loader: Any) -> None:
        """Give the train loader the batch state of the checkpoint loaded last (once)."""
        if self._loader_state is None:
            return
        path, state = self._loader_state
        load = getattr(train_loader, "load_state_dict", None)
        if not callable(load):
            raise ValueError(
                f"the checkpoint {path} holds the state of its training batches ({state}), "
                f"but train_loader ({type(train_loader).__name__}) has no load_state_dict "
                "to take it: pass the same kind of loader (e.g. DeviceBatches) to resume "
                "exactly"
            )
        load(state)
        self._loader_state = None

    # ---- evaluation and inference ------------------------------------------------------------

    def evaluate(self, loader: Iterable) -> dict[str, float]:
        """Mean loss and accuracy over every example of ``loader`` (batch means weighted by size).

        In a distributed run each process evaluates its shard; the sums of loss, correct
        predictions and example counts are all-reduced, and DistributedSampler's padding
        copies are left out, so every process gets the single-process result.

        Raises:
            ValueError: no loss_fn, a loader that is not an iterable of (x, y) pairs, or one
                with no examples.
        """
        if self.loss_fn is None:
            raise ValueError(
                "evaluate needs a loss_fn; this Trainer was built without one"
            )
        check_iterable("loader", loader)
        loader = self._prepare_loader(loader, train=False)
        sampler = getattr(loader, "sampler", None)
        limit = None  # examples of this process's shard that are not DistributedSampler padding
        if self.distributed and isinstance(sampler, DistributedSampler):
            limit = distributed.unpadded_count(sampler)
        dtype = (
            torch.float32 if self.device.type == "mps" else torch.float64
        )  # no float64
        loss_sum = torch.zeros((), dtype=dtype, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        count = 0
        with torch.inference_mode(), eval_context(self.model):
            for batch in loader:
                if limit is not None and count >= limit:
                    break
                x, y = (self.move(part) for part in pair(batch))
                preds = self.model(x)
                if limit is not None:
                    preds, y = preds[: limit - count], y[: limit - count]
                loss_sum += self.loss_fn(preds, y).to(dtype) * len(y)
                correct += (preds.argmax(dim=1) == y).sum()
                count += len(y)
            counted = torch.tensor(float(count), dtype=dtype, device=self.device)
            totals = torch.stack((loss_sum, correct.to(dtype), counted))
            if self.distributed:
                distributed.all_reduce_sum(totals)
            loss_total, correct_total, count = totals.tolist()
        if count == 0:
            raise ValueError(f"evaluate got a loader with no examples: {loader!r}")
        return {"loss": loss_total / count, "accuracy": correct_total / count}

    def batch_predict(self, batches: Iterable) -> torch.Tensor:
        """``predict`` over an iterable of batches, concatenated along dim 0, on the device.

        Each item is an input batch, or a tuple/list whose first element is the input batch,
        so a labelled loader yielding (x, y) can be passed directly (labels ignored).

        Returns:
            (N, ...) outputs for all N inputs, in order.
        """
        check_iterable("batches", batches)
        batches = list(batches)
        if not batches:
            raise ValueError("batch_predict got no batches")
        return super().batch_predict(batches)

    def move(self, x: Any) -> Any:
        """``x`` (a tensor, or a tuple/list/dict of them) on the device, checked."""
        return _move(check_inputs(x), self.device, self._non_blocking)

    # ---- checkpoints -------------------------------------------------------------------------

    def save_checkpoint(
        self, path: str | os.PathLike[str], meta: dict[str, Any] | None = None
    ) -> Path:
        """Write model, optimizer, scheduler, scaler, the train batches' state, logs, counters
        and RNG states to ``path``; returns the path.

        ``meta``: plain values (str, int, float, bool, None, lists and dicts of them) stored
        with the checkpoint, e.g. the recipe that trained; ``checkpoint.read_meta`` reads them
        back without loading anything. Call it between ``run`` calls (``run(checkpoint=...)``
        calls it after every epoch). The write is atomic; in a distributed run only rank 0
        writes and all processes wait for it.

        Raises:
            ValueError, FileNotFoundError, IsADirectoryError, PermissionError: see
                ``check_checkpoint_path``. OSError naming the path: the write failed.
        """
        target = check_checkpoint_path(path)
        if meta is not None and not isinstance(meta, dict):
            raise ValueError(f"meta must be a dict or None, got {type(meta).__name__}")
        state = {
            "format": FORMAT,
            "meta": dict(meta or {}),
            "model": self.model.state_dict(),
            "optim": optimizer_state(self.optim),
            "scheduler": part_state(self.scheduler),
            "scaler": part_state(self._scaler),
            "train_batches": self._batches_state(),
            "train_log": {key: list(values) for key, values in self.train_log.items()},
            "valid_log": {key: list(values) for key, values in self.valid_log.items()},
            "epoch": self.epoch,
            "global_step": self.global_step,
            "rng": capture_rng_state(),
        }
        if self.rank == 0:
            save_atomically(state, target)
        distributed.barrier()
        return target

    def _batches_state(self) -> dict[str, Any] | None:
        if self._loader_state is not None:  # loaded but not yet handed to a loader
            return self._loader_state[1]
        state_dict = getattr(self._train_loader, "state_dict", None)
        return state_dict() if callable(state_dict) else None

    def load_checkpoint(
        self, path: str | os.PathLike[str], restore_rng: bool = True
    ) -> None:
        """Restore what ``save_checkpoint`` wrote, all or nothing.

        The file is verified first (``load_safely``: zip CRCs, ``weights_only`` loading), then
        compared with this Trainer: every key, shape and dtype of the model state, the
        optimizer's class and parameter groups, the scheduler's class, the scaler's presence,
        the logs. Only when everything fits is anything changed; if applying fails anyway,
        every part is put back as it was. An inference-only Trainer takes the model and logs.

        After loading into freshly built objects of the same kind, ``run`` continues exactly
        where the saved run stopped (bit for bit on the CPU), the data order included: the
        train batches' state (``DeviceBatches``: base seed and epoch) is handed to the
        train_loader of the next ``run``; a DataLoader without its own generator shuffles from
        torch's global RNG, restored here; one with a generator is re-seeded at each epoch
        from that generator's seed and the epoch number. Callback state is not saved.

        Raises:
            FileNotFoundError, IsADirectoryError: no checkpoint file at ``path``.
            ValueError: the file is damaged, not a Trainer checkpoint, or does not fit this
                Trainer (the message names the file and the mismatch).
        """
        if not isinstance(restore_rng, bool):
            raise ValueError(f"restore_rng must be True or False, got {restore_rng!r}")
        source = Path(path) if isinstance(path, str | os.PathLike) else path
        state = load_safely(source)
        check_trainer_state(
            state,
            source,
            model=self.model,
            optim=self.optim,
            scheduler=self.scheduler,
            scaler=self._scaler,
            restore_rng=restore_rng,
        )
        snapshot = self._snapshot()
        try:
            self._apply(state, source, restore_rng)
        except Exception as error:
            self._rollback(snapshot)
            raise ValueError(
                f"{source}: loading failed while applying it ({type(error).__name__}: "
                f"{error}); the Trainer was put back as it was"
            ) from error

    def _snapshot(self) -> dict[str, Any]:
        """Copies of everything ``_apply`` changes (tensors cloned)."""
        model = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return {
            "model": model,
            "parts": {
                name: copy.deepcopy(part.state_dict())
                for name, part in self._parts().items()
            },
            "logs": copy.deepcopy((self.train_log, self.valid_log)),
            "counters": (self.epoch, self.global_step),
            "loader_state": self._loader_state,
            "rng": capture_rng_state(),
        }

    def _rollback(self, snapshot: dict[str, Any]) -> None:
        self.model.load_state_dict(snapshot["model"])
        for name, part in self._parts().items():
            part.load_state_dict(snapshot["parts"][name])
        self.train_log, self.valid_log = snapshot["logs"]
        self.epoch, self.global_step = snapshot["counters"]
        self._loader_state = snapshot["loader_state"]
        restore_rng_state(snapshot["rng"])
        if self._graph_step is not None:
            # the optimizer state tensors were replaced again
            self._graph_step = self._new_graph_step()

    def _parts(self) -> dict[str, Any]:
        """The stateful training parts a checkpoint restores (none for inference only)."""
        if self.optim is None:
            return {}
        parts = {
            "optim": self.optim,
            "scheduler": self.scheduler,
            "scaler": self._scaler,
        }
        return {name: part for name, part in parts.items() if part is not None}

    def _apply(self, state: dict[str, Any], source: Path, restore_rng: bool) -> None:
        self.model.load_state_dict(state["model"])
        for name, part in self._parts().items():
            part.load_state_dict(state[name]["state"])
        self.train_log = {k: list(v) for k, v in state["train_log"].items()}
        self.valid_log = {k: list(v) for k, v in state["valid_log"].items()}
        self.epoch = state["epoch"]
        self.global_step = state["global_step"]
        batches = state["train_batches"]
        keep = batches is not None and self.optim is not None
        self._loader_state = (source, batches) if keep else None
        if self._graph_step is not None:
            # the optimizer state tensors were replaced
            self._graph_step = self._new_graph_step()
        if restore_rng:
            restore_rng_state(state["rng"])

    # ---- views -------------------------------------------------------------------------------

    @property
    def history(self) -> Any:
        """The logs as a pandas DataFrame, one row per step (see ``history.history_frame``)."""
        return history_frame(self.train_log, self.valid_log, self.window_size)

    # ---- helpers -----------------------------------------------------------------------------

    def _new_graph_step(self) -> CapturedTrainStep:
        assert self.optim is not None and self.loss_fn is not None
        return CapturedTrainStep(
            self.model,
            self.optim,
            self.loss_fn,
            lambda: autocast(self.precision, self.device, cache_enabled=False),
            self._parameters(),
            self.grad_clip_norm,
        )

    def _parameters(self) -> list[torch.Tensor]:
        assert self.optim is not None
        return [p for group in self.optim.param_groups for p in group["params"]]

    def _prepare_loader(self, loader: Iterable, train: bool) -> Iterable:
        if not self.distributed:
            return loader
        key = id(loader)
        if key not in self._sharded:
            sharded = distributed.shard_loader(loader, train)  # type: ignore[arg-type]
            self._sharded[key] = (loader, sharded)
        return self._sharded[key][1]

    def _seed_shuffling(self, loader: Iterable, epoch: int) -> None:
        """Make the epoch's data order a function of the epoch number (for exact resume).

        A loader with ``set_epoch`` (``DeviceBatches``): ``set_epoch``. A DataLoader whose
        sampler has it (DistributedSampler): the sampler's ``set_epoch``. A RandomSampler with
        its own generator: re-seed that generator from the seed it had when this Trainer first
        saw it and the epoch number. A RandomSampler without a generator draws from torch's
        global RNG (saved in checkpoints).
        """
        set_epoch = getattr(loader, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)
            return
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        elif isinstance(sampler, RandomSampler) and sampler.generator is not None:
            generator = sampler.generator
            _, base = self._shuffle_bases.setdefault(
                id(generator), (generator, generator.initial_seed())
            )
            generator.manual_seed((base * 1_000_003 + epoch) % 2**63)


def _move(obj: Any, device: torch.device, non_blocking: bool) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, tuple | list):
        return type(obj)(_move(item, device, non_blocking) for item in obj)
    if isinstance(obj, dict):
        return {key: _move(value, device, non_blocking) for key, value in obj.items()}
    return obj


def _length(loader: Iterable) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan
