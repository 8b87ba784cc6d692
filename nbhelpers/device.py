"""Where computation runs and how much of it: the device, the seed and the run profile.

Every notebook starts with ``print(run_banner(...))`` so a reader sees on which device, in which
profile and on which data the numbers below were produced.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

PROFILES = ("quick", "full")

# The one table of sizes per run profile. Notebooks read their sizes from here (``sizes(...)``)
# and never hard-code them. "full" follows the seed's recipes; "quick" runs the same code on less
# data so that each chapter finishes within 60 s on 2 CPU cores and still shows learning.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "mnist": {
        "full": {"train": 55_000, "valid": 5_000, "epochs": 3, "batch_size": 32},
        "quick": {"train": 12_000, "valid": 2_000, "epochs": 1, "batch_size": 32},
    },
    "histopathology": {
        "full": {
            "train": 32_000,
            "valid": 8_000,
            "epochs_frozen": 10,
            "epochs_finetune": 20,
            "batch_size": 16,
            "synthetic": 40_000,
        },
        # quick: chosen on the 2-core CPU (one torch thread, bf16 autocast, random initialisation):
        # about 19 s of training and 0.88 validation accuracy on the synthetic set (majority share
        # about 0.6), so that chapters 05 and 06 each stay within 60 s when run side by side.
        "quick": {
            "train": 1_200,
            "valid": 300,
            "epochs_frozen": 1,
            "epochs_finetune": 2,
            "batch_size": 32,
            "synthetic": 1_500,
        },
    },
    "names": {
        "full": {"epochs": 5, "batch_size": 32, "subset": None},
        "quick": {"epochs": 2, "batch_size": 64, "subset": None},
    },
}


def accelerator_available() -> bool:
    """True when CUDA or Apple MPS can be used."""
    return torch.cuda.is_available() or _mps_available()


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def get_device() -> torch.device:
    """The device to compute on: ``NBHELPERS_DEVICE`` if set, else CUDA, else MPS, else CPU.

    Raises:
        ValueError: ``NBHELPERS_DEVICE`` names a device that does not exist or is not available.
    """
    requested = os.environ.get("NBHELPERS_DEVICE", "").strip()
    if requested and requested != "auto":
        return checked_device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def checked_device(name: str, label: str | None = None) -> torch.device:
    """``torch.device(name)`` after checking that such a device exists and is available here.

    Args:
        name: cpu, cuda, cuda:N or mps.
        label: how the error names the setting, e.g. "--device cuda"; default "NBHELPERS_DEVICE='cuda'".

    Raises:
        ValueError: not a device name, or a device this machine does not have.
    """
    label = label or f"NBHELPERS_DEVICE={name!r}"
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"{label} is not a device name ({error})") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{label}, but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{label}, but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type == "mps" and not _mps_available():
        raise ValueError(f"{label}, but MPS is not available here")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{label}: use cpu, cuda, cuda:N or mps")
    return device


def profile() -> str:
    """The run profile: ``NBHELPERS_PROFILE`` if set, else "full" with CUDA or MPS, "quick" on CPU.

    Raises:
        ValueError: ``NBHELPERS_PROFILE`` is set to something other than "quick" or "full".
    """
    requested = os.environ.get("NBHELPERS_PROFILE", "").strip().lower()
    if requested and requested != "auto":
        if requested not in PROFILES:
            raise ValueError(f"NBHELPERS_PROFILE={requested!r}: use one of {', '.join(PROFILES)}")
        return requested
    return "full" if accelerator_available() else "quick"


def sizes(section: str, run_profile: str | None = None) -> dict[str, Any]:
    """The sizes (epochs, subset sizes, batch size, ...) of one chapter's experiments.

    Args:
        section: a key of ``SIZES``, e.g. "mnist".
        run_profile: "quick" or "full"; ``None`` means ``profile()``.

    Returns:
        A fresh copy of the table entry, safe to modify.
    """
    if section not in SIZES:
        raise ValueError(f"unknown section {section!r}; known: {', '.join(sorted(SIZES))}")
    chosen = run_profile or profile()
    if chosen not in PROFILES:
        raise ValueError(f"unknown profile {chosen!r}; use one of {', '.join(PROFILES)}")
    return dict(SIZES[section][chosen])


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and every accelerator) random generators."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators


def run_banner(data_source: str | None = None) -> str:
    """One line naming the device, the profile and (optionally) where the data came from."""
    device = get_device()
    name = device.type
    if device.type == "cuda":
        name = f"cuda ({torch.cuda.get_device_name(device)})"
    parts = [f"device: {name}", f"profile: {profile()}", f"torch {torch.__version__}"]
    if data_source:
        parts.append(f"data: {data_source}")
    return " | ".join(parts)
