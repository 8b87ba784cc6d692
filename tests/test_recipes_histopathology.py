"""Chapter 05's recipe: fields and profiles, the data chain, the phases, exact resume, the model cache."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
from support import TINY_HISTOPATHOLOGY, write_pcam_split

from nbhelpers.models import IMAGENET_MEAN, IMAGENET_STD, batchnorm_statistics
from nbhelpers.recipes import histopathology as histo
from nbhelpers.recipes.histopathology import (
    HistopathologyRecipe,
    load_model,
    model_cache_path,
    save_model,
    split_labels,
    trained_histopathology_model,
)
from nbhelpers.storage import DataSource
from nbhelpers.train import Callback

TINY = TINY_HISTOPATHOLOGY


@pytest.fixture(autouse=True)
def isolated_data(tmp_path, monkeypatch):
    """An empty data folder, no mirror, no network, one thread."""
    monkeypatch.setenv("NBHELPERS_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("NBHELPERS_DATA_MIRROR", raising=False)
    monkeypatch.setenv("NBHELPERS_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path / "data"
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """The tiny recipe's patches (a synthetic set of 20), decoded once for the module."""
    folder = tmp_path_factory.mktemp("histo-data")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NBHELPERS_DATA", str(folder))
        env.delenv("NBHELPERS_DATA_MIRROR", raising=False)
        env.setenv("NBHELPERS_OFFLINE", "1")
        return HistopathologyRecipe(**TINY).prepare()


# ---- fields and profiles -------------------------------------------------------------------------


def test_the_profiles_follow_the_source_and_take_overrides():
    full = HistopathologyRecipe.for_profile("full")
    assert (
        full.train_size,
        full.valid_size,
        full.epochs_frozen,
        full.epochs_finetune,
    ) == (32_000, 8_000, 10, 20)
    assert full.batch_size == 16 and full.download and full.synthetic_size == 40_000
    assert (
        full.lr_frozen,
        full.max_lr_frozen,
        full.lr_finetune,
        full.max_lr_finetune,
    ) == (1e-3, 1e-2, 1e-4, 1e-3)
    quick = HistopathologyRecipe.for_profile("quick", batch_size=4)
    assert quick.batch_size == 4 and not quick.download
    assert quick.train_size + quick.valid_size <= quick.synthetic_size
    with pytest.raises(ValueError, match="unknown HistopathologyRecipe field"):
        HistopathologyRecipe.for_profile("quick", epochs=3)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"batch_size": 1}, "BatchNorm1d"),
        ({"epochs_finetune": 0}, "epochs_finetune"),
        ({"max_lr_frozen": float("nan")}, "max_lr_frozen"),
        ({"precision": "64"}, "precision"),
        ({"weights": "pretrained"}, "weights"),
        ({"augment": 1}, "augment"),
        ({"freeze_batchnorm": 1}, "freeze_batchnorm"),
        ({"backbone_lr_factor": 0}, "backbone_lr_factor"),
        ({"backbone_lr_factor": float("nan")}, "backbone_lr_factor"),
    ],
)
def test_recipe_rejects_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        HistopathologyRecipe(**bad)


def test_the_split_is_the_sources_80_20_and_deterministic():
    labels = pd.DataFrame(
        {
            "id": [f"i{k}" for k in range(100)],
            "label": [int(k % 3 == 0) for k in range(100)],
        }
    )
    train, valid = split_labels(labels, 70, 15, seed=3)
    assert len(train) == 70 and len(valid) == 15
    assert not set(train["id"]) & set(valid["id"])
    shuffled = labels.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert list(train["id"]) == list(shuffled["id"][:70]) and list(valid["id"]) == list(
        shuffled["id"][80:95]
    )
    with pytest.raises(ValueError, match="train_size=90"):
        split_labels(labels, 90, 5)


# ---- data --------------------------------------------------------------------------------------


def test_without_a_real_set_the_synthetic_one_is_used_and_named(tiny_data):
    assert (
        tiny_data.source.kind == "embedded" and "synthetic" in tiny_data.source.detail
    )
    assert (
        tiny_data.train_images.shape == (16, 3, 96, 96)
        and tiny_data.train_images.dtype == torch.uint8
    )
    assert tiny_data.valid_images.shape == (4, 3, 96, 96)
    assert tiny_data.train_targets.dtype == torch.int64 and set(
        tiny_data.train_targets.tolist()
    ) <= {0, 1}
    # no absolute path printed
    assert "/" not in str(tiny_data.source).split("(", 1)[1].split("$", 1)[0]


def test_batches_are_augmented_crops_on_the_device(tiny_data):
    recipe = HistopathologyRecipe(**TINY)
    train, valid = recipe.batches(tiny_data, "cpu")
    x, y = next(iter(train))
    assert x.shape == (8, 3, 49, 49) and x.dtype == torch.float32 and y.shape == (8,)
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert len(train) == 2 and len(valid) == 1
    still = replace(recipe, augment=False).batches(tiny_data, "cpu")[0]
    x1, _ = next(iter(still))
    assert x1.shape == (8, 3, 49, 49)


def test_a_pcam_folder_in_the_data_folder_is_used_ahead_of_the_synthetic_set(
    isolated_data,
):
    write_pcam_split(isolated_data, "train", 20, seed=1)
    write_pcam_split(isolated_data, "valid", 8, seed=2)
    data = HistopathologyRecipe(**TINY).prepare()
    assert data.source.kind == "local" and "PCam" in str(data.source)
    assert data.folder is None
    assert data.train_images.shape == (16, 3, 96, 96) and data.valid_images.shape == (
        4,
        3,
        96,
        96,
    )
    x, _ = write_pcam_split(isolated_data / "again", "train", 20, seed=1)
    assert torch.equal(data.train_images, torch.from_numpy(x[:16]).permute(0, 3, 1, 2))


def test_a_pcam_folder_too_small_for_the_recipe_is_passed_over(isolated_data):
    write_pcam_split(isolated_data, "train", 10)
    write_pcam_split(isolated_data, "valid", 8)
    data = HistopathologyRecipe(**TINY).prepare()
    assert data.source.kind == "embedded" and "synthetic" in data.source.detail


def test_pcam_valid_split_alone_gives_validation_its_first_patches_and_training_the_next(
    isolated_data,
):
    x, y = write_pcam_split(isolated_data, "valid", 20, seed=3)
    data = HistopathologyRecipe(**TINY).prepare()  # 16 training + 4 validation patches
    assert data.source.kind == "local" and data.folder is None
    assert data.source.detail.endswith(
        "PCam's valid split alone: patches 0-3 validate, 4-19 train"
    )
    as_chw = torch.from_numpy(x).permute(0, 3, 1, 2)
    assert torch.equal(data.valid_images, as_chw[:4])
    assert torch.equal(data.train_images, as_chw[4:20])
    assert data.valid_targets.tolist() == y[:4].tolist()
    assert data.train_targets.tolist() == y[4:20].tolist()


def test_pcam_valid_split_too_small_for_both_parts_is_passed_over(isolated_data):
    write_pcam_split(isolated_data, "valid", 19)
    data = HistopathologyRecipe(**TINY).prepare()
    assert data.source.kind == "embedded" and "synthetic" in data.source.detail


def test_pcams_own_splits_come_before_the_valid_split_alone(isolated_data):
    x_train, _ = write_pcam_split(isolated_data, "train", 16, seed=1)
    x_valid, _ = write_pcam_split(isolated_data, "valid", 20, seed=2)
    data = HistopathologyRecipe(**TINY).prepare()
    assert "alone" not in data.source.detail
    assert torch.equal(data.train_images, torch.from_numpy(x_train).permute(0, 3, 1, 2))
    assert torch.equal(
        data.valid_images, torch.from_numpy(x_valid[:4]).permute(0, 3, 1, 2)
    )


# ---- training ----------------------------------------------------------------------------------


class StopTrainingAfter(Callback):
    """Ends the whole run, as a crash or Ctrl-C would, after ``epochs`` epochs in all
    (counted across the phases: the same callback object hears both Trainers)."""

    def __init__(self, epochs: int) -> None:
        self.epochs, self.seen = epochs, 0

    def on_epoch_end(self, trainer) -> None:
        self.seen += 1
        if self.seen == self.epochs:
            raise KeyboardInterrupt(f"stopped after {self.epochs} epoch(s)")


def test_phase_one_trains_only_the_head_and_phase_two_everything(tiny_data, tmp_path):
    recipe = HistopathologyRecipe(**TINY)
    backbone = [p.detach().clone() for p in recipe.build_model().model[0].parameters()]
    with pytest.raises(KeyboardInterrupt):
        recipe.train(
            tiny_data,
            "cpu",
            verbose=False,
            checkpoints=tmp_path,
            callbacks=[StopTrainingAfter(1)],
        )
    after_phase_one = torch.load(tmp_path / "frozen.pt", weights_only=True)["model"]
    assert all(
        torch.equal(a, after_phase_one[f"0.{name}"])
        for a, (name, _) in zip(
            backbone, recipe.build_model().model[0].named_parameters()
        )
    )
    frozen, finetune = recipe.train(tiny_data, "cpu", verbose=False)
    # OneCycleLR's start
    assert frozen.optim.param_groups[0]["initial_lr"] == recipe.max_lr_frozen / 25
    head = sum(p.numel() for p in frozen.optim.param_groups[0]["params"])
    assert head == sum(p.numel() for p in frozen.model[1].parameters())
    assert all(p.requires_grad for p in finetune.model.parameters())
    assert any(
        not torch.equal(a, b) for a, b in zip(backbone, finetune.model[0].parameters())
    )
    assert frozen.model is finetune.model and finetune.epoch == recipe.epochs_finetune


def test_the_two_phases_draw_different_orders(tiny_data):
    recipe = HistopathologyRecipe(**TINY)
    train, _ = recipe.batches(tiny_data, "cpu")
    finetune = train.reseeded(recipe.seed + 1)
    assert finetune.state_dict() == {"seed": recipe.seed + 1, "epoch": 0}
    assert finetune.inputs is train.inputs  # the same stored patches, not a copy
    frozen_epoch_0 = torch.cat([x for x, _ in train])
    finetune_epoch_0 = torch.cat([x for x, _ in finetune])
    assert not torch.equal(frozen_epoch_0, finetune_epoch_0)


@pytest.mark.parametrize("stop_after", [1, 2])
def test_resume_is_exact_at_the_phase_boundary_and_inside_a_phase(
    tiny_data, tmp_path, stop_after
):
    recipe = HistopathologyRecipe(**{**TINY, "epochs_finetune": 2})
    straight = recipe.train(tiny_data, "cpu", verbose=False)
    with pytest.raises(KeyboardInterrupt):
        recipe.train(
            tiny_data,
            "cpu",
            verbose=False,
            checkpoints=tmp_path,
            callbacks=[StopTrainingAfter(stop_after)],
        )
    torch.manual_seed(4321)
    torch.rand(50)
    resumed = recipe.train(tiny_data, "cpu", verbose=False, checkpoints=tmp_path)
    assert [trainer.epoch for trainer in resumed] == [1, 2]
    difference = max(
        (a - b).abs().max().item()
        for a, b in zip(
            straight[1].model.state_dict().values(),
            resumed[1].model.state_dict().values(),
        )
        if a.is_floating_point()
    )
    assert difference <= 1e-6
    for before, after in zip(straight, resumed):
        assert after.train_log == before.train_log
        for key, values in before.valid_log.items():
            assert after.valid_log[key] == pytest.approx(values), key


def test_a_checkpoint_of_another_phase_or_recipe_is_refused(tiny_data, tmp_path):
    recipe = HistopathologyRecipe(**TINY)
    recipe.train(tiny_data, "cpu", verbose=False, checkpoints=tmp_path)
    (tmp_path / "frozen.pt").replace(tmp_path / "keep.pt")
    (tmp_path / "finetune.pt").replace(tmp_path / "frozen.pt")
    with pytest.raises(
        ValueError, match=r"frozen.pt was written by a different recipe"
    ):
        recipe.train(tiny_data, "cpu", verbose=False, checkpoints=tmp_path)
    other = replace(recipe, lr_frozen=0.5)
    (tmp_path / "keep.pt").replace(tmp_path / "frozen.pt")
    with pytest.raises(ValueError, match=r"lr_frozen: 0.001 -> 0.5"):
        other.train(tiny_data, "cpu", verbose=False, checkpoints=tmp_path)


@pytest.mark.slow
def test_a_small_run_learns_well_above_chance(isolated_data):
    """320 / 80 synthetic patches, 1 + 4 epochs from random weights (about 13 s on one CPU thread)."""
    sizes = {
        **TINY,
        "train_size": 320,
        "valid_size": 80,
        "epochs_finetune": 4,
        "batch_size": 16,
        "synthetic_size": 400,
    }
    recipe = HistopathologyRecipe(**sizes)
    data = recipe.prepare()
    _, finetune = recipe.train(data, "cpu", verbose=False)
    accuracy = finetune.valid_log["accuracy"][-1]
    share = data.valid_targets.float().mean().item()
    majority = max(share, 1 - share)
    assert accuracy >= majority + 0.1, (
        f"validation accuracy {accuracy:.3f}, majority {majority:.3f}"
    )


# ---- the model cache -----------------------------------------------------------------------------


def _tiny_model() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return histo.histopathology_resnet18(weights="none").model


def test_save_and_load_round_trip(tmp_path):
    model = _tiny_model()
    path = save_model(
        model,
        tmp_path / "m" / "model.pt",
        {"valid_accuracy": 0.5, "weights_source": "random"},
    )
    loaded, meta = load_model(path)
    assert meta == {"valid_accuracy": 0.5, "weights_source": "random"}
    assert not loaded.training
    for (name, a), (_, b) in zip(
        model.state_dict().items(), loaded.state_dict().items()
    ):
        assert torch.equal(a, b), name
    # no temporary file left
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = save_model(_tiny_model(), tmp_path / "model.pt", {"version": 1})
    before = path.read_bytes()

    def broken_save(obj, target, *args, **kwargs):
        Path(target).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_model(_tiny_model(), path, {"version": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_load_model_names_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pt"):
        load_model(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="foreign.pt.*save_model"):
        load_model(foreign)
    mismatched = tmp_path / "mismatched.pt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "meta": {}}, mismatched)
    with pytest.raises(ValueError, match="do not fit"):
        load_model(mismatched)


def test_cache_path_is_keyed_by_version_data_start_and_every_field(
    isolated_data, tiny_data
):
    recipe = HistopathologyRecipe(**TINY)
    path = model_cache_path(recipe, tiny_data, "random")
    assert path.parent == isolated_data.resolve() / "models"
    assert path.name.startswith(
        f"histopathology-resnet18-r{histo.RECIPE_VERSION}-embedded-random-"
    )
    # stable
    assert path == model_cache_path(HistopathologyRecipe(**TINY), tiny_data, "random")
    other_source = replace(
        tiny_data,
        source=DataSource("local", "$NBHELPERS_DATA/histopathologic-cancer-detection"),
    )
    others = [
        model_cache_path(recipe, other_source, "random"),
        model_cache_path(recipe, tiny_data, "imagenet"),
        model_cache_path(replace(recipe, epochs_finetune=2), tiny_data, "random"),
        model_cache_path(replace(recipe, seed=1), tiny_data, "random"),
    ]
    assert "-local-" in others[0].name and "-imagenet-" in others[1].name
    assert len({path, *others}) == 5
    with pytest.raises(ValueError, match="init"):
        model_cache_path(recipe, tiny_data, "pretrained")


def test_the_trained_model_is_trained_once_then_loaded(
    isolated_data, tiny_data, monkeypatch
):
    recipe = HistopathologyRecipe(**TINY)
    calls = []
    real_train = HistopathologyRecipe.train

    def counting_train(self, *args, **kwargs):
        calls.append(self)
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(HistopathologyRecipe, "train", counting_train)
    first = trained_histopathology_model(recipe, tiny_data, "cpu")
    assert (
        len(calls) == 1 and not first.loaded_from_cache and first.cache_path.is_file()
    )
    assert (
        first.meta["source"] == str(tiny_data.source)
        and 0 <= first.meta["valid_accuracy"] <= 1
    )
    second = trained_histopathology_model(recipe, tiny_data, "cpu")
    assert len(calls) == 1 and second.loaded_from_cache and second.meta == first.meta
    for a, b in zip(
        first.model.state_dict().values(), second.model.state_dict().values()
    ):
        assert torch.equal(a, b)
    third = trained_histopathology_model(replace(recipe, seed=1), tiny_data, "cpu")
    assert len(calls) == 2 and third.cache_path != first.cache_path
    assert sorted(os.listdir(first.cache_path.parent)) == sorted(
        [first.cache_path.name, third.cache_path.name]
    )


def test_a_read_only_data_folder_trains_without_caching(isolated_data, tiny_data):
    isolated_data.mkdir(parents=True, exist_ok=True)
    os.chmod(isolated_data, 0o555)
    try:
        result = trained_histopathology_model(
            HistopathologyRecipe(**TINY), tiny_data, "cpu"
        )
    finally:
        os.chmod(isolated_data, 0o755)
    assert result.cache_path is None and not result.loaded_from_cache
    assert not (isolated_data / "models").exists()


def test_a_failed_cache_write_returns_the_trained_model_and_says_why(
    isolated_data, tiny_data, monkeypatch
):
    def full_disk(model, path, meta):
        raise OSError(f"could not write {path}: No space left on device")

    monkeypatch.setattr(histo, "save_model", full_disk)
    result = trained_histopathology_model(
        HistopathologyRecipe(**TINY), tiny_data, "cpu"
    )
    assert not result.loaded_from_cache and not result.cache_path.exists()
    assert "No space left on device" in result.not_cached
    assert not result.model.training and 0 <= result.meta["valid_accuracy"] <= 1


def test_a_model_stored_after_training_is_what_the_cache_gives_back(tiny_data):
    recipe = HistopathologyRecipe(**TINY)
    _, finetune = recipe.train(tiny_data, "cpu", verbose=False)
    stored = histo.store_trained_model(recipe, tiny_data, finetune, "cpu", 1.5)
    assert stored.cache_path.is_file() and stored.not_cached is None
    assert stored.meta["seconds"] == 1.5
    found = trained_histopathology_model(recipe, tiny_data, "cpu")
    assert found.loaded_from_cache and found.cache_path == stored.cache_path
    assert found.meta == stored.meta
    for name, tensor in finetune.model.state_dict().items():
        assert torch.equal(found.model.state_dict()[name], tensor), name


def test_training_again_gives_the_stored_network_bit_for_bit(tiny_data):
    """Chapter 06 may train the model itself or load chapter 05's: the same weights."""
    recipe = HistopathologyRecipe(**TINY)
    _, first = recipe.train(tiny_data, "cpu", verbose=False)
    _, second = recipe.train(tiny_data, "cpu", verbose=False)
    for name, tensor in first.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[name], tensor), name


# ---- frozen batch norm, discriminative rates, the normalisation in the cache --------------------


def test_by_default_the_frozen_phase_moves_the_backbones_statistics(tiny_data):
    recipe = HistopathologyRecipe(**TINY)
    assert recipe.freeze_batchnorm is False
    start = batchnorm_statistics(recipe.build_model().model[0])
    train, valid = recipe.batches(tiny_data, "cpu")
    model = recipe.build_model().model
    recipe.frozen_phase(model, train, valid, torch.device("cpu"), verbose=False)
    end = batchnorm_statistics(model[0])
    assert all(not torch.equal(start[k][0], end[k][0]) for k in start)
    assert model[0].training


def test_freeze_batchnorm_keeps_the_statistics_in_phase_one_only(tiny_data):
    recipe = HistopathologyRecipe(**TINY, freeze_batchnorm=True)
    start = batchnorm_statistics(recipe.build_model().model[0])
    train, valid = recipe.batches(tiny_data, "cpu")
    model = recipe.build_model().model
    head = [p.detach().clone() for p in model[1].parameters()]
    frozen = recipe.frozen_phase(
        model, train, valid, torch.device("cpu"), verbose=False
    )
    end = batchnorm_statistics(model[0])
    assert all(torch.equal(start[k][0], end[k][0]) for k in start)
    assert all(torch.equal(start[k][1], end[k][1]) for k in start)
    assert not model[0].training and model[1].training  # the Trainer left the modes
    assert any(not torch.equal(a, b) for a, b in zip(head, model[1].parameters()))
    assert frozen.epoch == recipe.epochs_frozen
    # train(): phase 2 puts the backbone back in training mode, statistics move again
    _, finetune = recipe.train(tiny_data, "cpu", verbose=False)
    assert all(m.training for m in finetune.model.modules())
    after = batchnorm_statistics(finetune.model[0])
    assert any(not torch.equal(start[k][0], after[k][0]) for k in start)


def test_freeze_batchnorm_off_trains_exactly_as_before(tiny_data):
    """The switch's default changes nothing: the same run twice, bit for bit."""
    recipe = HistopathologyRecipe(**TINY)
    runs = [recipe.train(tiny_data, "cpu", verbose=False) for _ in range(2)]
    explicit = replace(recipe, freeze_batchnorm=False).train(
        tiny_data, "cpu", verbose=False
    )
    for frozen, finetune in (*runs[1:], explicit):
        assert frozen.train_log == runs[0][0].train_log
        assert finetune.valid_log == runs[0][1].valid_log


def test_discriminative_rates_are_one_group_for_the_backbone_and_one_for_the_head(
    tiny_data,
):
    recipe = HistopathologyRecipe(**TINY, backbone_lr_factor=0.1)
    model = recipe.build_model().model
    trainer = recipe.discriminative_trainer(
        model, 2, torch.device("cpu"), (), verbose=False
    )
    backbone, head = trainer.optim.param_groups
    assert [p for p in backbone["params"]] == list(model[0].parameters())
    assert [p for p in head["params"]] == list(model[1].parameters())
    assert head["max_lr"] == recipe.max_lr_frozen
    assert backbone["max_lr"] == pytest.approx(0.1 * recipe.max_lr_frozen)
    assert head["initial_lr"] == pytest.approx(recipe.max_lr_frozen / 25)
    assert backbone["initial_lr"] == pytest.approx(0.1 * recipe.max_lr_frozen / 25)
    before = [p.detach().clone() for p in model.parameters()]
    trained = recipe.train_discriminative(tiny_data, "cpu", verbose=False)
    assert trained.epoch == recipe.epochs_frozen + recipe.epochs_finetune
    assert all(
        not torch.equal(a, b) for a, b in zip(before, trained.model.parameters())
    )
    assert len(trained.valid_log["accuracy"]) == trained.epoch


def test_the_cache_keeps_the_normalisation_of_a_pretrained_start(tmp_path):
    """A model trained from ImageNet weights keeps its Normalize statistics through
    save_model and load_model, although load_model builds a random-start model."""
    model = _tiny_model()
    model[0][0].mean.copy_(torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
    model[0][0].std.copy_(torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
    loaded, _ = load_model(save_model(model, tmp_path / "m.pt", {}))
    assert loaded[0][0].mean.flatten().tolist() == pytest.approx(list(IMAGENET_MEAN))
    assert loaded[0][0].std.flatten().tolist() == pytest.approx(list(IMAGENET_STD))
