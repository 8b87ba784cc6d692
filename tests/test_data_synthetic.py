"""The synthetic histopathology generator: layout, determinism, colours, the centre-square label rule."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nbhelpers.data.histopathology import (
    HistopathologicDataset,
    infer_transform,
    load_histopathology_labels,
    read_patch,
    train_transform,
)
from nbhelpers.data.synthetic_histopathology import (
    make_synthetic_histopathology,
    synthetic_id,
    synthetic_patch,
    synthetic_slide,
    window_labels,
)

CENTRE = slice(32, 64)


def _digest(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in files
    }


@pytest.fixture(scope="module")
def patches():
    return [synthetic_patch(0, index) for index in range(400)]


def test_same_seed_gives_byte_identical_files(tmp_path):
    first = make_synthetic_histopathology(tmp_path / "a", 30, seed=3, n_test=4)
    second = make_synthetic_histopathology(tmp_path / "b", 30, seed=3, n_test=4)
    other = make_synthetic_histopathology(tmp_path / "c", 30, seed=4, n_test=4)
    assert _digest(first) == _digest(second)
    assert len(_digest(first)) == 30 + 4 + 2  # patches, labels file, marker
    assert _digest(first)["train_labels.csv"] != _digest(other)["train_labels.csv"]


def test_layout_labels_and_rgb_round_trip(tmp_path):
    root = make_synthetic_histopathology(tmp_path / "set", 12, seed=0, n_test=3)
    labels = load_histopathology_labels(root)
    assert labels["id"].tolist() == [synthetic_id(0, index) for index in range(12)]
    assert all(len(patch_id) == 40 for patch_id in labels["id"])
    assert len(list((root / "test").glob("*.tif"))) == 3
    for index in (0, 5, 11):
        path = root / "train" / f"{labels['id'][index]}.tif"
        expected = synthetic_patch(0, index)
        # lossless, and RGB written as RGB
        assert np.array_equal(read_patch(path), expected.image)
        assert np.array_equal(
            np.asarray(Image.open(path).convert("RGB")), expected.image
        )
        assert labels["label"][index] == expected.label
    dataset = HistopathologicDataset(labels, root, transform=train_transform())
    assert dataset[0][0].shape == (3, 49, 49)


def test_patches_are_96x96_rgb_and_pure_functions_of_seed_and_index(patches):
    assert all(
        p.image.shape == (96, 96, 3) and p.image.dtype == np.uint8 for p in patches[:20]
    )
    again = synthetic_patch(0, 7)
    assert (
        np.array_equal(again.image, patches[7].image)
        and again.label == patches[7].label
    )


def test_label_is_tumour_in_the_centre_square(patches):
    for patch in patches:
        assert patch.label == int(patch.tumour[CENTRE, CENTRE].any())
    labels = np.array([p.label for p in patches])
    assert 0.3 <= labels.mean() <= 0.5  # about 40% positives, like the Kaggle set
    negatives = [p for p in patches if p.label == 0]
    with_tumour = [p for p in negatives if p.tumour.any()]
    in_crop = [p for p in with_tumour if p.tumour[24:73, 24:73].any()]
    # tumour tissue outside the centre is common in negatives, and often inside the 49x49 crop
    assert len(with_tumour) > 0.3 * len(negatives)
    assert len(in_crop) > 0.1 * len(negatives)


def test_colours_are_h_and_e_like(patches):
    images = np.stack([p.image for p in patches[:100]]).astype(np.float32)
    tumour = np.stack([p.tumour for p in patches[:100]])
    r, g, b = images[..., 0], images[..., 1], images[..., 2]
    stroma = ~tumour & (images.mean(-1) < 235) & (images.mean(-1) > 150)
    # eosin-stained tissue is pink: green absorbed most
    assert (
        r[stroma].mean() > g[stroma].mean() + 40
        and b[stroma].mean() > g[stroma].mean() + 20
    )
    # tumour nuclei are dark and purple-blue: darker than stroma, blue above red
    assert images[tumour].mean() < images[stroma].mean() - 60
    assert b[tumour].mean() > r[tumour].mean()


def test_centre_crop_sees_the_difference(patches):
    """Without any learning: positives are darker in the centre crop than negatives on average."""
    crops = torch.stack([infer_transform()(p.image) for p in patches])
    darkness = 1.0 - crops.mean(dim=(1, 2, 3))
    labels = torch.tensor([p.label for p in patches])
    assert darkness[labels == 1].mean() > darkness[labels == 0].mean() + 0.03


def test_bad_arguments_and_existing_root(tmp_path):
    with pytest.raises(ValueError, match="n must be an int in 1..1,000,000, got 0"):
        make_synthetic_histopathology(tmp_path / "x", 0)
    with pytest.raises(ValueError, match="n_test must be"):
        make_synthetic_histopathology(tmp_path / "x", 3, n_test=-1)
    with pytest.raises(ValueError, match="seed must be an int >= 0, got -1"):
        synthetic_patch(-1, 0)
    with pytest.raises(ValueError, match="index must be an int >= 0, got 1.5"):
        synthetic_patch(0, 1.5)
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="taken"):
        make_synthetic_histopathology(tmp_path / "taken", 3)
    # no temporary folder left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_an_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    from nbhelpers.data import synthetic_histopathology as synthetic

    def fail(*args, **kwargs):
        raise KeyboardInterrupt("simulated Ctrl-C")

    monkeypatch.setattr(synthetic, "synthetic_id", fail)
    with pytest.raises(KeyboardInterrupt):
        make_synthetic_histopathology(tmp_path / "set", 3)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_small_cnn_learns_the_centre_rule(tmp_path):
    """Learnable: a small CNN on 49x49 centre crops beats the majority class clearly on CPU."""
    torch.manual_seed(0)
    data = [synthetic_patch(1, index) for index in range(1_400)]
    crop = infer_transform()
    X = torch.stack([crop(p.image) for p in data])
    y = torch.tensor([p.label for p in data])
    X_train, y_train, X_valid, y_valid = X[:1_100], y[:1_100], X[1_100:], y[1_100:]
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.BatchNorm2d(16),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.BatchNorm2d(32),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        torch.nn.BatchNorm2d(64),
        torch.nn.ReLU(),
        torch.nn.AdaptiveMaxPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 2),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(6):
        model.train()
        for batch in torch.randperm(len(y_train)).split(32):
            loss = torch.nn.functional.cross_entropy(
                model(X_train[batch]), y_train[batch]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(X_valid).argmax(dim=1) == y_valid).float().mean().item()
    majority = max(y_valid.float().mean().item(), 1 - y_valid.float().mean().item())
    assert accuracy > majority + 0.15, (accuracy, majority)


# ---- the synthetic slide and the label rule per window -----------------------------------------


def test_a_slide_is_a_pure_function_of_its_arguments():
    a, b = (
        synthetic_slide(0, size=200, regions=2),
        synthetic_slide(0, size=200, regions=2),
    )
    assert a.image.shape == (200, 200, 3) and a.image.dtype == np.uint8
    assert a.tumour.shape == (200, 200) and a.tumour.dtype == bool
    assert np.array_equal(a.image, b.image) and np.array_equal(a.tumour, b.tumour)
    other = synthetic_slide(1, size=200, regions=2)
    assert not np.array_equal(a.image, other.image)


def test_a_slide_has_tumour_and_tissue_coloured_like_the_patches():
    slide = synthetic_slide(0)
    assert 0.01 < slide.tumour.mean() < 0.5
    # tumour pixels are darker (haematoxylin) than the slide on average
    gray = slide.image.mean(axis=2)
    assert gray[slide.tumour].mean() < gray.mean() - 20
    red, green, blue = slide.image.reshape(-1, 3).mean(axis=0)
    assert red > green and blue > green  # pink and purple: H&E, as the patches


def test_window_labels_apply_the_patch_rule_to_each_window():
    tumour = np.zeros((100, 100), bool)
    labels = window_labels(tumour, window=49, stride=16)
    assert labels.shape == (4, 4) and not labels.any()  # (100 - 49) // 16 + 1
    tumour[8, 8] = True  # the first window's centre square starts at (8, 8)
    assert window_labels(tumour).sum() == 1 and window_labels(tumour)[0, 0]
    tumour[:] = False
    tumour[7, 40] = True  # in the ring of every window that holds it: no label
    assert not window_labels(tumour).any()
    tumour[:] = False
    tumour[39, 39] = (
        True  # in the centre squares [8, 40) and [24, 56) of windows 0 and 1
    )
    assert window_labels(tumour)[:2, :2].all() and window_labels(tumour).sum() == 4


def test_window_labels_match_the_label_of_a_patch():
    """A window cut from a patch's centre crop gets the patch's label."""
    for index in range(12):
        patch = synthetic_patch(0, index)
        crop = patch.tumour[24:73, 24:73]
        assert window_labels(crop)[0, 0] == bool(patch.label)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": 50}, "size"),
        ({"size": 384.0}, "size"),
        ({"seed": -1}, "seed"),
        ({"regions": 0}, "regions"),
    ],
)
def test_slide_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic_slide(**kwargs)


def test_window_labels_rejects_bad_input():
    with pytest.raises(ValueError, match="tumour must be"):
        window_labels(np.zeros((40, 100), bool))
    with pytest.raises(ValueError, match="stride"):
        window_labels(np.zeros((100, 100), bool), stride=0)
    with pytest.raises(ValueError, match="window"):
        window_labels(np.zeros((100, 100), bool), window=20)
