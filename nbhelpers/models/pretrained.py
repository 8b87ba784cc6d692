"""Where pretrained torchvision weights come from: the local cache, a download, or nowhere.

One decision shared by every model that wants ImageNet weights. ``resolve_weights`` looks in
torchvision's cache (``torch.hub.get_dir()/checkpoints/<file name of the weights URL>``), else
downloads the file there (unless ``NBHELPERS_OFFLINE=1``), else reports that none are available.
torchvision then loads the cached file itself. The outcome is a sentence the notebooks print,
so a reader always knows whether a network started from ImageNet or from random numbers.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torchvision.models import WeightsEnum

OFFLINE_ENV = "NBHELPERS_OFFLINE"
WEIGHT_MODES = ("auto", "imagenet", "none")
# Per socket operation (connect, each read): an unreachable host fails within this many seconds.
SOCKET_TIMEOUT_S = 10.0
# For the whole download: a crawling connection gives up rather than stall a notebook.
DOWNLOAD_DEADLINE_S = 300.0
_HASH_PREFIX = re.compile(r"-([a-f0-9]+)\.")  # torch.hub's convention: name-<sha256 prefix>.pth

# A download that failed is not retried in the same process: url -> reason.
_failed_downloads: dict[str, str] = {}


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were required (``weights="imagenet"``) but neither cached nor downloadable."""


@dataclass(frozen=True)
class ResolvedWeights:
    """``weights``: what to pass to a torchvision builder (None: random initialisation).
    ``source``: one sentence saying where they came from, e.g. "imagenet (torchvision cache)"."""

    weights: WeightsEnum | None
    source: str


def offline() -> bool:
    """True when ``NBHELPERS_OFFLINE`` is set to 1/true/yes: never try to download."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes"}


def cached_weights_path(weights: WeightsEnum) -> Path:
    """The file torchvision reads ``weights`` from: ``<torch hub dir>/checkpoints/<url file name>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def resolve_weights(weights: WeightsEnum, mode: str = "auto") -> ResolvedWeights:
    """Decide which weights a model starts from.

    Args:
        weights: the torchvision weights wanted, e.g. ``ResNet18_Weights.DEFAULT``.
        mode: "auto" (the weights when cached or downloadable, else random initialisation),
            "imagenet" (the weights or ``WeightsUnavailableError``), "none" (random initialisation).

    Raises:
        ValueError: unknown ``mode``.
        WeightsUnavailableError: ``mode="imagenet"`` and the weights cannot be had.
    """
    if mode not in WEIGHT_MODES:
        raise ValueError(f"weights must be one of {WEIGHT_MODES}, got {mode!r}")
    if mode == "none":
        return ResolvedWeights(None, "random initialisation (weights='none')")
    path = cached_weights_path(weights)
    if path.is_file():
        return ResolvedWeights(weights, "imagenet (torchvision cache)")
    reason = _missing_reason(weights.url, path)
    if reason is None:
        return ResolvedWeights(weights, "imagenet (downloaded into torchvision's cache)")
    if mode == "imagenet":
        raise WeightsUnavailableError(f"no pretrained weights {weights}: {reason}; expected file {path}")
    return ResolvedWeights(None, f"random initialisation (no pretrained weights: {reason})")


def _missing_reason(url: str, path: Path) -> str | None:
    """Try to download ``url`` to ``path``; None on success, else why not."""
    if offline():
        return f"offline, {OFFLINE_ENV}=1"
    if url in _failed_downloads:
        return _failed_downloads[url]
    try:
        download_checked(url, path)
    except (OSError, ValueError, http.client.HTTPException) as error:
        _failed_downloads[url] = f"download failed: {type(error).__name__}: {error}"
        return _failed_downloads[url]
    return None


def download_checked(
    url: str,
    path: Path,
    socket_timeout_s: float = SOCKET_TIMEOUT_S,
    deadline_s: float = DOWNLOAD_DEADLINE_S,
) -> Path:
    """Download ``url`` into ``path`` through a temporary file beside it, then rename.

    When the file name carries a hash prefix (torch.hub's ``name-<sha256 prefix>.ext``), the
    sha256 of the bytes must start with it.

    Raises:
        OSError: the connection failed (e.g. ``urllib.error.URLError`` offline).
        TimeoutError: the whole download took longer than ``deadline_s``.
        ValueError: the sha256 does not match the prefix in the file name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    match = _HASH_PREFIX.search(path.name)
    started = time.monotonic()
    digest = hashlib.sha256()
    handle, temp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=socket_timeout_s) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
                if time.monotonic() - started > deadline_s:
                    raise TimeoutError(f"downloading {url} took more than {deadline_s:.0f} s")
        if match and not digest.hexdigest().startswith(match.group(1)):
            raise ValueError(f"sha256 of {url} is {digest.hexdigest()}, expected a prefix {match.group(1)}")
        os.replace(temp_name, path)
    finally:
        if os.path.exists(temp_name):
            os.remove(temp_name)
    return path
