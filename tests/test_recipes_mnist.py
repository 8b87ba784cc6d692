"""Chapter 04's recipe: its fields and profiles, its pieces, a tiny run, exact resume, the figures."""

from __future__ import annotations

import math
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from torch.optim.lr_scheduler import OneCycleLR
from torch.utils.data import random_split

from nbhelpers import plotting
from nbhelpers.data.mnist import MNISTDataset, embedded_digits
from nbhelpers.interpret import layer_outputs
from nbhelpers.models import mnist_cnn
from nbhelpers.recipes.mnist import (
    MnistRecipe,
    make_optimizer,
    scaled_max_lr,
    split_mnist,
    split_sizes,
)
from nbhelpers.storage import DataSource
from nbhelpers.train import StopAfter


@pytest.fixture(scope="module")
def digits() -> MNISTDataset:
    """scikit-learn's digits as MNIST (1,497 images): real, learnable and always available."""
    images, targets = embedded_digits(train=True)
    return MNISTDataset(images, targets, DataSource("embedded", "test digits"))


# --------------------------------------------------------------------------- recipe pieces
def test_recipe_defaults_are_the_sources_and_profiles_come_from_its_table():
    full = MnistRecipe()
    expected = {
        "epochs": 3,
        "batch_size": 32,
        "max_lr": 0.003,
        "train_size": 55_000,
        "valid_size": 5_000,
    }
    assert {key: getattr(full, key) for key in expected} == expected
    quick = MnistRecipe.for_profile("quick")
    assert {
        key: getattr(quick, key) for key in MnistRecipe.SIZES["quick"]
    } == MnistRecipe.SIZES["quick"]
    assert quick.train_size < full.train_size
    assert MnistRecipe.for_profile("full") == full
    assert MnistRecipe.for_profile("quick", resident=True).resident


def test_for_profile_reads_the_environment_only_when_no_profile_is_given(monkeypatch):
    monkeypatch.setenv("NBHELPERS_PROFILE", "full")
    assert MnistRecipe.for_profile() == MnistRecipe()
    assert (
        MnistRecipe.for_profile("quick").train_size
        == MnistRecipe.SIZES["quick"]["train_size"]
    )
    with pytest.raises(ValueError, match="unknown profile 'medium'"):
        MnistRecipe.for_profile("medium")


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"max_lr": -1.0}, "max_lr"),
        ({"max_lr": float("nan")}, "max_lr"),
        ({"precision": "64"}, "precision"),
        ({"seed": -1}, "seed"),
        ({"train_size": True}, "train_size"),
        ({"resident": "yes"}, "resident"),
    ],
)
def test_recipe_rejects_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        MnistRecipe(**bad)


def test_for_profile_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown MnistRecipe field"):
        MnistRecipe.for_profile("quick", learning_rate=0.1)


def test_scaled_max_lr_follows_the_square_root_rule():
    assert scaled_max_lr(32) == pytest.approx(0.003)
    assert scaled_max_lr(256) == pytest.approx(0.003 * math.sqrt(8))
    assert scaled_max_lr(128, base_max_lr=0.02, base_batch_size=32) == pytest.approx(
        0.04
    )
    with pytest.raises(ValueError):
        scaled_max_lr(0)


def test_split_sizes_keep_a_request_that_fits_and_refuse_one_that_does_not():
    assert split_sizes(60_000, 55_000, 5_000) == (55_000, 5_000)
    with pytest.raises(ValueError, match=r"64,000 images, but the data holds 60,000"):
        split_sizes(60_000, 59_000, 5_000)
    # the embedded stand-in for MNIST shrinks in proportion, one image per part at least
    assert split_sizes(1_497, 12_000, 2_000, stand_in=True) == (1_283, 214)
    assert split_sizes(2, 10, 10, stand_in=True) == (1, 1)
    with pytest.raises(ValueError, match="valid_size=200"):
        split_sizes(1_497, 10**12, 200, stand_in=True)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(2, 300),
    train=st.integers(1, 400),
    valid=st.integers(1, 400),
    seed=st.integers(0, 5),
)
def test_split_matches_random_split_and_is_disjoint(n, train, valid, seed):
    dataset = MNISTDataset(
        torch.zeros(n, 1, 28, 28), torch.zeros(n, dtype=torch.long), "test"
    )
    if train + valid > n:
        with pytest.raises(ValueError, match="but the data holds"):
            split_mnist(dataset, train, valid, seed)
        return
    train_set, valid_set = split_mnist(dataset, train, valid, seed)
    t, v = split_sizes(n, train, valid)
    assert (len(train_set), len(valid_set)) == (t, v)
    assert not set(train_set.indices) & set(valid_set.indices)
    expected = random_split(
        range(n), [t, v, n - t - v], generator=torch.Generator().manual_seed(seed)
    )
    assert train_set.indices == list(expected[0]) and valid_set.indices == list(
        expected[1]
    )


def _batches(digits, resident: bool, seed: int = 0, batch_size: int = 32):
    recipe = MnistRecipe(
        train_size=300,
        valid_size=100,
        batch_size=batch_size,
        eval_batch_size=30,
        resident=resident,
        seed=seed,
    )
    return recipe.batches(recipe.prepare(digits), "cpu")


def test_split_and_batches_are_deterministic(digits):
    a_train, _ = split_mnist(digits, 300, 100, seed=3)
    b_train, _ = split_mnist(digits, 300, 100, seed=3)
    assert a_train.indices == b_train.indices
    for resident in (False, True):
        first = [y for _, y in _batches(digits, resident, seed=1)[0]]
        second = [y for _, y in _batches(digits, resident, seed=1)[0]]
        assert all(torch.equal(p, q) for p, q in zip(first, second))
        x, y = next(iter(_batches(digits, resident)[0]))
        assert x.shape == (32, 1, 28, 28) and x.dtype == torch.float32
        assert y.shape == (32,) and y.dtype == torch.int64


def test_validation_batches_keep_the_split_order(digits):
    _, valid = split_mnist(digits, 300, 100)
    for resident in (False, True):
        labels = torch.cat([y for _, y in _batches(digits, resident)[1]])
        assert labels.tolist() == digits.targets[valid.indices].tolist()


def test_resident_batches_refuse_a_dataset_with_a_transform(digits):
    transformed = MNISTDataset(
        digits.images, digits.targets, "t", transform=lambda x: x
    )
    recipe = MnistRecipe(train_size=100, valid_size=10, resident=True)
    with pytest.raises(ValueError, match="without a transform"):
        recipe.batches(recipe.prepare(transformed), "cpu")


def test_cuda_graph_optimizer_holds_a_tensor_lr_that_the_schedule_updates_in_place():
    recipe = MnistRecipe(cuda_graph=True, epochs=1)
    model = mnist_cnn()
    optim = make_optimizer(model, recipe, torch.device("cpu"))
    group = optim.param_groups[0]
    assert group["capturable"] and isinstance(group["lr"], torch.Tensor)
    lr_tensor = group["lr"]
    scheduler = OneCycleLR(
        optim, recipe.max_lr, epochs=1, steps_per_epoch=10, cycle_momentum=False
    )
    betas = group["betas"]
    with warnings.catch_warnings():
        # stepping the schedule without optimizer steps
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(5):
            scheduler.step()
    # the same tensor, refilled: what a captured graph reads
    assert group["lr"] is lr_tensor
    assert float(lr_tensor) == pytest.approx(scheduler.get_last_lr()[0])
    assert group["betas"] == betas  # no momentum cycling under a graph


def test_default_optimizer_holds_a_float_lr():
    recipe = MnistRecipe(epochs=1)
    optim = make_optimizer(mnist_cnn(), recipe, torch.device("cpu"))
    assert isinstance(optim.param_groups[0]["lr"], float)
    assert not optim.param_groups[0]["capturable"]


def test_cuda_graph_is_refused_on_the_cpu_before_any_work(digits):
    recipe = MnistRecipe(cuda_graph=True, epochs=1, train_size=64, valid_size=32)
    with pytest.raises(ValueError, match="cuda_graph=True needs a CUDA device"):
        recipe.train(recipe.prepare(digits), "cpu", verbose=False)


def test_the_initial_weights_are_seeded(digits):
    def first_weights(seed: int) -> torch.Tensor:
        recipe = MnistRecipe(seed=seed, epochs=1, train_size=32, valid_size=32)
        return (
            recipe.train(recipe.prepare(digits), "cpu", verbose=False).model[0].weight
        )

    assert torch.equal(first_weights(5), first_weights(5))
    assert not torch.equal(first_weights(5), first_weights(6))


def test_precision_auto_is_resolved_for_the_device_passed_not_the_default_one(
    monkeypatch,
):
    seen = []

    def fake_fast_precision(device: object) -> str:
        seen.append(torch.device(device))
        return "bf16"

    monkeypatch.setattr("nbhelpers.recipes.common.fast_precision", fake_fast_precision)
    monkeypatch.setattr(
        "nbhelpers.device.get_device",
        lambda: pytest.fail("the default device was asked"),
    )
    assert MnistRecipe(precision="auto").resolved("cpu").precision == "bf16"
    assert seen == [torch.device("cpu")]
    assert MnistRecipe(precision="32").resolved("cpu").precision == "32"


# --------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("resident", [False, True])
def test_a_tiny_run_learns_and_is_reproducible(digits, resident):
    recipe = MnistRecipe(epochs=2, train_size=600, valid_size=200, resident=resident)
    data = recipe.prepare(digits)
    trainer = recipe.train(data, "cpu", verbose=False)
    assert trainer.global_step == 2 * math.ceil(600 / 32)
    assert trainer.valid_log["accuracy"][-1] > 0.5  # chance is 0.1
    assert data.source == DataSource("embedded", "test digits")
    assert trainer.stop_reason is None and trainer.epoch == 2
    # the one-cycle schedule ran to its end: steps_per_epoch was len(train batches)
    assert trainer.scheduler.last_epoch == trainer.scheduler.total_steps
    again = recipe.train(data, "cpu", verbose=False)
    assert again.train_log == trainer.train_log


@pytest.mark.parametrize("resident", [False, True])
def test_resume_from_an_epoch_checkpoint_is_exact(digits, resident, tmp_path):
    recipe = MnistRecipe(epochs=2, train_size=256, valid_size=64, resident=resident)
    data = recipe.prepare(digits)
    straight = recipe.train(data, "cpu", verbose=False)
    checkpoint = tmp_path / "mnist.pt"
    first = recipe.train(
        data, "cpu", verbose=False, checkpoint=checkpoint, callbacks=[StopAfter(1)]
    )
    assert first.stop_reason and first.epoch == 1 and checkpoint.is_file()
    torch.manual_seed(1234)  # disturb every generator the second half could draw from
    torch.rand(100)
    resumed = recipe.train(data, "cpu", verbose=False, checkpoint=checkpoint)
    assert resumed.stop_reason is None and resumed.epoch == 2
    difference = max(
        (a - b).abs().max().item()
        for a, b in zip(straight.model.parameters(), resumed.model.parameters())
    )
    assert difference <= 1e-6
    for key, values in straight.valid_log.items():
        assert resumed.valid_log[key] == pytest.approx(values), key
    assert resumed.train_log == straight.train_log


def test_a_checkpoint_of_another_recipe_is_refused_before_training(digits, tmp_path):
    recipe = MnistRecipe(epochs=1, train_size=64, valid_size=32)
    data = recipe.prepare(digits)
    checkpoint = tmp_path / "mnist.pt"
    recipe.train(data, "cpu", verbose=False, checkpoint=checkpoint)
    before = checkpoint.read_bytes()
    other = MnistRecipe(epochs=1, train_size=64, valid_size=32, max_lr=0.001)
    with pytest.raises(
        ValueError,
        match=r"mnist.pt was written by a different recipe \(max_lr: 0.003 -> 0.001\)",
    ):
        other.train(other.prepare(digits), "cpu", verbose=False, checkpoint=checkpoint)
    assert checkpoint.read_bytes() == before


def test_a_checkpoint_in_a_missing_folder_is_refused_before_training(digits, tmp_path):
    recipe = MnistRecipe(epochs=1, train_size=64, valid_size=32)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        recipe.train(
            recipe.prepare(digits),
            "cpu",
            verbose=False,
            checkpoint=tmp_path / "nowhere" / "c.pt",
        )


def test_layer_outputs_walks_the_network_in_eval_mode_and_restores_training_mode():
    model = mnist_cnn()
    model.train()
    outputs = layer_outputs(model, torch.rand(1, 1, 28, 28))
    assert [name for name, _ in outputs] == [type(layer).__name__ for layer in model]
    assert [tuple(out.shape) for _, out in outputs][:3] == [
        (32, 28, 28),
        (32, 28, 28),
        (32, 14, 14),
    ]
    assert tuple(outputs[6][1].shape) == (800,) and tuple(outputs[-1][1].shape) == (10,)
    assert model.training and model[9].training
    x = torch.rand(1, 1, 28, 28)
    with torch.no_grad():
        model.eval()
        assert torch.allclose(layer_outputs(model, x)[-1][1], model(x)[0])
    with pytest.raises(ValueError, match="batch dimension of 1"):
        layer_outputs(model, torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="nn.Sequential"):
        layer_outputs(nn.Linear(2, 2), torch.rand(1, 2))


# --------------------------------------------------------------------------- figures
def test_plot_feature_maps_draws_every_layer_and_annotates_the_logits():
    model = mnist_cnn()
    x = torch.rand(1, 1, 28, 28)
    outputs = layer_outputs(model, x)
    fig = plotting.plot_feature_maps(
        x[0], [outputs[0:3], outputs[3:6], outputs[6:]], logit_labels=list("0123456789")
    )
    assert isinstance(fig, Figure)
    # input + 6 conv-block layers x 5 channels + 5 dense columns
    assert len(fig.axes) == 1 + 6 * 5 + 5
    last = fig.axes[-1]
    assert len(last.texts) == 10
    assert [t.get_text() for t in last.texts] == [
        f"{v:.1f}" for v in outputs[-1][1].tolist()
    ]
    plt.close(fig)
    with pytest.raises(ValueError, match="channels"):
        plotting.plot_feature_maps(x[0], [outputs[0:3]], channels=[40])
    with pytest.raises(ValueError, match="at least one block"):
        plotting.plot_feature_maps(x[0], [])


def test_plot_schedule_and_prediction_bars_return_figures():
    fig = plotting.plot_schedule([0.1, 0.2, 0.1], [0.9, 0.85, 0.9])
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert list(fig.axes[0].lines[0].get_ydata()) == [0.1, 0.2, 0.1]
    plt.close(fig)
    fig = plotting.plot_schedule([0.1, 0.2])
    assert len(fig.axes) == 1
    plt.close(fig)
    with pytest.raises(ValueError):
        plotting.plot_schedule([0.1, 0.2], [0.9])

    probabilities = F.softmax(torch.randn(10), dim=0)
    fig = plotting.plot_prediction_bars(probabilities, title="t")
    heights = [patch.get_height() for patch in fig.axes[0].patches]
    assert heights == pytest.approx(probabilities.tolist())
    plt.close(fig)
    with pytest.raises(ValueError, match="class labels"):
        plotting.plot_prediction_bars(probabilities, classes=["a"])
