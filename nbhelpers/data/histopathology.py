"""Histopathology patches in the Kaggle "Histopathologic Cancer Detection" layout.

Layout: ``root/train/<id>.tif`` (96x96 RGB), ``root/train_labels.csv`` (columns ``id,label``;
label 1 when the centre 32x32 holds tumour tissue), and optionally ``root/test/<id>.tif``
(unlabelled).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from nbhelpers.data.paths import EMBEDDED, LOCAL, MIRROR, data_dir, data_roots, mirror_dir, record_source
from nbhelpers.data.synthetic_histopathology import GENERATOR_VERSION, MARKER, make_synthetic_histopathology
from nbhelpers.device import sizes

KAGGLE_DIR = "histopathologic-cancer-detection"
LABELS_FILE = "train_labels.csv"
SPLITS = ("train", "test")
CROP = 49
SYNTHETIC_SEED = 0


def histopathology_root(min_patches: int = 0) -> Path:
    """The folder of histopathology patches to use, in the Kaggle layout.

    The first of data folder and mirror holding ``histopathologic-cancer-detection/`` with at
    least ``min_patches`` labelled rows; else a synthetic set (see
    ``make_synthetic_histopathology``) of ``max(min_patches, sizes("histopathology")["synthetic"])``
    patches, generated once into the data folder as
    ``histopathology-synthetic-v<generator version>-n<N>-seed0/`` and reused afterwards.
    ``histopathology_root.source`` says which ("local (...)", "mirror (...)" or
    "embedded (synthetic, N patches, ...)").

    Why ``min_patches``: the shared mirror holds only 15 real labelled patches, enough to look
    at but far too few to train on. A chapter therefore shows the real patches from
    ``histopathology_root()`` and trains on ``histopathology_root(min_patches=train + valid)``,
    which is the real set where a full copy is present and the synthetic one otherwise.

    Raises:
        ValueError: ``min_patches < 0``, or an existing synthetic folder is not one.
    """
    if min_patches < 0:
        raise ValueError(f"min_patches must be >= 0, got {min_patches}")
    for base, label in data_roots():
        root = base / KAGGLE_DIR
        if _has_layout(root) and _count_labelled(root) >= min_patches:
            record_source(histopathology_root, f"{label} ({root})")
            return root
    n = max(min_patches, int(sizes("histopathology")["synthetic"]))
    name = f"histopathology-synthetic-v{GENERATOR_VERSION}-n{n}-seed{SYNTHETIC_SEED}"
    root = data_dir(create=True) / name
    if not root.exists():
        try:
            make_synthetic_histopathology(root, n, seed=SYNTHETIC_SEED)
        except FileExistsError:
            pass  # another process finished generating it first
    _check_synthetic(root, n, SYNTHETIC_SEED)
    record_source(histopathology_root, f"{EMBEDDED} (synthetic, {n:,} patches, {root})")
    return root


def load_histopathology_labels(root: str | Path) -> pd.DataFrame:
    """``root/train_labels.csv`` as a DataFrame with columns id (str) and label (int64, 0 or 1).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a column is missing, a label is not 0 or 1, or an id is empty or repeated.
    """
    path = Path(root) / LABELS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no labels file {path}")
    frame = pd.read_csv(path, dtype={"id": str, "label": str}, keep_default_na=False)
    missing = {"id", "label"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks the column(s) {sorted(missing)}; it has {list(frame.columns)}")
    bad = frame[~frame["label"].str.strip().isin(["0", "1"])]
    if len(bad):
        row = bad.index[0]
        raise ValueError(f"{path}: label {bad['label'].iloc[0]!r} of id {frame['id'][row]!r} is not 0 or 1")
    empty = frame["id"].str.strip() == ""
    if empty.any():
        raise ValueError(f"{path}: empty id in data row {int(np.flatnonzero(empty)[0]) + 1}")
    repeated = frame["id"][frame["id"].duplicated()]
    if len(repeated):
        raise ValueError(f"{path}: id {repeated.iloc[0]!r} appears more than once")
    return pd.DataFrame({"id": frame["id"].str.strip(), "label": frame["label"].astype(np.int64)})


class HistopathologicDataset(Dataset):
    """Patches and labels; ``dataset[i]`` is ``(image, label)``.

    image: (96, 96, 3) uint8 RGB ndarray, or ``transform(image)`` when a transform is given
    (``train_transform()`` or ``infer_transform()`` give (3, 49, 49) float32 in [0, 1]);
    label: int, 0 or 1, or -1 for the unlabelled ``split="test"``.

    Files are read with OpenCV and converted from its BGR order to RGB (the seed skipped this).
    Ids are checked when the dataset is built, so a bad row fails early rather than mid-epoch.

    Args:
        labels: DataFrame with an ``id`` column and, for ``split="train"``, a ``label`` column
            (as from ``load_histopathology_labels``); for ``split="test"`` only ``id`` is needed.
        root: the layout's folder; ``None`` means ``histopathology_root()``.
        split: "train" or "test" (the subfolder holding the files).
        transform: optional callable applied to each (96, 96, 3) uint8 RGB image.

    Raises:
        ValueError: unknown split, missing column, a label not in {0, 1}, or an id that is
            empty, not a plain file name ("/", "\\", ".", ".."), or has no file.
    """

    def __init__(
        self,
        labels: pd.DataFrame,
        root: str | Path | None = None,
        split: str = "train",
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if "id" not in labels.columns:
            raise ValueError(f"labels needs an 'id' column; it has {list(labels.columns)}")
        if root is None:
            root = histopathology_root()
            self.source = histopathology_root.source  # type: ignore[attr-defined]
        else:
            root = Path(root).expanduser().resolve()
            self.source = describe_root(root)
        self.root = Path(root)
        self.split = split
        self.transform = transform
        ids = [str(patch_id) for patch_id in labels["id"]]
        self.paths = _checked_paths(self.root / split, ids)
        self.ids = ids
        self.labels = _checked_labels(labels, split)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = read_patch(self.paths[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]


def read_patch(path: str | Path) -> np.ndarray:
    """One patch file as an (H, W, 3) uint8 RGB array.

    Raises:
        ValueError: OpenCV cannot read or decode the file (named in the message).
    """
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"OpenCV cannot read or decode the image file {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def train_transform() -> Callable[[np.ndarray], torch.Tensor]:
    """(96, 96, 3) uint8 RGB -> (3, 49, 49) float32 in [0, 1], randomly flipped and rotated.

    Flips and rotations within 20 degrees do not change whether tumour tissue is present; the
    centre crop keeps the labelled centre and some context.
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
        [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.CenterCrop(CROP), v2.ToPureTensor()]
    )


def describe_root(root: Path) -> str:
    """The source string of a layout folder: synthetic (embedded), under the mirror, or local."""
    marker = root / MARKER
    if marker.is_file():
        n = json.loads(marker.read_text()).get("n")
        return f"{EMBEDDED} (synthetic, {n:,} patches, {root})"
    mirror = mirror_dir()
    if mirror is not None and root.is_relative_to(mirror):
        return f"{MIRROR} ({root})"
    return f"{LOCAL} ({root})"


def _has_layout(root: Path) -> bool:
    return (root / LABELS_FILE).is_file() and (root / "train").is_dir()


def _count_labelled(root: Path) -> int:
    with (root / LABELS_FILE).open("rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    return max(lines - 1, 0)  # minus the header


def _check_synthetic(root: Path, n: int, seed: int) -> None:
    marker = root / MARKER
    try:
        meta = json.loads(marker.read_text())
    except (OSError, ValueError):
        raise ValueError(f"{root} exists but is not a complete synthetic set (no valid {MARKER})") from None
    if meta.get("n") != n or meta.get("seed") != seed:
        found = f"n={meta.get('n')}, seed={meta.get('seed')}"
        raise ValueError(f"{root} holds a synthetic set with {found}; expected n={n}, seed={seed}")


def _checked_paths(folder: Path, ids: list[str]) -> list[str]:
    present = set(os.listdir(folder)) if folder.is_dir() else set()
    paths = []
    for patch_id in ids:
        if not patch_id or patch_id.strip() != patch_id:
            raise ValueError(f"bad patch id {patch_id!r}: empty or padded with spaces")
        if "/" in patch_id or "\\" in patch_id or patch_id in (".", "..") or "\0" in patch_id:
            raise ValueError(f"bad patch id {patch_id!r}: not a plain file name")
        name = f"{patch_id}.tif"
        if name not in present:
            raise ValueError(f"patch id {patch_id!r} has no file {folder / name}")
        paths.append(str(folder / name))
    return paths


def _checked_labels(labels: pd.DataFrame, split: str) -> list[int]:
    if "label" not in labels.columns:
        if split == "test":
            return [-1] * len(labels)
        raise ValueError(f"labels for split 'train' need a 'label' column; it has {list(labels.columns)}")
    values = []
    for patch_id, label in zip(labels["id"], labels["label"]):
        if split == "test" and label == -1:
            values.append(-1)
            continue
        if label not in (0, 1):
            raise ValueError(f"label {label!r} of patch id {patch_id!r} is not 0 or 1")
        values.append(int(label))
    return values


histopathology_root.source = None  # type: ignore[attr-defined]  # set by each call; see nbhelpers.data.paths
