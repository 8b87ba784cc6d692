"""Where pretrained ImageNet weights come from: torchvision's cache, a download, or nowhere.

One decision shared by every model that wants ImageNet weights. ``resolve_weights`` looks for the
published file in torchvision's cache (``torch.hub.get_dir()/checkpoints/<file name of its url>``),
else downloads it there with ``nbhelpers.storage.download`` (never with ``NBHELPERS_OFFLINE`` set),
else reports that none are available. The outcome is a value: the checked state dict, or None,
and one sentence the notebooks print, so a reader always knows whether a network started from
ImageNet or from random numbers.

The cached file is trusted only after a check, on every load, not only after a download:

1. its sha256 must start with the prefix in its name (torch.hub's ``name-<sha256 prefix>.pth``);
2. those very bytes are unpickled by ``torch.load(..., weights_only=True)``, which builds tensors
   and containers only and never runs code named in the file;
3. the result must be a state dict whose names, shapes and dtypes are those of the torchvision
   architecture; the model is then built with ``weights=None`` and loaded with ``strict=True``.

torchvision's own loader is never used: it trusts whatever file has the right name.

A cached file that fails a check is left exactly as it is: never deleted, never downloaded over.
It is evidence (an interrupted copy by another tool, a damaged disk, or a planted file), and
replacing it silently would hide that. ``weights="imagenet"`` then raises ``WeightsFileError``
naming the file and what is wrong with it; ``weights="auto"`` starts from random initialisation
and its source sentence says so, naming the file. Delete the file to download the weights again.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn as nn
from torchvision import models
from torchvision.models import AlexNet_Weights, ResNet18_Weights

from nbhelpers import storage

WEIGHT_MODES = ("auto", "imagenet", "none")
# Per socket operation (connect, each read): an unreachable host fails within this many seconds.
SOCKET_TIMEOUT_S = 10.0
# For the whole download: a crawling connection gives up rather than stall a notebook.
DOWNLOAD_DEADLINE_S = 300.0
# Transient failures (5xx, reset, truncated body) are retried this often, waiting BACKOFF_S * 2**k.
DOWNLOAD_RETRIES = 2
DOWNLOAD_BACKOFF_S = 0.5

# Architecture -> url of its published ImageNet weights. A table rather than torchvision's enums
# so that a test can point an architecture at a local server (its file name must keep the
# "<name>-<sha256 prefix>.<ext>" form: the prefix is what every load is checked against).
WEIGHTS_URLS: dict[str, str] = {
    "resnet18": ResNet18_Weights.IMAGENET1K_V1.url,
    "alexnet": AlexNet_Weights.IMAGENET1K_V1.url,
}
_BUILDERS = {"resnet18": models.resnet18, "alexnet": models.alexnet}
_CATEGORIES = {
    "resnet18": ResNet18_Weights.IMAGENET1K_V1.meta["categories"],
    "alexnet": AlexNet_Weights.IMAGENET1K_V1.meta["categories"],
}
_HASH_PREFIX = re.compile(r"-([0-9a-f]{8,64})\.")


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were required (``weights="imagenet"``) but cannot be had (offline, download failed)."""


class WeightsFileError(WeightsUnavailableError, ValueError):
    """The cached weights file is not the published one (wrong hash, not a state dict, a folder, ...).

    The message names the file and what is wrong with it. The file is left as it is.
    """


@dataclass(frozen=True)
class ResolvedWeights:
    """The outcome of ``resolve_weights``.

    Attributes:
        state_dict: the checked ImageNet weights (parameter name -> CPU tensor) of the
            architecture, or None: start from random initialisation.
        source: one sentence saying where they came from, e.g. "imagenet (torchvision cache)" or
            "random initialisation (no pretrained weights: offline, NBHELPERS_OFFLINE is set)".
        path: the cached file the weights were loaded from, None when ``state_dict`` is None.
    """

    state_dict: dict[str, torch.Tensor] | None
    source: str
    path: Path | None = None

    @property
    def pretrained(self) -> bool:
        """True when the weights are ImageNet's."""
        return self.state_dict is not None


@dataclass(frozen=True)
class BuiltModel:
    """A network and where its weights came from.

    Attributes:
        model: the network (``nn.Sequential`` for the book's ResNet18 models).
        weights_source: ``ResolvedWeights.source``, the sentence the notebooks print.
    """

    model: nn.Module
    weights_source: str


def check_weight_mode(weights: object, allowed: tuple[str, ...] = WEIGHT_MODES) -> str:
    """``weights`` when it is one of ``allowed``.

    Raises:
        TypeError: ``weights`` is not a string (e.g. True or None), naming it.
        ValueError: an unknown mode, naming it.
    """
    if not isinstance(weights, str):
        raise TypeError(
            f"weights must be one of {allowed}, got {weights!r} ({type(weights).__name__})"
        )
    if weights not in allowed:
        raise ValueError(f"weights must be one of {allowed}, got {weights!r}")
    return weights


def check_arch(arch: object) -> str:
    """``arch`` when it names an architecture of ``WEIGHTS_URLS``, else ValueError naming it."""
    if not isinstance(arch, str) or arch not in WEIGHTS_URLS:
        raise ValueError(f"arch must be one of {tuple(WEIGHTS_URLS)}, got {arch!r}")
    return arch


def weights_cache_dir() -> Path:
    """torchvision's weights cache: ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``).

    Not created here.

    Raises:
        ValueError: the folder, or a folder above it, is an existing file (naming ``TORCH_HOME``
            when that variable is set).
    """
    folder = Path(torch.hub.get_dir()).expanduser().absolute() / "checkpoints"
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            if not candidate.is_dir():
                value = os.environ.get("TORCH_HOME")
                setting = f"TORCH_HOME={value!r}: " if value else ""
                raise ValueError(
                    f"{setting}{candidate} is a file, not a folder (the weights cache is {folder})"
                )
            break
    return folder


def cached_weights_path(arch: str = "resnet18") -> Path:
    """The cache file of ``arch``'s ImageNet weights: ``weights_cache_dir()/<file name of its url>``."""
    return weights_cache_dir() / _file_name(WEIGHTS_URLS[check_arch(arch)])


def imagenet_categories(arch: str = "resnet18") -> list[str]:
    """The 1000 ImageNet class names of ``arch``'s weights, index -> name (no download)."""
    return list(_CATEGORIES[check_arch(arch)])


def resolve_weights(
    weights: str = "auto",
    arch: str = "resnet18",
    *,
    deadline: float = DOWNLOAD_DEADLINE_S,
) -> ResolvedWeights:
    """Decide which weights an ``arch`` network starts from, and load them checked.

    Args:
        weights: "auto" (ImageNet's when cached or downloadable and intact, else random
            initialisation), "imagenet" (ImageNet's or an error) or "none" (random initialisation;
            nothing is read or downloaded).
        arch: "resnet18" (45 MB of weights) or "alexnet" (233 MB).
        deadline: seconds a download may take in all.

    Returns:
        ``ResolvedWeights``; its ``state_dict`` fits ``torchvision.models.<arch>()`` exactly.

    Raises:
        TypeError, ValueError: a bad ``weights`` or ``arch``; ``NBHELPERS_OFFLINE`` or
            ``TORCH_HOME`` set to something unusable (each named).
        WeightsFileError: ``weights="imagenet"`` and the cached file is not the published one.
        WeightsUnavailableError: ``weights="imagenet"`` and the file is missing and cannot be
            downloaded (offline, network, read-only cache).
    """
    check_weight_mode(weights)
    arch = check_arch(arch)
    if (
        isinstance(deadline, bool)
        or not isinstance(deadline, (int, float))
        or not deadline > 0
    ):
        raise ValueError(f"deadline must be a number of seconds > 0, got {deadline!r}")
    if weights == "none":
        return ResolvedWeights(None, "random initialisation (weights='none')")
    url = WEIGHTS_URLS[arch]
    prefix = _hash_prefix(url)
    # read even when the file is cached: a typo must not pass
    is_offline = storage.offline()
    path = cached_weights_path(arch)
    try:
        if _present(path):
            return ResolvedWeights(
                _load_checked(path, prefix, arch), "imagenet (torchvision cache)", path
            )
        if is_offline:
            raise WeightsUnavailableError(
                f"offline, {storage.OFFLINE_ENV} is set, and {path.name} is not in torchvision's cache {path.parent}"
            )
        _download(url, path, prefix, deadline)
        downloaded = _load_checked(path, prefix, arch)
        return ResolvedWeights(
            downloaded, "imagenet (downloaded into torchvision's cache)", path
        )
    except WeightsFileError as error:
        if weights == "imagenet":
            raise
        return ResolvedWeights(
            None,
            f"random initialisation (cached weights unusable: {_portable(error, path)})",
        )
    except WeightsUnavailableError as error:
        if weights == "imagenet":
            raise
        return ResolvedWeights(
            None,
            f"random initialisation (no pretrained weights: {_portable(error, path)})",
        )


def _portable(error: Exception, path: Path) -> str:
    """The error's text with the cache folder written as ``$TORCH_HOME/hub/checkpoints``.

    A source sentence is printed by the chapters; the exceptions themselves keep the full path,
    which a reader needs to find the file.
    """
    return str(error).replace(str(path.parent), "$TORCH_HOME/hub/checkpoints")


def build_network(arch: str, resolved: ResolvedWeights) -> nn.Module:
    """torchvision's ``arch`` built with ``weights=None``, then loaded (``strict=True``) with
    ``resolved.state_dict`` when there is one. Shapes: ``(B, 3, H, W) -> (B, 1000)`` logits; train mode."""
    network = _BUILDERS[check_arch(arch)](weights=None)
    if resolved.state_dict is not None:
        network.load_state_dict(resolved.state_dict, strict=True)
    return network


# ---- checks --------------------------------------------------------------------------------------


def _file_name(url: str) -> str:
    return os.path.basename(urlparse(url).path)


def _hash_prefix(url: str) -> str:
    match = _HASH_PREFIX.search(_file_name(url))
    if match is None:
        raise ValueError(
            f"weights url {url!r} has no sha256 prefix in its file name (name-<8+ hex digits>.pth)"
        )
    return match.group(1)


def _present(path: Path) -> bool:
    """Something (a file, a folder, a link, even a dangling one) occupies ``path``."""
    return path.is_symlink() or path.exists()


def _load_checked(path: Path, prefix: str, arch: str) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` after the three checks of the module docstring, else WeightsFileError."""
    if path.is_symlink() and not path.exists():
        raise WeightsFileError(
            f"{path} is a dangling symbolic link (to {os.readlink(path)}); left as it is"
        )
    if path.is_dir():
        raise WeightsFileError(f"{path} is a folder, not a weights file; left as it is")
    if not storage.is_readable_file(path):
        raise WeightsFileError(f"{path} is not a readable regular file; left as it is")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise WeightsFileError(
            f"{path} cannot be read ({error}); left as it is"
        ) from None
    # The bytes hashed are the bytes unpickled: nothing can swap the file in between.
    digest = hashlib.sha256(data).hexdigest()
    if not digest.startswith(prefix):
        raise WeightsFileError(
            f"{path} has sha256 {digest[:16]}..., not the {prefix} its name promises "
            f"(truncated, corrupted or replaced; {len(data):,} bytes); left as it is, delete it to download again"
        )
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 (any failure of the safe unpickler means: not weights)
        raise WeightsFileError(
            f"{path} cannot be loaded with weights_only=True ({type(error).__name__}: {_gist(error)}); left as it is"
        ) from None
    problem = _misfit(state, arch)
    if problem:
        raise WeightsFileError(f"{path} {problem}; left as it is")
    return state


def _gist(error: Exception) -> str:
    """The informative sentence of a ``torch.load`` error, without its boilerplate.

    torch's message for a refused pickle suggests retrying with ``weights_only=False``: exactly
    what must not be done with a file that failed, so that advice is not repeated.
    """
    boilerplate = (
        "Weights only load failed",
        "Check the documentation",
        "Please file an issue",
    )
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith(boilerplate)]
    return kept[0].split(". ")[0][:200] if kept else ""


def _misfit(state: object, arch: str) -> str | None:
    """Why ``state`` is not a state dict of torchvision's ``arch``, or None when it fits exactly."""
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor)
        for key, value in state.items()
    ):
        return (
            f"does not hold a state dict (name -> tensor) but a {type(state).__name__}"
        )
    with torch.device(
        "meta"
    ):  # shapes and dtypes only: no memory, no random initialisation
        expected = _BUILDERS[arch](weights=None).state_dict()
    # BatchNorm fills in a missing step counter itself (files saved before it existed lack it).
    missing = sorted(
        key
        for key in expected.keys() - state.keys()
        if not key.endswith(".num_batches_tracked")
    )
    unexpected = sorted(state.keys() - expected.keys())
    if missing or unexpected:
        return f"does not fit torchvision's {arch}: missing {missing[:3]}, unexpected {unexpected[:3]}"
    for key, tensor in expected.items():
        if key not in state:
            continue
        if state[key].shape != tensor.shape or state[key].dtype != tensor.dtype:
            return (
                f"does not fit torchvision's {arch}: {key} is {tuple(state[key].shape)} {state[key].dtype}, "
                f"expected {tuple(tensor.shape)} {tensor.dtype}"
            )
    return None


def _download(url: str, path: Path, prefix: str, deadline: float) -> None:
    """``storage.download`` into the cache (atomic, hash-checked); WeightsUnavailableError when it fails."""
    try:
        storage.download(
            url,
            path,
            sha256_prefix=prefix,
            timeout=SOCKET_TIMEOUT_S,
            deadline=deadline,
            retries=DOWNLOAD_RETRIES,
            backoff=DOWNLOAD_BACKOFF_S,
        )
    except (
        OSError
    ) as error:  # DownloadError, or the cache folder cannot be created or written
        raise WeightsUnavailableError(f"download failed: {error}") from None
