"""EarlyStopping and SchedulerStatsRecorder."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nbhelpers.train import EarlyStopping, SchedulerStatsRecorder, Trainer


def stub_trainer() -> SimpleNamespace:
    stub = SimpleNamespace(
        valid_log={"loss": [], "accuracy": []},
        epoch=0,
        stopped=None,
        model=nn.Linear(1, 1),
    )
    stub.request_stop = lambda reason: setattr(stub, "stopped", reason)
    return stub


def feed(
    callback: EarlyStopping, values: list[float], key: str = "loss"
) -> SimpleNamespace:
    trainer = stub_trainer()
    for value in values:
        trainer.valid_log[key].append(value)
        trainer.epoch += 1
        callback.on_epoch_end(trainer)
        if trainer.stopped:
            break
    return trainer


def test_early_stopping_waits_patience_epochs_after_the_best():
    stopper = EarlyStopping(patience=2)
    trainer = feed(stopper, [1.0, 0.8, 0.9, 0.85, 0.5])
    assert trainer.epoch == 4 and stopper.stopped_epoch == 4
    assert stopper.best == 0.8 and stopper.best_epoch == 2
    assert "did not improve for 2" in trainer.stopped


def test_early_stopping_min_delta_and_max_mode():
    assert feed(
        EarlyStopping(patience=1, min_delta=0.1), [1.0, 0.95]
    ).stopped  # 0.05 is too small a gain
    assert not feed(EarlyStopping(patience=1), [1.0, 0.95]).stopped
    stopper = EarlyStopping(monitor="valid_accuracy", patience=1)
    assert stopper.mode == "max"
    assert (
        feed(stopper, [0.5, 0.7, 0.6], key="accuracy").epoch == 3
        and stopper.best == 0.7
    )


@pytest.mark.parametrize(
    "options, message",
    [
        ({"monitor": "loss"}, "monitor='loss'"),
        ({"patience": 0}, "patience must be an int >= 1, got 0"),
        ({"patience": True}, "got True"),
        ({"patience": 2.0}, "got 2.0"),
        ({"min_delta": -1.0}, "min_delta must be a finite number >= 0, got -1.0"),
        ({"min_delta": math.nan}, "got nan"),
        ({"mode": "up"}, "mode='up'"),
        ({"mode": ""}, "mode=''"),
        ({"restore_best": "yes"}, "restore_best must be True or False, got 'yes'"),
    ],
)
def test_early_stopping_rejects_bad_options_naming_them(options, message):
    with pytest.raises(ValueError, match=message):
        EarlyStopping(**options)


def test_scheduler_stats_recorder_rejects_what_is_not_an_optimizer():
    with pytest.raises(
        ValueError, match="optim must be a torch.optim.Optimizer or None, got 0.1"
    ):
        SchedulerStatsRecorder(0.1)


def test_early_stopping_in_a_run_restores_the_best_weights():
    torch.manual_seed(0)
    X = torch.randn(64, 3)
    # random labels
    train = DataLoader(TensorDataset(X, torch.randint(0, 2, (64,))), batch_size=16)
    valid = DataLoader(
        TensorDataset(X[:32] + 0.5, torch.randint(0, 2, (32,))), batch_size=16
    )
    model = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 2))
    stopper = EarlyStopping(patience=2, restore_best=True)
    trainer = Trainer(
        model,
        torch.optim.Adam(model.parameters(), lr=0.05),
        F.cross_entropy,
        callbacks=[stopper],
        device="cpu",
        verbose=False,
    )
    trainer.run(30, train, valid)  # memorising noise: the validation loss soon rises
    assert trainer.epoch < 30 and trainer.epoch == stopper.stopped_epoch
    assert trainer.stop_reason.startswith("EarlyStopping")
    best = min(trainer.valid_log["loss"])
    assert (
        stopper.best == best
        and trainer.valid_log["loss"].index(best) + 1 == stopper.best_epoch
    )
    assert trainer.evaluate(valid)["loss"] == pytest.approx(best, rel=1e-6)


def test_early_stopping_without_validation_is_an_error():
    model = nn.Linear(3, 2)
    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        F.cross_entropy,
        callbacks=[EarlyStopping()],
        device="cpu",
        verbose=False,
    )
    with pytest.raises(ValueError, match="no valid_loader"):
        trainer.run(
            2,
            DataLoader(
                TensorDataset(torch.randn(8, 3), torch.zeros(8, dtype=torch.long)),
                batch_size=4,
            ),
        )


def test_recorder_follows_one_cycle_lr_and_momentum_per_step():
    model = nn.Linear(3, 2)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train = DataLoader(
        TensorDataset(torch.randn(40, 3), torch.zeros(40, dtype=torch.long)),
        batch_size=4,
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optim, max_lr=0.01, steps_per_epoch=len(train), epochs=2
    )
    recorder = SchedulerStatsRecorder()
    Trainer(
        model,
        optim,
        F.cross_entropy,
        scheduler,
        callbacks=[recorder],
        device="cpu",
        verbose=False,
    ).run(2, train)

    reference_optim = torch.optim.AdamW(nn.Linear(3, 2).parameters(), lr=1e-3)
    reference = torch.optim.lr_scheduler.OneCycleLR(
        reference_optim, max_lr=0.01, steps_per_epoch=10, epochs=2
    )
    expected_lr, expected_beta = [], []
    for _ in range(20):
        reference_optim.step()
        reference.step()
        expected_lr.append(reference_optim.param_groups[0]["lr"])
        expected_beta.append(reference_optim.param_groups[0]["betas"][0])
    assert recorder.lr == pytest.approx(expected_lr)
    assert recorder.momentum == pytest.approx(expected_beta)
    # the cycle is visible
    assert max(recorder.lr) > 5 * recorder.lr[0] and min(recorder.momentum) < 0.9


def test_recorder_reads_sgd_momentum():
    model = nn.Linear(3, 2)
    optim = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.8)
    recorder = SchedulerStatsRecorder(optim)
    train = DataLoader(
        TensorDataset(torch.randn(8, 3), torch.zeros(8, dtype=torch.long)), batch_size=4
    )
    Trainer(
        model, optim, F.cross_entropy, callbacks=[recorder], device="cpu", verbose=False
    ).run(1, train)
    assert recorder.lr == [0.1, 0.1] and recorder.momentum == [0.8, 0.8]
    plain = SchedulerStatsRecorder(torch.optim.Adagrad(nn.Linear(1, 1).parameters()))
    plain.on_step_end(None)
    assert math.isnan(plain.momentum[0])
