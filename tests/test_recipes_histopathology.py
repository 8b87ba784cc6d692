"""nbhelpers.recipes.histopathology: configuration, split, a tiny run that learns, the model cache."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from nbhelpers import device as device_module
from nbhelpers.recipes import histopathology as histo
from nbhelpers.recipes.histopathology import (
    HistopathologyRecipe,
    fast_precision,
    load_model,
    model_cache_path,
    recipe,
    run_recipe,
    save_model,
    split_labels,
    trained_histopathology_model,
)

TRUE_SIZES = {name: dict(values) for name, values in device_module.SIZES["histopathology"].items()}
TINY = {"train": 16, "valid": 4, "epochs_frozen": 1, "epochs_finetune": 1, "batch_size": 8, "synthetic": 20}


@pytest.fixture(autouse=True)
def isolated_data(tmp_path, monkeypatch):
    """An empty data folder, no mirror, no network, tiny sizes in both profiles, one thread."""
    monkeypatch.setenv("NBHELPERS_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("NBHELPERS_DATA_MIRROR", raising=False)
    monkeypatch.setenv("NBHELPERS_OFFLINE", "1")
    monkeypatch.setenv("NBHELPERS_PROFILE", "quick")
    for name in ("quick", "full"):
        monkeypatch.setitem(device_module.SIZES["histopathology"], name, dict(TINY))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path / "data"
    torch.set_num_threads(threads)


# ---- configuration and split ---------------------------------------------------------------------


def test_recipe_reads_the_profile_sizes_and_takes_overrides():
    config = recipe("full", batch_size=4, precision="32")
    assert (config.train, config.valid, config.epochs_frozen, config.epochs_finetune) == (16, 4, 1, 1)
    assert config.batch_size == 4 and config.precision == "32" and config.profile == "full"
    assert (config.lr_frozen, config.max_lr_frozen, config.lr_finetune, config.max_lr_finetune) == (1e-3, 1e-2, 1e-4, 1e-3)
    assert recipe().profile == "quick"
    with pytest.raises(ValueError, match="unknown recipe field"):
        recipe("quick", epochs=3)
    with pytest.raises(ValueError, match="batch_size"):
        recipe("quick", batch_size=1)
    with pytest.raises(ValueError, match="epochs_finetune"):
        HistopathologyRecipe(train=1, valid=1, epochs_frozen=1, epochs_finetune=0, batch_size=2)


def test_the_real_profiles_follow_the_seed():
    full, quick = TRUE_SIZES["full"], TRUE_SIZES["quick"]
    assert (full["train"], full["valid"], full["epochs_frozen"], full["epochs_finetune"]) == (32_000, 8_000, 10, 20)
    assert full["batch_size"] == 16 and full["synthetic"] == full["train"] + full["valid"]
    assert quick["train"] + quick["valid"] <= quick["synthetic"]
    assert HistopathologyRecipe(**{k: v for k, v in quick.items() if k != "synthetic"}).train == quick["train"]


def test_fast_precision():
    assert fast_precision("cpu") in ("32", "bf16")
    assert fast_precision("meta") == "32"


def test_split_is_the_seeds_80_20_and_deterministic():
    labels = pd.DataFrame({"id": [f"i{k}" for k in range(100)], "label": [k % 3 == 0 for k in range(100)]}).astype({"label": int})
    train, valid = split_labels(labels, 70, 15, seed=3)
    assert len(train) == 70 and len(valid) == 15
    assert not set(train["id"]) & set(valid["id"])
    shuffled = labels.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert list(train["id"]) == list(shuffled["id"][:70]) and list(valid["id"]) == list(shuffled["id"][80:95])
    again, _ = split_labels(labels, 70, 15, seed=3)
    other, _ = split_labels(labels, 70, 15, seed=4)
    assert again.equals(train) and not other.equals(train)
    with pytest.raises(ValueError, match="valid=21"):
        split_labels(labels, 10, 21)
    with pytest.raises(ValueError, match="train=81"):
        split_labels(labels, 81, 1)


# ---- a tiny run ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_small_run_learns_well_above_chance(monkeypatch):
    """320 / 80 synthetic patches, 1 + 4 epochs from random weights (about 13 s on one CPU thread).

    Three seeds reached 0.83 to 0.88 validation accuracy with a majority share of 0.66.
    """
    sizes = {"train": 320, "valid": 80, "epochs_frozen": 1, "epochs_finetune": 4, "batch_size": 16, "synthetic": 400}
    monkeypatch.setitem(device_module.SIZES["histopathology"], "quick", sizes)
    run = run_recipe(recipe("quick", weights="none"), device="cpu")
    targets = run.data.valid_targets.float()
    majority = max(targets.mean().item(), 1 - targets.mean().item())
    accuracy = run.finetune.valid_log["accu"][-1]
    assert accuracy >= majority + 0.1, f"validation accuracy {accuracy:.3f}, majority share {majority:.3f}"
    assert len(run.frozen.valid_log["accu"]) == 1 and len(run.finetune.valid_log["accu"]) == 4
    assert all(p.requires_grad for p in run.model.parameters())  # phase 2 unfroze the backbone
    assert set(run.seconds) == {"data", "frozen", "finetune", "total"}
    assert run.data.source.startswith("embedded (synthetic")


def test_phase_one_trains_only_the_head():
    config = recipe("quick", precision="32")
    data = histo.load_patch_data(config)
    train_loader, valid_loader = histo.patch_batches(data, config, "cpu")
    model = histo.build_model(config)
    backbone_before = [p.detach().clone() for p in model[0].parameters()]
    head_before = [p.detach().clone() for p in model[1].parameters()]
    trainer = histo.train_frozen(model, train_loader, valid_loader, config, "cpu", verbose=False)
    assert all(torch.equal(a, b) for a, b in zip(backbone_before, model[0].parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(head_before, model[1].parameters()))
    assert trainer.optim.param_groups[0]["initial_lr"] == config.max_lr_frozen / 25  # OneCycleLR's start
    assert len(trainer.valid_log["accu"]) == config.epochs_frozen


# ---- the model cache -----------------------------------------------------------------------------


def _tiny_model() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return histo.histopathology_resnet18(weights="none")


def test_save_and_load_round_trip(tmp_path):
    model = _tiny_model()
    path = save_model(model, tmp_path / "m" / "model.pt", {"profile": "quick", "valid_accu": 0.5, "weights_source": "random"})
    loaded = load_model(path)
    assert loaded.training_meta == {"profile": "quick", "valid_accu": 0.5, "weights_source": "random"}
    assert not loaded.training
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary file left


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


def test_cache_path_is_keyed_by_version_profile_data_start_and_sizes(isolated_data, monkeypatch, tmp_path):
    synthetic_root = histo.histopathology_root(min_patches=20)
    kaggle_root = tmp_path / "kaggle"
    (kaggle_root / "train").mkdir(parents=True)
    (kaggle_root / "train_labels.csv").write_text("id,label\na,0\nb,1\n")
    quick, full = recipe("quick"), recipe("full")  # equal sizes, different profiles
    path = model_cache_path(quick, synthetic_root, "random")
    assert path.parent == isolated_data.resolve() / "models"
    assert path.name.startswith(f"histopathology-resnet18-r{histo.RECIPE_VERSION}-quick-synthetic")
    assert path == model_cache_path(recipe("quick"), synthetic_root, "random")  # stable
    others = [
        model_cache_path(full, synthetic_root, "random"),
        model_cache_path(quick, kaggle_root, "random"),
        model_cache_path(quick, synthetic_root, "imagenet"),
        model_cache_path(recipe("quick", epochs_finetune=2), synthetic_root, "random"),
    ]
    assert "-kaggle-" in others[1].name and "-imagenet-" in others[2].name
    assert len({path, *others}) == 5
    monkeypatch.setitem(device_module.SIZES["histopathology"]["quick"], "train", 15)  # a changed profile
    assert model_cache_path(recipe("quick"), synthetic_root, "random") != path
    with pytest.raises(ValueError, match="init"):
        model_cache_path(quick, synthetic_root, "pretrained")


class _FakeTrainer:
    valid_log = {"accu": [0.75]}


class _FakeRun:
    def __init__(self, config):
        self.model = _tiny_model()
        self.model.weights_source = "random initialisation (test)"
        self.data = type("Data", (), {"source": "embedded (synthetic, test)"})()
        self.finetune = _FakeTrainer()
        self.seconds = {"total": 1.0}


def test_trained_model_is_trained_once_per_profile_then_loaded(monkeypatch, isolated_data):
    calls = []

    def fake_run_recipe(config, root=None, device=None, verbose=False, num_workers=0):
        calls.append(config.profile)
        return _FakeRun(config)

    monkeypatch.setattr(histo, "run_recipe", fake_run_recipe)
    first = trained_histopathology_model("quick", device="cpu")
    assert calls == ["quick"] and not first.loaded_from_cache
    assert first.cache_path.is_file() and "-quick-synthetic" in first.cache_path.name
    assert first.training_meta["valid_accu"] == 0.75 and first.training_meta["profile"] == "quick"
    second = trained_histopathology_model("quick", device="cpu")
    assert calls == ["quick"] and second.loaded_from_cache
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    third = trained_histopathology_model("full", device="cpu")
    assert calls == ["quick", "full"] and third.cache_path != first.cache_path
    assert sorted(os.listdir(first.cache_path.parent)) == sorted([first.cache_path.name, third.cache_path.name])
