"""Shared fixtures: the device every device-dependent test runs on, and the gpu marker."""

from __future__ import annotations

import os

import pytest
import torch

from nbhelpers.device import accelerator_available


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        default="auto",
        help="device for device-dependent tests: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps",
    )


# Chapter 06 loads the tissue model that chapter 05 trained and cached (store_trained_model)
# when it runs after it: one pytest-xdist worker runs both, in that order (make test's
# --dist loadgroup), instead of two workers training the same model at once.
SAME_WORKER = {"05_transfer_learning.ipynb": "tissue", "06_guided_backprop.ipynb": "tissue"}


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    for item in items:
        group = SAME_WORKER.get(item.path.name)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    if accelerator_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA or MPS; none available here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config) -> torch.device:
    """The torch.device chosen with --device (default: the same choice as nbhelpers.get_device)."""
    from nbhelpers.device import checked_device, get_device

    name = pytestconfig.getoption("--device")
    if name == "auto":
        saved = os.environ.pop("NBHELPERS_DEVICE", None)
        try:
            return get_device()
        finally:
            if saved is not None:
                os.environ["NBHELPERS_DEVICE"] = saved
    return checked_device(name, label=f"--device {name}")


@pytest.fixture
def isolated_data(tmp_path, monkeypatch):
    """An empty data folder, no mirror, no network: the data tests start from nothing."""
    monkeypatch.setenv("NBHELPERS_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("NBHELPERS_DATA_MIRROR", raising=False)
    monkeypatch.setenv("NBHELPERS_OFFLINE", "1")
    return tmp_path / "data"
