"""Helpers shared by the data tests: the read-only mirror of real data, a local file server, fake files."""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from nbhelpers.data import pcam

# The smallest histopathology recipe that trains end to end (a synthetic set of 20 patches,
# random weights, float32): HistopathologyRecipe(**TINY_HISTOPATHOLOGY).
TINY_HISTOPATHOLOGY = {
    "train_size": 16,
    "valid_size": 4,
    "epochs_frozen": 1,
    "epochs_finetune": 1,
    "batch_size": 8,
    "synthetic_size": 20,
    "weights": "none",
    "precision": "32",
}


def shared_mirror() -> Path | None:
    """NBHELPERS_DATA_MIRROR, else ../shared/data beside the repository, if it exists."""
    value = os.environ.get("NBHELPERS_DATA_MIRROR")
    path = (
        Path(value)
        if value
        else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
    return path if path.is_dir() else None


MIRROR = shared_mirror()


def needs_mirror(relative: str) -> pytest.MarkDecorator:
    """Skip (with the reason) unless the mirror holds ``relative``."""
    return pytest.mark.skipif(
        MIRROR is None or not (MIRROR / relative).is_dir(),
        reason=f"no data mirror with {relative}/ (set NBHELPERS_DATA_MIRROR)",
    )


@contextlib.contextmanager
def serve_directory(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port) in a thread; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    ).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# ---- fake data in the real formats --------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8 values) as an unsigned-byte IDX file, the MNIST format."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def fake_mnist(n: int, seed: int) -> dict[str, bytes]:
    """The four MNIST raw files (both splits) with ``n`` random images each: file name -> bytes."""
    rng = np.random.default_rng(seed)
    files = {}
    for split in ("train", "t10k"):
        files[f"{split}-images-idx3-ubyte"] = idx_bytes(
            rng.integers(0, 256, (n, 28, 28))
        )
        files[f"{split}-labels-idx1-ubyte"] = idx_bytes(rng.integers(0, 10, n))
    return files


def gz_tables(files: dict[str, bytes]) -> tuple[dict[str, bytes], dict[str, object]]:
    """The .gz bodies to serve for ``files`` and a ``mnist.RAW_FILES`` table that accepts them."""
    from nbhelpers.data.mnist import RawFile

    bodies = {name: gzip.compress(content, mtime=0) for name, content in files.items()}
    table = {
        name: RawFile(
            hashlib.sha256(content).hexdigest(),
            hashlib.md5(bodies[name]).hexdigest(),
            len(content),
        )
        for name, content in files.items()
    }
    return bodies, table


MALE_CSV = "name,frequency,mean_age\nJOSE MARIA,10,50\nJOSE MARIA,10,50\nÑANDU,1,2\n"
FEMALE_CSV = "name,frequency,mean_age\nNA,116,26.9\nMARIA,9,40\nJOSE MARIA,1,3\n"


def write_names(folder: Path, male: str = MALE_CSV, female: str = FEMALE_CSV) -> None:
    """``male_names.csv`` and ``female_names.csv`` in ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "male_names.csv").write_text(male, encoding="utf-8")
    (folder / "female_names.csv").write_text(female, encoding="utf-8")


def write_patch_layout(root: Path, count: int = 4) -> Path:
    """A small Kaggle-layout folder: ``count`` labelled 96x96 patches (R=200, G=100+i, B=30)."""
    import cv2

    (root / "train").mkdir(parents=True)
    rows = []
    for index in range(count):
        rgb = np.zeros((96, 96, 3), np.uint8)
        rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100 + index, 30
        cv2.imwrite(str(root / "train" / f"p{index}.tif"), rgb[:, :, ::-1])
        rows.append(f"p{index},{index % 2}")
    (root / "train_labels.csv").write_text("id,label\n" + "\n".join(rows) + "\n")
    return root


def write_pcam_split(
    root: Path, split: str, n: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """PCam's two files of ``split`` under ``root/pcam/`` with ``n`` random patches; returns (x, y)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 96, 96, 3), dtype=np.uint8)
    y = rng.integers(0, 2, size=(n, 1, 1, 1), dtype=np.uint8)
    folder = root / "pcam"
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / pcam.file_name(split, "x"), "w") as h5:
        h5.create_dataset("x", data=x, chunks=(1, 96, 96, 3))
    with h5py.File(folder / pcam.file_name(split, "y"), "w") as h5:
        h5.create_dataset("y", data=y)
    return x, y.reshape(n)
