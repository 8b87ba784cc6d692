"""Chapter 04's recipe, DeviceBatches and the figures the chapter draws."""

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
from torch.utils.data import random_split

from nbhelpers import plotting
from nbhelpers.data.loaders import DeviceBatches
from nbhelpers.data.mnist import MNISTDataset, embedded_digits
from nbhelpers.device import SIZES
from nbhelpers.models import mnist_cnn
from nbhelpers.recipes.mnist import (
    MnistRecipe,
    build_trainer,
    layer_outputs,
    make_batches,
    make_optimizer,
    make_scheduler,
    scaled_max_lr,
    split_mnist,
    split_sizes,
    steps_per_epoch,
    train_mnist,
)
from nbhelpers.train import Trainer


@pytest.fixture(scope="module")
def digits() -> MNISTDataset:
    """scikit-learn's digits as MNIST (1,497 images): real, learnable and always available."""
    images, targets = embedded_digits(train=True)
    return MNISTDataset(images, targets, "embedded (test)")


# --------------------------------------------------------------------------- DeviceBatches
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 70), batch_size=st.integers(1, 20), drop_last=st.booleans(), shuffle=st.booleans())
def test_device_batches_cover_each_example_once_per_epoch(n, batch_size, drop_last, shuffle):
    if drop_last and n < batch_size:
        with pytest.raises(ValueError, match="leaves no batch"):
            DeviceBatches(torch.arange(n), torch.arange(n), batch_size, drop_last=drop_last)
        return
    batches = DeviceBatches(torch.arange(n).float(), torch.arange(n), batch_size, shuffle=shuffle, drop_last=drop_last)
    epoch = list(batches)
    assert len(epoch) == len(batches) == (n // batch_size if drop_last else math.ceil(n / batch_size))
    assert all(len(x) == batch_size for x, _ in epoch[:-1]) and 1 <= len(epoch[-1][0]) <= batch_size
    seen = torch.cat([y for _, y in epoch])
    assert all(torch.equal(x.long(), y) for x, y in epoch)  # images and targets stay paired
    if drop_last:
        assert len(seen) == (n // batch_size) * batch_size and len(set(seen.tolist())) == len(seen)
    else:
        assert sorted(seen.tolist()) == list(range(n))
    if not shuffle:
        assert seen.tolist() == list(range(len(seen)))


def test_device_batches_are_deterministic_for_a_seeded_generator_and_reshuffle_each_epoch():
    data, labels = torch.arange(100).float().view(100, 1), torch.arange(100)

    def orders(seed: int) -> list[list[int]]:
        batches = DeviceBatches(data, labels, 10, generator=torch.Generator().manual_seed(seed))
        return [torch.cat([y for _, y in batches]).tolist() for _ in range(3)]

    first, again, other = orders(0), orders(0), orders(1)
    assert first == again
    assert first != other
    assert first[0] != first[1] != first[2]  # a new order every epoch


def test_device_batches_check_their_input():
    with pytest.raises(ValueError, match="3 images but 2 targets"):
        DeviceBatches(torch.zeros(3, 1), torch.zeros(2), 2)
    with pytest.raises(ValueError, match="batch_size"):
        DeviceBatches(torch.zeros(3, 1), torch.zeros(3), 0)
    with pytest.raises(ValueError, match="at least one example"):
        DeviceBatches(torch.zeros(0, 1), torch.zeros(0), 2)
    with pytest.raises(ValueError, match="tensors"):
        DeviceBatches([1, 2], torch.zeros(2), 1)


@pytest.mark.gpu
def test_device_batches_refuse_a_generator_on_another_device(device):
    if device.type == "cpu":
        pytest.skip("needs an accelerator")
    with pytest.raises(ValueError, match="generator lives on cpu"):
        DeviceBatches(torch.zeros(4, 1), torch.zeros(4), 2, generator=torch.Generator(), device=device)
    batches = DeviceBatches(
        torch.zeros(4, 1), torch.zeros(4), 2, generator=torch.Generator(device=device), device=device
    )
    assert all(x.device.type == device.type for x, _ in batches)


def test_device_batches_drive_the_trainer_one_step_per_batch():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(90, 4, generator=g)
    y = (X[:, 0] > 0).long()
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.5), F.cross_entropy, device="cpu", verbose=False)
    train = DeviceBatches(X, y, 16, generator=torch.Generator().manual_seed(0))
    trainer.run(3, train, DeviceBatches(X, y, 50, shuffle=False))
    assert trainer.global_step == 3 * len(train) == 18
    assert trainer.valid_log["accu"][-1] > 0.9


# --------------------------------------------------------------------------- recipe pieces
def test_recipe_defaults_are_the_seeds_and_profiles_come_from_sizes():
    full = MnistRecipe()
    expected = {"epochs": 3, "batch_size": 32, "max_lr": 0.003, "train_size": 55_000, "valid_size": 5_000}
    assert {key: getattr(full, key) for key in expected} == expected
    quick = MnistRecipe.for_profile("quick")
    table = SIZES["mnist"]["quick"]
    assert (quick.epochs, quick.batch_size, quick.train_size, quick.valid_size) == (
        table["epochs"], table["batch_size"], table["train"], table["valid"],
    )  # fmt: skip
    assert MnistRecipe.for_profile("full") == full
    assert MnistRecipe.for_profile("quick", resident=True).resident


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"max_lr": -1.0}, "max_lr"),
        ({"max_lr": float("nan")}, "max_lr"),
        ({"precision": "64"}, "precision"),
        ({"seed": -1}, "seed"),
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
    assert scaled_max_lr(128, base_max_lr=0.02, base_batch_size=32) == pytest.approx(0.04)
    with pytest.raises(ValueError):
        scaled_max_lr(0)


def test_split_sizes_keep_the_request_when_it_fits_and_shrink_in_proportion_otherwise():
    assert split_sizes(60_000, 55_000, 5_000) == (55_000, 5_000)
    assert split_sizes(1_497, 12_000, 2_000) == (1_283, 214)
    assert split_sizes(2, 10, 10) == (1, 1)
    with pytest.raises(ValueError):
        split_sizes(1, 1, 1)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 300), train=st.integers(1, 400), valid=st.integers(1, 400), seed=st.integers(0, 5))
def test_split_matches_random_split_and_is_disjoint(n, train, valid, seed):
    dataset = MNISTDataset(torch.zeros(n, 1, 28, 28), torch.zeros(n, dtype=torch.long), "test")
    train_set, valid_set = split_mnist(dataset, train, valid, seed)
    t, v = split_sizes(n, train, valid)
    assert (len(train_set), len(valid_set)) == (t, v)
    assert not set(train_set.indices) & set(valid_set.indices)
    expected = random_split(range(n), [t, v, n - t - v], generator=torch.Generator().manual_seed(seed))
    assert train_set.indices == list(expected[0]) and valid_set.indices == list(expected[1])


def test_split_and_batches_are_deterministic(digits):
    a_train, _ = split_mnist(digits, 300, 100, seed=3)
    b_train, _ = split_mnist(digits, 300, 100, seed=3)
    assert a_train.indices == b_train.indices
    for resident in (False, True):
        first = [y for _, y in make_batches(a_train, 32, train=True, resident=resident, device="cpu", seed=1)]
        second = [y for _, y in make_batches(b_train, 32, train=True, resident=resident, device="cpu", seed=1)]
        assert all(torch.equal(p, q) for p, q in zip(first, second))
        x, y = next(iter(make_batches(a_train, 32, train=True, resident=resident, device="cpu")))
        assert x.shape == (32, 1, 28, 28) and x.dtype == torch.float32 and y.shape == (32,) and y.dtype == torch.int64


def test_validation_batches_keep_the_split_order(digits):
    _, valid = split_mnist(digits, 200, 100)
    for resident in (False, True):
        labels = torch.cat([y for _, y in make_batches(valid, 30, train=False, resident=resident, device="cpu")])
        assert labels.tolist() == digits.targets[valid.indices].tolist()


def test_resident_batches_refuse_a_dataset_with_a_transform(digits):
    transformed = MNISTDataset(digits.images, digits.targets, "t", transform=lambda x: x)
    train, _ = split_mnist(transformed, 100, 10)
    with pytest.raises(ValueError, match="without a transform"):
        make_batches(train, 10, train=True, resident=True, device="cpu")


def test_steps_per_epoch_counts_the_steps_of_one_process():
    assert steps_per_epoch(55_000, 32) == 1719
    assert steps_per_epoch(55_000, 32, drop_last=True) == 1718
    assert steps_per_epoch(55_000, 32, world_size=2) == 860  # ceil(27,500 / 32)
    assert steps_per_epoch(513, 32, world_size=2) == 9  # DistributedSampler: ceil(513 / 2) = 257 each
    with pytest.raises(ValueError):
        steps_per_epoch(10, 32, drop_last=True)


def test_cuda_graph_optimizer_holds_a_tensor_lr_that_the_schedule_updates_in_place():
    recipe = MnistRecipe(cuda_graph=True, epochs=1)
    model = mnist_cnn()
    optim = make_optimizer(model, recipe, torch.device("cpu"))
    group = optim.param_groups[0]
    assert group["capturable"] and isinstance(group["lr"], torch.Tensor)
    lr_tensor = group["lr"]
    scheduler = make_scheduler(optim, recipe, steps=10)
    betas = group["betas"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # stepping the schedule without optimizer steps
        for _ in range(5):
            scheduler.step()
    assert group["lr"] is lr_tensor  # the same tensor, refilled: what a captured graph reads
    assert float(lr_tensor) == pytest.approx(scheduler.get_last_lr()[0])
    assert group["betas"] == betas  # no momentum cycling under a graph


def test_default_optimizer_cycles_momentum_with_the_schedule():
    recipe = MnistRecipe(epochs=1)
    optim = make_optimizer(mnist_cnn(), recipe, torch.device("cpu"))
    assert isinstance(optim.param_groups[0]["lr"], float)
    scheduler = make_scheduler(optim, recipe, steps=10)
    assert scheduler.total_steps == 10
    assert optim.param_groups[0]["betas"][0] == pytest.approx(0.95)


def test_cuda_graph_is_refused_on_the_cpu():
    with pytest.raises(ValueError, match="CUDA"):
        build_trainer(MnistRecipe(cuda_graph=True, epochs=1), steps=4, device="cpu", verbose=False)


def test_build_trainer_seeds_the_initial_weights():
    a = build_trainer(MnistRecipe(seed=5), steps=4, device="cpu", verbose=False)
    b = build_trainer(MnistRecipe(seed=5), steps=4, device="cpu", verbose=False)
    c = build_trainer(MnistRecipe(seed=6), steps=4, device="cpu", verbose=False)
    assert torch.equal(a.model[0].weight, b.model[0].weight)
    assert not torch.equal(a.model[0].weight, c.model[0].weight)


# --------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("resident", [False, True])
def test_a_tiny_run_learns_and_is_reproducible(digits, resident):
    recipe = MnistRecipe(epochs=2, train_size=600, valid_size=200, resident=resident)
    run = train_mnist(recipe, dataset=digits, device="cpu", verbose=False)
    assert run.trainer.global_step == 2 * math.ceil(600 / 32)
    assert run.valid_accuracy > 0.5  # chance is 0.1
    assert run.seconds > 0 and run.data_source == "embedded (test)"
    again = train_mnist(recipe, dataset=digits, device="cpu", verbose=False)
    assert again.trainer.train_log == run.trainer.train_log


def test_resident_batches_are_refused_under_torchrun(digits, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="resident=True"):
        train_mnist(MnistRecipe(resident=True), dataset=digits, device="cpu", verbose=False)


def test_layer_outputs_walks_the_network_in_eval_mode_and_restores_training_mode():
    model = mnist_cnn()
    model.train()
    outputs = layer_outputs(model, torch.rand(1, 1, 28, 28))
    assert [name for name, _ in outputs] == [type(layer).__name__ for layer in model]
    assert [tuple(out.shape) for _, out in outputs][:3] == [(32, 28, 28), (32, 28, 28), (32, 14, 14)]
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
    fig = plotting.plot_feature_maps(x[0], [outputs[0:3], outputs[3:6], outputs[6:]], logit_labels=list("0123456789"))
    assert isinstance(fig, Figure)
    # input + 6 conv-block layers x 5 channels + 5 dense columns
    assert len(fig.axes) == 1 + 6 * 5 + 5
    last = fig.axes[-1]
    assert len(last.texts) == 10
    assert [t.get_text() for t in last.texts] == [f"{v:.1f}" for v in outputs[-1][1].tolist()]
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
