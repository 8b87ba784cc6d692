"""Where computation runs and how much of it: the device, random seeds, CPU threads, the run profile.

A chapter's preamble (``nbhelpers.chapter.start_chapter``) prints ``run_banner``, so a reader
sees on which device, in which profile and on which data the numbers below were produced. The
sizes of each profile live with the recipes (``XRecipe.SIZES``); this module only says which
profile is in force.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

PROFILES = ("quick", "full")


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
            raise ValueError(
                f"{label}, but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
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
            raise ValueError(
                f"NBHELPERS_PROFILE={requested!r}: use one of {', '.join(PROFILES)}"
            )
        return requested
    return "full" if accelerator_available() else "quick"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and every accelerator) random generators."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators


def cpu_threads() -> int | None:
    """``NBHELPERS_THREADS`` as a number of torch CPU threads; None when unset (torch's choice).

    The Makefile sets it to 1 for the test suite, which runs two notebooks at once on two cores:
    measured there, one thread per notebook is fastest. A reader running one chapter keeps
    torch's default (every core).

    Raises:
        ValueError: the variable is set to something other than a number of threads in
            1..``max_cpu_threads()`` (99999 threads would crash the kernel).
    """
    value = os.environ.get("NBHELPERS_THREADS", "").strip()
    if not value:
        return None
    return check_threads(value, "NBHELPERS_THREADS")


def max_cpu_threads() -> int:
    """The most CPU threads worth asking for here: the CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def check_threads(value: object, name: str) -> int:
    """``value`` (an int, or its decimal digits) as a number of threads in 1..``max_cpu_threads()``.

    Raises:
        ValueError: anything else, naming ``name`` (the variable or the flag) and the bound.
    """
    limit = max_cpu_threads()
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= limit:
        raise ValueError(
            f"{name}={value!r}: use a number of threads from 1 to {limit} "
            f"(the CPUs this process may use)"
        )
    return int(text)


def run_banner(
    data_source: object | None = None, device: torch.device | None = None
) -> str:
    """One line naming the device, the profile, torch's version and (optionally) the data source."""
    device = device if device is not None else get_device()
    name = device.type
    if device.type == "cuda":
        name = f"cuda ({torch.cuda.get_device_name(device)})"
    parts = [f"device: {name}", f"profile: {profile()}", f"torch {torch.__version__}"]
    if data_source is not None:
        parts.append(f"data: {data_source}")
    return " | ".join(parts)
