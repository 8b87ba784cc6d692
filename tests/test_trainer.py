"""The Trainer's contract: logs, evaluation, prediction, schedulers, clipping, NaN, host syncs."""

from __future__ import annotations

import math
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

from nbhelpers.device import seed_everything
from nbhelpers.train import Callback, Trainer, TrainerCore

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = str(REPO / "nbhelpers")


def blobs(n: int, seed: int = 0) -> TensorDataset:
    """n points in 2-D, label 1 where x0 + x1 > 0: learnable in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=generator)
    return TensorDataset(X, (X.sum(dim=1) > 0).long())


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))


def make_trainer(model: nn.Module | None = None, lr: float = 0.1, **options) -> Trainer:
    model = model or small_model()
    options.setdefault("verbose", False)
    options.setdefault("device", "cpu")
    return Trainer(
        model, torch.optim.SGD(model.parameters(), lr=lr), F.cross_entropy, **options
    )


def loaders(
    n_train: int = 64, n_valid: int = 50, batch_size: int = 8
) -> tuple[DataLoader, DataLoader]:
    train = DataLoader(
        blobs(n_train, 0),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    valid = DataLoader(blobs(n_valid, 1), batch_size=7)
    return train, valid


# ---------------------------------------------------------------- logs and history
def test_run_fills_logs_with_python_floats_and_history():
    trainer = make_trainer(log_every=3)
    train, valid = loaders()
    trainer.run(2, train, valid)
    steps = 2 * len(train)
    assert trainer.global_step == steps and trainer.epoch == 2
    assert trainer.valid_log["step"] == [len(train), steps]
    for key in ("loss", "accuracy"):
        assert len(trainer.train_log[key]) == steps
        assert all(type(value) is float for value in trainer.train_log[key])
        assert len(trainer.valid_log[key]) == 2
        assert all(type(value) is float for value in trainer.valid_log[key])

    history = trainer.history
    assert list(history.columns) == [
        "step",
        "epoch",
        "loss",
        "accuracy",
        "loss_avg",
        "accuracy_avg",
        "valid_loss",
        "valid_accuracy",
    ]
    assert history["step"].tolist() == list(range(1, steps + 1))
    assert history["epoch"].tolist() == [1] * len(train) + [2] * len(train)
    assert history["loss"].tolist() == trainer.train_log["loss"]
    ends = history.dropna(subset=["valid_loss"])
    assert ends["step"].tolist() == trainer.valid_log["step"]
    assert ends["valid_accuracy"].tolist() == trainer.valid_log["accuracy"]


def test_smoothed_columns_are_trailing_means_of_the_default_window():
    trainer = make_trainer(log_every=7)
    # 40 steps -> window int(0.05 * 40) = 2
    train = DataLoader(blobs(40 * 4), batch_size=4)
    trainer.run(1, train)
    loss = np.array(trainer.train_log["loss"])
    expected = [loss[max(0, i - 1) : i + 1].mean() for i in range(len(loss))]
    np.testing.assert_allclose(trainer.history["loss_avg"], expected, rtol=1e-12)
    assert math.isnan(trainer.valid_log["loss"][0])  # no valid_loader: NaN placeholder


@given(
    values=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=60),
    window=st.integers(1, 20),
)
@settings(max_examples=60, deadline=None)
def test_trailing_means_match_the_naive_definition(values, window):
    from nbhelpers.train.history import history_frame

    log = {"loss": values, "accuracy": [0.0] * len(values)}
    empty = {"step": [], "loss": [], "accuracy": []}
    got = history_frame(log, empty, window)["loss_avg"]
    naive = [
        float(np.mean(values[max(0, i - window + 1) : i + 1]))
        for i in range(len(values))
    ]
    np.testing.assert_allclose(got, naive, rtol=1e-9, atol=1e-9)


def test_run_learns_and_prints_the_epoch_summary(capsys):
    seed_everything(0)
    trainer = make_trainer(verbose=True, lr=0.5)
    train, valid = loaders(n_train=256)
    trainer.run(2, train, valid)
    lines = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("epoch")
    ]
    assert len(lines) == 2
    assert lines[1].startswith("epoch 2/2: loss ") and " valid_accuracy " in lines[1]
    assert trainer.valid_log["accuracy"][-1] > 0.85


def test_verbose_false_prints_nothing(capsys):
    trainer = make_trainer(verbose=False)
    trainer.run(1, *loaders())
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize("enabled, shown", [(True, True), (False, False)])
def test_progress_bars_follow_the_preamble_and_show(monkeypatch, enabled, shown):
    # tqdm.notebook ignores TQDM_DISABLE; a chapter's preamble reads it and calls show_bars.
    from nbhelpers.train import progress

    received = {}
    monkeypatch.setattr(progress, "tqdm", lambda **kwargs: received.update(kwargs))
    monkeypatch.setitem(progress._SETTINGS, "bars", enabled)
    progress.progress_bar(10, "x", show=True)
    assert received.get("disable", False) is not shown
    progress.progress_bar(10, "x", show=False)
    assert received["disable"] is True


def test_evaluate_is_the_mean_over_the_whole_set():
    trainer = make_trainer()
    train, valid = loaders(n_valid=50)  # batches of 7: the last one holds 1 example
    trainer.run(1, train, valid)
    X, y = valid.dataset.tensors
    with torch.no_grad():
        preds = trainer.model(X)
    expected_loss = F.cross_entropy(preds, y, reduction="sum").item() / len(y)
    expected_accu = (preds.argmax(dim=1) == y).sum().item() / len(y)
    result = trainer.evaluate(valid)
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-6)
    assert result["accuracy"] == pytest.approx(expected_accu, abs=1e-12)
    assert trainer.valid_log["loss"][-1] == pytest.approx(expected_loss, rel=1e-6)
    # a mean of per-batch means would weight the last single-example batch 7 times too much
    per_batch = np.mean([F.cross_entropy(trainer.model(x), t).item() for x, t in valid])
    assert abs(per_batch - expected_loss) > 1e-4


def test_dropout_demo_call_versus_predict():
    seed_everything(0)
    model = nn.Sequential(nn.Linear(3, 10), nn.Dropout(1.0))
    trainer = Trainer(model, optim=None, loss_fn=None, device="cpu", verbose=False)
    x = torch.ones(1, 3, requires_grad=True)
    y = trainer(x)
    z = trainer.predict(x)
    assert torch.all(y == 0) and y.requires_grad
    assert not z.requires_grad
    with torch.no_grad():
        linear = model[0](x)
    assert torch.equal(z, linear)
    assert model.training and model[1].training  # predict restored the modes


def test_predict_and_batch_predict_agree_and_accept_labelled_batches():
    trainer = make_trainer(
        nn.Sequential(
            nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 3)
        )
    )
    dataset = blobs(23)
    X = dataset.tensors[0]
    direct = trainer.predict(X)
    from_pairs = trainer.batch_predict(DataLoader(dataset, batch_size=5))
    from_inputs = trainer.batch_predict(X.split(4))
    assert from_pairs.shape == (23, 3) and from_pairs.device.type == "cpu"
    torch.testing.assert_close(from_pairs, direct)
    torch.testing.assert_close(from_inputs, direct)
    assert not from_pairs.requires_grad
    assert trainer.model.training  # modes restored
    with pytest.raises(ValueError, match="no batches"):
        trainer.batch_predict([])


def test_run_keeps_per_module_modes_such_as_a_frozen_batchnorm():
    model = nn.Sequential(
        nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2)
    )
    model[1].eval()  # frozen statistics
    running_mean = model[1].running_mean.clone()
    trainer = make_trainer(model)
    trainer.run(1, *loaders())
    assert model.training and not model[1].training
    assert torch.equal(model[1].running_mean, running_mean)


def test_inference_only_trainer_refuses_to_train():
    trainer = Trainer(
        small_model(), optim=None, loss_fn=None, device="cpu", verbose=False
    )
    with pytest.raises(ValueError, match="inference only"):
        trainer.run(1, *loaders())
    with pytest.raises(ValueError, match="loss_fn"):
        trainer.evaluate(loaders()[1])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"precision": "8"}, "precision"),
        ({"precision": "16"}, "CUDA"),
        ({"precision": 32}, "precision=32"),
        ({"log_every": 0}, "log_every must be an int >= 1, got 0"),
        ({"log_every": True}, "log_every must be an int >= 1, got True"),
        ({"log_every": 2.5}, "log_every must be an int >= 1, got 2.5"),
        (
            {"grad_clip_norm": 0.0},
            "grad_clip_norm must be a finite number > 0 or None, got 0.0",
        ),
        ({"grad_clip_norm": -1.0}, "got -1.0"),
        ({"grad_clip_norm": math.nan}, "got nan"),
        ({"grad_clip_norm": math.inf}, "got inf"),
        ({"grad_clip_norm": True}, "got True"),
        ({"scheduler_interval": "batch"}, "scheduler_interval='batch'"),
        ({"cuda_graph": True}, "CUDA"),
        ({"cuda_graph": 1}, "cuda_graph must be True or False, got 1"),
        ({"verbose": "no"}, "verbose must be True or False, got 'no'"),
        ({"device": "tpu"}, "device='tpu'"),
        ({"device": 3}, "device must be a torch.device, a device name or None, got 3"),
    ],
)
def test_bad_options_raise_value_error_naming_the_value(options, message):
    with pytest.raises(ValueError, match=message):
        make_trainer(**options)


def test_bad_parts_are_named():
    model = small_model()
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(
        ValueError, match="model must be a torch.nn.Module, got function"
    ):
        Trainer(lambda x: x, None, None, device="cpu")
    with pytest.raises(
        ValueError, match="optim must be a torch.optim.Optimizer or None, got dict"
    ):
        Trainer(model, {"lr": 0.1}, F.cross_entropy, device="cpu")
    with pytest.raises(ValueError, match="loss_fn must be callable.*'cross_entropy'"):
        Trainer(model, optim, "cross_entropy", device="cpu")
    other = torch.optim.SGD(small_model(1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="drives another optimizer"):
        Trainer(
            model,
            optim,
            F.cross_entropy,
            torch.optim.lr_scheduler.StepLR(other, 1),
            device="cpu",
        )
    with pytest.raises(ValueError, match="scheduler must be a learning-rate scheduler"):
        Trainer(model, optim, F.cross_entropy, scheduler=0.5, device="cpu")


def test_an_optimizer_over_other_parameters_is_refused_naming_how_many():
    model = small_model()
    stray = nn.Linear(3, 3)  # e.g. a head replaced after the optimizer was built
    optim = torch.optim.SGD([*model.parameters(), *stray.parameters()], lr=0.1)
    with pytest.raises(ValueError, match="holds 2 of its 6 parameter"):
        Trainer(model, optim, F.cross_entropy, device="cpu")
    # a subset of the model's: fine
    frozen = torch.optim.SGD(model[2].parameters(), lr=0.1)
    Trainer(model, frozen, F.cross_entropy, device="cpu", verbose=False)


@pytest.mark.parametrize(
    "epochs, message",
    [
        (0, "got 0"),
        (-1, "got -1"),
        (1.5, "got 1.5"),
        (True, "got True"),
        ("2", "got '2'"),
    ],
)
def test_run_names_a_bad_epoch_count(epochs, message):
    with pytest.raises(ValueError, match=f"epochs must be an int >= 1, {message}"):
        make_trainer().run(epochs, *loaders())


def test_run_names_bad_loaders_and_window_sizes():
    trainer = make_trainer()
    train, valid = loaders()
    for window in (0, True, 2.0):
        with pytest.raises(
            ValueError, match=f"window_size must be an int >= 1 or None, got {window!r}"
        ):
            trainer.run(1, train, valid, window_size=window)
    with pytest.raises(ValueError, match="train_loader must be an iterable.*got None"):
        trainer.run(1, None)
    with pytest.raises(ValueError, match="valid_loader must be an iterable.*got 5"):
        trainer.run(1, train, 5)
    with pytest.raises(ValueError, match="train_loader .* has no batches"):
        trainer.run(1, [])
    with pytest.raises(ValueError, match="yielded no batches in epoch 1"):
        trainer.run(1, iter([]))
    with pytest.raises(
        ValueError, match=r"a batch must be a pair \(x, y\), got a Tensor"
    ):
        trainer.run(1, [torch.zeros(4, 2)])
    with pytest.raises(ValueError, match="got a tuple of length 3"):
        trainer.run(1, [(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), None)])
    with pytest.raises(ValueError, match="targets y of a batch .* got list"):
        trainer.run(1, [(torch.zeros(4, 2), [0, 1, 0, 1])])
    assert trainer.global_step == 0 and trainer.epoch == 0


def test_evaluate_and_predict_name_bad_inputs():
    trainer = make_trainer()
    with pytest.raises(ValueError, match="loader must be an iterable.*got None"):
        trainer.evaluate(None)
    with pytest.raises(ValueError, match="no examples"):
        trainer.evaluate([])
    with pytest.raises(ValueError, match="x must be an input tensor .* got ndarray"):
        trainer.predict(np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="batches must be an iterable.*got 3"):
        trainer.batch_predict(3)


def test_bf16_autocast_on_cpu_trains():
    trainer = make_trainer(precision="bf16")
    trainer.run(1, *loaders())
    assert all(math.isfinite(value) for value in trainer.train_log["loss"])


# ---------------------------------------------------------------- scheduler and callbacks
@pytest.mark.parametrize("interval, expected", [("step", 16), ("epoch", 2)])
def test_scheduler_steps_per_step_or_per_epoch(interval, expected):
    model = small_model()
    optim = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optim, lambda i: 0.5**i)
    trainer = Trainer(
        model,
        optim,
        F.cross_entropy,
        scheduler,
        device="cpu",
        verbose=False,
        scheduler_interval=interval,
    )
    trainer.run(2, *loaders())  # 8 steps per epoch
    assert scheduler.last_epoch == expected
    assert optim.param_groups[0]["lr"] == pytest.approx(0.5**expected)


def test_reduce_on_plateau_needs_epoch_interval():
    model = small_model()
    optim = torch.optim.SGD(model.parameters(), lr=1.0)
    with pytest.raises(ValueError, match="scheduler_interval='epoch'"):
        Trainer(
            model,
            optim,
            F.cross_entropy,
            torch.optim.lr_scheduler.ReduceLROnPlateau(optim),
            device="cpu",
        )


class EventLog(Callback):
    def __init__(self, stop_at_step: int | None = None) -> None:
        self.events: list[str] = []
        self.stop_at_step = stop_at_step

    def on_train_begin(self, trainer):
        self.events.append("train_begin")

    def on_step_end(self, trainer):
        self.events.append("step")
        if trainer.global_step == self.stop_at_step:
            trainer.request_stop("enough")

    def on_epoch_end(self, trainer):
        self.events.append(
            f"epoch_end {trainer.epoch} {len(trainer.train_log['loss'])}"
        )

    def on_train_end(self, trainer):
        self.events.append("train_end")


def test_callback_events_come_in_order():
    events = EventLog()
    trainer = make_trainer(callbacks=[events], log_every=100)
    trainer.run(2, *loaders())
    assert events.events == ["train_begin"] + ["step"] * 8 + ["epoch_end 1 8"] + [
        "step"
    ] * 8 + ["epoch_end 2 16", "train_end"]


@pytest.mark.parametrize(
    "callbacks, message",
    [
        ([lambda: None], "must be a Callback object.*lambda"),
        ([42], "must be a Callback object.*got 42"),
        (EventLog(), "callbacks must be a list of Callback objects, got <"),
        (
            "EarlyStopping",
            "callbacks must be a list of Callback objects, got 'EarlyStopping'",
        ),
    ],
)
def test_callbacks_are_callback_objects_only(callbacks, message):
    with pytest.raises(ValueError, match=message):
        make_trainer(callbacks=callbacks)


def test_a_callback_can_stop_training_mid_epoch():
    events = EventLog(stop_at_step=11)
    trainer = make_trainer(callbacks=[events])
    trainer.run(5, *loaders())
    assert trainer.global_step == 11 and trainer.epoch == 2
    assert trainer.stop_reason == "enough"
    assert len(trainer.train_log["loss"]) == 11 and len(trainer.valid_log["loss"]) == 2
    assert events.events[-2:] == ["epoch_end 2 11", "train_end"]


# ---------------------------------------------------------------- clipping and NaN
def test_gradient_clipping_bounds_the_update():
    def update_norm(clip: float | None) -> float:
        model = small_model()
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        trainer = make_trainer(model, lr=1.0, grad_clip_norm=clip)
        trainer.train_step(*next(iter(DataLoader(blobs(16), batch_size=16))))
        after = torch.cat([p.detach().flatten() for p in model.parameters()])
        return (after - before).norm().item()

    assert update_norm(None) > 0.05
    # SGD, lr 1: update = clipped gradient
    assert update_norm(0.01) == pytest.approx(0.01, rel=1e-4)


def test_nan_loss_raises_naming_step_and_epoch():
    calls = {"n": 0}

    def loss_nan_at_step_11(preds, y):
        # count training steps, not validation batches
        calls["n"] += torch.is_grad_enabled()
        loss = F.cross_entropy(preds, y)
        return loss * math.nan if calls["n"] == 11 else loss

    model = small_model()
    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        loss_nan_at_step_11,
        device="cpu",
        verbose=False,
        log_every=4,
    )
    train, valid = (
        DataLoader(blobs(64), batch_size=8),
        DataLoader(blobs(8, 1), batch_size=8),
    )
    with pytest.raises(FloatingPointError, match=r"global step 11 \(epoch 2\)"):
        trainer.run(3, train, valid)  # 8 steps per epoch, so step 11 is in epoch 2
    assert 11 <= trainer.global_step <= 11 + trainer.log_every - 1
    assert len(trainer.train_log["loss"]) == trainer.global_step
    assert math.isnan(trainer.train_log["loss"][10])


# ---------------------------------------------------------------- host synchronisation
SYNC_METHODS = (
    "item",
    "tolist",
    "cpu",
    "numpy",
    "__float__",
    "__int__",
    "__bool__",
    "__index__",
)


@contextmanager
def host_reads_from(directory: str):
    """Record every Tensor -> host conversion called from code under ``directory``."""
    calls: list[str] = []
    originals = {name: getattr(torch.Tensor, name) for name in SYNC_METHODS}

    def wrap(name, original):
        def recording(self, *args, **kwargs):
            if sys._getframe(1).f_code.co_filename.startswith(directory):
                calls.append(name)
            return original(self, *args, **kwargs)

        return recording

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


@pytest.mark.parametrize("log_every", [5, 1])
def test_no_host_sync_per_step(log_every):
    trainer = make_trainer(log_every=log_every)
    train = DataLoader(blobs(160), batch_size=8)  # 20 steps per epoch
    valid = DataLoader(blobs(20, 1), batch_size=8)
    with host_reads_from(PACKAGE_DIR) as calls:
        trainer.run(2, train, valid)
    if log_every == 5:
        # one read per chunk of 5 steps and one per evaluation: 2 * (4 + 1)
        assert len(calls) == 10, calls
    else:
        # the instrument sees per-step reads when there are some (this is what the seed's loop does)
        assert len(calls) >= 40


# ---------------------------------------------------------------- validation NaN, schedules, epochs
def test_a_nan_validation_loss_raises_naming_the_epoch():
    trainer = make_trainer()
    train, _ = loaders()
    X = torch.full((6, 2), math.nan)
    valid = DataLoader(TensorDataset(X, torch.zeros(6, dtype=torch.long)), batch_size=3)
    with pytest.raises(
        FloatingPointError, match="validation loss is nan after epoch 1"
    ):
        trainer.run(2, train, valid)
    # the failed epoch is not counted
    assert trainer.epoch == 0 and trainer.valid_log["loss"] == []


def test_a_one_cycle_schedule_without_enough_steps_left_is_refused_before_training():
    model = small_model()
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=0.1, total_steps=12)
    trainer = Trainer(
        model, optim, F.cross_entropy, scheduler, device="cpu", verbose=False
    )
    train, valid = loaders()  # 8 steps per epoch
    trainer.run(1, train, valid)
    weights = model[0].weight.detach().clone()
    with pytest.raises(
        ValueError,
        match=r"has 4 steps left \(it has stepped 8 times\), but run\(1\) needs 8",
    ):
        trainer.run(1, train, valid)
    assert torch.equal(model[0].weight, weights) and trainer.global_step == 8


def test_reduce_on_plateau_without_a_valid_loader_is_refused_before_training():
    model = small_model()
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optim)
    trainer = Trainer(
        model,
        optim,
        F.cross_entropy,
        plateau,
        device="cpu",
        verbose=False,
        scheduler_interval="epoch",
    )
    with pytest.raises(ValueError, match="ReduceLROnPlateau .* needs a valid_loader"):
        trainer.run(1, loaders()[0])
    assert trainer.global_step == 0


class EpochRecorder:
    """A list of batches that records the epochs the Trainer announces."""

    def __init__(self, batches: list) -> None:
        self.batches, self.epochs = batches, []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def test_the_trainer_announces_each_epoch_to_a_loader_with_set_epoch():
    trainer = make_trainer()
    train = EpochRecorder(list(loaders()[0]))
    trainer.run(2, train)
    trainer.run(1, train)
    assert train.epochs == [0, 1, 2]


def test_stale_launch_variables_do_not_make_the_trainer_join_a_group(monkeypatch):
    for name, value in {
        "WORLD_SIZE": "2",
        "RANK": "1",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "1",
    }.items():
        monkeypatch.setenv(name, value)
    trainer = make_trainer()
    trainer.run(1, *loaders())
    assert not trainer.distributed and trainer.rank == 0 and trainer.world_size == 1
    assert not torch.distributed.is_initialized()


# ---------------------------------------------------------------- the core and the engine
def _bars_run(engine: type, seed: int = 0, resident: bool = False, **options):
    """Two epochs of chapter 3's bars with AdamW under one cycle, on ``engine``.

    The batches are drawn from torch's global generator (a DataLoader without its own) or
    from ``DeviceBatches``: either way both engines see the same orders. (A DataLoader with
    its own generator would not do: the full Trainer re-seeds it every epoch for exact
    resume, which a plain loop does not.)
    """
    from nbhelpers.data import DeviceBatches, bar_images
    from nbhelpers.models import bar_cnn

    seed_everything(seed)
    train_set, valid_set = bar_images(96, seed=0), bar_images(40, seed=1)
    if resident:
        train = DeviceBatches(*train_set.tensors, 16, shuffle=True, seed=seed)
    else:
        train = DataLoader(train_set, batch_size=16, shuffle=True)
    valid = DataLoader(valid_set, batch_size=16)
    model = bar_cnn()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optim, max_lr=0.02, steps_per_epoch=len(train), epochs=2
    )
    trainer = engine(model, optim, F.cross_entropy, scheduler, device="cpu", **options)
    trainer.run(2, train, valid)
    return trainer


@pytest.mark.parametrize("resident", [False, True], ids=["DataLoader", "DeviceBatches"])
def test_the_core_and_the_full_trainer_agree_bit_for_bit_on_the_cpu(resident):
    core = _bars_run(TrainerCore, resident=resident, verbose=False)
    full = _bars_run(Trainer, resident=resident, verbose=False, log_every=5)
    assert core.train_log == full.train_log  # every step's loss and accuracy, exactly
    assert core.valid_log == full.valid_log
    for (name, a), (_, b) in zip(
        core.model.state_dict().items(), full.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert core.global_step == full.global_step == 12 and core.epoch == full.epoch == 2


def test_the_agreement_is_not_a_property_of_any_two_runs():
    one = _bars_run(TrainerCore, verbose=False).train_log
    assert one != _bars_run(TrainerCore, seed=1, verbose=False).train_log
