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


def pytest_configure(config: pytest.Config) -> None:
    """Tests use NBHELPERS_THREADS torch threads, as the chapters do: `make test` runs two
    workers on two cores with one thread each instead of two workers of two threads."""
    from nbhelpers.device import cpu_threads

    threads = cpu_threads()
    if threads is not None:
        torch.set_num_threads(threads)


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
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
