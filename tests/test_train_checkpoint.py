"""Checkpoints: exact resume on the CPU, weights_only loading, atomic writes."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nbhelpers.device import seed_everything
from nbhelpers.train import Trainer
from nbhelpers.train.checkpoint import capture_rng_state, restore_rng_state

EPOCHS = 2


def dataset(n: int, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=generator)
    return TensorDataset(X, (X[:, 0] - X[:, 1] > 0).long())


def build(seeded_loader: bool, model_seed: int = 0) -> tuple[Trainer, DataLoader, DataLoader]:
    """Fresh model (with dropout: it draws from the RNG), AdamW, OneCycleLR and loaders."""
    torch.manual_seed(model_seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))
    generator = torch.Generator().manual_seed(7) if seeded_loader else None
    train = DataLoader(dataset(60, 0), batch_size=8, shuffle=True, generator=generator)
    valid = DataLoader(dataset(20, 1), batch_size=8)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=0.05, total_steps=EPOCHS * len(train))
    trainer = Trainer(model, optim, F.cross_entropy, scheduler, device="cpu", verbose=False, log_every=3)
    return trainer, train, valid


@pytest.mark.parametrize("seeded_loader", [True, False], ids=["loader-generator", "global-rng"])
def test_resume_equals_an_uninterrupted_run(tmp_path, seeded_loader):
    seed_everything(123)
    straight, train, valid = build(seeded_loader)
    straight.run(EPOCHS, train, valid)

    seed_everything(123)
    first, train, valid = build(seeded_loader)
    first.run(1, train, valid)
    first.save_checkpoint(tmp_path / "ckpt.pt")
    # disturb every generator and the model init: load_checkpoint must restore all that matters
    seed_everything(999)
    resumed, train, valid = build(seeded_loader, model_seed=5)
    resumed.load_checkpoint(tmp_path / "ckpt.pt")
    assert resumed.epoch == 1 and resumed.global_step == len(train)
    resumed.run(1, train, valid)

    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.train_log == straight.train_log
    assert resumed.valid_log == straight.valid_log
    assert resumed.epoch_end_steps == straight.epoch_end_steps
    assert resumed.scheduler.last_epoch == straight.scheduler.last_epoch


def test_resume_without_restoring_the_rng_differs(tmp_path):
    """The RNG part of the checkpoint matters: dropout masks and data order depend on it."""
    seed_everything(123)
    straight, train, valid = build(seeded_loader=False)
    straight.run(EPOCHS, train, valid)
    seed_everything(123)
    first, train, valid = build(seeded_loader=False)
    first.run(1, train, valid)
    first.save_checkpoint(tmp_path / "ckpt.pt")
    seed_everything(999)
    resumed, train, valid = build(seeded_loader=False)
    resumed.load_checkpoint(tmp_path / "ckpt.pt", restore_rng=False)
    resumed.run(1, train, valid)
    assert not torch.equal(straight.model[0].weight, resumed.model[0].weight)


def test_checkpoint_loads_with_weights_only_and_leaves_no_temporary_file(tmp_path):
    trainer, train, valid = build(seeded_loader=True)
    trainer.run(1, train, valid)
    path = tmp_path / "ckpt.pt"
    trainer.save_checkpoint(path)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 1 and set(state["rng"]) >= {"torch", "numpy", "python"}
    assert state["valid_log"] == trainer.valid_log


def test_checkpoint_errors_name_the_path(tmp_path):
    trainer, _, _ = build(seeded_loader=True)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        trainer.load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        trainer.save_checkpoint(tmp_path / "no_such_dir" / "ckpt.pt")
    inference = Trainer(build(seeded_loader=True)[0].model, None, None, device="cpu", verbose=False)
    inference.save_checkpoint(tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="no optim state"):
        trainer.load_checkpoint(tmp_path / "weights.pt")


def test_rng_state_round_trip_covers_numpy_python_and_torch():
    np.random.randn()  # leaves a cached Gaussian in NumPy's state
    random.gauss(0, 1)
    state = capture_rng_state()
    first = (torch.rand(3), np.random.randn(3), random.gauss(0, 1))
    restore_rng_state(state)
    second = (torch.rand(3), np.random.randn(3), random.gauss(0, 1))
    assert torch.equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[2] == second[2]
