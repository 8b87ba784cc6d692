"""nbhelpers.data.pipeline: decoding into a uint8 cache and batched augmentation (DeviceBatches: test_device_batches.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.transforms.v2 import functional as TF

from nbhelpers.data.histopathology import (
    HistopathologicDataset,
    infer_transform,
    read_patch,
)
from nbhelpers.data.pipeline import (
    CROP,
    BatchAugment,
    centre_crop,
    decode_patches,
    flip_rotate_crop,
    patch_loader,
    random_flip_rotation,
)

ANGLES = [index / 2 for index in range(-40, 41)]  # -20 .. 20 degrees in steps of 0.5


@pytest.fixture
def patch_files(tmp_path) -> list[str]:
    """Six 96x96 patch files with distinct, known RGB content (written as OpenCV's BGR)."""
    rng = np.random.default_rng(0)
    paths = []
    for index in range(6):
        rgb = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
        path = tmp_path / f"p{index}.tif"
        cv2.imwrite(str(path), rgb[:, :, ::-1])
        paths.append(str(path))
    return paths


def _random_images(batch: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(
        0,
        256,
        (batch, 3, 96, 96),
        dtype=torch.uint8,
        generator=torch.Generator().manual_seed(seed),
    )


def _torchvision_one_by_one(
    images: torch.Tensor, params: dict[str, torch.Tensor], bilinear: bool = False
) -> torch.Tensor:
    """The reference: torchvision's per-image functional transforms with the same parameters."""
    interpolation = (
        TF.InterpolationMode.BILINEAR if bilinear else TF.InterpolationMode.NEAREST
    )
    out = []
    for image, hflip, vflip, degrees in zip(
        images, params["hflip"], params["vflip"], params["degrees"]
    ):
        image = TF.to_dtype(image, torch.float32, scale=True)
        image = TF.horizontal_flip(image) if hflip else image
        image = TF.vertical_flip(image) if vflip else image
        image = TF.rotate(image, float(degrees), interpolation=interpolation)
        out.append(TF.center_crop(image, [CROP, CROP]))
    return torch.stack(out)


def _every_angle_and_flip(angles: list[float] = ANGLES) -> dict[str, torch.Tensor]:
    flips = [(h, v) for h in (False, True) for v in (False, True)]
    cases = [(h, v, a) for a in angles for h, v in flips]
    return {
        "hflip": torch.tensor([h for h, _, _ in cases]),
        "vflip": torch.tensor([v for _, v, _ in cases]),
        "degrees": torch.tensor([a for _, _, a in cases], dtype=torch.float32),
    }


# ---- decoding ------------------------------------------------------------------------------------


def test_decode_patches_gives_rgb_uint8_in_order(patch_files):
    cache = decode_patches(patch_files[::-1], batch_size=4)
    assert cache.shape == (6, 3, 96, 96) and cache.dtype == torch.uint8
    for position, path in enumerate(patch_files[::-1]):
        assert torch.equal(
            cache[position], torch.from_numpy(read_patch(path)).permute(2, 0, 1)
        )


def test_decode_patches_in_a_worker_process_gives_the_same(patch_files):
    assert torch.equal(
        decode_patches(patch_files, num_workers=1, batch_size=2),
        decode_patches(patch_files),
    )


def test_decode_patches_names_a_bad_file(tmp_path, patch_files):
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="broken.tif"):
        decode_patches([patch_files[0], str(broken)])
    small = tmp_path / "small.tif"
    cv2.imwrite(str(small), np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(ValueError, match="small.tif.*expected 96x96"):
        decode_patches([str(small)])
    with pytest.raises(ValueError, match="no paths"):
        decode_patches([])
    with pytest.raises(ValueError, match="num_workers"):
        decode_patches(patch_files, num_workers=-1)


# ---- the fixed transform -------------------------------------------------------------------------


def test_centre_crop_equals_infer_transform_bit_for_bit():
    images = _random_images(5)
    per_item = infer_transform()
    expected = torch.stack(
        [per_item(image.permute(1, 2, 0).numpy()) for image in images]
    )
    result = centre_crop(images)
    assert result.dtype == torch.float32 and result.shape == (5, 3, CROP, CROP)
    assert torch.equal(result, expected)
    assert torch.equal(
        centre_crop(images.float() / 255.0),
        centre_crop(images.float() / 255.0).contiguous(),
    )


# ---- the random transform ------------------------------------------------------------------------


def test_flip_rotate_crop_equals_torchvision_at_every_angle_and_flip():
    params = _every_angle_and_flip()
    image = _random_images(1, seed=1)
    images = image.expand(len(params["degrees"]), -1, -1, -1)
    assert torch.equal(
        flip_rotate_crop(images, params), _torchvision_one_by_one(images, params)
    )


def test_bilinear_mode_matches_torchvision_to_rounding():
    params = _every_angle_and_flip(ANGLES[::5])
    images = _random_images(1, seed=2).expand(len(params["degrees"]), -1, -1, -1)

    torch.testing.assert_close(
        flip_rotate_crop(images, params, mode="bilinear"),
        _torchvision_one_by_one(images, params, bilinear=True),
        rtol=0,
        atol=1e-4,
    )


def test_zero_angle_without_flips_is_the_centre_crop():
    images = _random_images(3)
    params = {
        "hflip": torch.zeros(3, dtype=torch.bool),
        "vflip": torch.zeros(3, dtype=torch.bool),
        "degrees": torch.zeros(3),
    }
    assert torch.equal(flip_rotate_crop(images, params), centre_crop(images))


def test_no_fill_reaches_the_crop_within_20_degrees():
    white = torch.full((len(ANGLES) * 4, 3, 96, 96), 255, dtype=torch.uint8)
    assert torch.equal(
        flip_rotate_crop(white, _every_angle_and_flip()),
        torch.ones(len(white), 3, CROP, CROP),
    )


def test_parameter_distribution_matches_the_per_image_transforms():
    params = random_flip_rotation(20_000, generator=torch.Generator().manual_seed(0))
    assert abs(params["hflip"].float().mean().item() - 0.5) < 0.02
    assert abs(params["vflip"].float().mean().item() - 0.5) < 0.02
    degrees = params["degrees"]
    assert degrees.min() >= -20 and degrees.max() <= 20
    assert degrees.min() < -19.9 and degrees.max() > 19.9  # reaches both ends
    # uniform
    assert (
        abs(degrees.mean().item()) < 0.3
        and abs(degrees.std().item() - 40 / 12**0.5) < 0.2
    )


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 9), seed=st.integers(0, 2**31 - 1), as_float=st.booleans())
def test_batch_augment_shapes_dtype_and_range(batch, seed, as_float):
    images = _random_images(batch, seed=seed % 1000)
    if as_float:
        images = images.float() / 255.0
    out = BatchAugment()(images, torch.Generator().manual_seed(seed))
    assert out.shape == (batch, 3, CROP, CROP) and out.dtype == torch.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_batch_augment_draws_from_the_generator_it_is_given():
    images = _random_images(8)
    augment = BatchAugment()
    first = augment(images, torch.Generator().manual_seed(5))
    assert torch.equal(first, augment(images, torch.Generator().manual_seed(5)))
    assert not torch.equal(first, augment(images, torch.Generator().manual_seed(6)))
    generator = torch.Generator().manual_seed(5)
    # the generator advances
    assert not torch.equal(augment(images, generator), augment(images, generator))
    torch.manual_seed(0)
    from_global = augment(images)
    torch.manual_seed(0)
    assert torch.equal(from_global, augment(images))  # no generator: torch's global one
    assert not hasattr(augment, "generator")  # nothing random is stored on the object


def test_centre_crop_takes_and_ignores_a_generator():
    images = _random_images(2)
    assert torch.equal(
        centre_crop(images, torch.Generator().manual_seed(0)), centre_crop(images)
    )


def test_bad_arguments_are_rejected():
    images = _random_images(2)
    params = random_flip_rotation(2)
    with pytest.raises(ValueError, match="mode"):
        flip_rotate_crop(images, params, mode="bicubic")
    with pytest.raises(ValueError, match="params"):
        flip_rotate_crop(images, random_flip_rotation(3))
    with pytest.raises(ValueError, match=r"\(B, 3"):
        flip_rotate_crop(images[:, :1], params)
    with pytest.raises(ValueError, match=r"\(B, 3"):
        centre_crop(images[:, :, :40, :40])
    for degrees in (-1, float("nan"), float("inf"), True, "20"):
        with pytest.raises(ValueError, match=f"max_degrees must be .*got {degrees!r}"):
            BatchAugment(max_degrees=degrees)
    with pytest.raises(
        ValueError, match="mode must be 'nearest' or 'bilinear', got 'cubic'"
    ):
        BatchAugment(mode="cubic")
    with pytest.raises(ValueError, match="uint8 or floating"):
        centre_crop(images.long())
    with pytest.raises(ValueError, match="images must be a .* tensor, got ndarray"):
        BatchAugment()(images.numpy(), None)
    with pytest.raises(
        ValueError, match="generator must be a torch.Generator or None, got 5"
    ):
        BatchAugment()(images, 5)
    with pytest.raises(ValueError, match="batch must be an int >= 0, got -1"):
        random_flip_rotation(-1)


# ---- per-item loader with OpenCV workers ---------------------------------------------------------


def test_patch_loader_configuration_and_results(patch_files):
    import pandas as pd

    root = Path(patch_files[0]).parent
    (root / "train").mkdir()
    for path in patch_files:
        Path(path).rename(root / "train" / Path(path).name)
    labels = pd.DataFrame(
        {"id": [f"p{i}" for i in range(6)], "label": [0, 1, 0, 1, 1, 0]}
    )
    dataset = HistopathologicDataset(labels, root, transform=infer_transform())
    plain = patch_loader(dataset, 4, shuffle=False)
    assert plain.num_workers == 0 and not plain.persistent_workers
    assert plain.pin_memory == torch.cuda.is_available()
    workers = patch_loader(dataset, 4, shuffle=False, num_workers=1, pin_memory=False)
    assert (
        workers.persistent_workers
        and workers.prefetch_factor == 4
        and workers.worker_init_fn is not None
    )
    for (x0, y0), (x1, y1) in zip(plain, workers):
        assert torch.equal(x0, x1) and torch.equal(y0, y1)
    with pytest.raises(ValueError, match="num_workers"):
        patch_loader(dataset, 4, shuffle=False, num_workers=-2)
