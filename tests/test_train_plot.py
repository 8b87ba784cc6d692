"""plot_training_history: one trainer, and several trainers with different epoch lengths."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch.utils.data import DataLoader, TensorDataset

from nbhelpers.plotting import plot_training_history
from nbhelpers.train import Trainer

X = torch.randn(48, 3, generator=torch.Generator().manual_seed(0))
DATA = TensorDataset(X, (X[:, 0] > 0).long())


def trained(model: nn.Module, epochs: int, batch_size: int) -> Trainer:
    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        F.cross_entropy,
        device="cpu",
        verbose=False,
    )
    trainer.run(
        epochs, DataLoader(DATA, batch_size=batch_size), DataLoader(DATA, batch_size=16)
    )
    return trainer


def test_single_trainer_figure_has_raw_smoothed_and_validation_curves():
    trainer = trained(nn.Linear(3, 2), epochs=3, batch_size=8)  # 6 steps per epoch
    fig = plot_training_history(trainer)
    assert isinstance(fig, Figure)
    loss_ax, accuracy_ax = fig.axes
    raw, smooth, valid = loss_ax.lines
    assert list(raw.get_ydata()) == trainer.train_log["loss"]
    assert list(smooth.get_ydata()) == trainer.history["loss_avg"].tolist()
    assert (
        list(valid.get_xdata()) == [6, 12, 18]
        and list(valid.get_ydata()) == trainer.valid_log["loss"]
    )
    assert list(accuracy_ax.lines[2].get_ydata()) == trainer.valid_log["accuracy"]
    plt.close(fig)


def test_two_trainers_with_different_loader_lengths_share_one_axis():
    model = nn.Linear(3, 2)
    frozen = trained(model, epochs=2, batch_size=16)  # 3 steps per epoch
    tuned = trained(model, epochs=2, batch_size=8)  # 6 steps per epoch
    fig = plot_training_history(frozen, tuned, boundary_label="fine-tuning")
    loss_ax = fig.axes[0]
    raw, _, valid, boundary = loss_ax.lines
    assert len(raw.get_xdata()) == 6 + 12
    assert list(valid.get_xdata()) == [3, 6, 12, 18]
    assert list(boundary.get_xdata()) == [6, 6] and boundary.get_linestyle() == ":"
    labels = fig.axes[1].get_legend_handles_labels()[1]
    assert labels == ["train", "valid", "[fine-tuning]"]
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy"]
    plt.close(fig)


def test_plot_needs_a_trained_trainer():
    untrained = Trainer(nn.Linear(3, 2), None, None, device="cpu", verbose=False)
    with pytest.raises(ValueError, match="run"):
        plot_training_history(untrained)
