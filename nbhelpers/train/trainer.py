"""The Trainer: the training loop, evaluation, prediction and checkpoints in one object.

Contract (the lecture notebook's, made production-grade): ``__call__`` runs the model as it is (training mode
unless you changed it) and keeps the autograd graph; ``predict`` and ``batch_predict`` run it in
eval mode under ``torch.inference_mode``; ``run`` trains and fills ``train_log`` (per step) and
``valid_log`` (per epoch) with Python floats; ``evaluate`` gives means over the whole data set.

What it does beyond the lecture notebook's loop:
- no host synchronisation per step: (loss, accuracy) pairs stay on the device and reach the host
  in chunks of ``log_every`` steps and at each epoch end (see ``metrics.py``);
- a NaN or infinite loss raises FloatingPointError naming its global step and epoch; it is
  noticed when its chunk reaches the host, at most ``log_every - 1`` steps after it happened;
- scheduler per step (default) or per epoch; callbacks with named events that may stop training;
- gradient clipping, mixed precision (autocast bf16/fp16, GradScaler for fp16), non-blocking
  copies to CUDA (give the DataLoader ``pin_memory=True`` to make them asynchronous);
- an opt-in CUDA-graph step for static shapes (``cuda_graph=True``, see ``cuda_graph.py``);
- exact resume from ``save_checkpoint``/``load_checkpoint``, the data order included: before each
  epoch the Trainer calls ``set_epoch(epoch)`` on a loader that has it (``DeviceBatches``, a
  DataLoader's DistributedSampler), and a checkpoint holds the train loader's ``state_dict()``;
- checkpoints that load all or nothing: everything is checked against this Trainer first;
- data parallelism inside a process group the script joined (``distributed.join_process_group``).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.utils.data import RandomSampler
from torch.utils.data.distributed import DistributedSampler

from nbhelpers.device import checked_device, get_device
from nbhelpers.train import distributed
from nbhelpers.train.callbacks import Callback
from nbhelpers.train.checkpoint import (
    FORMAT,
    capture_rng_state,
    check_checkpoint_path,
    check_trainer_state,
    load_safely,
    optimizer_state,
    part_state,
    restore_rng_state,
    save_atomically,
)
from nbhelpers.train.cuda_graph import CapturedTrainStep, check_cuda_graph_support
from nbhelpers.train.history import history_frame
from nbhelpers.train.metrics import (
    StepMetrics,
    correct_count,
    first_non_finite,
    step_pair,
    trailing_means,
)
from nbhelpers.train.modes import eval_context
from nbhelpers.train.precision import autocast, check_precision, grad_scaler
from nbhelpers.train.progress import progress_bar

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Trainer:
    """Trains, evaluates and runs a classifier ``model`` on batches ``(x, y)``.

    Args:
        model: maps inputs x to scores (B, K); moved to ``device``.
        optim: the optimizer over (some of) ``model``'s parameters; None for an inference-only Trainer.
        loss_fn: ``loss_fn(preds, y)`` -> the batch *mean* loss (F.cross_entropy, nn.CrossEntropyLoss()).
            None for an inference-only Trainer.
        scheduler: a learning-rate scheduler of ``optim``, stepped after every optimizer step, or
            after every epoch with ``scheduler_interval="epoch"`` (ReduceLROnPlateau: per epoch, on
            val_loss).
        callbacks: ``Callback`` objects (see ``callbacks.py``).
        device: where to compute; None means ``get_device()``. Inside a process group, a bare
            "cuda" means this process's GPU (``torch.cuda.current_device()``).
        verbose: show a progress bar and print one summary line per epoch (rank 0 only).
        scheduler_interval: "step" or "epoch".
        grad_clip_norm: clip the total gradient norm to this value (finite, > 0) before each step;
            None: off.
        precision: "32", "bf16" (autocast on CUDA or CPU) or "16" (autocast + GradScaler, CUDA).
        log_every: steps between copies of the per-step metrics to the host (an int >= 1).
        cuda_graph: capture the training step in a CUDA graph (CUDA, static shapes, capturable
            optimizer; see ``nbhelpers.train.cuda_graph``). Raises ValueError where unsupported.

    The Trainer never joins a process group: it uses the one a script joined (world size > 1,
    see ``distributed.join_process_group``), and runs as a single process otherwise, whatever
    WORLD_SIZE or RANK say.

    Attributes:
        train_log: {"loss", "accu", "loss_avg", "accu_avg"} -> one float per step.
        valid_log: {"loss", "accu"} -> one float per epoch (NaN for epochs run without valid_loader).
        epoch_end_steps: the global step count at the end of each epoch.
        epoch, global_step: epochs and optimizer steps completed so far (resumed from checkpoints).

    Raises:
        ValueError: an argument that is not what is described above (the message names it),
            or an optimizer that holds parameters which are not the model's.
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
        _check_parts(model, optim, loss_fn, scheduler)
        if scheduler_interval not in ("step", "epoch"):
            raise ValueError(
                f"scheduler_interval={scheduler_interval!r}: use 'step' or 'epoch'"
            )
        if isinstance(scheduler, ReduceLROnPlateau) and scheduler_interval != "epoch":
            raise ValueError(
                "ReduceLROnPlateau steps on the validation loss: pass scheduler_interval='epoch'"
            )
        if not _is_int(log_every) or log_every < 1:
            raise ValueError(f"log_every must be an int >= 1, got {log_every!r}")
        if grad_clip_norm is not None and (
            not _is_number(grad_clip_norm)
            or not math.isfinite(grad_clip_norm)
            or grad_clip_norm <= 0
        ):
            raise ValueError(
                f"grad_clip_norm must be a finite number > 0 or None, got {grad_clip_norm!r}"
            )
        for name, flag in (("verbose", verbose), ("cuda_graph", cuda_graph)):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be True or False, got {flag!r}")
        checked_callbacks = _check_callbacks(callbacks)

        self.distributed = distributed.is_distributed()
        self.device = _resolve_device(device, self.distributed)
        check_precision(precision, self.device)
        self.rank = distributed.rank()
        self.world_size = distributed.world_size()

        self.model = model.to(self.device)
        self.optim = optim
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.callbacks = checked_callbacks
        self.verbose = verbose
        self.scheduler_interval = scheduler_interval
        self.grad_clip_norm = grad_clip_norm
        self.precision = precision
        self.log_every = log_every
        self.cuda_graph = cuda_graph

        # The module that training steps call: DDP's wrapper (it averages gradients across
        # processes) in a distributed run, the model itself otherwise. Inference uses self.model.
        self._net: nn.Module = self.model
        if self.distributed and optim is not None:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self._net = DistributedDataParallel(self.model, device_ids=device_ids)
        self._scaler = grad_scaler(precision, self.device)
        self._graph_step: CapturedTrainStep | None = None
        if cuda_graph:
            check_cuda_graph_support(self.device, optim, precision, self.distributed)
            self._graph_step = self._new_graph_step()

        self.train_log: dict[str, list[float]] = {
            "loss": [],
            "accu": [],
            "loss_avg": [],
            "accu_avg": [],
        }
        self.valid_log: dict[str, list[float]] = {"loss": [], "accu": []}
        self.epoch_end_steps: list[int] = []
        self.epoch = 0
        self.global_step = 0
        self.stop_training = False
        self.stop_reason: str | None = None
        self._metrics = StepMetrics(
            reduce=distributed.all_reduce_mean if self.distributed else None
        )
        self._non_blocking = self.device.type == "cuda"
        self._shuffle_bases: dict[int, tuple[torch.Generator, int]] = {}
        self._sharded: dict[int, tuple[Any, Any]] = {}
        # the train loader of the latest run (its state is checkpointed)
        self._train_loader: Any = None
        # from load_checkpoint, for the next run
        self._loader_state: tuple[Path, dict[str, Any]] | None = None

    # ----------------------------------------------------------------- forward passes
    def __call__(self, x: Any) -> torch.Tensor:
        """The model on ``x`` (moved to the device) in its current modes, autograd graph kept."""
        return self.model(self._move(_check_inputs(x)))

    @torch.inference_mode()
    def predict(self, x: Any) -> torch.Tensor:
        """The model's outputs for one batch ``x``: eval mode, no autograd graph, on the device.

        Args:
            x: an input batch, e.g. (B, C, H, W) (or a tuple/list/dict of tensors the model takes).
                Returns: the outputs, e.g. (B, K).
        """
        x = self._move(_check_inputs(x))
        with eval_context(self.model):
            return self.model(x)

    @torch.inference_mode()
    def batch_predict(self, batches: Iterable[Any]) -> torch.Tensor:
        """``predict`` over an iterable of batches, concatenated along dim 0, on the device.

        Each item is an input batch, or a tuple/list whose first element is the input batch, so a
        labelled DataLoader yielding (x, y) can be passed directly (the labels are ignored).

        Returns:
            (N, ...) outputs for all N inputs, in order.
        """
        _check_iterable("batches", batches)
        outputs = []
        with eval_context(self.model):
            for batch in batches:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                outputs.append(self.model(self._move(_check_inputs(x))))
        if not outputs:
            raise ValueError("batch_predict got no batches")
        return torch.cat(outputs, dim=0)

    # ----------------------------------------------------------------- steps
    def train_step(self, batch: Sequence[Any]) -> dict[str, torch.Tensor]:
        """One optimizer step on ``batch = (x, y)``; returns 0-dim device tensors "loss" and "accu".

        Does not step the scheduler nor call callbacks (``run`` does).
        """
        pair = self._train_pair(batch)
        return {"loss": pair[0], "accu": pair[1]}

    def _train_pair(self, batch: Sequence[Any]) -> torch.Tensor:
        self._require_training_parts()
        assert self.optim is not None and self.loss_fn is not None
        if self._graph_step is not None:
            x, y = self._split(batch)  # copied straight into the graph's static buffers
            return self._graph_step(x, y)
        x, y = self._unpack(batch)
        with autocast(self.precision, self.device):
            preds = self._net(x)
            loss = self.loss_fn(preds, y)
        if self._scaler is not None:
            self._scaler.scale(loss).backward()
        else:
            loss.backward()
        if self.grad_clip_norm is not None:
            if self._scaler is not None:
                self._scaler.unscale_(self.optim)
            nn.utils.clip_grad_norm_(self._parameters(), self.grad_clip_norm)
        if self._scaler is not None:
            self._scaler.step(self.optim)
            self._scaler.update()
        else:
            self.optim.step()
        self.optim.zero_grad(set_to_none=True)
        accu = (preds.detach().argmax(dim=1) == y).float().mean()
        return step_pair(loss, accu)

    # ----------------------------------------------------------------- training loop
    def run(
        self,
        epochs: int,
        train_loader: Iterable[Any],
        valid_loader: Iterable[Any] | None = None,
        window_size: int | None = None,
    ) -> None:
        """Train for ``epochs`` more epochs, validating after each one.

        Args:
            epochs: number of epochs to add to ``self.epoch`` (an int >= 1).
            train_loader, valid_loader: iterables of (x, y) batches (DataLoaders in a
                distributed run). Without valid_loader, valid_log gets NaN for the epoch.
                Before each epoch, ``train_loader.set_epoch(self.epoch)`` is called when it has one.
            window_size: steps averaged in "loss_avg"/"accu_avg" (an int >= 1); default 5% of an
                epoch (>= 1).

        Raises:
            ValueError: a bad argument; a loader that yields no batches or not (x, y) pairs; a
                per-step scheduler of fixed length (OneCycleLR) with fewer steps left than the run
                needs; a checkpoint's batch state that ``train_loader`` cannot take.
            FloatingPointError: a NaN or infinite training or validation loss (naming the step or epoch).
        """
        if not _is_int(epochs) or epochs < 1:
            raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
        if window_size is not None and (not _is_int(window_size) or window_size < 1):
            raise ValueError(
                f"window_size must be an int >= 1 or None, got {window_size!r}"
            )
        _check_iterable("train_loader", train_loader)
        if valid_loader is not None:
            _check_iterable("valid_loader", valid_loader)
        self._require_training_parts()
        if isinstance(self.scheduler, ReduceLROnPlateau) and valid_loader is None:
            raise ValueError(
                "ReduceLROnPlateau steps on the validation loss: run() needs a valid_loader"
            )
        prepared = self._prepare_loader(train_loader, train=True)
        if valid_loader is not None:
            valid_loader = self._prepare_loader(valid_loader, train=False)
        steps_per_epoch = _length(prepared)
        if steps_per_epoch == 0:
            raise ValueError(
                f"train_loader {train_loader!r} has no batches (len() is 0)"
            )
        self._check_scheduler_steps(epochs, steps_per_epoch)
        self._restore_loader_state(train_loader)
        self._train_loader = train_loader
        window = window_size or max(1, int(0.05 * (steps_per_epoch or 0)))
        last_epoch = self.epoch + epochs
        show = self.verbose and self.rank == 0
        self.stop_training, self.stop_reason = False, None

        for callback in self.callbacks:
            callback.on_train_begin(self)
        while self.epoch < last_epoch and not self.stop_training:
            self._seed_shuffling(prepared, self.epoch)
            self._train_epoch(prepared, steps_per_epoch, window, last_epoch, show)
            result = (
                self.evaluate(valid_loader)
                if valid_loader is not None
                else {"loss": math.nan, "accu": math.nan}
            )
            if valid_loader is not None and not math.isfinite(result["loss"]):
                raise FloatingPointError(
                    f"validation loss is {result['loss']} after epoch {self.epoch + 1} (global step "
                    f"{self.global_step}); the model's outputs or the valid_loader's data are not finite"
                )
            self.valid_log["loss"].append(result["loss"])
            self.valid_log["accu"].append(result["accu"])
            self.epoch_end_steps.append(self.global_step)
            self.epoch += 1
            self._step_scheduler_per_epoch()
            if show:
                print(self._epoch_summary(last_epoch), flush=True)
            for callback in self.callbacks:
                callback.on_epoch_end(self)
        for callback in self.callbacks:
            callback.on_train_end(self)
        if show and self.stop_reason:
            print(f"stopped after epoch {self.epoch}: {self.stop_reason}", flush=True)

    def _check_scheduler_steps(self, epochs: int, steps_per_epoch: int | None) -> None:
        """Refuse a run that would step a fixed-length scheduler (OneCycleLR) past its end."""
        total = getattr(self.scheduler, "total_steps", None)
        if not _is_int(total) or (
            steps_per_epoch is None and self.scheduler_interval == "step"
        ):
            return
        done = getattr(self.scheduler, "last_epoch", 0)
        left = total - done
        per_epoch = steps_per_epoch if self.scheduler_interval == "step" else 1
        needed = epochs * per_epoch  # type: ignore[operator]
        if needed > left:
            unit = "steps" if self.scheduler_interval == "step" else "epoch steps"
            raise ValueError(
                f"the scheduler ({type(self.scheduler).__name__}, total_steps={total}) has {left} {unit} left "
                f"(it has stepped {done} times), but run({epochs}) needs {needed} ({epochs} epoch(s) x {per_epoch}); "
                "after an interrupted or earlier run, build a new scheduler for the remaining steps or run fewer epochs"
            )

    def _restore_loader_state(self, train_loader: Any) -> None:
        """Give the train loader the batch state of the checkpoint loaded last (once)."""
        if self._loader_state is None:
            return
        path, state = self._loader_state
        load = getattr(train_loader, "load_state_dict", None)
        if not callable(load):
            raise ValueError(
                f"the checkpoint {path} holds the state of its training batches ({state}), but train_loader "
                f"({type(train_loader).__name__}) has no load_state_dict to take it: pass the same kind of "
                "loader (e.g. DeviceBatches) to resume exactly"
            )
        load(state)
        self._loader_state = None

    def _train_epoch(
        self,
        loader: Iterable[Any],
        steps_per_epoch: int | None,
        window: int,
        last_epoch: int,
        show: bool,
    ) -> None:
        bar = progress_bar(
            steps_per_epoch, f"epoch {self.epoch + 1}/{last_epoch}", show
        )
        steps = 0
        try:
            for batch in loader:
                self._metrics.append(self._train_pair(batch))
                self.global_step += 1
                steps += 1
                if self.scheduler is not None and self.scheduler_interval == "step":
                    self.scheduler.step()
                    if self._graph_step is not None:
                        self._graph_step.check_hyperparameters()
                for callback in self.callbacks:
                    callback.on_step_end(self)
                bar.update()
                if len(self._metrics) >= self.log_every:
                    self._flush(window, bar)
                if self.stop_training:
                    break
            self._flush(window, bar)
        except BaseException:
            # keep train_log aligned with global_step (one entry per completed step)
            if not self.distributed and len(self._metrics):
                self._flush(window, bar, check_finite=False)
            raise
        finally:
            bar.close()
        if steps == 0:
            raise ValueError(
                f"train_loader yielded no batches in epoch {self.epoch + 1}"
            )

    def _flush(self, window: int, bar: Any, check_finite: bool = True) -> None:
        """Copy the queued per-step metrics to train_log (one host sync); check NaN/inf."""
        pairs = self._metrics.drain()
        if not pairs:
            return
        losses, accus = self.train_log["loss"], self.train_log["accu"]
        losses.extend(loss for loss, _ in pairs)
        accus.extend(accu for _, accu in pairs)
        self.train_log["loss_avg"].extend(trailing_means(losses, len(pairs), window))
        self.train_log["accu_avg"].extend(trailing_means(accus, len(pairs), window))
        bar.set_postfix(
            loss=f"{self.train_log['loss_avg'][-1]:.4f}",
            acc=f"{self.train_log['accu_avg'][-1]:.4f}",
            refresh=False,
        )
        if not check_finite:
            return
        bad = first_non_finite([loss for loss, _ in pairs])
        if bad is not None:
            step = self.global_step - len(pairs) + bad + 1
            raise FloatingPointError(
                f"loss is {pairs[bad][0]} at global step {step} (epoch {self.epoch + 1}); "
                f"training stopped at step {self.global_step} (losses reach the host "
                f"every log_every={self.log_every} steps)"
            )

    def _step_scheduler_per_epoch(self) -> None:
        if self.scheduler is None or self.scheduler_interval != "epoch":
            return
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(self.valid_log["loss"][-1])
        else:
            self.scheduler.step()

    def _epoch_summary(self, last_epoch: int) -> str:
        width = len(str(last_epoch))
        text = (
            f"[Epoch: {self.epoch:0{width}d}/{last_epoch}] loss: {self.train_log['loss_avg'][-1]:.4f} "
            f"acc: {self.train_log['accu_avg'][-1]:.4f}"
        )
        if not math.isnan(self.valid_log["loss"][-1]):
            text += f" val_loss: {self.valid_log['loss'][-1]:.4f} val_acc: {self.valid_log['accu'][-1]:.4f}"
        return text

    def request_stop(self, reason: str) -> None:
        """Ask ``run`` to stop after the current step (or epoch); for callbacks."""
        self.stop_training, self.stop_reason = True, reason

    # ----------------------------------------------------------------- evaluation
    def evaluate(self, loader: Iterable[Any]) -> dict[str, float]:
        """Mean loss and accuracy over every example of ``loader`` (batch means weighted by size).

        In a distributed run each process evaluates its shard; the sums of loss, correct
        predictions and example counts are all-reduced, and DistributedSampler's padding copies
        are left out, so every process gets the single-process result over the whole set.

        Raises:
            ValueError: no loss_fn, a loader that is not an iterable of (x, y) pairs or holds no examples.
        """
        if self.loss_fn is None:
            raise ValueError(
                "evaluate needs a loss_fn; this Trainer was built without one"
            )
        _check_iterable("loader", loader)
        loader = self._prepare_loader(loader, train=False)
        sampler = getattr(loader, "sampler", None)
        limit = None  # examples of this process's shard that are not DistributedSampler padding
        if self.distributed and isinstance(sampler, DistributedSampler):
            limit = distributed.unpadded_count(sampler)
        # MPS has no float64
        dtype = torch.float32 if self.device.type == "mps" else torch.float64
        loss_sum = torch.zeros((), dtype=dtype, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        count = 0
        with torch.inference_mode(), eval_context(self.model):
            for batch in loader:
                if limit is not None and count >= limit:
                    break
                x, y = self._unpack(batch)
                preds = self.model(x)
                if limit is not None:
                    preds, y = preds[: limit - count], y[: limit - count]
                loss_sum += self._loss(preds, y).to(dtype) * len(y)
                correct += correct_count(preds, y)
                count += len(y)
            counted = torch.tensor(float(count), dtype=dtype, device=self.device)
            totals = torch.stack((loss_sum, correct.to(dtype), counted))
            if self.distributed:
                distributed.all_reduce_sum(totals)
            total_loss, total_correct, total_count = totals.tolist()
        if total_count == 0:
            raise ValueError(f"evaluate got a loader with no examples: {loader!r}")
        return {"loss": total_loss / total_count, "accu": total_correct / total_count}

    # ----------------------------------------------------------------- checkpoints
    def save_checkpoint(
        self, path: str | os.PathLike[str], meta: dict[str, Any] | None = None
    ) -> Path:
        """Write model, optimizer, scheduler, scaler, the train batches' state, logs, counters and
        RNG states to ``path``; returns the path.

        ``meta``: plain values (str, int, float, bool, None, lists and dicts of them) stored with
        the checkpoint for its writer, e.g. the recipe that trained; read back by
        ``nbhelpers.train.checkpoint.read_meta`` without loading anything.

        Call it between ``run`` calls. The path is checked first (``check_checkpoint_path``: call
        that yourself before training to hear about a bad path early). The write is atomic (a
        temporary file, then a rename; a read-only file is not replaced). In a distributed run
        only rank 0 writes; all processes wait for it.

        Raises:
            ValueError, FileNotFoundError, IsADirectoryError, PermissionError: see
                ``check_checkpoint_path``. OSError naming the path: the write failed (a full disk).
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
            "epoch_end_steps": list(self.epoch_end_steps),
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
        compared with this Trainer: every key, shape and dtype of the model state, the optimizer's
        class and parameter groups, the scheduler's class, the scaler's presence, the logs. Only
        when everything fits is anything changed; if applying fails anyway, every part is put back
        as it was. An inference-only Trainer (no optimizer) takes the model and logs only.

        After loading into freshly built objects of the same kind, ``run`` continues exactly
        where the saved run stopped (bit for bit on the CPU). The data order is part of that:
        the train batches' state (``DeviceBatches``: base seed and epoch) is handed to the
        train_loader of the next ``run`` before its ``set_epoch``; a DataLoader without its own
        generator shuffles from torch's global RNG, restored here; one with a generator is
        re-seeded at each epoch from that generator's seed and the epoch number. Callback state
        (e.g. EarlyStopping's counters) is not saved.

        Raises:
            FileNotFoundError, IsADirectoryError: no checkpoint file at ``path``.
            ValueError: the file is damaged, not a Trainer checkpoint, or does not fit this Trainer
                (the message names the file and the mismatch).
        """
        if not isinstance(restore_rng, bool):
            raise ValueError(f"restore_rng must be True or False, got {restore_rng!r}")
        source = Path(path) if isinstance(path, (str, os.PathLike)) else path
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
                f"{source}: loading failed while applying it ({type(error).__name__}: {error}); "
                "the Trainer was put back as it was"
            ) from error

    def _snapshot(self) -> dict[str, Any]:
        """Copies of everything ``_apply`` changes (tensors cloned)."""
        return {
            "model": {
                key: value.detach().clone()
                for key, value in self.model.state_dict().items()
            },
            "parts": {
                name: copy.deepcopy(part.state_dict())
                for name, part in self._parts().items()
            },
            "logs": copy.deepcopy(
                (self.train_log, self.valid_log, self.epoch_end_steps)
            ),
            "counters": (self.epoch, self.global_step),
            "loader_state": self._loader_state,
            "rng": capture_rng_state(),
        }

    def _rollback(self, snapshot: dict[str, Any]) -> None:
        self.model.load_state_dict(snapshot["model"])
        for name, part in self._parts().items():
            part.load_state_dict(snapshot["parts"][name])
        self.train_log, self.valid_log, self.epoch_end_steps = snapshot["logs"]
        self.epoch, self.global_step = snapshot["counters"]
        self._loader_state = snapshot["loader_state"]
        restore_rng_state(snapshot["rng"])
        if self._graph_step is not None:
            # the optimizer state tensors were replaced again
            self._graph_step = self._new_graph_step()

    def _parts(self) -> dict[str, Any]:
        """The stateful training parts a checkpoint restores (none for an inference-only Trainer)."""
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
        self.train_log = {
            key: list(values) for key, values in state["train_log"].items()
        }
        self.valid_log = {
            key: list(values) for key, values in state["valid_log"].items()
        }
        self.epoch_end_steps = list(state["epoch_end_steps"])
        self.epoch = state["epoch"]
        self.global_step = state["global_step"]
        batches = state["train_batches"]
        self._loader_state = (
            (source, batches)
            if batches is not None and self.optim is not None
            else None
        )
        if self._graph_step is not None:
            # the optimizer state tensors were replaced
            self._graph_step = self._new_graph_step()
        if restore_rng:
            restore_rng_state(state["rng"])

    # ----------------------------------------------------------------- views
    @property
    def history(self) -> Any:
        """The logs as a pandas DataFrame, one row per step (see ``history.history_frame``)."""
        return history_frame(self.train_log, self.valid_log, self.epoch_end_steps)

    # ----------------------------------------------------------------- helpers
    def _require_training_parts(self) -> None:
        if self.optim is None or self.loss_fn is None:
            raise ValueError(
                "training needs an optimizer and a loss_fn; this Trainer was built for inference only"
            )

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

    def _loss(self, preds: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        assert self.loss_fn is not None
        return self.loss_fn(preds, y)

    def _move(self, obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return obj.to(self.device, non_blocking=self._non_blocking)
        if isinstance(obj, (tuple, list)):
            return type(obj)(self._move(item) for item in obj)
        if isinstance(obj, dict):
            return {key: self._move(value) for key, value in obj.items()}
        return obj

    @staticmethod
    def _split(batch: Sequence[Any]) -> tuple[Any, Any]:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            kind = (
                f"a {type(batch).__name__} of length {len(batch)}"
                if isinstance(batch, (tuple, list))
                else (f"a {type(batch).__name__}")
            )
            raise ValueError(f"a batch must be a pair (x, y), got {kind}")
        if not isinstance(batch[1], torch.Tensor):
            raise ValueError(
                f"the targets y of a batch (x, y) must be a tensor, got {type(batch[1]).__name__}"
            )
        return batch[0], batch[1]

    def _unpack(self, batch: Sequence[Any]) -> tuple[Any, torch.Tensor]:
        x, y = self._split(batch)
        return self._move(x), self._move(y)

    def _prepare_loader(self, loader: Iterable[Any], train: bool) -> Iterable[Any]:
        if not self.distributed:
            return loader
        key = id(loader)
        if key not in self._sharded:
            self._sharded[key] = (loader, distributed.shard_loader(loader, train))  # type: ignore[arg-type]
        return self._sharded[key][1]

    def _seed_shuffling(self, loader: Iterable[Any], epoch: int) -> None:
        """Make the epoch's data order a function of the epoch number (for exact resume).

        A loader with ``set_epoch`` (``DeviceBatches``): ``set_epoch``. A DataLoader whose sampler
        has it (DistributedSampler): the sampler's ``set_epoch``. A RandomSampler with its own
        generator: re-seed that generator from the seed it had when this Trainer first saw it and
        the epoch number. A RandomSampler without a generator draws from torch's global RNG
        (saved in checkpoints).
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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_parts(model: Any, optim: Any, loss_fn: Any, scheduler: Any) -> None:
    """The model, optimizer, loss and scheduler: right kinds, and about the same parameters."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if optim is not None and not isinstance(optim, torch.optim.Optimizer):
        raise ValueError(
            f"optim must be a torch.optim.Optimizer or None, got {type(optim).__name__}"
        )
    if loss_fn is not None and not callable(loss_fn):
        raise ValueError(
            f"loss_fn must be callable as loss_fn(preds, y), got {loss_fn!r}"
        )
    if optim is not None:
        own = {id(parameter) for parameter in model.parameters()}
        foreign = [
            p
            for group in optim.param_groups
            for p in group["params"]
            if id(p) not in own
        ]
        if foreign:
            total = sum(len(group["params"]) for group in optim.param_groups)
            raise ValueError(
                f"the optimizer holds {len(foreign)} of its {total} parameter(s) that are not the model's: "
                "build it from model.parameters() (of this model, after any change to its layers)"
            )
    if scheduler is None:
        return
    if optim is None:
        raise ValueError("a scheduler needs an optimizer")
    if not callable(getattr(scheduler, "step", None)) or not callable(
        getattr(scheduler, "state_dict", None)
    ):
        raise ValueError(
            f"scheduler must be a learning-rate scheduler (with step and state_dict), got {scheduler!r}"
        )
    driven = getattr(scheduler, "optimizer", optim)
    if driven is not optim:
        raise ValueError(
            f"the scheduler {type(scheduler).__name__} drives another optimizer than optim"
        )


def _check_callbacks(callbacks: Any) -> list[Callback]:
    if (
        isinstance(callbacks, Callback)
        or not isinstance(callbacks, Iterable)
        or isinstance(callbacks, (str, bytes))
    ):
        raise ValueError(
            f"callbacks must be a list of Callback objects, got {callbacks!r}"
        )
    checked = list(callbacks)
    for callback in checked:
        if not isinstance(callback, Callback):
            raise ValueError(
                f"a callback must be a Callback object (subclass nbhelpers.train.Callback), got {callback!r}"
            )
    return checked


def _resolve_device(device: Any, in_group: bool) -> torch.device:
    if device is None:
        resolved = get_device()
    elif isinstance(device, (str, torch.device)):
        resolved = checked_device(str(device), label=f"device={str(device)!r}")
    else:
        raise ValueError(
            f"device must be a torch.device, a device name or None, got {device!r}"
        )
    if in_group and resolved.type == "cuda" and resolved.index is None:
        # set by join_process_group
        resolved = torch.device("cuda", torch.cuda.current_device())
    return resolved


def _check_iterable(name: str, loader: Any) -> None:
    if (
        loader is None
        or not hasattr(type(loader), "__iter__")
        or isinstance(loader, (str, bytes, torch.Tensor))
    ):
        raise ValueError(
            f"{name} must be an iterable of (x, y) batches (a DataLoader, DeviceBatches, a list), got {loader!r:.100}"
        )


def _check_inputs(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list, dict)) and x:
        values = x.values() if isinstance(x, dict) else x
        if any(isinstance(value, torch.Tensor) for value in values):
            return x
    raise ValueError(
        f"x must be an input tensor (or a tuple/list/dict of tensors), got {type(x).__name__}"
    )


def _length(loader: Iterable[Any]) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None
