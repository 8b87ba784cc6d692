"""Chapter 07's recipe (character CNN on names): fields, split, a tiny run, resume, probabilities."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from nbhelpers import plotting
from nbhelpers.data.names import NamesTable, embedded_names
from nbhelpers.data.tokens import MAX_LEN
from nbhelpers.recipes.names import NamesRecipe, female_probability, names_dataset
from nbhelpers.storage import DataSource
from nbhelpers.train import StopAfter


@pytest.fixture(scope="module")
def names() -> NamesTable:
    """The names that ship with the package (the real INE list): always available."""
    return embedded_names()


def _small(**fields: object) -> NamesRecipe:
    small = {
        "train_size": 1_600,
        "valid_size": 400,
        "batch_size": 32,
        "conv_width": 32,
        "fc_width": 64,
    }
    return NamesRecipe(**{**small, **fields})


def test_recipe_defaults_are_the_sources_and_profiles_come_from_its_table():
    full = NamesRecipe()
    assert (full.epochs, full.batch_size, full.lr, full.context, full.conv_width) == (
        5,
        32,
        1e-3,
        4,
        128,
    )
    assert full.train_size is None and full.valid_fraction == 0.2
    quick = NamesRecipe.for_profile("quick")
    assert {
        key: getattr(quick, key) for key in NamesRecipe.SIZES["quick"]
    } == NamesRecipe.SIZES["quick"]
    assert NamesRecipe.for_profile("full") == full
    with pytest.raises(ValueError, match="unknown NamesRecipe field"):
        NamesRecipe.for_profile("quick", width=3)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"valid_fraction": 1.0}, "valid_fraction"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"context": 0}, "context"),
        ({"train_size": 10}, "both train_size and valid_size"),
        ({"train_size": 0, "valid_size": 5}, "train_size"),
        ({"seed": True}, "seed"),
    ],
)
def test_recipe_rejects_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        NamesRecipe(**bad)


def test_names_dataset_labels_f_as_one_and_rejects_unknown_genders():
    dataset = names_dataset(
        pd.DataFrame({"name": ["ana", "luis"], "gender": ["F", "M"]})
    )
    assert dataset.label.tolist() == [1, 0]
    assert dataset.data.shape == (2, MAX_LEN + 1)
    with pytest.raises(ValueError, match="unknown gender"):
        names_dataset(pd.DataFrame({"name": ["x"], "gender": ["X"]}))
    with pytest.raises(ValueError, match="columns"):
        names_dataset(pd.DataFrame({"nombre": ["x"]}))


def test_the_split_is_seeded_disjoint_and_eighty_twenty(names):
    data = NamesRecipe().prepare(names)
    again = NamesRecipe().prepare(names)
    other = NamesRecipe(seed=1).prepare(names)
    assert len(data.train) + len(data.valid) == len(names.frame)
    assert abs(len(data.valid) - 0.2 * len(names.frame)) <= 1
    assert not set(data.train.indices) & set(data.valid.indices)
    assert (
        list(data.train.indices)
        == list(again.train.indices)
        != list(other.train.indices)
    )
    assert data.source == names.source
    small = _small().prepare(names)
    assert (len(small.train), len(small.valid)) == (1_600, 400)
    with pytest.raises(ValueError, match="holds 49,340"):
        NamesRecipe(train_size=49_000, valid_size=1_000).prepare(names)


def test_batches_are_token_ids(names):
    recipe = _small(batch_size=16)
    train, _ = recipe.batches(recipe.prepare(names))
    x, y = next(iter(train))
    assert x.shape == (16, MAX_LEN + 1) and x.dtype == torch.int64 and y.shape == (16,)
    assert set(y.tolist()) <= {0, 1}


def test_a_tiny_run_learns_and_gives_probabilities_for_normalised_names(names):
    recipe = _small(epochs=3)
    run = recipe.train(recipe.prepare(names), "cpu", verbose=False)
    assert (
        run.valid_log["accuracy"][-1] > 0.75
    )  # the two classes are about equally large
    p = female_probability(run.model, ["maria", "jose", "tuco_salamanca"])
    assert p.shape == (3,) and ((p >= 0) & (p <= 1)).all()
    assert p[0] > p[1]  # maria is more likely F than jose
    same = female_probability(
        run.model, ["MARÍA", "  Maria ", "maría josé", "maria_jose"]
    )
    assert same[0] == same[1] == p[0] and same[2] == same[3]
    for bad, named in [("", "''"), ("R2D2", "'2'"), ("anna-lena", "'-'")]:
        with pytest.raises(ValueError, match=named):
            female_probability(run.model, [bad])
    with pytest.raises(ValueError, match="non-empty list"):
        female_probability(run.model, "maria")


def test_resume_from_an_epoch_checkpoint_is_exact(names, tmp_path):
    recipe = _small(epochs=2)
    data = recipe.prepare(names)
    straight = recipe.train(data, "cpu", verbose=False)
    checkpoint = tmp_path / "names.pt"
    first = recipe.train(
        data, "cpu", verbose=False, checkpoint=checkpoint, callbacks=[StopAfter(1)]
    )
    assert first.epoch == 1 and first.stop_reason == "stop_after=1"
    torch.manual_seed(99)
    torch.rand(10)
    resumed = recipe.train(data, "cpu", verbose=False, checkpoint=checkpoint)
    difference = max(
        (a - b).abs().max().item()
        for a, b in zip(straight.model.parameters(), resumed.model.parameters())
    )
    assert difference <= 1e-6 and resumed.epoch == 2
    assert resumed.train_log == straight.train_log


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


def test_a_table_is_accepted_as_given(names):
    table = NamesTable(names.frame.iloc[:100], DataSource("local", "a hundred names"))
    data = NamesRecipe(train_size=80, valid_size=20).prepare(table)
    assert (
        data.source == DataSource("local", "a hundred names") and len(data.train) == 80
    )
