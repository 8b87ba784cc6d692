"""Stand-ins for published weights files, shared by the model tests and the hostile suite.

A "published" file is named like torch.hub's: ``<arch>-<first 8 hex digits of its sha256>.pth``.
``nbhelpers.models.pretrained.WEIGHTS_URLS`` maps an architecture to its url; the tests point it at
a local server (or at an unused port when offline) with ``monkeypatch.setitem``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
from pathlib import Path

import torch
import torch.nn as nn
from torchvision.models import resnet18

REAL_RESNET18_NAME = "resnet18-f37072fd.pth"  # torchvision's published file name


def saved(obj: object) -> bytes:
    """``torch.save(obj)`` as bytes."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@functools.lru_cache(maxsize=1)
def fake_resnet18_weights() -> bytes:
    """The state dict of ``torchvision.models.resnet18(weights=None)`` (seed 0), torch.save'd."""
    torch.manual_seed(0)
    return saved(resnet18(weights=None).state_dict())


def fake_resnet18_state() -> dict[str, torch.Tensor]:
    return torch.load(io.BytesIO(fake_resnet18_weights()), weights_only=True)


def hashed_name(payload: bytes, arch: str = "resnet18") -> str:
    """The torch.hub file name of ``payload``: ``<arch>-<sha256 prefix>.pth``."""
    return f"{arch}-{hashlib.sha256(payload).hexdigest()[:8]}.pth"


class _MakesMarker:
    """Unpickling this calls ``os.mkdir(marker)``: it shows whether a loader ran code from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (self.marker,)


def malicious_pickle(marker: Path) -> bytes:
    """A torch.save'd file whose unpickling (``weights_only=False``) creates the folder ``marker``."""
    return saved({"conv1.weight": _MakesMarker(marker)})


@functools.lru_cache(maxsize=1)
def unfit_state() -> bytes:
    """A valid state dict that is not a ResNet18's (an ``nn.Linear(3, 2)``, seed 0)."""
    torch.manual_seed(0)
    return saved(nn.Linear(3, 2).state_dict())


def place(cache: Path, name: str, payload: bytes) -> Path:
    """Write ``payload`` as ``cache/name`` (folders created) and return the path."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / name
    path.write_bytes(payload)
    return path
