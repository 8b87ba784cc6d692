"""A fast input pipeline for histopathology patches: decode once, augment whole batches on the device.

The lecture notebook's pipeline decodes every patch file with OpenCV and runs torchvision's per-image
transforms in the main process, for every patch of every epoch. Two faster paths live here:

1. ``patch_loader``: the same per-item ``HistopathologicDataset`` in a DataLoader with worker
   processes set up for OpenCV (``cv2.setNumThreads(0)`` in each worker, persistent workers,
   pinned memory when training on CUDA, prefetching).
2. ``decode_patches`` + ``DeviceBatches(..., transform=BatchAugment())``: every patch decoded
   once into one uint8 tensor ``(N, 3, 96, 96)`` (27,648 bytes a patch: 885 MB for 32,000),
   moved to the device once; each batch is then gathered from it and augmented there in one call
   of ``BatchAugment``: per-sample random flips and rotation plus the centre crop, as one gather
   of the crop's pixels. Nothing is decoded, copied or transformed per patch per epoch.

``BatchAugment`` draws the same distribution of transforms as ``train_transform()`` (horizontal
and vertical flip each with probability 1/2, a rotation angle uniform in [-20, 20] degrees,
nearest-neighbour sampling, the 49x49 centre crop), and ``centre_crop`` gives exactly what
``infer_transform()`` gives, batched. The tests check both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from nbhelpers import checks
from nbhelpers.data.histopathology import CROP, read_patch

PATCH = 96
MAX_DEGREES = 20.0
# torchvision's CenterCrop puts the crop's top-left corner at int(round((96 - 49) / 2)) = 24.
CROP_START = int(round((PATCH - CROP) / 2.0))


# ---- decoding ------------------------------------------------------------------------------------


def _setup_opencv_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: one OpenCV thread per worker process.

    Each worker already is a unit of parallelism; OpenCV's own thread pool inside every worker
    would oversubscribe the cores (and may deadlock after fork).
    """
    import cv2

    cv2.setNumThreads(0)


class _PatchFiles(Dataset):
    """Decoded patch files as (3, 96, 96) uint8 CHW tensors (for ``decode_patches``)."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = read_patch(self.paths[index])
        if image.shape != (PATCH, PATCH, 3):
            raise ValueError(
                f"{self.paths[index]} is {image.shape[1]}x{image.shape[0]}, expected {PATCH}x{PATCH} RGB"
            )
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def decode_patches(
    paths: Sequence[str], num_workers: int = 0, batch_size: int = 256
) -> torch.Tensor:
    """Decode patch files (OpenCV, BGR -> RGB) into one tensor.

    Args:
        paths: N file paths, e.g. ``HistopathologicDataset.paths``.
        num_workers: DataLoader worker processes decoding in parallel (0: this process).
        batch_size: files per worker task.

    Returns:
        (N, 3, 96, 96) uint8 RGB, in the order of ``paths``.

    Raises:
        ValueError: no paths, or a file that OpenCV cannot decode or that is not 96x96 RGB.
    """
    if len(paths) == 0:
        raise ValueError("decode_patches got no paths")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    loader = DataLoader(
        _PatchFiles(paths),
        batch_size=batch_size,
        num_workers=num_workers,
        worker_init_fn=_setup_opencv_worker if num_workers > 0 else None,
    )
    out = torch.empty((len(paths), 3, PATCH, PATCH), dtype=torch.uint8)
    start = 0
    for batch in loader:
        out[start : start + len(batch)] = batch
        start += len(batch)
    return out


def patch_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int = 0,
    pin_memory: bool | None = None,
    prefetch_factor: int = 4,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader over a per-item dataset (e.g. ``HistopathologicDataset``) set up for OpenCV workers.

    With ``num_workers > 0``: ``cv2.setNumThreads(0)`` in each worker, persistent workers (not
    restarted every epoch) and ``prefetch_factor`` batches in flight per worker. ``pin_memory``
    defaults to ``torch.cuda.is_available()`` so that host-to-GPU copies can be asynchronous.
    """
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    workers: dict[str, Any] = {}
    if num_workers > 0:
        workers = {
            "worker_init_fn": _setup_opencv_worker,
            "persistent_workers": True,
            "prefetch_factor": prefetch_factor,
        }
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        generator=generator,
        drop_last=drop_last,
        **workers,
    )


# ---- batched augmentation ------------------------------------------------------------------------


def _as_float(images: torch.Tensor) -> torch.Tensor:
    checks.patch_batch(images, CROP)
    if images.dtype == torch.uint8:
        # multiply by 1/255 rather than divide by 255: bit for bit what torchvision's ToDtype gives
        return images.to(torch.float32).mul_(1.0 / 255.0)
    if not images.is_floating_point():
        raise ValueError(f"expected uint8 or floating images, got {images.dtype}")
    return images.float()


def centre_crop(
    images: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The 49x49 centre crop of a batch, as ``infer_transform()`` crops one patch.

    Usable as the validation ``transform`` of ``DeviceBatches`` (the same call form as
    ``BatchAugment``); nothing is random, so ``generator`` is not used.

    Args:
        images: (B, 3, H, W) uint8 in [0, 255] or float in [0, 1].
        generator: ignored (checked to be a CPU ``torch.Generator`` or None).

    Returns:
        (B, 3, 49, 49) float32 in [0, 1], on the input's device.
    """
    checks.generator(generator)
    x = _as_float(images)
    top, left = (
        int(round((x.shape[2] - CROP) / 2.0)),
        int(round((x.shape[3] - CROP) / 2.0)),
    )
    return x[:, :, top : top + CROP, left : left + CROP].contiguous()


def random_flip_rotation(
    batch: int,
    max_degrees: float = MAX_DEGREES,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Per-sample transform parameters, drawn on the CPU.

    Returns:
        A dict with the keys "hflip" and "vflip", (B,) bool tensors, each True with probability
        1/2, and "degrees", a (B,) float32 tensor uniform in [-max_degrees, max_degrees]; the
        distributions of torchvision's RandomHorizontalFlip, RandomVerticalFlip and
        RandomRotation(max_degrees).
    """
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 0:
        raise ValueError(f"batch must be an int >= 0, got {batch!r}")
    if (
        isinstance(max_degrees, bool)
        or not isinstance(max_degrees, (int, float))
        or not 0 <= max_degrees < math.inf
    ):
        raise ValueError(
            f"max_degrees must be a finite number >= 0, got {max_degrees!r}"
        )
    checks.generator(generator)
    hflip = torch.rand(batch, generator=generator) < 0.5
    vflip = torch.rand(batch, generator=generator) < 0.5
    degrees = (torch.rand(batch, generator=generator) * 2.0 - 1.0) * max_degrees
    return {"hflip": hflip, "vflip": vflip, "degrees": degrees}


def flip_rotate_crop(
    images: torch.Tensor,
    params: dict[str, torch.Tensor],
    size: int = CROP,
    mode: str = "nearest",
) -> torch.Tensor:
    """Flip, rotate and centre-crop each image of a batch with its own parameters,
    in one resampling: torchvision's RandomHorizontalFlip, RandomVerticalFlip,
    RandomRotation and CenterCrop(size), in that order. Output pixel q samples the input
    at c + F R^-1 (q - c) (c the centre, R the rotation, F the flips); only the crop is
    computed.

    Args:
        images: (B, 3, H, W) uint8 in [0, 255] or float in [0, 1], any device.
        params: as from ``random_flip_rotation(B)``.
        size: side of the centre crop; mode: "nearest" (torchvision's) or "bilinear".

    Returns:
        (B, 3, size, size) float32 in [0, 1]; points outside the image read 0.
    """
    checks.flip_rotate_crop_arguments(images, params, size, mode)
    batch, _, height, width = images.shape
    src_x, src_y = _source_coordinates(params, height, width, size, images.device)
    if mode == "bilinear":
        # Pixel coordinates -> grid_sample's [-1, 1] with align_corners=True (pixel
        # centres at the ends).
        grid = torch.stack(
            (src_x / (width - 1) * 2.0 - 1.0, src_y / (height - 1) * 2.0 - 1.0), dim=-1
        )
        return F.grid_sample(
            _as_float(images),
            grid,
            mode="bilinear",
            padding_mode="zeros",
            align_corners=True,
        )
    # Nearest neighbour as a gather of size*size pixels per image: no resampling of
    # whole images, and uint8 input stays uint8 until the crop is cut out.
    col, row = torch.round(src_x).long(), torch.round(src_y).long()  # half to even
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    flat = row.clamp(0, height - 1) * width + col.clamp(0, width - 1)
    pixels = images.reshape(batch, 3, height * width)
    picked = pixels.gather(2, flat.view(batch, 1, -1).expand(batch, 3, size * size))
    picked = picked.view(batch, 3, size, size) * inside.view(batch, 1, size, size)
    return _as_float(picked)


def _source_coordinates(
    params: dict[str, torch.Tensor],
    height: int,
    width: int,
    size: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, size, size) input x and y pixel coordinates that each centre-crop pixel samples."""
    theta = params["degrees"].to(device, torch.float32) * (math.pi / 180.0)
    cos, sin = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    # -1 where flipped
    sx = (1.0 - 2.0 * params["hflip"].to(device, torch.float32))[:, None, None]
    sy = (1.0 - 2.0 * params["vflip"].to(device, torch.float32))[:, None, None]
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    # Output pixel coordinates relative to the centre.
    u = (torch.arange(left, left + size, device=device, dtype=torch.float32) - cx)[
        None, None, :
    ]
    v = (torch.arange(top, top + size, device=device, dtype=torch.float32) - cy)[
        None, :, None
    ]
    # Inverse of a counter-clockwise rotation (the image's y axis points down), then the flips.
    src_x = sx * (cos * u - sin * v) + cx
    src_y = sy * (sin * u + cos * v) + cy
    return src_x, src_y


class BatchAugment:
    """The training augmentation of chapter 05 for whole batches: ``train_transform()``, batched.

    ``augment(images, generator)``: ``(B, 3, 96, 96)`` uint8 or float ``-> (B, 3, 49, 49)`` float32
    in [0, 1]: per-sample random horizontal and vertical flips (probability 1/2 each) and a
    rotation uniform in [-max_degrees, max_degrees], then the centre crop, computed on the device
    the images are on. The draws come from ``generator`` (a CPU ``torch.Generator``; None: torch's
    global generator), so the same generator state gives the same batch on every device. It is
    the ``transform`` protocol of ``DeviceBatches``, which passes each epoch's generator.

    Args:
        max_degrees: the largest rotation, in degrees (a finite number >= 0).
        mode: "nearest" (torchvision's default for rotations) or "bilinear".
    """

    def __init__(self, max_degrees: float = MAX_DEGREES, mode: str = "nearest") -> None:
        if isinstance(max_degrees, bool) or not isinstance(max_degrees, (int, float)):
            raise ValueError(f"max_degrees must be a number, got {max_degrees!r}")
        if not math.isfinite(max_degrees) or max_degrees < 0:
            raise ValueError(
                f"max_degrees must be a finite number >= 0, got {max_degrees!r}"
            )
        if mode not in ("nearest", "bilinear"):
            raise ValueError(f"mode must be 'nearest' or 'bilinear', got {mode!r}")
        self.max_degrees = float(max_degrees)
        self.mode = mode

    def __call__(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        checks.patch_batch(images, CROP)
        params = random_flip_rotation(images.shape[0], self.max_degrees, generator)
        return flip_rotate_crop(images, params, CROP, self.mode)

    def __repr__(self) -> str:
        return f"BatchAugment(max_degrees={self.max_degrees}, mode={self.mode!r})"
