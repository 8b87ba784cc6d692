"""Histopathology patches in the Kaggle "Histopathologic Cancer Detection" layout.

Layout: ``root/train/<id>.tif`` (96x96 RGB), ``root/train_labels.csv`` (columns ``id,label``;
label 1 when the centre 32x32 holds tumour tissue), and optionally ``root/test/<id>.tif``
(unlabelled).

Where patches come from is chosen by the caller, with explicit sizes: ``find_kaggle_patches``
looks for a real set in the data folder and the mirror; ``synthetic_patches`` generates (once)
a synthetic set of the size asked for. Both return a ``PatchFolder`` saying where it is and
where it came from.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from nbhelpers import checks, storage
from nbhelpers.data.patches import CROP
from nbhelpers.data.synthetic_histopathology import (
    LABELS_FILE,
    PATCH_SIZE,
    check_synthetic_arguments,
    check_synthetic_folder,
    make_synthetic_histopathology,
    synthetic_folder_name,
)
from nbhelpers.data.tables import read_text_csv
from nbhelpers.storage import DataSource

KAGGLE_DIR = "histopathologic-cancer-detection"
SPLITS = ("train", "test")


@dataclass(frozen=True)
class PatchFolder:
    """A folder of patches in the Kaggle layout.

    Attributes:
        root: the folder (absolute), holding ``train/``, ``train_labels.csv`` and maybe ``test/``.
        source: where it came from: "local" or "mirror" for a real set, "embedded" for a
            synthetic one.
        labelled: the number of labelled patches (rows of ``train_labels.csv``).
    """

    root: Path
    source: DataSource
    labelled: int


def find_kaggle_patches(min_labelled: int = 0) -> PatchFolder | None:
    """The first real Kaggle set with at least ``min_labelled`` labelled patches, or None.

    Looks for ``histopathologic-cancer-detection/`` with ``train_labels.csv`` and ``train/`` in
    the data folder, then in the mirror. The shared mirror holds only 15 real labelled patches:
    enough to look at, far too few to train on. So a chapter shows ``find_kaggle_patches()`` and
    trains on ``find_kaggle_patches(train + valid)`` when that is not None, else on
    ``synthetic_patches(train + valid)``.

    Raises:
        ValueError: ``min_labelled`` is not an int >= 0, or a labels file found is not a valid
            labels CSV (see ``load_histopathology_labels``; the message names it).
    """
    if not checks.is_int(min_labelled) or min_labelled < 0:
        raise ValueError(f"min_labelled must be an int >= 0, got {min_labelled!r}")
    for base, kind in storage.data_roots():
        root = base / KAGGLE_DIR
        if not (root / "train").is_dir() or not os.path.lexists(root / LABELS_FILE):
            continue
        labelled = len(load_histopathology_labels(root))
        if labelled >= min_labelled:
            return PatchFolder(
                root,
                DataSource(kind, storage.relative_detail(root, base, kind), root),
                labelled,
            )
    return None


def synthetic_patches(n: int, seed: int = 0) -> PatchFolder:
    """A synthetic set of ``n`` labelled patches (see ``synthetic_histopathology``), generated once.

    The set lives in the data folder as ``histopathology-synthetic-v<version>-n<n>-seed<seed>/``:
    generated there on first use (atomically: concurrent callers are safe, permissions follow
    the umask) and reused, after a check, afterwards. When the data folder is not writable and
    holds no such set, the set is generated into a fresh temporary folder instead, as the
    source says (it is not reused).

    Raises:
        ValueError: ``n`` not an int in 1..1,000,000 or ``seed`` not an int >= 0, or the folder of
            that name is not a complete synthetic set (the message names it).
    """
    check_synthetic_arguments(n, seed)
    name = synthetic_folder_name(n, seed)
    description = f"synthetic, {n:,} patches, seed {seed}"
    root = storage.data_dir() / name
    if not os.path.lexists(root):
        writable = storage.writable_data_dir()
        if writable is None:
            root = Path(tempfile.mkdtemp(prefix="nbhelpers-histopathology-")) / name
            make_synthetic_histopathology(root, n, seed)
            check_synthetic_folder(root, n, seed)
            detail = f"{description}, generated into a temporary folder (the data folder is not writable)"
            return PatchFolder(root, DataSource(storage.EMBEDDED, detail, root), n)
        try:
            make_synthetic_histopathology(root, n, seed)
        except FileExistsError:
            pass  # another process finished it meanwhile: checked below like any existing set
    check_synthetic_folder(root, n, seed)
    detail = f"{description}, {storage.relative_detail(root, storage.data_dir(), storage.LOCAL)}"
    return PatchFolder(root, DataSource(storage.EMBEDDED, detail, root), n)


def load_histopathology_labels(root: str | os.PathLike[str]) -> pd.DataFrame:
    """``root/train_labels.csv`` as a DataFrame with columns id (str) and label (int64, 0 or 1).

    Ids and labels are stripped of surrounding blanks before they are checked.

    Raises:
        FileNotFoundError: the file does not exist (or is a dangling symbolic link).
        ValueError: the file is not a file, empty, not UTF-8 text, not a CSV, lacks a column, a
            label is not 0 or 1, or an id is empty or repeated (also when two ids differ only by
            surrounding blanks); the message names the file and the line.
    """
    path = Path(root) / LABELS_FILE
    if not path.exists():
        if os.path.lexists(path):
            raise FileNotFoundError(
                f"the labels file {path} is a dangling symbolic link (to {os.readlink(path)})"
            )
        raise FileNotFoundError(f"no labels file {path}")
    if not path.is_file():
        raise ValueError(f"the labels file {path} is not a file")
    frame = read_text_csv(path, ("id", "label"))
    ids = frame["id"].str.strip()
    labels = frame["label"].str.strip()
    line = np.arange(len(frame)) + 2  # the header is line 1
    bad = np.flatnonzero(~labels.isin(["0", "1"]).to_numpy())
    if len(bad):
        row = bad[0]
        raise ValueError(
            f"{path}, line {line[row]}: label {frame['label'][row]!r} of id {ids[row]!r} is not 0 or 1"
        )
    empty = np.flatnonzero((ids == "").to_numpy())
    if len(empty):
        raise ValueError(f"{path}, line {line[empty[0]]}: empty id")
    repeated = np.flatnonzero(ids.duplicated().to_numpy())
    if len(repeated):
        second = repeated[0]
        first = int(np.flatnonzero((ids == ids[second]).to_numpy())[0])
        raise ValueError(
            f"{path}: id {frame['id'][first]!r} (line {line[first]}) and id {frame['id'][second]!r} "
            f"(line {line[second]}) are the same id"
        )
    return pd.DataFrame({"id": ids, "label": labels.astype(np.int64)})


class HistopathologicDataset(Dataset):
    """Patches and labels; ``dataset[i]`` is ``(image, label)``.

    image: (96, 96, 3) uint8 RGB ndarray, or ``transform(image)`` when a transform is given
    (``train_transform()`` or ``infer_transform()`` give (3, 49, 49) float32 in [0, 1]);
    label: int, 0 or 1, or -1 for the unlabelled ``split="test"``.

    Files are read with OpenCV and converted from its BGR order to RGB (the lecture notebook skipped this).
    Every id is checked when the dataset is built, so a bad row fails early rather than
    mid-epoch: it must name a plain file ``<root>/<split>/<id>.tif`` (a symbolic link to one is
    fine; a dangling link or a folder is not). The content of a file (that it decodes to a 96x96
    RGB image) is checked when it is read (``read_patch``).

    Args:
        labels: DataFrame with an ``id`` column and, for ``split="train"``, a ``label`` column
            (as from ``load_histopathology_labels``); for ``split="test"`` only ``id`` is needed.
        root: the layout's folder (a ``PatchFolder``'s ``root``).
        split: "train" or "test" (the subfolder holding the files).
        transform: optional callable applied to each (96, 96, 3) uint8 RGB image.

    Raises:
        FileNotFoundError: ``root/split`` is not a folder.
        ValueError: unknown split, missing column, a label not in {0, 1}, or an id that is
            empty, padded with blanks, not a plain file name ("/", "\\", ".", ".."), or has no
            file (the message names the id and the path).
    """

    def __init__(
        self,
        labels: pd.DataFrame,
        root: str | os.PathLike[str],
        split: str = "train",
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not isinstance(labels, pd.DataFrame) or "id" not in labels.columns:
            columns = (
                list(labels.columns)
                if isinstance(labels, pd.DataFrame)
                else type(labels).__name__
            )
            raise ValueError(
                f"labels must be a DataFrame with an 'id' column; got {columns}"
            )
        if root is None or isinstance(root, PatchFolder):
            raise TypeError(
                f"root must be a folder path (a PatchFolder's .root), got {root!r:.120}"
            )
        self.root = Path(root).expanduser().resolve()
        self.split = split
        self.transform = transform
        folder = self.root / split
        if not folder.is_dir():
            raise FileNotFoundError(
                f"no folder {folder} (root {self.root}, split {split!r})"
            )
        self.ids = [str(patch_id) for patch_id in labels["id"]]
        self.paths = _checked_paths(folder, self.ids)
        self.labels = _checked_labels(labels, split)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = read_patch(self.paths[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]


def read_patch(path: str | os.PathLike[str]) -> np.ndarray:
    """One patch file as a (96, 96, 3) uint8 RGB array.

    Raises:
        ValueError: OpenCV cannot read or decode the file, or it is not a 96x96 RGB image with 8
            bits per channel (grey, RGBA, 16-bit or another size); the message names the file
            and what it holds.
    """
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"OpenCV cannot read or decode the image file {path}")
    if image.shape != (PATCH_SIZE, PATCH_SIZE, 3) or image.dtype != np.uint8:
        height, width = image.shape[:2]
        channels = 1 if image.ndim == 2 else image.shape[2]
        raise ValueError(
            f"{path} is a {width}x{height} image with {channels} channel(s) of {image.dtype}; "
            f"expected {PATCH_SIZE}x{PATCH_SIZE} RGB, uint8 (a patch)"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def train_transform() -> Callable[[np.ndarray], torch.Tensor]:
    """(96, 96, 3) uint8 RGB -> (3, 49, 49) float32 in [0, 1], flipped and rotated.

    Flips and rotations within 20 degrees do not change whether tumour tissue is
    present; the centre crop keeps the labelled centre and some context.
    """
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            v2.RandomRotation(20),
            v2.CenterCrop(CROP),
            v2.ToPureTensor(),
        ]
    )


def infer_transform() -> Callable[[np.ndarray], torch.Tensor]:
    """(96, 96, 3) uint8 RGB -> (3, 49, 49) float32 in [0, 1]: the centre crop only."""
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.CenterCrop(CROP),
            v2.ToPureTensor(),
        ]
    )


def _checked_paths(folder: Path, ids: list[str]) -> list[str]:
    files: set[str] = set()
    broken: dict[str, str] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file():  # follows symbolic links; no stat for plain files
                files.add(entry.name)
            elif entry.is_symlink() and not os.path.exists(entry.path):
                broken[entry.name] = (
                    f"a dangling symbolic link (to {os.readlink(entry.path)})"
                )
            else:
                broken[entry.name] = "not a file"
    paths = []
    for patch_id in ids:
        if not patch_id or patch_id.strip() != patch_id:
            raise ValueError(f"bad patch id {patch_id!r}: empty or padded with blanks")
        if (
            "/" in patch_id
            or "\\" in patch_id
            or patch_id in (".", "..")
            or "\0" in patch_id
        ):
            raise ValueError(f"bad patch id {patch_id!r}: not a plain file name")
        name = f"{patch_id}.tif"
        if name in broken:
            raise ValueError(
                f"patch id {patch_id!r}: {folder / name} is {broken[name]}"
            )
        if name not in files:
            raise ValueError(f"patch id {patch_id!r} has no file {folder / name}")
        paths.append(str(folder / name))
    return paths


def _checked_labels(labels: pd.DataFrame, split: str) -> list[int]:
    if "label" not in labels.columns:
        if split == "test":
            return [-1] * len(labels)
        raise ValueError(
            f"labels for split 'train' need a 'label' column; it has {list(labels.columns)}"
        )
    values = []
    for patch_id, label in zip(labels["id"], labels["label"]):
        if split == "test" and label == -1:
            values.append(-1)
            continue
        if isinstance(label, (bool, np.bool_)) or label not in (0, 1):
            raise ValueError(f"label {label!r} of patch id {patch_id!r} is not 0 or 1")
        values.append(int(label))
    return values
