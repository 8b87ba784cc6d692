import random

import numpy as np
import pytest
import torch

from nbhelpers import device as dev


def test_get_device_defaults_to_best_available(monkeypatch):
    monkeypatch.delenv("NBHELPERS_DEVICE", raising=False)
    expected = (
        "cuda"
        if torch.cuda.is_available()
        else ("mps" if dev._mps_available() else "cpu")
    )
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


def test_cpu_threads_reads_a_positive_number_or_nothing(monkeypatch):
    monkeypatch.delenv("NBHELPERS_THREADS", raising=False)
    assert dev.cpu_threads() is None
    monkeypatch.setenv("NBHELPERS_THREADS", "1")
    assert dev.cpu_threads() == 1
    most = dev.max_cpu_threads()
    monkeypatch.setenv("NBHELPERS_THREADS", str(most))
    assert dev.cpu_threads() == most
    for bad in ("0", "-1", "two", "1.5", str(most + 1), "99999"):
        monkeypatch.setenv("NBHELPERS_THREADS", bad)
        with pytest.raises(ValueError, match=f"NBHELPERS_THREADS={bad!r}"):
            dev.cpu_threads()


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
