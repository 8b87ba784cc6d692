"""The demo photograph: shorty.png from the data folder or mirror, else the cat shipped with the package."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
import torch

from nbhelpers.data.images import DemoImage, demo_image
from nbhelpers.storage import DataSource

pytestmark = pytest.mark.usefixtures("isolated_data")


def test_demo_image_falls_back_to_the_shipped_cat():
    found = demo_image()
    assert isinstance(found, DemoImage)
    X = found.image
    assert (
        X.shape == (1, 3, 300, 451) and X.dtype == torch.float32 and X.is_contiguous()
    )
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert (
        found.source.kind == "embedded"
        and "CC0" in found.source.detail
        and "Chelsea" in found.source.detail
    )
    assert found.source.path is not None and found.source.path.name == "chelsea.jpg"
    # no path of this machine in the printed source
    assert "/" not in found.source.detail
    # RGB, not BGR: the cat is orange, red well above blue
    assert X[0, 0].mean() > X[0, 2].mean() + 0.1


def test_the_shipped_cat_is_small_and_matches_scikit_image_where_installed():
    from importlib import resources

    assert (
        len(
            resources.files("nbhelpers.data")
            .joinpath("files", "chelsea.jpg")
            .read_bytes()
        )
        <= 60_000
    )
    skimage_data = pytest.importorskip("skimage.data")
    reference = (
        torch.from_numpy(skimage_data.chelsea()).permute(2, 0, 1).float() / 255.0
    )
    assert (demo_image().image[0] - reference).abs().mean() < 0.01  # JPEG quality 95


def test_demo_image_does_not_import_scikit_image(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # any import of it would fail
    assert demo_image().image.shape == (1, 3, 300, 451)


def test_demo_image_prefers_shorty_png_from_the_data_folder(isolated_data):
    isolated_data.mkdir(parents=True)
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    cv2.imwrite(str(isolated_data / "shorty.png"), rgb[:, :, ::-1])  # OpenCV writes BGR
    found = demo_image()
    assert torch.equal(
        found.image[0], torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0
    )
    assert found.source == DataSource("local", "$NBHELPERS_DATA/shorty.png")
    assert demo_image(size=(10, 12)).image.shape == (1, 3, 10, 12)


def test_demo_image_from_the_mirror(tmp_path, monkeypatch):
    (tmp_path / "mirror").mkdir()
    cv2.imwrite(str(tmp_path / "mirror" / "shorty.png"), np.zeros((8, 8, 3), np.uint8))
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(tmp_path / "mirror"))
    assert str(demo_image().source) == "mirror ($NBHELPERS_DATA_MIRROR/shorty.png)"


def test_demo_image_names_an_undecodable_file(isolated_data):
    isolated_data.mkdir(parents=True)
    (isolated_data / "shorty.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="shorty.png"):
        demo_image()


@pytest.mark.parametrize(
    "size",
    [
        (0, 10),
        (10, -1),
        (10,),
        (10, 10, 3),
        128,
        (1.5, 2),
        (True, 4),
        "128x128",
        (10**5, 10),
    ],
)
def test_demo_image_refuses_bad_sizes_naming_them(size):
    with pytest.raises(ValueError, match="size must be None or"):
        demo_image(size=size)


def test_resizing_keeps_values_in_0_1():
    X = demo_image(size=(224, 224)).image
    assert X.shape == (1, 3, 224, 224) and 0.0 <= X.min() and X.max() <= 1.0
