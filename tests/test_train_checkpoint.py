"""Checkpoints: exact resume on the CPU (DataLoader and DeviceBatches), weights_only loading,
all-or-nothing loads, atomic writes with the usual permissions."""

from __future__ import annotations

import os
import random
import stat

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nbhelpers.data import DeviceBatches
from nbhelpers.data.pipeline import BatchAugment
from nbhelpers.device import seed_everything
from nbhelpers.storage import current_umask
from nbhelpers.train import Trainer, check_checkpoint_path
from nbhelpers.train.checkpoint import capture_rng_state, read_meta, restore_rng_state

EPOCHS = 2


def dataset(n: int, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=generator)
    return TensorDataset(X, (X[:, 0] - X[:, 1] > 0).long())


def build(
    seeded_loader: bool, model_seed: int = 0
) -> tuple[Trainer, DataLoader, DataLoader]:
    """Fresh model (with dropout: it draws from the RNG), AdamW, OneCycleLR and loaders."""
    torch.manual_seed(model_seed)
    model = nn.Sequential(
        nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2)
    )
    generator = torch.Generator().manual_seed(7) if seeded_loader else None
    train = DataLoader(dataset(60, 0), batch_size=8, shuffle=True, generator=generator)
    valid = DataLoader(dataset(20, 1), batch_size=8)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optim, max_lr=0.05, total_steps=EPOCHS * len(train)
    )
    trainer = Trainer(
        model,
        optim,
        F.cross_entropy,
        scheduler,
        device="cpu",
        verbose=False,
        log_every=3,
    )
    return trainer, train, valid


@pytest.mark.parametrize(
    "seeded_loader", [True, False], ids=["loader-generator", "global-rng"]
)
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

    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values()
    ):
        assert torch.equal(a, b), name
    assert resumed.train_log == straight.train_log
    assert resumed.valid_log == straight.valid_log
    assert resumed.valid_log["step"] == straight.valid_log["step"]
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
    inference = Trainer(
        build(seeded_loader=True)[0].model, None, None, device="cpu", verbose=False
    )
    inference.save_checkpoint(tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="weights.pt holds no optim state"):
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


# ---------------------------------------------------------------- DeviceBatches resume
def image_batches(transform: bool, seed: int | None) -> DeviceBatches:
    generator = torch.Generator().manual_seed(0)
    if transform:
        X = torch.randint(
            0, 256, (96, 3, 52, 52), dtype=torch.uint8, generator=generator
        )
        Y = (X[:, 0, 20:30, 20:30].float().mean(dim=(1, 2)) > 127).long()
        return DeviceBatches(
            X, Y, 32, shuffle=True, seed=seed, transform=BatchAugment()
        )
    X = torch.randn(96, 4, generator=generator)
    return DeviceBatches(X, (X[:, 0] > X[:, 1]).long(), 32, shuffle=True, seed=seed)


def image_trainer(transform: bool) -> Trainer:
    torch.manual_seed(0)
    features = 3 * 49 * 49 if transform else 4
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(features, 16),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(16, 2),
    )
    return Trainer(
        model,
        torch.optim.AdamW(model.parameters(), lr=1e-2),
        F.cross_entropy,
        device="cpu",
        verbose=False,
    )


@pytest.mark.parametrize(
    "transform, seed",
    [(False, 5), (True, 5), (False, None)],
    ids=["plain", "batch-augment", "seed-none"],
)
def test_resume_with_device_batches_equals_two_uninterrupted_epochs(
    tmp_path, transform, seed
):
    torch.manual_seed(42)  # seed=None draws the base seed from here
    straight = image_trainer(transform)
    straight.run(2, image_batches(transform, seed))

    torch.manual_seed(42)
    first = image_trainer(transform)
    first.run(1, image_batches(transform, seed))
    first.save_checkpoint(tmp_path / "ckpt.pt")

    resumed = image_trainer(transform)
    # seed=None: another base seed, replaced on resume
    batches = image_batches(transform, seed)
    torch.manual_seed(123)
    torch.rand(100)
    resumed.load_checkpoint(tmp_path / "ckpt.pt")
    resumed.run(1, batches)
    difference = max(
        (a - b).abs().max().item()
        for a, b in zip(straight.model.parameters(), resumed.model.parameters())
    )
    assert difference <= 1e-6
    assert resumed.train_log == straight.train_log
    assert batches.state_dict() == {"seed": first._train_loader.seed, "epoch": 2}


def test_the_checkpoint_holds_the_train_batches_state(tmp_path):
    trainer = image_trainer(False)
    batches = image_batches(False, 7)
    trainer.run(2, batches)
    trainer.save_checkpoint(tmp_path / "ckpt.pt")
    assert torch.load(tmp_path / "ckpt.pt", weights_only=True)["train_batches"] == {
        "seed": 7,
        "epoch": 2,
    }


def test_a_checkpoint_with_batch_state_needs_a_loader_that_takes_it(tmp_path):
    trainer = image_trainer(False)
    trainer.run(1, image_batches(False, 7))
    trainer.save_checkpoint(tmp_path / "ckpt.pt")
    resumed = image_trainer(False)
    resumed.load_checkpoint(tmp_path / "ckpt.pt")
    batches = image_batches(False, 7)
    plain = [(x, y) for x, y in batches]
    with pytest.raises(
        ValueError, match="ckpt.pt holds the state of its training batches.*list"
    ):
        resumed.run(1, plain)
    assert resumed.global_step == len(batches)  # nothing trained


# ---------------------------------------------------------------- all or nothing
def snapshot(trainer: Trainer) -> dict:
    return {
        "model": {k: v.clone() for k, v in trainer.model.state_dict().items()},
        "optim": repr(trainer.optim.state_dict()),
        "logs": (repr(trainer.train_log), trainer.epoch, trainer.global_step),
    }


def assert_unchanged(trainer: Trainer, before: dict) -> None:
    after = snapshot(trainer)
    for key, value in before["model"].items():
        assert torch.equal(after["model"][key], value), key
    assert after["optim"] == before["optim"] and after["logs"] == before["logs"]


def saved_run(tmp_path, model: nn.Module, optim_class=torch.optim.AdamW, **options):
    optim = optim_class(model.parameters(), lr=1e-2)
    trainer = Trainer(
        model, optim, F.cross_entropy, device="cpu", verbose=False, **options
    )
    trainer.run(1, DataLoader(dataset(16, 0), batch_size=8))
    path = tmp_path / "saved.pt"
    trainer.save_checkpoint(path)
    return path


def trained_target():
    trainer, train, _ = build(seeded_loader=True)
    trainer.scheduler = None  # compare model/optimizer only
    trainer.run(1, train)
    return trainer


def test_a_shape_mismatch_changes_nothing(tmp_path):
    path = saved_run(
        tmp_path,
        nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3)),
    )
    target = trained_target()
    before = snapshot(target)
    with pytest.raises(
        ValueError,
        match=r"saved.pt: the model state does not fit.*'3.weight' has shape \(3, 16\) in the file, \(2, 16\)",
    ):
        target.load_checkpoint(path)
    assert_unchanged(target, before)


def test_an_sgd_checkpoint_is_refused_by_an_adam_trainer(tmp_path):
    path = saved_run(
        tmp_path,
        nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2)),
        torch.optim.SGD,
    )
    target = trained_target()
    before = snapshot(target)
    with pytest.raises(
        ValueError,
        match="holds the state of a SGD optimizer, but this Trainer's optimizer is a AdamW",
    ):
        target.load_checkpoint(path)
    assert_unchanged(target, before)


def test_a_param_group_mismatch_changes_nothing(tmp_path):
    model = nn.Sequential(
        nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2)
    )
    optim = torch.optim.AdamW(
        [
            {"params": model[0].parameters()},
            {"params": model[3].parameters(), "lr": 1e-3},
        ],
        lr=1e-2,
    )
    trainer = Trainer(model, optim, F.cross_entropy, device="cpu", verbose=False)
    trainer.run(1, DataLoader(dataset(16, 0), batch_size=8))
    trainer.save_checkpoint(tmp_path / "groups.pt")
    target = trained_target()
    before = snapshot(target)
    with pytest.raises(
        ValueError,
        match=r"parameter groups differ: 2 group\(s\) of \[2, 2\] .* 1 group\(s\) of \[4\]",
    ):
        target.load_checkpoint(tmp_path / "groups.pt")
    assert_unchanged(target, before)


def test_a_failure_while_applying_rolls_everything_back(tmp_path, monkeypatch):
    trainer, train, _ = build(seeded_loader=True)
    trainer.run(1, train)
    trainer.save_checkpoint(tmp_path / "ckpt.pt")
    target, train, _ = build(seeded_loader=True, model_seed=3)
    before = snapshot(target)
    rng = torch.get_rng_state()

    original = target.scheduler.load_state_dict
    calls = []

    def fails_once(state):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("simulated failure inside the scheduler")
        original(state)

    monkeypatch.setattr(target.scheduler, "load_state_dict", fails_once)
    with pytest.raises(
        ValueError,
        match="ckpt.pt: loading failed while applying it .*simulated.*put back",
    ):
        target.load_checkpoint(tmp_path / "ckpt.pt")
    assert_unchanged(target, before)
    assert torch.equal(torch.get_rng_state(), rng)


def test_altered_tensor_bytes_are_caught_by_the_zip_checksums(tmp_path):
    trainer, train, _ = build(seeded_loader=True)
    trainer.save_checkpoint(tmp_path / "ckpt.pt")
    data = bytearray((tmp_path / "ckpt.pt").read_bytes())
    marker = trainer.model[0].weight.detach().numpy().tobytes()[:16]
    data[data.index(marker) + 3] ^= 0x01
    (tmp_path / "ckpt.pt").write_bytes(bytes(data))
    # torch.load alone does not notice
    torch.load(tmp_path / "ckpt.pt", weights_only=True)
    with pytest.raises(
        ValueError, match="ckpt.pt: the bytes of .*data/.* do not match their CRC-32"
    ):
        trainer.load_checkpoint(tmp_path / "ckpt.pt")


# ---------------------------------------------------------------- writing
def test_a_new_checkpoint_gets_the_umask_mode_and_a_read_only_one_is_not_replaced(
    tmp_path,
):
    trainer, _, _ = build(seeded_loader=True)
    path = trainer.save_checkpoint(tmp_path / "ckpt.pt")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~current_umask()
    os.chmod(path, 0o444)
    content = path.read_bytes()
    with pytest.raises(PermissionError, match="ckpt.pt is read-only"):
        trainer.save_checkpoint(path)
    assert path.read_bytes() == content and sorted(
        p.name for p in tmp_path.iterdir()
    ) == ["ckpt.pt"]


def test_check_checkpoint_path_reports_a_bad_path_before_any_work(tmp_path):
    assert check_checkpoint_path(tmp_path / "new.pt") == tmp_path / "new.pt"
    with pytest.raises(
        FileNotFoundError, match="checkpoint folder does not exist: .*missing"
    ):
        check_checkpoint_path(tmp_path / "missing" / "ckpt.pt")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        check_checkpoint_path(tmp_path)
    with pytest.raises(ValueError, match="non-empty str or os.PathLike, got 3"):
        check_checkpoint_path(3)
    assert list(tmp_path.iterdir()) == []


def test_meta_is_saved_with_the_checkpoint_and_read_without_loading_anything(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        torch.nn.functional.cross_entropy,
        device="cpu",
        verbose=False,
    )
    path = trainer.save_checkpoint(
        tmp_path / "ckpt.pt", meta={"recipe": "Tiny", "fields": {"lr": 0.1}}
    )
    assert read_meta(path) == {"recipe": "Tiny", "fields": {"lr": 0.1}}
    assert read_meta(trainer.save_checkpoint(tmp_path / "plain.pt")) == {}
    with pytest.raises(ValueError, match="meta must be a dict"):
        trainer.save_checkpoint(tmp_path / "bad.pt", meta=["not", "a", "dict"])
    torch.save({"format": 2}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="foreign.pt is not a Trainer checkpoint"):
        read_meta(tmp_path / "foreign.pt")
