"""Chapter 03's bar images and the small network that reads them."""

from __future__ import annotations

import pytest
import torch

from nbhelpers.data.bars import ORIENTATIONS, bar_images
from nbhelpers.models import bar_cnn


def test_bar_images_have_one_bar_of_the_labelled_orientation_under_the_noise():
    X, y = bar_images(30, size=12, noise=0.0, seed=3).tensors
    assert (
        X.shape == (30, 1, 12, 12)
        and X.dtype == torch.float32
        and y.dtype == torch.int64
    )
    for image, label in zip(X[:, 0], y):
        on = image.nonzero()
        if ORIENTATIONS[label] == "horizontal":
            assert on[:, 0].unique().numel() == 1 and len(on) == 12
        elif ORIENTATIONS[label] == "vertical":
            assert on[:, 1].unique().numel() == 1 and len(on) == 12
        else:
            assert (on[:, 1] - on[:, 0]).unique().numel() == 1


def test_bar_images_are_reproducible_and_seeds_differ():
    first, again, other = (
        bar_images(8, seed=1),
        bar_images(8, seed=1),
        bar_images(8, seed=2),
    )
    assert torch.equal(first.tensors[0], again.tensors[0]) and torch.equal(
        first.tensors[1], again.tensors[1]
    )
    assert not torch.equal(first.tensors[0], other.tensors[0])


@pytest.mark.parametrize(
    "bad, named",
    [
        ({"n": 0}, "n must be an int >= 1, got 0"),
        ({"size": 4}, "size must be an int >= 5, got 4"),
        ({"noise": -1.0}, "noise must be a finite number >= 0, got -1.0"),
        ({"noise": float("nan")}, "noise"),
        ({"seed": -2}, "seed must be an int >= 0, got -2"),
        ({"n": 2.0}, "n must be an int >= 1, got 2.0"),
    ],
)
def test_bar_images_refuse_bad_arguments(bad, named):
    with pytest.raises(ValueError, match=named):
        bar_images(**{"n": 4, **bad})


def test_bar_cnn_maps_any_image_size_to_three_scores():
    model = bar_cnn().eval()
    assert model(torch.zeros(2, 1, 12, 12)).shape == (2, 3)
    assert model(torch.zeros(1, 1, 31, 17)).shape == (1, 3)
    assert sum(p.numel() for p in model.parameters()) == 1_315
