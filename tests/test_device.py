import random

import numpy as np
import pytest
import torch

from nbhelpers import device as dev


def test_get_device_defaults_to_best_available(monkeypatch):
    monkeypatch.delenv("NBHELPERS_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if dev._mps_available() else "cpu")
    assert dev.get_device().type == expected


def test_get_device_override_cpu(monkeypatch):
    monkeypatch.setenv("NBHELPERS_DEVICE", "cpu")
    assert dev.get_device() == torch.device("cpu")


@pytest.mark.parametrize("name", ["tpu", "gpu0", "cuda:x"])
def test_get_device_rejects_unknown_names(monkeypatch, name):
    monkeypatch.setenv("NBHELPERS_DEVICE", name)
    with pytest.raises(ValueError, match="NBHELPERS_DEVICE"):
        dev.get_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_get_device_rejects_unavailable_cuda(monkeypatch):
    monkeypatch.setenv("NBHELPERS_DEVICE", "cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        dev.get_device()


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("NBHELPERS_PROFILE", "full")
    assert dev.profile() == "full"
    monkeypatch.setenv("NBHELPERS_PROFILE", "QUICK")
    assert dev.profile() == "quick"
    monkeypatch.setenv("NBHELPERS_PROFILE", "fast")
    with pytest.raises(ValueError, match="fast"):
        dev.profile()


def test_profile_default_follows_accelerator(monkeypatch):
    monkeypatch.delenv("NBHELPERS_PROFILE", raising=False)
    assert dev.profile() == ("full" if dev.accelerator_available() else "quick")


def test_sizes_table_is_complete_and_copied():
    for section, by_profile in dev.SIZES.items():
        assert set(by_profile) == set(dev.PROFILES), section
        assert set(by_profile["quick"]) == set(by_profile["full"]), section
    first = dev.sizes("mnist", "full")
    first["epochs"] = -1
    assert dev.sizes("mnist", "full")["epochs"] == 3
    with pytest.raises(ValueError, match="unknown section"):
        dev.sizes("cifar")


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    dev.seed_everything(7)
    first = draw()
    dev.seed_everything(7)
    assert draw() == first
    with pytest.raises(ValueError):
        dev.seed_everything(-1)


def test_run_banner_names_device_profile_and_source(monkeypatch):
    monkeypatch.setenv("NBHELPERS_PROFILE", "quick")
    monkeypatch.setenv("NBHELPERS_DEVICE", "cpu")
    line = dev.run_banner("mirror")
    assert "device: cpu" in line and "profile: quick" in line and "data: mirror" in line
