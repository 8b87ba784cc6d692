"""Chapter 07's recipe (character CNN on names) and its name-length figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from nbhelpers import plotting
from nbhelpers.data.names import MAX_LEN, embedded_names
from nbhelpers.device import SIZES
from nbhelpers.recipes.names import (
    NamesRecipe,
    female_probability,
    make_loaders,
    names_dataset,
    split_names,
    train_names,
)


@pytest.fixture(scope="module")
def standin() -> pd.DataFrame:
    """The offline stand-in list (about 1,600 names): always available, and learnable."""
    return embedded_names()


def test_recipe_defaults_are_the_seeds_and_profiles_come_from_sizes():
    full = NamesRecipe()
    assert (full.epochs, full.batch_size, full.lr, full.context, full.conv_width) == (5, 32, 1e-3, 4, 128)
    quick = NamesRecipe.for_profile("quick")
    assert (quick.epochs, quick.batch_size, quick.subset) == tuple(
        SIZES["names"]["quick"][k] for k in ("epochs", "batch_size", "subset")
    )
    assert NamesRecipe.for_profile("full") == full
    with pytest.raises(ValueError, match="unknown NamesRecipe field"):
        NamesRecipe.for_profile("quick", width=3)


@pytest.mark.parametrize("bad", [{"epochs": 0}, {"valid_fraction": 1.0}, {"lr": 0.0}, {"subset": 1}, {"context": 0}])
def test_recipe_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        NamesRecipe(**bad)


def test_names_dataset_labels_f_as_one_and_rejects_unknown_genders():
    dataset = names_dataset(pd.DataFrame({"name": ["ana", "luis"], "gender": ["F", "M"]}))
    assert dataset.label.tolist() == [1, 0]
    assert dataset.data.shape == (2, MAX_LEN + 1)
    with pytest.raises(ValueError, match="unknown gender"):
        names_dataset(pd.DataFrame({"name": ["x"], "gender": ["X"]}))
    with pytest.raises(ValueError, match="columns"):
        names_dataset(pd.DataFrame({"nombre": ["x"]}))


def test_split_is_seeded_disjoint_and_eighty_twenty(standin):
    dataset = names_dataset(standin)
    train, valid = split_names(dataset, NamesRecipe())
    again, _ = split_names(dataset, NamesRecipe())
    other, _ = split_names(dataset, NamesRecipe(seed=1))
    assert len(train) + len(valid) == len(dataset)
    assert abs(len(valid) - 0.2 * len(dataset)) <= 1
    assert not set(train.indices) & set(valid.indices)
    assert list(train.indices) == list(again.indices) and list(train.indices) != list(other.indices)
    small_train, small_valid = split_names(dataset, NamesRecipe(subset=100))
    assert len(small_train) + len(small_valid) == 100


def test_loaders_give_token_batches(standin):
    recipe = NamesRecipe(batch_size=16)
    train_loader, _ = make_loaders(*split_names(names_dataset(standin), recipe), recipe)
    x, y = next(iter(train_loader))
    assert x.shape == (16, MAX_LEN + 1) and x.dtype == torch.int64 and y.shape == (16,)
    assert set(y.tolist()) <= {0, 1}


def test_a_tiny_run_learns_and_predicts_probabilities(standin):
    recipe = NamesRecipe(epochs=4, batch_size=32, conv_width=32, fc_width=64)
    run = train_names(recipe, standin, device="cpu", verbose=False)
    majority = max(standin["gender"].value_counts(normalize=True))
    assert run.valid_accuracy > majority + 0.05  # better than always answering the larger class
    p = female_probability(run.trainer, ["maria", "jose", "tuco_salamanca"])
    assert p.shape == (3,) and ((p >= 0) & (p <= 1)).all()
    assert p[0] > p[1]  # maria is more likely F than jose
    with pytest.raises(ValueError):
        female_probability(run.trainer, "maria")


def test_plot_length_histogram_counts_each_length():
    fig = plotting.plot_length_histogram([3, 4, 4, 7], cutoff=5)
    assert isinstance(fig, Figure)
    heights = [patch.get_height() for patch in fig.axes[0].patches]
    assert heights == [0, 0, 0, 1, 2, 0, 0, 1]
    plt.close(fig)
    with pytest.raises(ValueError):
        plotting.plot_length_histogram([])
    with pytest.raises(ValueError):
        plotting.plot_length_histogram([-1, 2])
