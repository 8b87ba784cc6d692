"""Checkpoint files: RNG states in a form ``torch.load(weights_only=True)`` accepts, atomic writes.

``weights_only=True`` refuses arbitrary pickled objects, so everything stored must be tensors,
numbers, strings, None and plain containers. NumPy's and Python's RNG states are converted to
tensors and lists here and back on restore.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


def capture_rng_state() -> dict[str, Any]:
    """The state of every random generator a training run draws from (torch CPU, CUDA, MPS,
    NumPy's global generator and Python's ``random``), as weights_only-loadable values."""
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    mps = getattr(torch, "mps", None)
    if mps is not None and torch.backends.mps.is_available():
        state["mps"] = mps.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back the generators saved by ``capture_rng_state`` (accelerator states when present)."""
    torch.set_rng_state(state["torch"])
    saved_np = state["numpy"]
    np.random.set_state(
        (
            saved_np["kind"],
            saved_np["keys"].numpy().astype(np.uint32),
            saved_np["pos"],
            saved_np["has_gauss"],
            saved_np["cached_gaussian"],
        )
    )
    saved_py = state["python"]
    random.setstate((saved_py["version"], tuple(saved_py["internal"].tolist()), saved_py["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "mps" in state and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"])


def save_atomically(obj: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place.

    A crash mid-write leaves the previous checkpoint intact instead of a truncated file.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"checkpoint folder does not exist: {target.parent}")
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        torch.save(obj, temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def load_safely(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``torch.load(path, map_location="cpu", weights_only=True)``: tensors and plain data only."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"no checkpoint at {source}")
    return torch.load(source, map_location="cpu", weights_only=True)
