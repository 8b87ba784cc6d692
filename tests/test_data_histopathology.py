"""Histopathology: labels, the dataset (ids, decoding, BGR -> RGB, sizes), transforms, where patches come from."""

from __future__ import annotations

import os
import re
import shutil
import stat
import threading
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from support import MIRROR, write_patch_layout
from support import needs_mirror as needs_mirror_of

from nbhelpers import storage
from nbhelpers.data import histopathology as histo
from nbhelpers.data.histopathology import (
    HistopathologicDataset,
    PatchFolder,
    find_kaggle_patches,
    infer_transform,
    load_histopathology_labels,
    read_patch,
    synthetic_patches,
    train_transform,
)
from nbhelpers.storage import DataSource

needs_mirror = needs_mirror_of(histo.KAGGLE_DIR)
SMALL = 24  # a synthetic size small enough for unit tests
SYNTHETIC = f"histopathology-synthetic-v1-n{SMALL}-seed0"

pytestmark = pytest.mark.usefixtures("isolated_data")


@pytest.fixture
def layout(tmp_path) -> Path:
    """A small Kaggle-layout folder with 4 labelled patches (distinct R, G, B values)."""
    return write_patch_layout(tmp_path / "kaggle")


# ---- labels ----------------------------------------------------------------------------------


def test_labels_are_read_with_string_ids(layout):
    (layout / "train_labels.csv").write_text("id,label\n0123,1\nNA,0\n")
    labels = load_histopathology_labels(layout)
    assert labels.to_dict("list") == {"id": ["0123", "NA"], "label": [1, 0]}
    assert labels["label"].dtype == np.int64


@pytest.mark.parametrize(
    "content, message",
    [
        ("id,target\na,1\n", r"lacks the column\(s\) \['label'\]"),
        ("id,label\na,2\n", "line 2: label '2' of id 'a'"),
        ("id,label\na,0\nb,yes\n", "line 3: label 'yes'"),
        ("id,label\na,\n", "is not 0 or 1"),
        ("id,label\n,1\n", "line 2: empty id"),
        (
            "id,label\na,1\na,0\n",
            r"id 'a' \(line 2\) and id 'a' \(line 3\) are the same id",
        ),
        (
            "id,label\na,1\n a ,0\n",
            r"id 'a' \(line 2\) and id ' a ' \(line 3\) are the same id",
        ),
        ("", "is empty"),
        ("\n\n", "is empty"),
        ('id,label\n"a,1\n', "is not a valid CSV"),
    ],
)
def test_bad_labels_file_raises_value_error_naming_it(layout, content, message):
    (layout / "train_labels.csv").write_text(content)
    with pytest.raises(ValueError, match=message) as caught:
        load_histopathology_labels(layout)
    assert "train_labels.csv" in str(caught.value)


def test_binary_labels_file_is_named(layout):
    (layout / "train_labels.csv").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="train_labels.csv is not UTF-8 text"):
        load_histopathology_labels(layout)


def test_padded_ids_are_stripped(layout):
    (layout / "train_labels.csv").write_text("id,label\n p0 , 1\n")
    assert load_histopathology_labels(layout).to_dict("list") == {
        "id": ["p0"],
        "label": [1],
    }


def test_missing_or_dangling_labels_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no labels file .*train_labels.csv"):
        load_histopathology_labels(tmp_path)
    (tmp_path / "train_labels.csv").symlink_to(tmp_path / "gone.csv")
    with pytest.raises(
        FileNotFoundError, match="train_labels.csv is a dangling symbolic link"
    ):
        load_histopathology_labels(tmp_path)


# ---- dataset -----------------------------------------------------------------------------------


def test_items_are_rgb_uint8_with_int_labels(layout):
    dataset = HistopathologicDataset(load_histopathology_labels(layout), layout)
    assert len(dataset) == 4
    image, label = dataset[1]
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    assert image[0, 0].tolist() == [200, 101, 30]  # R, G, B: OpenCV's BGR was converted
    assert label == 1 and isinstance(label, int)
    assert dataset.root == layout.resolve()


def test_root_is_required(layout):
    labels = load_histopathology_labels(layout)
    with pytest.raises(TypeError):
        HistopathologicDataset(labels)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="folder path"):
        HistopathologicDataset(labels, None)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="no folder .*nowhere/train"):
        HistopathologicDataset(labels, layout / "nowhere")


def test_transforms_give_49x49_float_crops(layout):
    labels = load_histopathology_labels(layout)
    image, _ = HistopathologicDataset(labels, layout)[0]
    for transform in (train_transform(), infer_transform()):
        X, _ = HistopathologicDataset(labels, layout, transform=transform)[0]
        assert (
            type(X) is torch.Tensor
            and X.shape == (3, 49, 49)
            and X.dtype == torch.float32
        )
        assert 0.0 <= X.min() and X.max() <= 1.0
    centre = torch.from_numpy(image[23:72, 23:72]).permute(2, 0, 1).float() / 255.0
    assert torch.allclose(infer_transform()(image), centre)


def test_train_transform_is_random_and_label_free():
    image = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    torch.manual_seed(0)
    outputs = [train_transform()(image) for _ in range(8)]
    assert all(X.shape == (3, 49, 49) for X in outputs)
    assert any(not torch.equal(outputs[0], X) for X in outputs[1:])


@pytest.mark.parametrize(
    "bad_id", ["../p0", "sub/p0", "sub\\p0", "..", ".", "", " p0", "nope"]
)
def test_bad_ids_are_named_when_the_dataset_is_built(layout, bad_id):
    labels = pd.DataFrame({"id": ["p0", bad_id], "label": [0, 1]})
    with pytest.raises(ValueError, match="patch id " + re.escape(repr(bad_id))):
        HistopathologicDataset(labels, layout)


def test_a_dangling_symlink_id_fails_when_the_dataset_is_built(layout):
    (layout / "train" / "ghost.tif").symlink_to(layout / "train" / "deleted.tif")
    labels = pd.DataFrame({"id": ["p0", "ghost"], "label": [0, 1]})
    with pytest.raises(
        ValueError, match=r"patch id 'ghost': .*ghost.tif is a dangling symbolic link"
    ):
        HistopathologicDataset(labels, layout)


def test_a_symlink_to_a_folder_is_refused_and_to_a_file_accepted(layout):
    (layout / "train" / "dir.tif").symlink_to(layout, target_is_directory=True)
    with pytest.raises(ValueError, match=r"patch id 'dir': .*dir.tif is not a file"):
        HistopathologicDataset(pd.DataFrame({"id": ["dir"], "label": [0]}), layout)
    (layout / "train" / "alias.tif").symlink_to(layout / "train" / "p1.tif")
    dataset = HistopathologicDataset(
        pd.DataFrame({"id": ["alias"], "label": [1]}), layout
    )
    assert dataset[0][0][0, 0].tolist() == [200, 101, 30]


def test_bad_labels_and_split_are_rejected(layout):
    with pytest.raises(ValueError, match="label 3 of patch id 'p0'"):
        HistopathologicDataset(pd.DataFrame({"id": ["p0"], "label": [3]}), layout)
    with pytest.raises(ValueError, match="'label' column"):
        HistopathologicDataset(pd.DataFrame({"id": ["p0"]}), layout)
    with pytest.raises(ValueError, match="split"):
        HistopathologicDataset(
            pd.DataFrame({"id": ["p0"], "label": [0]}), layout, split="valid"
        )


def test_corrupt_file_is_named_when_read(layout):
    (layout / "train" / "p2.tif").write_bytes(
        b"II*\x00 definitely not a TIFF image" * 10
    )
    dataset = HistopathologicDataset(load_histopathology_labels(layout), layout)
    dataset[1]  # the others still work
    with pytest.raises(ValueError, match="p2.tif"):
        dataset[2]


@pytest.mark.parametrize(
    "image, described",
    [
        (np.zeros((70, 50, 3), np.uint8), "50x70 image with 3 channel"),
        (np.zeros((96, 96), np.uint8), "96x96 image with 1 channel"),
        (np.zeros((96, 96, 4), np.uint8), "96x96 image with 4 channel"),
        (np.zeros((96, 96, 3), np.uint16), "96x96 image with 3 channel.* of uint16"),
    ],
)
def test_a_patch_that_is_not_96x96_rgb_is_refused_naming_file_and_size(
    layout, image, described
):
    cv2.imwrite(str(layout / "train" / "p0.tif"), image)
    dataset = HistopathologicDataset(
        load_histopathology_labels(layout), layout, transform=infer_transform()
    )
    with pytest.raises(ValueError, match=f"p0.tif is a {described}"):
        dataset[0]
    with pytest.raises(ValueError, match="expected 96x96 RGB, uint8"):
        read_patch(layout / "train" / "p0.tif")


def test_unlabelled_test_split(layout):
    (layout / "test").mkdir()
    (layout / "train" / "p3.tif").rename(layout / "test" / "t0.tif")
    dataset = HistopathologicDataset(pd.DataFrame({"id": ["t0"]}), layout, split="test")
    image, label = dataset[0]
    assert image.shape == (96, 96, 3) and label == -1


# ---- real patches: data folder and mirror -------------------------------------------------------


@needs_mirror
def test_mirror_patches_match_pil_rgb(monkeypatch):
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(MIRROR))
    found = find_kaggle_patches()
    root = MIRROR.resolve() / histo.KAGGLE_DIR
    assert found == PatchFolder(
        root, DataSource("mirror", f"$NBHELPERS_DATA_MIRROR/{histo.KAGGLE_DIR}"), 15
    )
    labels = load_histopathology_labels(found.root)
    assert len(labels) == 15 and labels["label"].sum() == 5
    dataset = HistopathologicDataset(labels, found.root)
    for index in (0, 7, 14):
        image, label = dataset[index]
        expected = np.asarray(
            Image.open(root / "train" / f"{labels['id'][index]}.tif").convert("RGB")
        )
        assert np.array_equal(image, expected)
        assert label == labels["label"][index]
    test_ids = pd.DataFrame(
        {"id": sorted(p.stem for p in (root / "test").glob("*.tif"))}
    )
    test_set = HistopathologicDataset(
        test_ids, found.root, split="test", transform=infer_transform()
    )
    assert (
        len(test_set) == 11
        and test_set[0][0].shape == (3, 49, 49)
        and test_set[0][1] == -1
    )


@needs_mirror
def test_too_few_real_patches_give_none(monkeypatch):
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(MIRROR))
    assert find_kaggle_patches(min_labelled=15).labelled == 15
    assert find_kaggle_patches(min_labelled=16) is None


def test_the_data_folder_wins_over_the_mirror(isolated_data, tmp_path, monkeypatch):
    write_patch_layout(tmp_path / "mirror" / histo.KAGGLE_DIR, count=6)
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(tmp_path / "mirror"))
    assert find_kaggle_patches().source.kind == "mirror"
    write_patch_layout(isolated_data / histo.KAGGLE_DIR, count=4)
    local = find_kaggle_patches()
    assert (
        str(local.source) == f"local ($NBHELPERS_DATA/{histo.KAGGLE_DIR})"
        and local.labelled == 4
    )
    assert find_kaggle_patches(min_labelled=5).source.kind == "mirror"  # the bigger one
    assert find_kaggle_patches(min_labelled=7) is None


def test_nothing_found_without_real_patches():
    assert find_kaggle_patches() is None


@pytest.mark.parametrize("value", [-1, 1.5, "10", True, None])
def test_min_labelled_must_be_an_int_at_least_0(value):
    with pytest.raises(
        ValueError,
        match=f"min_labelled must be an int >= 0, got {re.escape(repr(value))}",
    ):
        find_kaggle_patches(min_labelled=value)


# ---- synthetic patches ----------------------------------------------------------------------------


def test_synthetic_set_is_generated_once_and_reused(isolated_data):
    found = synthetic_patches(SMALL)
    root = isolated_data.resolve() / SYNTHETIC
    detail = f"synthetic, {SMALL} patches, seed 0, $NBHELPERS_DATA/{SYNTHETIC}"
    assert found == PatchFolder(root, DataSource("embedded", detail), SMALL)
    labels = load_histopathology_labels(found.root)
    assert len(labels) == SMALL
    dataset = HistopathologicDataset(labels, found.root, transform=infer_transform())
    assert dataset[0][0].shape == (3, 49, 49)
    stamp = (root / "train_labels.csv").stat().st_mtime_ns
    assert synthetic_patches(SMALL) == found
    assert (root / "train_labels.csv").stat().st_mtime_ns == stamp
    bigger = synthetic_patches(SMALL + 6, seed=2)
    assert bigger.root.name == f"histopathology-synthetic-v1-n{SMALL + 6}-seed2"
    assert len(load_histopathology_labels(bigger.root)) == SMALL + 6


def test_synthetic_folders_get_the_umask_permissions(isolated_data):
    old = os.umask(0o002)
    try:
        root = synthetic_patches(3).root
    finally:
        os.umask(old)
    assert stat.S_IMODE(root.stat().st_mode) == 0o775
    assert stat.S_IMODE((root / "train_labels.csv").stat().st_mode) == 0o664


def test_a_read_only_data_folder_gives_a_temporary_synthetic_set(isolated_data):
    isolated_data.mkdir()
    os.chmod(isolated_data, 0o555)
    try:
        found = synthetic_patches(3)
    finally:
        os.chmod(isolated_data, 0o755)
    try:
        assert (
            found.source.kind == "embedded"
            and "temporary folder" in found.source.detail
        )
        assert "not writable" in found.source.detail and str(found.root) not in str(
            found.source
        )
        assert len(load_histopathology_labels(found.root)) == 3
        assert list(isolated_data.iterdir()) == []
    finally:
        shutil.rmtree(found.root.parent)


def test_a_read_only_data_folder_still_serves_an_existing_synthetic_set(isolated_data):
    root = synthetic_patches(3).root
    os.chmod(isolated_data, 0o555)
    try:
        assert synthetic_patches(3).root == root
    finally:
        os.chmod(isolated_data, 0o755)


def test_generation_finished_meanwhile_by_another_process_is_used(
    isolated_data, monkeypatch
):
    real_rename = os.rename

    def competitor_finishes_first(source, target):
        # another process put its complete copy in place just before us
        shutil.copytree(source, target)
        real_rename(source, target)

    monkeypatch.setattr(storage.os, "rename", competitor_finishes_first)
    found = synthetic_patches(SMALL)
    monkeypatch.setattr(storage.os, "rename", real_rename)
    assert len(load_histopathology_labels(found.root)) == SMALL
    # no temporary folder left
    assert sorted(p.name for p in isolated_data.iterdir()) == [SYNTHETIC]


def test_concurrent_calls_agree(isolated_data):
    results, errors = [], []
    barrier = threading.Barrier(3)

    def call() -> None:
        barrier.wait()
        try:
            results.append(synthetic_patches(SMALL))
        except Exception as error:  # noqa: BLE001 (collected and asserted below)
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(results)) == 1
    assert [p.name for p in isolated_data.iterdir()] == [SYNTHETIC]


def test_a_foreign_folder_under_the_synthetic_name_is_refused(isolated_data):
    (isolated_data / SYNTHETIC).mkdir(parents=True)
    with pytest.raises(
        ValueError,
        match=f"{SYNTHETIC} is not a complete synthetic set.*delete the folder",
    ):
        synthetic_patches(SMALL)


def test_a_corrupt_marker_or_missing_patches_are_refused(isolated_data):
    root = synthetic_patches(SMALL).root
    first = next((root / "train").iterdir())
    first.unlink()
    with pytest.raises(ValueError, match=f"{SMALL - 1} patches, expected {SMALL}"):
        synthetic_patches(SMALL)
    (root / "synthetic.json").write_text("{not json")
    with pytest.raises(ValueError, match="synthetic.json unreadable"):
        synthetic_patches(SMALL)


@pytest.mark.parametrize(
    "n, seed, message",
    [
        (0, 0, "n must be"),
        (-3, 0, "n must be"),
        (2.5, 0, "n must be"),
        (True, 0, "n must be"),
        (10**7, 0, "n must be"),
        (3, -1, "seed must be"),
        (3, "0", "seed must be"),
    ],
)
def test_synthetic_patches_checks_its_arguments(n, seed, message, isolated_data):
    with pytest.raises(ValueError, match=message):
        synthetic_patches(n, seed=seed)
    assert not isolated_data.exists() or list(isolated_data.iterdir()) == []


def test_a_set_completed_between_the_check_and_the_generation_is_used(
    isolated_data, monkeypatch
):
    isolated_data.mkdir()
    real_lexists = os.path.lexists
    calls = []

    def other_process_finishes_after_the_first_check(path):
        calls.append(path)
        if len(calls) == 1 and str(path).endswith(SYNTHETIC):
            histo.make_synthetic_histopathology(path, SMALL, 0)
            return False  # what this process saw just before the other one finished
        return real_lexists(path)

    monkeypatch.setattr(
        histo.os.path, "lexists", other_process_finishes_after_the_first_check
    )
    found = synthetic_patches(SMALL)
    monkeypatch.setattr(histo.os.path, "lexists", real_lexists)
    assert found.root == isolated_data.resolve() / SYNTHETIC and found.labelled == SMALL
