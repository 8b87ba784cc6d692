"""MNIST as a tensor-backed Dataset, scaled to [0, 1] once (the seed divided by 255 twice).

Sources, in order: the data folder or the mirror in torchvision's layout
(``<root>/MNIST/raw/*-ubyte``); a download of torchvision's files into the data folder; the
embedded default, scikit-learn's bundled 8x8 digits resized to 28x28.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from nbhelpers.data.download import DownloadError, download
from nbhelpers.data.paths import DOWNLOAD, EMBEDDED, data_dir, data_roots, offline, record_source

MNIST_RAW = Path("MNIST") / "raw"
# sha256 of the uncompressed files; their md5 values match the canonical MNIST ones.
RAW_FILES = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# The same mirror torchvision.datasets.MNIST downloads from.
DOWNLOAD_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/{name}.gz"
DOWNLOAD_TIMEOUT_S = 10.0
EMBEDDED_TEST_SIZE = 300
_IDX_DTYPES = {0x08: np.uint8}


class MNISTDataset(Dataset):
    """Images and labels held in memory; ``dataset[i]`` is ``(X, y)``.

    X: (1, 28, 28) float32 in [0, 1] (``transform(X)`` when a transform is given);
    y: int in 0..9. The whole set is also available as ``images`` (N, 1, 28, 28) float32 and
    ``targets`` (N,) int64, and ``source`` says where it came from.
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        source: str,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if images.dim() != 4 or images.shape[1:] != (1, 28, 28) or images.dtype != torch.float32:
            shape = tuple(images.shape)
            raise ValueError(f"images must be (N, 1, 28, 28) float32, got {shape} {images.dtype}")
        if targets.shape != (images.shape[0],):
            raise ValueError(f"targets must be ({images.shape[0]},), got {tuple(targets.shape)}")
        self.images = images
        self.targets = targets.long()
        self.source = source
        self.transform = transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        X = self.images[index]
        if self.transform is not None:
            X = self.transform(X)
        return X, int(self.targets[index])


def load_mnist(
    train: bool = True, transform: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> MNISTDataset:
    """The MNIST training (60,000) or test (10,000) set as an ``MNISTDataset``.

    Tries the data folder, then the mirror, then downloads into the data folder (skipped with
    ``NBHELPERS_OFFLINE=1``; offline it fails within seconds), then falls back to the embedded
    default: scikit-learn's 1,797 digits, upscaled to 28x28 (see ``embedded_digits``), of which
    a fixed 300 form the test set (``train=False``) and the other 1,497 the training set.
    ``load_mnist.source`` and ``dataset.source`` say which was used.

    Args:
        train: the training set (True) or the test set (False).
        transform: optional callable applied to each (1, 28, 28) float tensor in [0, 1].
    """
    split = "train" if train else "t10k"
    for root, label in data_roots():
        raw = root / MNIST_RAW
        if (raw / f"{split}-images-idx3-ubyte").is_file() and (raw / f"{split}-labels-idx1-ubyte").is_file():
            images, targets = _read_split(raw, split)
            source = record_source(load_mnist, f"{label} ({raw.parent})")
            return MNISTDataset(images, targets, source, transform)
    failure = _try_download(split)
    if failure is None:
        images, targets = _read_split(data_dir() / MNIST_RAW, split)
        source = record_source(load_mnist, f"{DOWNLOAD} ({data_dir() / MNIST_RAW.parent})")
        return MNISTDataset(images, targets, source, transform)
    if failure != "offline":
        warnings.warn(f"MNIST download failed ({failure}); using scikit-learn's digits instead", stacklevel=2)
    images, targets = embedded_digits(train)
    kind = "training" if train else "test"
    description = f"scikit-learn digits, {len(targets):,} {kind} images resized to 28x28"
    source = record_source(load_mnist, f"{EMBEDDED} ({description})")
    return MNISTDataset(images, targets, source, transform)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format) as a uint8 array of the shape its header states.

    Raises:
        ValueError: the file is too short, not unsigned-byte IDX, or its size disagrees with
            its header.
    """
    data = Path(path).read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path} is truncated (header)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(data) - header != int(np.prod(shape)):
        raise ValueError(f"{path} holds {len(data) - header} bytes of data, its header says {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _read_split(raw: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(raw / f"{split}-images-idx3-ubyte")
    labels = read_idx(raw / f"{split}-labels-idx1-ubyte")
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise ValueError(f"{raw}: {split} images {images.shape} and labels {labels.shape} do not match")
    X = torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255.0)  # the only scaling
    return X, torch.from_numpy(labels.astype(np.int64))


def _try_download(split: str) -> str | None:
    """Fetch the split's two files into the data folder; None on success, else why it failed."""
    if offline():
        return "offline"
    raw = data_dir() / MNIST_RAW
    raw.mkdir(parents=True, exist_ok=True)
    for name in (f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"):
        if (raw / name).is_file():
            continue
        try:
            _download_raw(name, RAW_FILES[name], raw)
        except DownloadError as error:
            for folder in (raw, raw.parent):  # leave no empty folders behind
                try:
                    folder.rmdir()
                except OSError:
                    break
            return str(error)
    return None


def _download_raw(name: str, sha256: str, raw: Path) -> None:
    with tempfile.TemporaryDirectory(dir=raw, prefix=".download-") as temp:
        url = DOWNLOAD_URL.format(name=name)
        gz = download(url, Path(temp) / f"{name}.gz", retries=1, timeout=DOWNLOAD_TIMEOUT_S)
        unpacked = Path(temp) / name
        with gzip.open(gz, "rb") as source, unpacked.open("wb") as target:
            while chunk := source.read(1 << 20):
                target.write(chunk)
        digest = hashlib.sha256(unpacked.read_bytes()).hexdigest()
        if digest != sha256:
            raise DownloadError(f"sha256 mismatch for {name} (unpacked): expected {sha256}, got {digest}")
        os.replace(unpacked, raw / name)


def embedded_digits(train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled digits made to look like MNIST: X (N, 1, 28, 28) float32, y (N,) int64.

    Each 8x8 image (values 0..16, ink high) is scaled to [0, 1], upscaled to 20x20 (bilinear,
    antialiased) and padded with 4 black pixels per side, as MNIST fits its digits in a 20x20 box
    centred in 28x28: a white digit on black. A fixed permutation (seed 0) puts 300 images in
    the test set (``train=False``) and the other 1,497 in the training set; the two never overlap.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)  # (1797, 1, 8, 8)
    box = F.interpolate(small, size=(20, 20), mode="bilinear", antialias=True, align_corners=False)
    X = F.pad(box.clamp_(0.0, 1.0), (4, 4, 4, 4))
    y = torch.from_numpy(digits.target.astype(np.int64))
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    chosen = order[EMBEDDED_TEST_SIZE:] if train else order[:EMBEDDED_TEST_SIZE]
    chosen = chosen.sort().values
    return X[chosen].contiguous(), y[chosen]


load_mnist.source = None  # type: ignore[attr-defined]  # set by each call; see nbhelpers.data.paths
