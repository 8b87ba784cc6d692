"""Multi-process data-parallel training on torch.distributed, started by ``torchrun``.

torchrun sets WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT for each process. A
script joins the process group explicitly with ``join_process_group(device)`` (a bounded wait,
clear errors); the Trainer never joins one itself. It only *uses* a group that is initialized
(world size > 1): it wraps the model in DistributedDataParallel and gives every process its own
shard of the DataLoaders. So variables left over in a shell (a stale WORLD_SIZE=2) cannot make a
plain ``Trainer()`` wait for processes that will never come.
"""

from __future__ import annotations

import math
import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, RandomSampler
from torch.utils.data.distributed import DistributedSampler

LAUNCH_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class ProcessGroupError(RuntimeError):
    """Joining the process group failed or timed out; the message names the launch variables."""


def _int_variable(name: str, default: str | None = None) -> int:
    value = os.environ.get(name, default)
    if value is None:
        raise ValueError(
            f"{name} is not set; torchrun sets it (WORLD_SIZE > 1 means a multi-process launch)"
        )
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an integer") from None


def world_size_from_env() -> int:
    """WORLD_SIZE as set by torchrun; 1 when unset. Raises ValueError naming a bad value."""
    size = _int_variable("WORLD_SIZE", "1")
    if size < 1:
        raise ValueError(f"WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} must be >= 1")
    return size


def launch_settings() -> dict[str, str]:
    """The five torchrun variables, checked: every one set and in range when WORLD_SIZE > 1.

    Returns:
        A dict from each variable that is set to its value (all five when WORLD_SIZE > 1).

    Raises:
        ValueError: a variable is missing, not a number, or out of range (the message names it).
    """
    size = world_size_from_env()
    if size == 1:
        return {
            name: os.environ[name] for name in LAUNCH_VARIABLES if name in os.environ
        }
    rank_value = _int_variable("RANK")
    if not 0 <= rank_value < size:
        raise ValueError(
            f"RANK={os.environ['RANK']!r} must be in 0..{size - 1} (WORLD_SIZE={size})"
        )
    local = _int_variable("LOCAL_RANK")
    if not 0 <= local < size:
        raise ValueError(
            f"LOCAL_RANK={os.environ['LOCAL_RANK']!r} must be in 0..{size - 1} (WORLD_SIZE={size})"
        )
    address = os.environ.get("MASTER_ADDR", "").strip()
    if not address or any(character.isspace() for character in address):
        raise ValueError(
            f"MASTER_ADDR={os.environ.get('MASTER_ADDR')!r} must be a host name or address"
        )
    port = _int_variable("MASTER_PORT")
    if not 1 <= port <= 65535:
        raise ValueError(
            f"MASTER_PORT={os.environ['MASTER_PORT']!r} must be a port number in 1..65535"
        )
    return {name: os.environ[name] for name in LAUNCH_VARIABLES}


def process_device(device: torch.device) -> torch.device:
    """This process's device: a bare ``cuda`` becomes ``cuda:LOCAL_RANK``, one GPU per process."""
    if device.type == "cuda" and device.index is None:
        local = _int_variable("LOCAL_RANK", "0")
        if local < 0:
            raise ValueError(
                f"LOCAL_RANK={os.environ.get('LOCAL_RANK')!r} must be >= 0"
            )
        return torch.device("cuda", local)
    return device


def join_process_group(device: torch.device | str, timeout_s: float = 60.0) -> bool:
    """Join the default process group when this process is one of several (torchrun's variables).

    NCCL for CUDA devices (after ``torch.cuda.set_device(cuda:LOCAL_RANK)``), gloo otherwise.
    The rendezvous waits at most ``timeout_s`` seconds for the other processes.

    Args:
        device: the device this process computes on (a bare "cuda" means cuda:LOCAL_RANK).
        timeout_s: how long to wait for the other processes (a finite number > 0).

    Returns:
        True when this process is in a group of WORLD_SIZE > 1 processes (joined now or before),
        False for a single process (WORLD_SIZE unset or 1): nothing to join.

    Raises:
        ValueError: a bad argument, or a launch variable that is missing or out of range.
        ProcessGroupError: the other processes did not come within ``timeout_s`` or the
            rendezvous failed; the message names the variables, which may be stale leftovers.
    """
    if (
        isinstance(timeout_s, bool)
        or not isinstance(timeout_s, (int, float))
        or not 0 < timeout_s < math.inf
    ):
        raise ValueError(
            f"timeout_s must be a finite number of seconds > 0, got {timeout_s!r}"
        )
    if not isinstance(device, (str, torch.device)):
        raise ValueError(
            f"device must be a torch.device or a device name, got {device!r}"
        )
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device={device!r} is not a device name") from None
    settings = launch_settings()
    if world_size_from_env() == 1:
        return False
    if not dist.is_available():
        raise ValueError(
            "WORLD_SIZE > 1, but this PyTorch build has no torch.distributed"
        )
    if dist.is_initialized():
        return dist.get_world_size() > 1
    device = process_device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    described = " ".join(f"{name}={value}" for name, value in settings.items())
    try:
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            timeout=timedelta(seconds=timeout_s),
        )
    except Exception as error:  # noqa: BLE001 (any rendezvous failure gets the same explanation)
        raise ProcessGroupError(
            f"could not join the process group with {described} within {timeout_s:g} s "
            f"({type(error).__name__}: {' '.join(str(error).split())[:300]}). If this process was not "
            f"started by torchrun, these variables are probably stale values left in the environment: "
            f"unset {', '.join(LAUNCH_VARIABLES)}."
        ) from error
    return dist.get_world_size() > 1


def is_distributed() -> bool:
    """True inside an initialized process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank; 0 outside a process group."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes; 1 outside a process group."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def shard_loader(loader: DataLoader, train: bool) -> DataLoader:
    """A copy of ``loader`` that yields only this process's share of the dataset.

    The copy keeps the batch size, collate function, workers, pinned memory and drop_last of the
    original and swaps its sampler for a DistributedSampler. A training loader shuffles if the
    original did (seed: the original generator's seed, or 0; the Trainer calls ``set_epoch``);
    a validation loader never shuffles. DistributedSampler pads the index list by repeating its
    first entries so that all processes get the same count; ``unpadded_count`` says how many of
    a process's samples are real.
    """
    if not isinstance(loader, DataLoader):
        raise ValueError(
            f"a distributed run needs torch DataLoaders to shard, got {type(loader).__name__}"
        )
    if isinstance(loader.sampler, DistributedSampler):
        return loader
    if loader.batch_size is None:
        raise ValueError(
            "cannot shard a DataLoader built with a custom batch_sampler; pass batch_size instead"
        )
    shuffle = train and isinstance(loader.sampler, RandomSampler)
    seed = loader.generator.initial_seed() if loader.generator is not None else 0
    sampler = DistributedSampler(
        loader.dataset, shuffle=shuffle, seed=seed, drop_last=False
    )
    extra = (
        {"prefetch_factor": loader.prefetch_factor} if loader.num_workers > 0 else {}
    )
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        persistent_workers=loader.persistent_workers,
        **extra,
    )


def own_shard(loader: DataLoader, train: bool) -> DataLoader:
    """``loader`` in one process; this process's share of it (``shard_loader``) under torchrun."""
    return shard_loader(loader, train) if world_size() > 1 else loader


def unpadded_count(sampler: DistributedSampler) -> int:
    """How many of this process's samples are real, not padding.

    DistributedSampler appends copies of the first indices until the list length is a multiple
    of the world size, then gives process r the positions r, r + W, r + 2W, ...; positions past
    the dataset's length are the copies, and they come last in each process's share.
    """
    if sampler.drop_last:
        return sampler.num_samples
    return len(range(sampler.rank, len(sampler.dataset), sampler.num_replicas))


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes, in place, and return it (no-op with one process)."""
    if world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Average ``tensor`` over all processes (no-op with one process)."""
    size = world_size()
    if size > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= size
    return tensor


def barrier() -> None:
    """Wait for all processes (no-op with one process)."""
    if world_size() > 1:
        dist.barrier()
