"""Multi-process data-parallel training on torch.distributed, started by ``torchrun``.

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK for each process. The Trainer reads them, joins the
process group (gloo on the CPU, NCCL on CUDA) unless the script already did, wraps the model in
DistributedDataParallel and gives every process its own shard of the DataLoaders.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, RandomSampler
from torch.utils.data.distributed import DistributedSampler


def world_size_from_env() -> int:
    """WORLD_SIZE as set by torchrun; 1 when unset."""
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        size = int(value)
    except ValueError:
        raise ValueError(f"WORLD_SIZE={value!r} is not an integer") from None
    if size < 1:
        raise ValueError(f"WORLD_SIZE={value!r} must be >= 1")
    return size


def wants_distributed() -> bool:
    """True when this process was started as one of several (WORLD_SIZE > 1)."""
    return world_size_from_env() > 1


def process_device(device: torch.device) -> torch.device:
    """This process's device: a bare ``cuda`` becomes ``cuda:LOCAL_RANK``, one GPU per process."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def init_process_group(device: torch.device) -> None:
    """Join the default process group unless already in one: NCCL for CUDA, gloo otherwise."""
    if not dist.is_available():
        raise ValueError("WORLD_SIZE > 1, but this PyTorch build has no torch.distributed")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


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
        raise ValueError(f"a distributed run needs torch DataLoaders to shard, got {type(loader).__name__}")
    if isinstance(loader.sampler, DistributedSampler):
        return loader
    if loader.batch_size is None:
        raise ValueError("cannot shard a DataLoader built with a custom batch_sampler; pass batch_size instead")
    shuffle = train and isinstance(loader.sampler, RandomSampler)
    seed = loader.generator.initial_seed() if loader.generator is not None else 0
    sampler = DistributedSampler(loader.dataset, shuffle=shuffle, seed=seed, drop_last=False)
    extra = {"prefetch_factor": loader.prefetch_factor} if loader.num_workers > 0 else {}
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
