"""Data folders, the offline switch, source recording and the demo image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from nbhelpers.data import paths
from nbhelpers.data.images import demo_image

pytestmark = pytest.mark.usefixtures("isolated_data")


def test_data_dir_is_read_at_call_time(tmp_path, monkeypatch):
    monkeypatch.setenv("NBHELPERS_DATA", str(tmp_path / "a"))
    assert paths.data_dir() == (tmp_path / "a").resolve()
    monkeypatch.setenv("NBHELPERS_DATA", str(tmp_path / "b"))
    assert paths.data_dir(create=True) == (tmp_path / "b").resolve()
    assert (tmp_path / "b").is_dir()


def test_data_dir_defaults_to_data_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("NBHELPERS_DATA")
    monkeypatch.chdir(tmp_path)
    assert paths.data_dir() == tmp_path.resolve() / "data"


def test_mirror_dir_unset_set_and_missing(tmp_path, monkeypatch):
    assert paths.mirror_dir() is None
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(tmp_path))
    assert paths.mirror_dir() == tmp_path.resolve()
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        paths.mirror_dir()


def test_find_data_prefers_the_data_folder_over_the_mirror(tmp_path, monkeypatch, isolated_data):
    mirror = tmp_path / "mirror"
    (mirror / "x").mkdir(parents=True)
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(mirror))
    assert paths.find_data("x") == (mirror.resolve() / "x", "mirror")
    (isolated_data / "x").mkdir(parents=True)
    assert paths.find_data("x") == (isolated_data.resolve() / "x", "local")
    assert paths.find_data("y") is None


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_offline_switch(monkeypatch, value, expected):
    monkeypatch.setenv("NBHELPERS_OFFLINE", value)
    assert paths.offline() is expected


def test_record_source_sets_the_attribute_and_checks_the_label():
    def loader() -> None:
        pass

    assert paths.record_source(loader, "mirror (/somewhere)") == "mirror (/somewhere)"
    assert loader.source == "mirror (/somewhere)"
    with pytest.raises(ValueError, match="somewhere else"):
        paths.record_source(loader, "somewhere else")


def test_demo_image_falls_back_to_chelsea():
    X = demo_image()
    assert X.shape == (1, 3, 300, 451) and X.dtype == torch.float32
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert demo_image.source == "embedded (scikit-image chelsea)"


def test_demo_image_prefers_shorty_png_from_the_data_folder(isolated_data):
    isolated_data.mkdir(parents=True)
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    cv2.imwrite(str(isolated_data / "shorty.png"), rgb[:, :, ::-1])  # OpenCV writes BGR
    X = demo_image()
    assert torch.equal(X[0], torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0)
    assert demo_image.source.startswith("local (") and "shorty.png" in demo_image.source
    assert demo_image(size=(10, 12)).shape == (1, 3, 10, 12)


def test_demo_image_names_an_undecodable_file(isolated_data):
    isolated_data.mkdir(parents=True)
    (isolated_data / "shorty.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="shorty.png"):
        demo_image()
