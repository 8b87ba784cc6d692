"""The Trainer's argument checks, run once where each value enters.

``Trainer.__init__`` calls ``check_trainer`` and ``check_settings``; ``Trainer.run`` calls
``check_run``; batches are checked as they come (``pair``, ``check_inputs``). Every error names
the value, e.g. ``log_every must be an int >= 1, got 0``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn as nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from nbhelpers import checks
from nbhelpers.device import checked_device, get_device
from nbhelpers.train.callbacks import Callback


def check_trainer(
    model: Any, optim: Any, loss_fn: Any, scheduler: Any, callbacks: Any
) -> list[Callback]:
    """The model, optimizer, loss, scheduler and callbacks: right kinds, same parameters.

    Returns:
        The callbacks as a list.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if optim is not None and not isinstance(optim, torch.optim.Optimizer):
        kind = type(optim).__name__
        raise ValueError(f"optim must be a torch.optim.Optimizer or None, got {kind}")
    if loss_fn is not None and not callable(loss_fn):
        raise ValueError(
            f"loss_fn must be callable as loss_fn(preds, y), got {loss_fn!r}"
        )
    if optim is not None:
        _check_own_parameters(model, optim)
    if scheduler is not None:
        _check_scheduler(scheduler, optim)
    return _check_callbacks(callbacks)


def check_settings(
    scheduler: Any,
    verbose: Any,
    scheduler_interval: Any,
    grad_clip_norm: Any,
    log_every: Any,
    cuda_graph: Any,
) -> None:
    """The Trainer's keyword settings (precision is checked where it is resolved)."""
    checks.flag(verbose, "verbose")
    checks.flag(cuda_graph, "cuda_graph")
    checks.choice(scheduler_interval, "scheduler_interval", ("step", "epoch"))
    if isinstance(scheduler, ReduceLROnPlateau) and scheduler_interval != "epoch":
        raise ValueError(
            "ReduceLROnPlateau steps on the validation loss: pass "
            "scheduler_interval='epoch'"
        )
    checks.integer(log_every, "log_every")
    if grad_clip_norm is not None and (
        not checks.is_number(grad_clip_norm) or not 0 < grad_clip_norm < float("inf")
    ):
        raise ValueError(
            f"grad_clip_norm must be a finite number > 0 or None, got {grad_clip_norm!r}"
        )


def _check_own_parameters(model: nn.Module, optim: torch.optim.Optimizer) -> None:
    own = {id(parameter) for parameter in model.parameters()}
    params = [p for group in optim.param_groups for p in group["params"]]
    foreign = [p for p in params if id(p) not in own]
    if foreign:
        raise ValueError(
            f"the optimizer holds {len(foreign)} of its {len(params)} parameter(s) that "
            "are not the model's: build it from model.parameters() (of this model, after "
            "any change to its layers)"
        )


def _check_scheduler(scheduler: Any, optim: Any) -> None:
    if optim is None:
        raise ValueError("a scheduler needs an optimizer")
    if not callable(getattr(scheduler, "step", None)) or not callable(
        getattr(scheduler, "state_dict", None)
    ):
        raise ValueError(
            "scheduler must be a learning-rate scheduler (with step and state_dict), "
            f"got {scheduler!r}"
        )
    if getattr(scheduler, "optimizer", optim) is not optim:
        raise ValueError(
            f"the scheduler {type(scheduler).__name__} drives another optimizer than optim"
        )


def _check_callbacks(callbacks: Any) -> list[Callback]:
    if (
        isinstance(callbacks, Callback)
        or not isinstance(callbacks, Iterable)
        or isinstance(callbacks, str | bytes)
    ):
        raise ValueError(
            f"callbacks must be a list of Callback objects, got {callbacks!r}"
        )
    checked = list(callbacks)
    for callback in checked:
        if not isinstance(callback, Callback):
            raise ValueError(
                "a callback must be a Callback object (subclass "
                f"nbhelpers.train.Callback), got {callback!r}"
            )
    return checked


def resolve_device(device: Any, in_group: bool) -> torch.device:
    """``device`` checked (None: ``get_device()``); a bare "cuda" in a process group is this
    process's GPU."""
    if device is None:
        resolved = get_device()
    elif isinstance(device, str | torch.device):
        resolved = checked_device(str(device), label=f"device={str(device)!r}")
    else:
        raise ValueError(
            f"device must be a torch.device, a device name or None, got {device!r}"
        )
    if in_group and resolved.type == "cuda" and resolved.index is None:
        # join_process_group set this process's GPU
        resolved = torch.device("cuda", torch.cuda.current_device())
    return resolved


def require_training_parts(optim: Any, loss_fn: Any) -> None:
    """ValueError unless the Trainer has an optimizer and a loss (it can train)."""
    if optim is None or loss_fn is None:
        raise ValueError(
            "training needs an optimizer and a loss_fn; this Trainer was built for "
            "inference only"
        )


def check_run(
    trainer: Any,
    epochs: Any,
    train_loader: Any,
    valid_loader: Any,
    window_size: Any,
    meta: Any,
) -> None:
    """The arguments of ``Trainer.run``, before anything is loaded or trained."""
    checks.integer(epochs, "epochs")
    checks.optional_integer(window_size, "window_size")
    check_iterable("train_loader", train_loader)
    if valid_loader is not None:
        check_iterable("valid_loader", valid_loader)
    require_training_parts(trainer.optim, trainer.loss_fn)
    if isinstance(trainer.scheduler, ReduceLROnPlateau) and valid_loader is None:
        raise ValueError(
            "ReduceLROnPlateau steps on the validation loss: run() needs a valid_loader"
        )
    if meta is not None and not isinstance(meta, dict):
        raise ValueError(f"meta must be a dict or None, got {type(meta).__name__}")


def check_iterable(name: str, loader: Any) -> None:
    """ValueError unless ``loader`` can be iterated for batches (not a tensor or string)."""
    if (
        loader is None
        or not hasattr(type(loader), "__iter__")
        or isinstance(loader, str | bytes | torch.Tensor)
    ):
        raise ValueError(
            f"{name} must be an iterable of (x, y) batches (a DataLoader, DeviceBatches, "
            f"a list), got {loader!r:.100}"
        )


def check_inputs(x: Any) -> Any:
    """``x`` if it is a tensor, or a non-empty tuple/list/dict holding one; else ValueError."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, tuple | list | dict) and x:
        values = x.values() if isinstance(x, dict) else x
        if any(isinstance(value, torch.Tensor) for value in values):
            return x
    raise ValueError(
        "x must be an input tensor (or a tuple/list/dict of tensors), got "
        f"{type(x).__name__}"
    )


def pair(batch: Any) -> tuple[Any, torch.Tensor]:
    """A batch as (x, y), y a tensor; ValueError naming what the batch is otherwise."""
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        kind = f"a {type(batch).__name__}"
        if isinstance(batch, tuple | list):
            kind += f" of length {len(batch)}"
        raise ValueError(f"a batch must be a pair (x, y), got {kind}")
    if not isinstance(batch[1], torch.Tensor):
        raise ValueError(
            "the targets y of a batch (x, y) must be a tensor, got "
            f"{type(batch[1]).__name__}"
        )
    return batch[0], batch[1]
