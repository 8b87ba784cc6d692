"""Hostile inputs against the batch pipeline: DeviceBatches, BatchAugment, centre_crop."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from harness import Case, Workspace, run_case

from nbhelpers.data import DeviceBatches
from nbhelpers.data.pipeline import (
    BatchAugment,
    centre_crop,
    flip_rotate_crop,
    random_flip_rotation,
)


def _xy(n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(n, dtype=torch.float32).view(n, 1).repeat(1, 3), torch.arange(n)


def _batches(*args: Any, **options: Any) -> DeviceBatches:
    inputs, targets = _xy()
    args = args or (inputs, targets, 2)
    return DeviceBatches(*args, **options)


def _images(n: int = 2, size: int = 96) -> torch.Tensor:
    return torch.randint(
        0,
        256,
        (n, 3, size, size),
        dtype=torch.uint8,
        generator=torch.Generator().manual_seed(0),
    )


def _in_place_forward(
    options: dict[str, Any],
) -> tuple[torch.Tensor, torch.Tensor, DeviceBatches]:
    """Iterate twice over one epoch, negating every batch in place the first time (a model with an
    in-place first layer would); returns the caller's inputs, their copy, and the batches."""
    inputs, targets = _xy()
    kept = inputs.clone()
    batches = DeviceBatches(inputs, targets, 4, **options)
    for x, _ in batches:
        x.neg_()
    return inputs, kept, batches


def _unchanged(
    result: tuple[torch.Tensor, torch.Tensor, DeviceBatches], _ws: Workspace
) -> None:
    inputs, kept, batches = result
    assert torch.equal(inputs, kept), "the caller's tensor changed"
    batches.set_epoch(0)
    seen = sorted(int(v) for x, _ in batches for v in x[:, 0])
    assert seen == list(range(6)), f"the stored set changed: {seen}"


def _arg(case_id: str, target: str, tried: str, act: Any, names: str) -> Case:
    return Case(
        case_id,
        "arguments",
        target,
        tried,
        "ValueError naming the value",
        act=act,
        raises=ValueError,
        names=names,
    )


CASES = [
    _arg(
        "inputs-not-a-tensor",
        "DeviceBatches",
        "inputs as a Python list",
        lambda ws: _batches([1, 2], torch.zeros(2), 1),
        "inputs must be a tensor, got list",
    ),
    _arg(
        "targets-not-a-tensor",
        "DeviceBatches",
        "targets=None",
        lambda ws: _batches(torch.zeros(2, 1), None, 1),
        "targets must be a tensor, got NoneType",
    ),
    _arg(
        "inputs-scalar",
        "DeviceBatches",
        "a 0-dim inputs tensor",
        lambda ws: _batches(torch.tensor(3.0), torch.zeros(1), 1),
        "inputs needs a batch dimension",
    ),
    _arg(
        "length-mismatch",
        "DeviceBatches",
        "5 inputs, 4 targets",
        lambda ws: _batches(torch.zeros(5, 2), torch.zeros(4), 2),
        "inputs hold 5 examples but targets hold 4",
    ),
    _arg(
        "empty",
        "DeviceBatches",
        "no examples",
        lambda ws: _batches(torch.zeros(0, 3), torch.zeros(0), 2),
        r"empty inputs of shape \(0, 3\)",
    ),
    _arg(
        "batch-size-zero",
        "DeviceBatches",
        "batch_size=0",
        lambda ws: _batches(*_xy(), 0),
        "batch_size must be an int >= 1, got 0",
    ),
    _arg(
        "batch-size-bool",
        "DeviceBatches",
        "batch_size=True",
        lambda ws: _batches(*_xy(), True),
        "got True",
    ),
    _arg(
        "batch-size-float",
        "DeviceBatches",
        "batch_size=32.0",
        lambda ws: _batches(*_xy(), 32.0),
        "got 32.0",
    ),
    _arg(
        "drop-last-leaves-nothing",
        "DeviceBatches",
        "6 examples, batch_size=8, drop_last=True",
        lambda ws: _batches(*_xy(), 8, drop_last=True),
        "drop_last=True with 6 examples and batch_size=8 leaves no batch",
    ),
    _arg(
        "transform-not-callable",
        "DeviceBatches",
        "transform='flip'",
        lambda ws: _batches(transform="flip"),
        "transform must be callable .* got 'flip'",
    ),
    _arg(
        "shuffle-not-bool",
        "DeviceBatches",
        "shuffle='yes'",
        lambda ws: _batches(shuffle="yes"),
        "shuffle must be True or False, got 'yes'",
    ),
    _arg(
        "seed-negative",
        "DeviceBatches",
        "seed=-5",
        lambda ws: _batches(seed=-5),
        "seed must be an int >= 0, got -5",
    ),
    _arg(
        "seed-generator",
        "DeviceBatches",
        "seed=torch.Generator() (the old API)",
        lambda ws: _batches(seed=torch.Generator()),
        "seed must be an int >= 0, got <torch._C.Generator",
    ),
    _arg(
        "device-unknown",
        "DeviceBatches",
        "device='gpu'",
        lambda ws: _batches(device="gpu"),
        "device='gpu'",
    ),
    _arg(
        "channels-last-2d",
        "DeviceBatches",
        "channels_last=True for (N, 3) inputs",
        lambda ws: _batches(channels_last=True),
        r"channels_last=True needs 4-D inputs .*\(6, 3\)",
    ),
    _arg(
        "set-epoch-negative",
        "DeviceBatches.set_epoch",
        "set_epoch(-1)",
        lambda ws: _batches().set_epoch(-1),
        "epoch must be an int >= 0, got -1",
    ),
    _arg(
        "load-state-foreign",
        "DeviceBatches.load_state_dict",
        "a state without 'epoch'",
        lambda ws: _batches().load_state_dict({"seed": 3}),
        "keys 'seed' and 'epoch', got \\{'seed': 3\\}",
    ),
    _arg(
        "transform-changes-batch",
        "DeviceBatches",
        "a transform that returns one example per batch",
        lambda ws: list(_batches(transform=lambda x, g: x[:1])),
        r"must return a \(2, \.\.\.\) tensor, got shape \(1, 3\)",
    ),
    _arg(
        "transform-returns-list",
        "DeviceBatches",
        "a transform that returns a list",
        lambda ws: list(_batches(transform=lambda x, g: x.tolist())),
        "must return a .* tensor, got list",
    ),
    _arg(
        "augment-degrees-nan",
        "BatchAugment",
        "max_degrees=nan",
        lambda ws: BatchAugment(max_degrees=math.nan),
        "max_degrees must be a finite number >= 0, got nan",
    ),
    _arg(
        "augment-degrees-negative",
        "BatchAugment",
        "max_degrees=-20",
        lambda ws: BatchAugment(max_degrees=-20),
        "got -20",
    ),
    _arg(
        "augment-mode",
        "BatchAugment",
        "mode='bicubic'",
        lambda ws: BatchAugment(mode="bicubic"),
        "mode must be 'nearest' or 'bilinear', got 'bicubic'",
    ),
    _arg(
        "augment-generator-seed",
        "BatchAugment",
        "an int where a generator goes",
        lambda ws: BatchAugment()(_images(), 0),
        "generator must be a torch.Generator or None, got 0",
    ),
    _arg(
        "augment-small-images",
        "BatchAugment",
        "(2, 3, 32, 32) images, smaller than the crop",
        lambda ws: BatchAugment()(_images(size=32), None),
        r"expected \(B, 3, H >= 49, W >= 49\) images, got \(2, 3, 32, 32\)",
    ),
    _arg(
        "augment-hwc-images",
        "BatchAugment",
        "channels-last HWC images (2, 96, 96, 3)",
        lambda ws: BatchAugment()(_images().permute(0, 2, 3, 1), None),
        r"got \(2, 96, 96, 3\)",
    ),
    _arg(
        "centre-crop-int64",
        "centre_crop",
        "int64 images",
        lambda ws: centre_crop(_images().long()),
        "expected uint8 or floating images, got torch.int64",
    ),
    _arg(
        "centre-crop-not-tensor",
        "centre_crop",
        "a NumPy array",
        lambda ws: centre_crop(_images().numpy()),
        "images must be a .* tensor, got ndarray",
    ),
    _arg(
        "random-params-batch-float",
        "random_flip_rotation",
        "batch=2.5",
        lambda ws: random_flip_rotation(2.5),
        "batch must be an int >= 0, got 2.5",
    ),
    _arg(
        "flip-rotate-params-mismatch",
        "flip_rotate_crop",
        "parameters for 3 images, 2 images",
        lambda ws: flip_rotate_crop(_images(), random_flip_rotation(3)),
        r"params\['hflip'\] must have shape \(2,\)",
    ),
    Case(
        "in-place-forward-plain",
        "arguments",
        "DeviceBatches",
        "a model that changes its input batch in place",
        "the caller's tensor and the stored set unchanged",
        act=lambda ws: _in_place_forward({}),
        expect=_unchanged,
    ),
    Case(
        "in-place-forward-shuffled-transformed",
        "arguments",
        "DeviceBatches",
        "in-place changes to shuffled batches from an identity transform",
        "the caller's tensor and the stored set unchanged",
        act=lambda ws: _in_place_forward(
            {"shuffle": True, "seed": 0, "transform": lambda x, g: x}
        ),
        expect=_unchanged,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_batches_case(case: Case, workspace: Workspace) -> None:
    run_case(case, workspace)
