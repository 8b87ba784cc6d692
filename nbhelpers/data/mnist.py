"""MNIST as a tensor-backed Dataset, scaled to [0, 1] once (the lecture notebook divided by 255 twice).

Sources, in order: the data folder or the mirror in torchvision's layout
(``<root>/MNIST/raw/*-ubyte``, or the published ``.gz`` files there, which torchvision unpacks);
a download of torchvision's files into the data folder; the embedded default, scikit-learn's
bundled 8x8 digits resized to 28x28. The dataset returned says which in its ``source``.

Every file is compared with the published one (sha256). Copies kept as other distributions
ship them (Kaggle's ``train-images.idx3-ubyte``, the files straight in ``MNIST/``, each in a
folder of its own name) are used when they are the published files; a file that differs is
used only in torchvision's place, with a warning, and a published copy beside it is preferred.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from nbhelpers import storage
from nbhelpers.storage import DataSource, DownloadError

MNIST_DIR = Path("MNIST")
MNIST_RAW = MNIST_DIR / "raw"
SPLITS = {True: "train", False: "t10k"}


@dataclass(frozen=True)
class RawFile:
    """One of torchvision's MNIST files: sha256 of the unpacked file, md5 of the ``.gz`` served."""

    sha256: str
    gz_md5: str
    size: int  # bytes, unpacked


# sha256 of the canonical uncompressed files (computed from the mirror copies, whose md5 values
# match the canonical MNIST ones); md5 of the .gz files from torchvision.datasets.MNIST.resources.
RAW_FILES = {
    "train-images-idx3-ubyte": RawFile(
        sha256="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        gz_md5="f68b3c2dcbeaaa9fbdd348bbdeb94873",
        size=47_040_016,
    ),
    "train-labels-idx1-ubyte": RawFile(
        sha256="65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        gz_md5="d53e105ee54ea40749a09fcbcd1e9432",
        size=60_008,
    ),
    "t10k-images-idx3-ubyte": RawFile(
        sha256="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        gz_md5="9fb629c4189551a2d022fa330f9573f3",
        size=7_840_016,
    ),
    "t10k-labels-idx1-ubyte": RawFile(
        sha256="ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        gz_md5="ec29112dd5afa0611ce80d1b7f02629c",
        size=10_008,
    ),
}
# The same mirror torchvision.datasets.MNIST downloads from; tests point it at a local server.
DOWNLOAD_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/{name}.gz"
DOWNLOAD_TIMEOUT_S = 10.0
# seconds each file may take in all (the largest is 9.9 MB): a throttled server gives way to
# the embedded digits instead of holding the notebook
DOWNLOAD_DEADLINE_S = 120.0
DOWNLOAD_RETRIES = 1
EMBEDDED_TEST_SIZE = 300
CLASSES = 10
_IDX_UNSIGNED_BYTE = 0x08


class MNISTDataset(Dataset):
    """Images and labels held in memory; ``dataset[i]`` is ``(X, y)``.

    X: (1, 28, 28) float32 in [0, 1] (``transform(X)`` when a transform is given);
    y: int in 0..9. The whole set is also available as ``images`` (N, 1, 28, 28) float32 and
    ``targets`` (N,) int64; ``source`` says where it came from.

    Raises:
        ValueError: images not (N, 1, 28, 28) float32, or targets not (N,) in 0..9.
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        source: DataSource,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if (
            images.dim() != 4
            or images.shape[1:] != (1, 28, 28)
            or images.dtype != torch.float32
        ):
            shape = tuple(images.shape)
            raise ValueError(
                f"images must be (N, 1, 28, 28) float32, got {shape} {images.dtype}"
            )
        if targets.shape != (images.shape[0],):
            raise ValueError(
                f"targets must be ({images.shape[0]},), got {tuple(targets.shape)}"
            )
        if len(targets) and not (
            0 <= int(targets.min()) and int(targets.max()) < CLASSES
        ):
            raise ValueError(
                f"targets must lie in 0..9, got {int(targets.min())}..{int(targets.max())}"
            )
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

    Tries the data folder, then the mirror (a folder holding both files of the split), then
    downloads them into the data folder, then falls back to the embedded default:
    scikit-learn's 1,797 digits, upscaled to 28x28 (see ``embedded_digits``), of which a fixed
    300 form the test set (``train=False``) and the other 1,497 the training set.
    ``dataset.source`` says which was used. Where each file is looked for, and how it is
    checked against the published one, is in the module's docstring; files found and not used
    are named in a warning and counted in ``dataset.source``.

    The download is skipped silently when ``NBHELPERS_OFFLINE`` is set. When the data folder is
    not writable or the download fails (HTTP error, a page that is not the gzip file, a
    checksum mismatch), a ``storage.DataFallbackWarning`` says why and so does
    ``dataset.source.note``; nothing half-written is left behind.

    Args:
        train: the training set (True) or the test set (False).
        transform: optional callable applied to each (1, 28, 28) float tensor in [0, 1].

    Raises:
        ValueError: a file in the data folder or the mirror is not a valid MNIST IDX file (the
            message names it), or ``train`` is not a bool.
    """
    if not isinstance(train, bool):
        raise ValueError(f"train must be True or False, got {train!r}")
    split = SPLITS[train]
    not_used: list[str] = []
    for root, kind in storage.data_roots():
        found = _find_split(root / MNIST_DIR, split, not_used)
        if found is not None:
            (images, targets), folder = found
            source = DataSource(
                kind, storage.relative_detail(folder, root, kind), folder
            )
            return MNISTDataset(images, targets, source, transform)
    fetched = _download_split(split)
    if fetched.source is not None:
        images, targets = _read_split(fetched.source.path, split)
        return MNISTDataset(images, targets, fetched.source, transform)
    images, targets = embedded_digits(train)
    kind = "training" if train else "test"
    description = (
        f"scikit-learn digits, {len(targets):,} {kind} images resized to 28x28"
    )
    if not_used:
        description += f"; {len(not_used)} MNIST file(s) found and not used"
        warnings.warn(
            "MNIST files found and not used: " + "; ".join(not_used),
            storage.DataFallbackWarning,
            stacklevel=2,
        )
    source = DataSource(storage.EMBEDDED, description, note=fetched.failure)
    return MNISTDataset(images, targets, source, transform)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """An IDX file (the MNIST format) as a uint8 array of the shape its header states.

    Raises:
        ValueError: the file is too short, not unsigned-byte IDX (wrong magic number), or its
            size disagrees with its header; the message names the file.
    """
    path = Path(path)
    return _parse_idx(path.read_bytes(), path)


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
    if (
        len(data) < 4
        or data[0] != 0
        or data[1] != 0
        or data[2] != _IDX_UNSIGNED_BYTE
        or data[3] == 0
    ):
        raise ValueError(
            f"{path} is not an unsigned-byte IDX file (magic number {data[:4].hex() or 'missing'})"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{path} is truncated: {len(data)} bytes, shorter than its {header}-byte header"
        )
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    if len(data) - header != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(
            f"{path} holds {len(data) - header:,} bytes of data, its header says {shape}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def embedded_digits(train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled digits made to look like MNIST: X (N, 1, 28, 28) float32, y (N,) int64.

    Each 8x8 image (values 0..16, ink high) is scaled to [0, 1], upscaled to 20x20 (bilinear,
    antialiased) and padded with 4 black pixels per side, as MNIST fits its digits in a 20x20 box
    centred in 28x28: a white digit on black. A fixed permutation (seed 0) puts 300 images in
    the test set (``train=False``) and the other 1,497 in the training set; the two never overlap.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    # (1797, 1, 8, 8)
    small = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    box = F.interpolate(
        small, size=(20, 20), mode="bilinear", antialias=True, align_corners=False
    )
    X = F.pad(box.clamp_(0.0, 1.0), (4, 4, 4, 4))
    y = torch.from_numpy(digits.target.astype(np.int64))
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    chosen = order[EMBEDDED_TEST_SIZE:] if train else order[:EMBEDDED_TEST_SIZE]
    chosen = chosen.sort().values
    return X[chosen].contiguous(), y[chosen]


# ---- reading ---------------------------------------------------------------------------------------


def _split_files(split: str) -> tuple[str, str]:
    return f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"


def _places(mnist: Path, name: str) -> list[Path]:
    """Where the file ``name`` of MNIST may lie under ``mnist`` (a root's ``MNIST/``), in order.

    The first two are torchvision's: ``raw/<name>`` and the published ``raw/<name>.gz``, which
    torchvision unpacks. The others are how other copies come: Kaggle's dotted names
    (``train-images.idx3-ubyte``), each file in a folder of its own name (Kaggle's archive
    unpacked), the files straight in ``MNIST/``.
    """
    raw = mnist / "raw"
    dotted = name.replace("-idx", ".idx")
    return [
        raw / name,
        raw / f"{name}.gz",
        raw / name / name,
        raw / dotted,
        mnist / name,
        mnist / f"{name}.gz",
        mnist / name / name,
        mnist / dotted,
    ]


def _find_split(
    mnist: Path, split: str, not_used: list[str]
) -> tuple[tuple[torch.Tensor, torch.Tensor], Path] | None:
    """The split read from ``mnist`` and the folder it came from; None unless both files are there.

    Files found and not used are described in ``not_used``.

    Raises:
        ValueError: a file in torchvision's place is not a readable MNIST IDX file (named).
    """
    images_name, labels_name = _split_files(split)
    labels = _find_file(mnist, labels_name, not_used)  # the small file first
    images = _find_file(mnist, images_name, not_used) if labels else None
    if labels is None or images is None:
        return None
    for caveat in (images[2], labels[2]):
        if caveat:
            warnings.warn(f"MNIST: {caveat}", stacklevel=4)
    images_path, labels_path = images[1], labels[1]
    folder = Path(os.path.commonpath([images_path.parent, labels_path.parent]))
    tensors = _checked_split(
        _parse_idx(images[0], images_path),
        images_path,
        _parse_idx(labels[0], labels_path),
        labels_path,
    )
    return tensors, folder


def _find_file(
    mnist: Path, name: str, not_used: list[str]
) -> tuple[bytes, Path, str] | None:
    """The contents of ``name`` (unpacked), where they were read from and a caveat ("" if none).

    The first published copy among ``_places`` wins. Failing that, the copy in torchvision's
    place is used as it is, with the caveat that it is not the published file; copies elsewhere
    that are not the published file are not used (they are described in ``not_used``).
    """
    expected = RAW_FILES[name].sha256
    places = _places(mnist, name)
    ours = places[:2]  # torchvision's
    fallback: tuple[bytes, Path] | None = None
    for path in places:
        content, problem = _read_copy(path, name, strict=path in ours)
        if content is None:
            if problem:
                not_used.append(f"{path} ({problem})")
            continue
        digest = hashlib.sha256(content).hexdigest()
        if digest == expected:
            caveat = (
                f"{fallback[1]} is not the published {name} (its sha256 differs); "
                f"using {path}, which is"
                if fallback
                else ""
            )
            return content, path, caveat
        if path in ours:
            fallback = fallback or (content, path)
        else:
            not_used.append(
                f"{path} (not the published {name}: sha256 {digest[:12]}..., "
                f"published {expected[:12]}...; only MNIST/raw/{name} is read as it is)"
            )
    if fallback is None:
        return None
    caveat = (
        f"{fallback[1]} is not the published {name} (its sha256 differs from "
        f"{expected[:12]}...); using it as it is"
    )
    return fallback[0], fallback[1], caveat


def _read_copy(path: Path, name: str, strict: bool) -> tuple[bytes | None, str]:
    """The unpacked contents of ``path``, or None and why it cannot be read ("" when absent).

    With ``strict`` (torchvision's places), a copy that is there but unreadable is an error.

    Raises:
        ValueError: with ``strict``, a dangling link, a folder (that holds no file of the same
            name) or a ``.gz`` that does not unpack.
        PermissionError: with ``strict``, a file this process may not read.
    """
    if not os.path.lexists(path):
        return None, ""
    problem = ""
    if not path.exists():
        problem = f"a dangling symbolic link (to {os.readlink(path)})"
    elif path.is_dir():
        if (path / path.name).exists():
            return None, ""  # the folder's file is a place of its own
        problem = "not a file"
    if problem:
        if strict:
            raise ValueError(f"{path} is {problem}")
        return None, problem
    try:
        if path.suffix != ".gz":
            return path.read_bytes(), ""
        limit = RAW_FILES[name].size
        with gzip.open(path, "rb") as source:
            content = source.read(limit + 1)
        if len(content) > limit:
            raise ValueError(f"it unpacks to more than the {limit:,} bytes of {name}")
        return content, ""
    except (OSError, EOFError, zlib.error, ValueError) as error:
        if strict:
            if isinstance(error, OSError) and path.suffix != ".gz":
                raise
            raise ValueError(
                f"{path} is not a valid gzip file of {name}: {error}"
            ) from None
        return None, f"unreadable: {error}"


def _read_split(raw: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images_path, labels_path = (raw / name for name in _split_files(split))
    return _checked_split(
        read_idx(images_path), images_path, read_idx(labels_path), labels_path
    )


def _checked_split(
    images: np.ndarray, images_path: Path, labels: np.ndarray, labels_path: Path
) -> tuple[torch.Tensor, torch.Tensor]:
    """X (N, 1, 28, 28) float32 in [0, 1] and y (N,) int64, after checking shapes and labels."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{images_path} holds images of shape {images.shape}; expected (N, 28, 28)"
        )
    if labels.shape != images.shape[:1]:
        raise ValueError(
            f"{labels_path} holds {labels.shape} labels for the {images.shape[0]} images of {images_path}"
        )
    bad = np.flatnonzero(labels >= CLASSES)
    if len(bad):
        index = int(bad[0])
        raise ValueError(
            f"{labels_path}: label {int(labels[index])} at index {index} is not a digit 0..9 "
            f"({len(bad)} such label(s))"
        )
    # the only scaling
    X = torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255.0)
    return X, torch.from_numpy(labels.astype(np.int64))


# ---- downloading -------------------------------------------------------------------------------------


def _download_split(split: str) -> storage.Fetched:
    """Fetch the split's missing files into ``$NBHELPERS_DATA/MNIST/raw``, or say why not.

    Both files are downloaded, checked (md5 of the .gz, sha256 of the unpacked file) and
    unpacked in a temporary folder, and moved into place only when both are good: a failure
    leaves the data folder as it was.
    """
    return storage.fetch_into_data_folder(
        MNIST_RAW.as_posix(),
        _split_files(split),
        _fetch_raw,
        what="MNIST",
        fallback="scikit-learn's digits",
        host=DOWNLOAD_URL.split("/")[2],
    )


def _fetch_raw(name: str, folder: Path) -> Path:
    """Download ``name``.gz into ``folder``, check it, unpack it there; the unpacked path."""
    expected = RAW_FILES[name]
    url = DOWNLOAD_URL.format(name=name)
    gz = storage.download(
        url,
        folder / f"{name}.gz",
        md5=expected.gz_md5,
        check=_check_gzip,
        retries=DOWNLOAD_RETRIES,
        timeout=DOWNLOAD_TIMEOUT_S,
        deadline=DOWNLOAD_DEADLINE_S,
    )
    unpacked = folder / name
    try:
        with gzip.open(gz, "rb") as source, unpacked.open("wb") as target:
            while chunk := source.read(1 << 20):
                target.write(chunk)
                if target.tell() > expected.size:
                    raise DownloadError(
                        f"{url} unpacks to more than the {expected.size:,} bytes of {name}"
                    )
    except (OSError, EOFError, zlib.error) as error:
        if isinstance(error, DownloadError):
            raise
        raise DownloadError(f"{url} is not a valid gzip file: {error}") from None
    digest = storage.sha256_of(unpacked)
    if digest != expected.sha256:
        raise DownloadError(
            f"sha256 mismatch for {url} (unpacked): expected {expected.sha256}, got {digest}"
        )
    gz.unlink()
    return unpacked


def _check_gzip(path: Path) -> None:
    with path.open("rb") as handle:
        start = handle.read(16)
    if not start.startswith(b"\x1f\x8b"):
        raise ValueError(f"not a gzip file: it starts with {start!r}")
