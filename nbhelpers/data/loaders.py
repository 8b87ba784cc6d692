"""Batches served from tensors that already live on the compute device.

A ``DataLoader`` over an in-memory dataset collates every batch on the CPU, item by item, and the
training loop then copies it to the accelerator: per step, Python work for each example plus one
host-to-device transfer. For a data set as small as MNIST (60,000 images of 28 x 28 float32 values,
about 190 MB) the whole set fits in GPU memory, and ``DeviceBatches`` keeps it there:
each epoch draws one permutation with ``torch.randperm`` on the device, gathers the shuffled set
with a single indexing kernel, and yields views of it. No per-step transfer, no per-example
Python, no synchronisation with the host.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class DeviceBatches:
    """An iterable of ``(x, y)`` batches cut from two tensors held on one device.

    Args:
        images: (N, ...) inputs, e.g. (N, 1, 28, 28) float32.
        targets: (N,) labels (or (N, ...) targets).
        batch_size: examples per batch (>= 1).
        shuffle: draw a new order each epoch (``torch.randperm`` on the device).
        generator: the random generator of the shuffle; it must live on ``device`` (a CUDA
            generator for CUDA data: ``torch.Generator(device="cuda").manual_seed(0)``). None
            uses the device's default generator, i.e. ``torch.manual_seed``. Each epoch advances
            the generator, so a seeded generator gives the same sequence of epochs every run.
        device: where to hold the data; None means the device ``images`` is on. The tensors are
            copied there once, here.
        drop_last: leave out the last batch when it is smaller than ``batch_size`` (needed by
            ``Trainer(cuda_graph=True)``, which requires every batch to have the same shape).

    Each batch is ``(x, y)`` with x: (b, ...) and y: (b,), b = ``batch_size`` except perhaps the
    last one. The yielded tensors are views of a per-epoch copy: they stay valid after the next
    epoch starts. ``len()`` is the number of batches per epoch.

    Raises:
        ValueError: mismatched lengths, an empty data set, a bad ``batch_size``, or a generator
            on another device than the data.
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        drop_last: bool = False,
    ) -> None:
        if not isinstance(images, torch.Tensor) or not isinstance(targets, torch.Tensor):
            raise ValueError(
                f"images and targets must be tensors, got {type(images).__name__} and {type(targets).__name__}"
            )
        if images.dim() == 0 or targets.dim() == 0:
            raise ValueError(
                f"images and targets need a batch dimension, got shapes {tuple(images.shape)} and {tuple(targets.shape)}"
            )
        if images.shape[0] != targets.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {targets.shape[0]} targets")
        if images.shape[0] == 0:
            raise ValueError("DeviceBatches needs at least one example, got an empty data set")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.device = torch.device(device) if device is not None else images.device
        if generator is not None and generator.device.type != self.device.type:
            raise ValueError(
                f"the generator lives on {generator.device}, the data on {self.device}: "
                f"create it with torch.Generator(device={self.device.type!r})"
            )
        if drop_last and images.shape[0] < batch_size:
            raise ValueError(
                f"drop_last=True with {images.shape[0]} examples and batch_size={batch_size} leaves no batch"
            )
        self.images = images.to(self.device)
        self.targets = targets.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.drop_last = drop_last

    def __len__(self) -> int:
        count = self.images.shape[0]
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        images, targets = self.images, self.targets
        if self.shuffle:
            order = torch.randperm(images.shape[0], device=self.device, generator=self.generator)
            images, targets = images[order], targets[order]  # one gather per epoch, on the device
        for batch in range(len(self)):
            start = batch * self.batch_size
            yield images[start : start + self.batch_size], targets[start : start + self.batch_size]

    def __repr__(self) -> str:
        return (
            f"DeviceBatches({self.images.shape[0]} examples on {self.device}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last})"
        )
