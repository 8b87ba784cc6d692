"""Histopathology: labels, the dataset (ids, decoding, BGR -> RGB), transforms, choice of root."""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from support import MIRROR
from support import needs_mirror as needs_mirror_of

from nbhelpers import device
from nbhelpers.data import histopathology as histo
from nbhelpers.data import synthetic_histopathology as synthetic
from nbhelpers.data.histopathology import (
    HistopathologicDataset,
    histopathology_root,
    infer_transform,
    load_histopathology_labels,
    train_transform,
)

needs_mirror = needs_mirror_of(histo.KAGGLE_DIR)
SMALL = 24  # the synthetic size the tests use instead of the profile's


@pytest.fixture(autouse=True)
def tiny_synthetic_set(isolated_data, monkeypatch):
    """On top of the empty data folder: the quick profile with a tiny synthetic set."""
    monkeypatch.setenv("NBHELPERS_PROFILE", "quick")
    monkeypatch.setitem(device.SIZES["histopathology"]["quick"], "synthetic", SMALL)


@pytest.fixture
def layout(tmp_path) -> Path:
    """A small Kaggle-layout folder with 4 labelled patches (distinct R, G, B values)."""
    root = tmp_path / "kaggle"
    (root / "train").mkdir(parents=True)
    rows = []
    for index in range(4):
        rgb = np.zeros((96, 96, 3), np.uint8)
        rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100 + index, 30
        cv2.imwrite(str(root / "train" / f"p{index}.tif"), rgb[:, :, ::-1])
        rows.append(f"p{index},{index % 2}")
    (root / "train_labels.csv").write_text("id,label\n" + "\n".join(rows) + "\n")
    return root


# ---- labels ----------------------------------------------------------------------------------


def test_labels_are_read_with_string_ids(layout):
    (layout / "train_labels.csv").write_text("id,label\n0123,1\nNA,0\n")
    labels = load_histopathology_labels(layout)
    assert labels.to_dict("list") == {"id": ["0123", "NA"], "label": [1, 0]}
    assert labels["label"].dtype == np.int64


@pytest.mark.parametrize(
    "content, message",
    [
        ("id,target\na,1\n", "label"),
        ("id,label\na,2\n", "'2' of id 'a'"),
        ("id,label\na,yes\n", "'yes'"),
        ("id,label\na,\n", "is not 0 or 1"),
        ("id,label\n,1\n", "empty id"),
        ("id,label\na,1\na,0\n", "'a' appears more than once"),
    ],
)
def test_bad_labels_file_raises_value_error(layout, content, message):
    (layout / "train_labels.csv").write_text(content)
    with pytest.raises(ValueError, match=message):
        load_histopathology_labels(layout)


def test_missing_labels_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_labels.csv"):
        load_histopathology_labels(tmp_path)


# ---- dataset -----------------------------------------------------------------------------------


def test_items_are_rgb_uint8_with_int_labels(layout):
    dataset = HistopathologicDataset(load_histopathology_labels(layout), root=layout)
    assert len(dataset) == 4
    image, label = dataset[1]
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    assert image[0, 0].tolist() == [200, 101, 30]  # R, G, B: OpenCV's BGR was converted
    assert label == 1 and isinstance(label, int)
    assert dataset.source == f"local ({layout.resolve()})"


def test_transforms_give_49x49_float_crops(layout):
    labels = load_histopathology_labels(layout)
    image, _ = HistopathologicDataset(labels, root=layout)[0]
    for transform in (train_transform(), infer_transform()):
        X, _ = HistopathologicDataset(labels, root=layout, transform=transform)[0]
        assert type(X) is torch.Tensor and X.shape == (3, 49, 49) and X.dtype == torch.float32
        assert 0.0 <= X.min() and X.max() <= 1.0
    centre = torch.from_numpy(image[23:72, 23:72]).permute(2, 0, 1).float() / 255.0
    assert torch.allclose(infer_transform()(image), centre)


def test_train_transform_is_random_and_label_free():
    image = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    torch.manual_seed(0)
    outputs = [train_transform()(image) for _ in range(8)]
    assert all(X.shape == (3, 49, 49) for X in outputs)
    assert any(not torch.equal(outputs[0], X) for X in outputs[1:])


@pytest.mark.parametrize("bad_id", ["../p0", "sub/p0", "sub\\p0", "..", ".", "", "nope"])
def test_bad_ids_are_named_when_the_dataset_is_built(layout, bad_id):
    labels = pd.DataFrame({"id": ["p0", bad_id], "label": [0, 1]})
    with pytest.raises(ValueError, match="patch id " + re.escape(repr(bad_id))):
        HistopathologicDataset(labels, root=layout)


def test_bad_labels_and_split_are_rejected(layout):
    with pytest.raises(ValueError, match="label 3 of patch id 'p0'"):
        HistopathologicDataset(pd.DataFrame({"id": ["p0"], "label": [3]}), root=layout)
    with pytest.raises(ValueError, match="'label' column"):
        HistopathologicDataset(pd.DataFrame({"id": ["p0"]}), root=layout)
    with pytest.raises(ValueError, match="split"):
        HistopathologicDataset(pd.DataFrame({"id": ["p0"], "label": [0]}), root=layout, split="valid")


def test_corrupt_file_is_named_when_read(layout):
    (layout / "train" / "p2.tif").write_bytes(b"II*\x00 definitely not a TIFF image" * 10)
    dataset = HistopathologicDataset(load_histopathology_labels(layout), root=layout)
    dataset[1]  # the others still work
    with pytest.raises(ValueError, match="p2.tif"):
        dataset[2]


def test_unlabelled_test_split(layout):
    (layout / "test").mkdir()
    (layout / "train" / "p3.tif").rename(layout / "test" / "t0.tif")
    dataset = HistopathologicDataset(pd.DataFrame({"id": ["t0"]}), root=layout, split="test")
    image, label = dataset[0]
    assert image.shape == (96, 96, 3) and label == -1


# ---- the real patches in the mirror ------------------------------------------------------------


@needs_mirror
def test_mirror_patches_match_pil_rgb(monkeypatch):
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(MIRROR))
    root = histopathology_root()
    assert root == MIRROR.resolve() / histo.KAGGLE_DIR
    assert histopathology_root.source == f"mirror ({root})"
    labels = load_histopathology_labels(root)
    assert len(labels) == 15 and labels["label"].sum() == 5
    dataset = HistopathologicDataset(labels)
    assert dataset.source == histopathology_root.source
    for index in (0, 7, 14):
        image, label = dataset[index]
        expected = np.asarray(Image.open(root / "train" / f"{labels['id'][index]}.tif").convert("RGB"))
        assert np.array_equal(image, expected)
        assert label == labels["label"][index]
    test_ids = pd.DataFrame({"id": sorted(p.stem for p in (root / "test").glob("*.tif"))})
    test_set = HistopathologicDataset(test_ids, split="test", transform=infer_transform())
    assert len(test_set) == 11 and test_set[0][0].shape == (3, 49, 49) and test_set[0][1] == -1


@needs_mirror
def test_too_few_real_patches_give_the_synthetic_set(monkeypatch, isolated_data):
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(MIRROR))
    assert histopathology_root(min_patches=15).parent == MIRROR.resolve()
    root = histopathology_root(min_patches=16)
    assert root == isolated_data.resolve() / "histopathology-synthetic-v1-n24-seed0"
    assert histopathology_root.source.startswith("embedded (synthetic, 24 patches")


# ---- choice of root without real data ---------------------------------------------------------


def test_synthetic_root_is_generated_once_and_reused(isolated_data):
    root = histopathology_root()
    assert root == isolated_data.resolve() / f"histopathology-synthetic-v1-n{SMALL}-seed0"
    assert histopathology_root.source == f"embedded (synthetic, {SMALL} patches, {root})"
    labels = load_histopathology_labels(root)
    assert len(labels) == SMALL
    dataset = HistopathologicDataset(labels, transform=infer_transform())
    assert dataset.source == histopathology_root.source
    assert dataset[0][0].shape == (3, 49, 49)
    stamp = (root / "train_labels.csv").stat().st_mtime_ns
    assert histopathology_root() == root
    assert (root / "train_labels.csv").stat().st_mtime_ns == stamp
    bigger = histopathology_root(min_patches=SMALL + 6)
    assert bigger.name == f"histopathology-synthetic-v1-n{SMALL + 6}-seed0"
    assert len(load_histopathology_labels(bigger)) == SMALL + 6


def test_local_real_layout_wins_over_synthetic(isolated_data, layout):
    isolated_data.mkdir(parents=True)
    layout.rename(isolated_data / histo.KAGGLE_DIR)
    root = histopathology_root()
    assert root == isolated_data.resolve() / histo.KAGGLE_DIR
    assert histopathology_root.source == f"local ({root})"
    assert histopathology_root(min_patches=5).name.startswith("histopathology-synthetic")


def test_generation_finished_meanwhile_by_another_process_is_used(isolated_data, monkeypatch):
    real_rename = os.rename

    def competitor_finishes_first(source, target):
        shutil.copytree(source, target)  # another process put its complete copy in place just before us
        real_rename(source, target)

    monkeypatch.setattr(synthetic.os, "rename", competitor_finishes_first)
    root = histopathology_root()
    monkeypatch.setattr(synthetic.os, "rename", real_rename)
    assert len(load_histopathology_labels(root)) == SMALL
    assert sorted(p.name for p in isolated_data.iterdir()) == [root.name]  # no temporary folder left


def test_concurrent_calls_agree(isolated_data):
    results, errors = [], []
    barrier = threading.Barrier(3)

    def call() -> None:
        barrier.wait()
        try:
            results.append(histopathology_root())
        except Exception as error:  # noqa: BLE001 (collected and asserted below)
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(results)) == 1
    assert [p.name for p in isolated_data.iterdir()] == [results[0].name]


def test_a_foreign_folder_under_the_synthetic_name_is_refused(isolated_data):
    (isolated_data / f"histopathology-synthetic-v1-n{SMALL}-seed0").mkdir(parents=True)
    with pytest.raises(ValueError, match="not a complete synthetic set"):
        histopathology_root()


def test_negative_min_patches():
    with pytest.raises(ValueError, match="min_patches"):
        histopathology_root(min_patches=-1)
