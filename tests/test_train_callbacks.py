"""EarlyStopping, SchedulerStatsRecorder and LRRangeTest."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nbhelpers.train import (
    EarlyStopping,
    LRRangeTest,
    SchedulerStatsRecorder,
    Trainer,
    TrainerCore,
)
from nbhelpers.train.callbacks import set_lr


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


# --- LRRangeTest -------------------------------------------------------------------------


def range_stub(losses: list[float]) -> SimpleNamespace:
    """A Trainer-shaped object whose steps have the given losses."""
    model = nn.Linear(1, 1)
    stub = SimpleNamespace(
        optim=torch.optim.SGD(model.parameters(), lr=0.5),
        scheduler=None,
        log_every=1,
        train_log={"loss": []},
        stopped=None,
    )
    stub.request_stop = lambda reason: setattr(stub, "stopped", reason)
    stub.feed = losses
    return stub


def sweep_over(sweep: LRRangeTest, losses: list[float]) -> SimpleNamespace:
    trainer = range_stub(losses)
    sweep.on_train_begin(trainer)
    for loss in losses:
        trainer.train_log["loss"].append(loss)
        sweep.on_step_end(trainer)
        if trainer.stopped:
            break
    return trainer


def test_range_test_rates_are_geometric_from_start_to_end():
    sweep = LRRangeTest(start=1e-4, end=1.0, steps=5)
    rates = [sweep.lr_at(i) for i in range(5)]
    assert rates == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    ratios = [b / a for a, b in zip(rates, rates[1:])]
    assert ratios == pytest.approx([10.0] * 4)


def test_range_test_in_a_run_uses_each_rate_it_records_and_restores_nothing():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optim = torch.optim.SGD(model.parameters(), lr=0.5)
    train = DataLoader(
        TensorDataset(torch.randn(24, 3), torch.randint(0, 2, (24,))), batch_size=4
    )
    sweep = LRRangeTest(start=1e-6, end=1e-4, steps=9)  # too small to diverge
    recorder = SchedulerStatsRecorder()  # after the sweep: reads the next step's rate
    trainer = Trainer(
        model,
        optim,
        F.cross_entropy,
        callbacks=[sweep, recorder],
        device="cpu",
        verbose=False,
        log_every=1,
    )
    trainer.run(2, train)  # 6 batches an epoch: the sweep goes on into the second
    assert trainer.global_step == 9 and trainer.stop_reason.endswith("9 steps done")
    assert len(sweep.lrs) == len(sweep.losses) == len(sweep.smoothed) == 9
    assert sweep.lrs == pytest.approx([sweep.lr_at(i) for i in range(9)])
    assert sweep.losses == trainer.train_log["loss"]
    assert recorder.lr[:-1] == pytest.approx(sweep.lrs[1:])
    # nothing restored: the optimizer keeps the last rate tried
    assert optim.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert sweep.diverged_lr() is None


def test_range_test_stops_when_the_smoothed_loss_diverges():
    losses = [2.0, 1.5, 1.0, 0.8, 0.9, 3.0, 10.0, 40.0, 100.0, 100.0]
    sweep = LRRangeTest(start=1e-3, end=1.0, steps=10, beta=0.5)
    trainer = sweep_over(sweep, losses)
    assert trainer.stopped and "diverged" in trainer.stopped
    stopped_at = len(sweep.lrs)
    assert stopped_at < len(losses)
    best = min(sweep.smoothed)
    assert sweep.smoothed[-1] > 4 * best
    assert all(value <= 4 * best for value in sweep.smoothed[:-1])
    assert sweep.diverged_lr() == sweep.lrs[-1]
    # the rate was not moved on after the stop
    assert trainer.optim.param_groups[0]["lr"] == pytest.approx(sweep.lrs[-1])


def test_range_test_treats_a_non_finite_loss_as_divergence():
    # TrainerCore (unlike Trainer) hands a NaN loss on to the callbacks
    sweep = LRRangeTest(start=1e-3, end=1.0, steps=10)
    trainer = sweep_over(sweep, [1.0, 0.9, math.nan, 0.5])
    assert len(sweep.lrs) == 3 and "diverged" in trainer.stopped
    assert sweep.diverged_lr() == sweep.lrs[2]


def test_range_test_smoothing_is_bias_corrected_and_finds_the_steepest_fall():
    losses = [2.0, 2.0, 2.0, 1.9, 1.0, 0.5, 0.45, 0.44, 0.44, 0.44]
    sweep = LRRangeTest(start=1e-3, end=1.0, steps=10, beta=0.0)  # no smoothing
    sweep_over(sweep, losses)
    assert sweep.smoothed == pytest.approx(losses)
    assert sweep.steepest_lr() == sweep.lrs[4]  # 1.9 -> 0.5 around step 4
    smooth = LRRangeTest(start=1e-3, end=1.0, steps=3, beta=0.9)
    sweep_over(smooth, [3.0, 3.0, 3.0])
    assert smooth.smoothed == pytest.approx([3.0, 3.0, 3.0])  # no pull towards 0
    assert LRRangeTest(steps=2).steepest_lr() is None


def test_range_test_works_in_trainer_core_and_resets_its_records_each_run():
    model = nn.Linear(3, 2)
    train = [(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))] * 3
    sweep = LRRangeTest(start=1e-6, end=1e-5, steps=3)
    core = TrainerCore(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        F.cross_entropy,
        callbacks=[sweep],
        verbose=False,
    )
    core.run(1, train)
    core.run(1, train)
    assert len(sweep.lrs) == 3 and sweep.lrs[0] == pytest.approx(1e-6)


def test_set_lr_writes_a_tensor_rate_in_place():
    rate = torch.tensor(0.1)
    optim = torch.optim.AdamW(nn.Linear(1, 1).parameters(), lr=rate, capturable=True)
    set_lr(optim, 0.25)
    assert optim.param_groups[0]["lr"] is rate and rate.item() == pytest.approx(0.25)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"start": 1.0, "end": 1.0}, "start must be below end"),
        ({"start": 0.1, "end": 0.01}, "start must be below end"),
        ({"start": 0.0}, "start must be a finite number > 0, got 0.0"),
        ({"start": -1e-5}, "start must be a finite number > 0"),
        ({"end": math.inf}, "end must be a finite number > 0, got inf"),
        ({"steps": 1}, "steps must be an int >= 2, got 1"),
        ({"steps": 10.0}, "steps must be an int >= 2, got 10.0"),
        ({"steps": True}, "steps must be an int >= 2, got True"),
        ({"diverge": 1.0}, "diverge must be a finite number > 1, got 1.0"),
        ({"beta": 1.0}, r"beta must be a number in \[0, 1\), got 1.0"),
    ],
)
def test_range_test_rejects_bad_arguments_naming_them(options, message):
    with pytest.raises(ValueError, match=message):
        LRRangeTest(**options)


def test_range_test_refuses_a_trainer_it_cannot_drive():
    model = nn.Linear(3, 2)
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    train = [(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))]
    chunked = Trainer(
        model, optim, F.cross_entropy, callbacks=[LRRangeTest()], verbose=False
    )
    with pytest.raises(ValueError, match="log_every=1 \\(got log_every=50\\)"):
        chunked.run(1, train)
    scheduler = torch.optim.lr_scheduler.StepLR(optim, step_size=1)
    scheduled = Trainer(
        model,
        optim,
        F.cross_entropy,
        scheduler,
        callbacks=[LRRangeTest()],
        verbose=False,
        log_every=1,
    )
    with pytest.raises(ValueError, match="without a scheduler \\(got StepLR\\)"):
        scheduled.run(1, train)
