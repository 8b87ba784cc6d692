"""Batches served from tensors that already live on the compute device.

A ``DataLoader`` over an in-memory dataset collates every batch on the CPU, item by item, and the
training loop then copies it to the accelerator: per step, Python work for each example plus one
host-to-device transfer. For a data set as small as MNIST (60,000 images of 28 x 28 float32 values,
about 190 MB) or 32,000 histopathology patches kept as uint8 (885 MB), the whole set fits in GPU
memory, and ``DeviceBatches`` keeps it there: each batch is one gather (``index_select``) on the
device, optionally followed by a batched random transform (``BatchAugment``) run there too.

Reproducibility: every random draw of an epoch (the order and the transform's draws) comes from
one CPU ``torch.Generator`` seeded from the base seed and the epoch number. The order is therefore
the same on every device, a run can resume in the middle (``state_dict``/``set_epoch``, which the
Trainer calls), and nothing depends on torch's global random state after construction.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterator

import torch

from nbhelpers import checks
from nbhelpers.device import checked_device

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator whose state is a function of (``seed``, ``epoch``) only.

    The two numbers are hashed together (BLAKE2b), so neighbouring seeds and epochs give unrelated
    streams, unlike ``manual_seed(seed + epoch)``, where seed 1 epoch 0 would repeat seed 0 epoch 1.
    """
    digest = hashlib.blake2b(f"{seed}:{epoch}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") % 2**63)


class DeviceBatches:
    """An iterable of ``(x, y)`` batches cut from two tensors held on one device.

    Args:
        inputs: (N, ...) inputs, e.g. (N, 1, 28, 28) float32 or (N, 3, 96, 96) uint8.
        targets: (N,) labels (or (N, ...) targets).
        batch_size: examples per batch (an int >= 1).
        shuffle: a new order every epoch; False keeps the order of ``inputs``.
        seed: the base seed (an int >= 0) of every epoch's generator; None draws one from torch's
            global generator here, once (so ``torch.manual_seed`` before construction makes it
            reproducible).
        drop_last: leave out the last batch when it is smaller than ``batch_size`` (static shapes,
            e.g. for ``Trainer(cuda_graph=True)``).
        transform: ``transform(x, generator) -> x'``, a batched transform run on the device, e.g.
            ``BatchAugment()`` for training or ``centre_crop`` for validation; its random draws
            must come from ``generator`` (a CPU generator). None: x as stored.
        channels_last: give each x in channels-last memory format (4-D x; faster convolutions on GPUs).
        device: where to hold the data; None means the device ``inputs`` is on. The tensors are
            copied there once, here: later changes to the caller's tensors do not reach the batches.

    Each batch is ``(x, y)`` with x: (b, ...) (after ``transform``) and y: (b,), b = ``batch_size``
    except perhaps the last one. Every batch is a fresh tensor: it shares storage neither with the
    caller's tensors nor with the stored set, so an in-place operation on a batch (a model's
    forward pass, say) cannot change the data set. ``len()`` is the number of batches per epoch.

    Epochs: iterating uses epoch ``self.epoch`` and then advances it by one, so a plain loop gets a
    new order every pass; ``set_epoch(epoch)`` chooses the epoch of the next pass (the Trainer calls
    it before each epoch). ``state_dict()`` holds the base seed and the epoch.

    Raises:
        ValueError: an argument that is not what is described above (the message names it).
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        transform: Transform | None = None,
        channels_last: bool = False,
        device: torch.device | str | None = None,
    ) -> None:
        for name, tensor in (("inputs", inputs), ("targets", targets)):
            if not isinstance(tensor, torch.Tensor):
                raise ValueError(
                    f"{name} must be a tensor, got {type(tensor).__name__}"
                )
            if tensor.dim() == 0:
                raise ValueError(f"{name} needs a batch dimension, got a 0-dim tensor")
        count = inputs.shape[0]
        if targets.shape[0] != count:
            raise ValueError(
                f"inputs hold {count} examples but targets hold {targets.shape[0]}"
            )
        if count == 0:
            raise ValueError(
                f"DeviceBatches needs at least one example, got empty inputs of shape {tuple(inputs.shape)}"
            )
        checks.integer(batch_size, "batch_size")
        checks.flag(shuffle, "shuffle")
        checks.flag(drop_last, "drop_last")
        checks.flag(channels_last, "channels_last")
        if seed is not None:
            checks.integer(seed, "seed", 0)
        if drop_last and count < batch_size:
            raise ValueError(
                f"drop_last=True with {count} examples and batch_size={batch_size} leaves no batch"
            )
        if transform is not None and not callable(transform):
            raise ValueError(
                f"transform must be callable as transform(x, generator), got {transform!r}"
            )
        if channels_last and transform is None and inputs.dim() != 4:
            raise ValueError(
                f"channels_last=True needs 4-D inputs (N, C, H, W), got shape {tuple(inputs.shape)}"
            )
        if device is None:
            self.device = inputs.device
        elif isinstance(device, (str, torch.device)):
            self.device = checked_device(str(device), label=f"device={str(device)!r}")
        else:
            raise ValueError(
                f"device must be a torch.device, a device name or None, got {device!r}"
            )

        # A private copy on the device (clone when the data is there already): the caller's tensors
        # and the stored set never alias.
        self.inputs = inputs.detach().to(self.device, copy=True)
        self.targets = targets.detach().to(self.device, copy=True)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.transform = transform
        self.channels_last = channels_last
        self._seed = (
            seed
            if seed is not None
            else int(torch.empty((), dtype=torch.int64).random_().item())
        )
        self._epoch = 0

    # ---- epochs and state

    @property
    def seed(self) -> int:
        """The base seed of every epoch's generator."""
        return self._seed

    @property
    def epoch(self) -> int:
        """The epoch the next pass will use."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch ``epoch`` (an int >= 0): its order and transform draws."""
        self._epoch = checks.integer(epoch, "epoch", 0)

    def state_dict(self) -> dict[str, int]:
        """``{"seed": base seed, "epoch": next epoch}``: all a resumed run needs to continue exactly."""
        return {"seed": self._seed, "epoch": self._epoch}

    def reseeded(self, seed: int) -> DeviceBatches:
        """These batches (the same stored tensors, not copied) from base seed ``seed``,
        epoch 0: another run's orders and transform draws over the same data."""
        other = copy.copy(self)
        other._seed, other._epoch = checks.integer(seed, "seed", 0), 0
        return other

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore what ``state_dict`` returned (checked before anything changes)."""
        if not isinstance(state, dict) or set(state) != {"seed", "epoch"}:
            raise ValueError(
                f"a DeviceBatches state is a dict with the keys 'seed' and 'epoch', got {state!r}"
            )
        seed, epoch = (
            checks.integer(state["seed"], "state['seed']", 0),
            checks.integer(state["epoch"], "state['epoch']", 0),
        )
        self._seed, self._epoch = seed, epoch

    # ---- iteration

    def __len__(self) -> int:
        count = self.inputs.shape[0]
        return (
            count // self.batch_size if self.drop_last else -(-count // self.batch_size)
        )

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = epoch_generator(self._seed, self._epoch)
        self._epoch += 1
        return self._batches(generator)

    def _batches(
        self, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        count = self.inputs.shape[0]
        # The order is drawn on the CPU (the same on every device) and copied over once per epoch.
        order = (
            torch.randperm(count, generator=generator)
            if self.shuffle
            else torch.arange(count)
        )
        order = order.to(self.device)
        for batch in range(len(self)):
            index = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            # a gather: a new tensor, never a view
            x = self.inputs.index_select(0, index)
            y = self.targets.index_select(0, index)
            if self.transform is not None:
                x = self._transformed(x, generator)
            if self.channels_last:
                if x.dim() != 4:
                    raise ValueError(
                        f"channels_last=True needs 4-D batches (B, C, H, W), got shape {tuple(x.shape)}"
                    )
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y

    def _transformed(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        assert self.transform is not None
        out = self.transform(x, generator)
        if (
            not isinstance(out, torch.Tensor)
            or out.dim() == 0
            or out.shape[0] != x.shape[0]
        ):
            got = (
                f"shape {tuple(out.shape)}"
                if isinstance(out, torch.Tensor)
                else type(out).__name__
            )
            raise ValueError(
                f"transform {self.transform!r} must return a ({x.shape[0]}, ...) tensor, got {got}"
            )
        return out

    def __repr__(self) -> str:
        return (
            f"DeviceBatches({self.inputs.shape[0]} examples on {self.device}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, seed={self._seed}, epoch={self._epoch}, drop_last={self.drop_last}, "
            f"transform={self.transform!r}, channels_last={self.channels_last})"
        )
