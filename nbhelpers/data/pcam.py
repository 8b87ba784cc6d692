"""PatchCamelyon (PCam): 327,680 histopathology patches in torchvision's layout, read from HDF5.

PCam (CC0) is the source of the Kaggle "Histopathologic Cancer Detection" set: 96x96 RGB patches
of lymph node sections, label 1 when the centre 32x32 holds tumour tissue. torchvision's layout
(``torchvision.datasets.PCAM``) is ``<root>/pcam/camelyonpatch_level_2_split_<s>_{x,y}.h5`` with
``<s>`` one of ``train``, ``valid`` and ``test``; dataset ``x`` holds the images,
(N, 96, 96, 3) uint8, and ``y`` the labels, (N, 1, 1, 1) uint8. The splits are named as in the
file names and in the rest of this book: "train", "valid" (torchvision calls it "val") and "test".

Where a PCam folder comes from, in order: the data folder, the mirror (``find_pcam``), a download
of the needed splits from Zenodo into the data folder (``download_pcam``); ``resolve_pcam`` tries
the three and says why it found none, so that the caller can fall back to the next source.

From the command line, ``python -m nbhelpers.data.pcam fetch --split valid`` fetches one split
(the validation split: 0.8 GB) into the data folder, after printing what, how much and where;
``--dry-run`` prints only that plan (``main``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import gzip
import math
import os
import shutil
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch

from nbhelpers import storage
from nbhelpers.data.patches import PATCH_SIZE

SPLITS = ("train", "valid", "test")
PCAM_DIR = "pcam"
IMAGE_BYTES = 96 * 96 * 3
ZENODO_RECORD = "https://zenodo.org/records/2546921"


@dataclass(frozen=True)
class PcamFile:
    """One file of a split as published: the ``.h5.gz`` at ``url``, decompressed to ``name``.

    Attributes:
        split: "train", "valid" or "test"; kind: "x" (images) or "y" (labels).
        name: the ``.h5`` file name in torchvision's layout.
        url: where its gzip-compressed form is downloaded from.
        gz_bytes: the size of the download; rows: the patches it holds.
        md5, sha256: checksums of the download.
    """

    split: str
    kind: str
    name: str
    url: str
    gz_bytes: int
    rows: int
    md5: str
    sha256: str

    @property
    def h5_bytes(self) -> int:
        """The size of the decompressed array (the ``.h5`` file is a few kB larger)."""
        return self.rows * (IMAGE_BYTES if self.kind == "x" else 1)


def _checked_split(split: object) -> str:
    if split not in SPLITS:
        hint = (
            " (torchvision's 'val' is called 'valid' here, as in PCam's file names)"
            if split == "val"
            else ""
        )
        raise ValueError(f"unknown PCam split {split!r}: use one of {SPLITS}{hint}")
    return str(split)


def file_name(split: str, kind: str) -> str:
    """The ``.h5`` file name of ``split`` ("train", "valid", "test") and ``kind`` ("x" or "y")."""
    return f"camelyonpatch_level_2_split_{_checked_split(split)}_{kind}.h5"


def _published(
    split: str, kind: str, gz_bytes: int, rows: int, md5: str, sha256: str
) -> PcamFile:
    name = file_name(split, kind)
    return PcamFile(
        split,
        kind,
        name,
        f"{ZENODO_RECORD}/files/{name}.gz?download=1",
        gz_bytes,
        rows,
        md5,
        sha256,
    )


# The PCam files of Zenodo record 2546921 (the authors' upload, CC0). Sizes and sha256: TensorFlow
# Datasets' record of these URLs (tensorflow_datasets/datasets/patch_camelyon/checksums.tsv). md5:
# torchvision.datasets.PCAM's table, measured on the same files from Google Drive (torchvision's
# prototype PCAM gives the Drive files the sha256 below, so they are the same bytes). The md5
# column of the PCam README on GitHub has the rows of "valid" and "test" swapped; this table
# follows the files. Rows: the PCam README (2**18 training, 2**15 validation and test patches).
# A download is checked against both digests (``storage.download``).

FILES: dict[str, tuple[PcamFile, PcamFile]] = {
    "train": (
        _published(
            "train",
            "x",
            6_421_353_462,
            262_144,
            "1571f514728f59376b705fc836ff4b63",
            "d619e741468a7ab35c7e4a75e6821b7e7e6c9411705d45708f2a0efc8960656c",
        ),
        _published(
            "train",
            "y",
            21_378,
            262_144,
            "35c2d7259d906cfc8143347bb8e05be7",
            "b74126d2c01b20d3661f9b46765d29cf4e4fba6faba29c8e0d09d406331ab75a",
        ),
    ),
    "valid": (
        _published(
            "valid",
            "x",
            805_965_320,
            32_768,
            "d5b63470df7cfa627aeec8b9dc0c066e",
            "f82ee1670d027b4ec388048d9eabc2186b77c009655dae76d624c0ecb053ccb2",
        ),
        _published(
            "valid",
            "y",
            3_038,
            32_768,
            "2b85f58b927af9964a4c15b8f7e8f179",
            "ce1ae30f08feb468447971cfd0472e7becd0ad96d877c64120c72571439ae48c",
        ),
    ),
    "test": (
        _published(
            "test",
            "x",
            800_875_929,
            32_768,
            "d8c2d60d490dbd479f8199bdfa0cf6ec",
            "79174c2201ad521602a5888be8f36ee10875f37403dd3f2086caf2182ef87245",
        ),
        _published(
            "test",
            "y",
            3_040,
            32_768,
            "60a7035772fbdb7f34eb86d4420cf66a",
            "0a522005fccc8bbd04c5a117bfaf81d8da2676f03a29d7499f71d0a0bd6068ef",
        ),
    ),
}


def published_rows(split: str) -> int:
    """The number of patches PCam publishes in ``split`` (262,144 train, 32,768 valid, test)."""
    return FILES[_checked_split(split)][0].rows


@dataclass(frozen=True)
class PcamFolder:
    """A folder in torchvision's layout able to supply the patches asked for.

    Attributes:
        root: the folder holding ``pcam/``: pass it to ``pcam_patches(split, root=...)`` (and to
            ``torchvision.datasets.PCAM(root, split)``).
        source: where it is ("local", "mirror" or "download"), for the chapter's banner.
        rows: patches available per split (the splits that were asked for).
    """

    root: Path
    source: storage.DataSource
    rows: dict[str, int] = field(compare=False)


@dataclass(frozen=True)
class PcamLookup:
    """What ``resolve_pcam`` found: a folder, or None and the reason (to print before falling back)."""

    folder: PcamFolder | None
    reason: str


@dataclass(frozen=True)
class PcamDownloadPlan:
    """The files a download of some splits fetches, and what it costs.

    Attributes:
        splits: the splits asked for; files: those of their files not yet in the data folder.
        download_bytes: the size of the downloads; disk_bytes: the disk space needed meanwhile
            (every decompressed file, plus the largest download while it is decompressed).
        folder: where the files go (``$NBHELPERS_DATA/pcam``); shown: that folder written from
            its variable, without this machine's absolute path.

    ``str(plan)`` is the announcement, e.g. "PCam: downloading splits train, valid: 7.2 GB ...
    into $NBHELPERS_DATA/pcam ...".
    """

    splits: tuple[str, ...]
    files: tuple[PcamFile, ...]
    download_bytes: int
    disk_bytes: int
    folder: Path = field(compare=False)
    shown: str = field(compare=False)

    def __str__(self) -> str:
        splits = ", ".join(self.splits)
        if not self.files:
            return f"PCam: splits {splits} already in {self.shown}; nothing to download"
        return (
            f"PCam: downloading splits {splits}: {_gb(self.download_bytes)} in "
            f"{len(self.files)} files from {ZENODO_RECORD} into {self.shown} (needs about "
            f"{_gb(self.disk_bytes)} of disk while decompressing)"
        )


# ---- reading ---------------------------------------------------------------------------------


def pcam_patches(
    split: str,
    root: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    start: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The patches of one PCam split, read from its two HDF5 files.

    Only the rows returned are read: ``start`` and ``limit`` slice the datasets, the rest of the
    file stays on disk (the training images take 7.2 GB).

    Args:
        split: "train", "valid" or "test" (PCam's file names; torchvision says "val").
        root: the folder holding ``pcam/``; None searches the data folder, then the mirror, for a
            ``pcam/`` holding both files of ``split``.
        limit: read only ``limit`` patches; None reads them all (from ``start`` on).
        start: the first patch read (an int >= 0).

    Returns:
        The pair (images, labels), images (N, 96, 96, 3) uint8 RGB and labels (N,) int64, 1 when
        the centre 32x32 holds tumour tissue.

    Raises:
        ValueError: an unknown split, a ``limit`` that is not a positive int, a ``start`` that is
            not an int >= 0, rows beyond the end of the split, or a file that is not a PCam HDF5 file (truncated, foreign, missing ``x``/``y``,
            wrong shape or dtype, images and labels of different lengths, a label other than 0/1);
            the message names the file or the value.
        FileNotFoundError: a file of the split is missing (named), or no folder holds the split.
    """
    split = _checked_split(split)
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
    ):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"start must be an int >= 0, got {start!r}")
    folder = _split_folder(split, root)
    images_path, labels_path = (folder / file_name(split, kind) for kind in ("x", "y"))
    with _open_h5(images_path) as images_file, _open_h5(labels_path) as labels_file:
        images = _images_dataset(images_file, images_path)
        labels = _labels_dataset(labels_file, labels_path)
        rows = _matching_rows(images, labels, images_path, labels_path)
        if start >= rows or (limit is not None and start + limit > rows):
            asked = f"start={start}" + (f", limit={limit}" if limit is not None else "")
            raise ValueError(
                f"{asked} reaches beyond the {split} split: {images_path} holds {rows} patches"
            )
        n = rows - start if limit is None else limit
        x = _read(images, start, n, images_path)
        y = _read(labels, start, n, labels_path).reshape(n)
    _check_labels(y, labels_path)
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(
        y.astype(np.int64)
    )


def pcam_rows(split: str, root: str | os.PathLike[str]) -> int:
    """The number of patches of ``split`` under ``root/pcam/``, from the files' metadata only.

    Raises:
        ValueError, FileNotFoundError: as ``pcam_patches``.
    """
    split = _checked_split(split)
    folder = Path(root) / PCAM_DIR
    images_path, labels_path = (folder / file_name(split, kind) for kind in ("x", "y"))
    with _open_h5(images_path) as images_file, _open_h5(labels_path) as labels_file:
        images = _images_dataset(images_file, images_path)
        labels = _labels_dataset(labels_file, labels_path)
        return _matching_rows(images, labels, images_path, labels_path)


# ---- finding ---------------------------------------------------------------------------------


def find_pcam(needed: Mapping[str, int]) -> PcamFolder | None:
    """The first of data folder and mirror whose ``pcam/`` supplies ``needed[split]`` patches of each split.

    Args:
        needed: split -> number of patches, e.g. ``{"train": 32_000, "valid": 4_000}``; 0 means
            "not needed".

    Returns:
        The folder, with its source; None when neither holds every needed split's two files
        with enough patches.

    Raises:
        ValueError: a bad ``needed`` (unknown split, a count that is not an int >= 0 or is above
            the split's size in PCam, nothing needed), or a PCam file present but damaged (named).
        FileNotFoundError: ``NBHELPERS_DATA_MIRROR`` names no folder.
    """
    return _survey(_checked_needed(needed))[0]


def resolve_pcam(
    needed: Mapping[str, int],
    *,
    download: bool,
    announce: Callable[[str], None] = print,
    progress: bool = True,
) -> PcamLookup:
    """A PCam folder supplying ``needed``: found (``find_pcam``), else downloaded when allowed.

    Downloads only when ``download`` is true, ``NBHELPERS_OFFLINE`` is not set and the data folder
    is writable; a failed download (no network, a checksum mismatch, too little disk) is a reason,
    not an error, so that the caller falls back to the next source and prints why.

    Args:
        needed: split -> number of patches (see ``find_pcam``).
        download: whether this run may download (the full profile does).
        announce, progress: see ``download_pcam``.
    """
    needed = _checked_needed(needed)
    folder, reason = _survey(needed)
    if folder is not None:
        return PcamLookup(folder, f"found {folder.source}")
    if not download:
        return PcamLookup(None, f"{reason}; not downloading in this profile")
    if storage.offline():
        return PcamLookup(
            None, f"{reason}; offline ({storage.OFFLINE_ENV} is set), not downloading"
        )
    if storage.writable_data_dir() is None:
        return PcamLookup(
            None,
            f"{reason}; the data folder {storage.data_dir()} is read-only, not downloading",
        )
    splits = [split for split, count in needed.items() if count > 0]
    try:
        downloaded = download_pcam(splits, announce=announce, progress=progress)
    except storage.DownloadError as error:
        return PcamLookup(None, f"PCam download failed: {error}")
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        return PcamLookup(None, f"PCam not downloaded: {error}")
    return PcamLookup(downloaded, f"downloaded {downloaded.source}")


# ---- downloading -----------------------------------------------------------------------------


def pcam_download_plan(splits: Iterable[str] | str) -> PcamDownloadPlan:
    """What ``download_pcam(splits)`` would fetch into the data folder: the missing files and their sizes.

    Raises:
        ValueError: an unknown split, or no split.
    """
    chosen = _checked_splits(splits)
    data = storage.data_dir()
    folder = data / PCAM_DIR
    files = tuple(
        entry
        for split in chosen
        for entry in FILES[split]
        if not (folder / entry.name).is_file()
    )
    download_bytes = sum(entry.gz_bytes for entry in files)
    disk_bytes = sum(entry.h5_bytes for entry in files) + max(
        (entry.gz_bytes for entry in files), default=0
    )
    shown = storage.relative_detail(folder, data, storage.LOCAL)
    return PcamDownloadPlan(chosen, files, download_bytes, disk_bytes, folder, shown)


def download_pcam(
    splits: Iterable[str] | str,
    *,
    announce: Callable[[str], None] = print,
    progress: bool = True,
    timeout: float = 30.0,
) -> PcamFolder:
    """Download the files of ``splits`` into ``$NBHELPERS_DATA/pcam/``, checked, decompressed, atomically.

    First announces the plan (``pcam_download_plan``: splits, GB, disk) through ``announce``. Each
    ``.h5.gz`` is downloaded with a progress bar and checked (md5 and sha256; see
    ``storage.download``), decompressed through a temporary file that is checked as a PCam HDF5
    file before it is renamed into place, then deleted. Files already present are kept; a
    checked ``.h5.gz`` left by an interrupted run is reused. An interruption leaves complete
    files only, so running it again fetches what is still missing. ``timeout``: seconds each
    network operation may take (``storage.download``).

    Returns:
        The data folder as a ``PcamFolder`` (source "download", or "local" when nothing was missing).

    Raises:
        ValueError: an unknown split, or a file already in ``pcam/`` that is not what it should be
            (named; it is left as it is).
        storage.DownloadError: a file is missing and ``NBHELPERS_OFFLINE`` is set (checked before
            anything is fetched), or a download failed (the url is named).
        PermissionError: a file is missing and the data folder is read-only.
        OSError: (errno ENOSPC) too little free disk for the plan, before anything is fetched.
    """
    plan = pcam_download_plan(splits)
    splits_text = ", ".join(plan.splits)
    if plan.files and storage.offline():
        raise storage.DownloadError(
            f"offline ({storage.OFFLINE_ENV} is set): not downloading PCam {splits_text}"
        )
    data = storage.writable_data_dir() if plan.files else storage.data_dir()
    if data is None:
        raise PermissionError(
            f"the data folder {storage.data_dir()} is not writable: cannot download PCam splits {splits_text} "
            f"into it (set {storage.DATA_ENV} to a writable folder)"
        )
    announce(str(plan))
    folder = data / PCAM_DIR
    for entry in (entry for split in plan.splits for entry in FILES[split]):
        if (folder / entry.name).is_file():
            _check_file(folder / entry.name, entry)
    reusable = {
        entry
        for entry in plan.files
        if _checked_archive(folder / f"{entry.name}.gz", entry)
    }
    if plan.files:
        _check_free_space(data, plan)
    created = not folder.exists()
    folder.mkdir(exist_ok=True)
    try:
        for entry in plan.files:
            _fetch(entry, folder, progress, timeout, reuse=entry in reusable)
    finally:
        if created and not any(folder.iterdir()):
            folder.rmdir()
    kind = storage.DOWNLOAD if plan.files else storage.LOCAL
    rows = {split: FILES[split][0].rows for split in plan.splits}
    return PcamFolder(
        data, storage.DataSource(kind, _detail(folder, data, kind, rows), folder), rows
    )


def _checked_archive(archive: Path, entry: PcamFile) -> bool:
    """True when an interrupted run left ``archive`` complete and checked; ValueError when it is something else."""
    if not archive.exists():
        return False
    if not archive.is_file() or storage.sha256_of(archive) != entry.sha256:
        raise ValueError(
            f"{archive} is not the published {archive.name} (its sha256 differs): remove it"
        )
    return True


# A file may take ten minutes plus its size at 250 kB/s (7 hours for the 6.4 GB of training
# images): a connection slower than that gives way to the synthetic set rather than hang.
DOWNLOAD_BASE_S = 600.0
DOWNLOAD_MIN_BYTES_PER_S = 250_000


def download_deadline(gz_bytes: int) -> float:
    """Seconds the download of a file of ``gz_bytes`` may take in all."""
    return DOWNLOAD_BASE_S + gz_bytes / DOWNLOAD_MIN_BYTES_PER_S


def _fetch(
    entry: PcamFile, folder: Path, progress: bool, timeout: float, reuse: bool
) -> None:
    """Download (unless ``reuse``) and decompress one file into ``folder``; delete the ``.gz``."""
    target = folder / entry.name
    archive = folder / f"{entry.name}.gz"
    if not reuse:
        storage.download(
            entry.url,
            archive,
            entry.sha256,
            md5=entry.md5,
            progress=progress,
            timeout=timeout,
            deadline=download_deadline(entry.gz_bytes),
        )
    try:
        with storage.atomic_path(target) as temporary:
            try:
                _gunzip(archive, temporary, progress)
            except (EOFError, zlib.error, gzip.BadGzipFile) as error:
                raise ValueError(
                    f"{entry.url} does not decompress as gzip: {error}"
                ) from None
            _check_file(temporary, entry, shown=target)
    except ValueError:
        archive.unlink()  # checked bytes that are not PCam: the table is wrong, do not reuse them
        raise
    archive.unlink()


def _gunzip(archive: Path, out_path: Path, progress: bool) -> None:
    from tqdm.auto import tqdm

    size = archive.stat().st_size
    with (
        archive.open("rb") as raw,
        gzip.GzipFile(fileobj=raw) as source,
        out_path.open("wb") as out,
    ):
        label = f"gunzip {archive.name}"
        with tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            desc=label,
            disable=not progress,
            leave=False,
        ) as bar:
            while chunk := source.read(storage.CHUNK_BYTES * 16):
                out.write(chunk)
                bar.update(raw.tell() - bar.n)
        out.flush()
        os.fsync(out.fileno())


def _check_free_space(data: Path, plan: PcamDownloadPlan) -> None:
    free = shutil.disk_usage(data).free
    if free < plan.disk_bytes:
        raise OSError(
            errno.ENOSPC,
            f"not enough free disk in {data} for PCam splits {', '.join(plan.splits)}: "
            f"needs about {_gb(plan.disk_bytes)}, {_gb(free)} free",
        )


def _check_file(path: Path, entry: PcamFile, shown: Path | None = None) -> None:
    """Raise ValueError unless ``path`` is the PCam file ``entry`` (structure and row count)."""
    shown = shown or path
    with _open_h5(path, shown) as h5:
        dataset = (
            _images_dataset(h5, shown)
            if entry.kind == "x"
            else _labels_dataset(h5, shown)
        )
        if dataset.shape[0] != entry.rows:
            raise ValueError(
                f"{shown} holds {dataset.shape[0]} rows; PCam's {entry.split} split has {entry.rows}"
            )


# ---- helpers ---------------------------------------------------------------------------------


def _checked_splits(splits: Iterable[str] | str) -> tuple[str, ...]:
    items = [splits] if isinstance(splits, str) else list(splits)
    if not items:
        raise ValueError(f"no PCam split given: name at least one of {SPLITS}")
    chosen = tuple(_checked_split(split) for split in items)
    return tuple(dict.fromkeys(chosen))


def _checked_needed(needed: Mapping[str, int]) -> dict[str, int]:
    if not isinstance(needed, Mapping):
        raise ValueError(
            f"needed must map split names to counts, e.g. {{'train': 1000}}, got {needed!r}"
        )
    checked = {}
    for split, count in needed.items():
        _checked_split(split)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"needed[{split!r}] must be an int >= 0, got {count!r}")
        limit = FILES[split][0].rows
        if count > limit:
            raise ValueError(
                f"needed[{split!r}]={count} is more than PCam's {split} split holds ({limit})"
            )
        checked[split] = count
    if not any(checked.values()):
        raise ValueError(f"needed asks for no patches: {dict(needed)!r}")
    return checked


def _survey(needed: dict[str, int]) -> tuple[PcamFolder | None, str]:
    """The first root that supplies ``needed``, else None and why none did."""
    wanted = {split: count for split, count in needed.items() if count > 0}
    notes = []
    for root, kind in storage.data_roots():
        folder = root / PCAM_DIR
        names = [file_name(split, kind) for split in wanted for kind in ("x", "y")]
        missing = [name for name in names if not (folder / name).is_file()]
        if missing:
            notes.append(
                f"{storage.relative_detail(folder, root, kind)} lacks {', '.join(missing)}"
            )
            continue
        rows = {split: pcam_rows(split, root) for split in wanted}
        short = [
            f"{split} {rows[split]} < {count}"
            for split, count in wanted.items()
            if rows[split] < count
        ]
        if short:
            notes.append(
                f"{storage.relative_detail(folder, root, kind)} holds too few patches ({', '.join(short)})"
            )
            continue
        return PcamFolder(
            root,
            storage.DataSource(kind, _detail(folder, root, kind, rows), folder),
            rows,
        ), ""
    asked = ", ".join(f"{split} {count:,}" for split, count in wanted.items())
    return None, f"no PCam folder supplies {asked}: " + "; ".join(notes)


def _detail(folder: Path, root: Path, kind: str, rows: Mapping[str, int]) -> str:
    counts = ", ".join(f"{split} {count:,}" for split, count in rows.items())
    return f"{storage.relative_detail(folder, root, kind)}: PCam {counts}"


def _split_folder(split: str, root: str | os.PathLike[str] | None) -> Path:
    names = [file_name(split, kind) for kind in ("x", "y")]
    if root is not None:
        folder = Path(root) / PCAM_DIR
        if not folder.is_dir():
            inside = (Path(root) / names[0]).exists()
            hint = (
                " (root is the folder that holds pcam/, not pcam/ itself)"
                if inside
                else ""
            )
            raise FileNotFoundError(
                f"no folder {folder}: expected PCam in torchvision's layout{hint}"
            )
        for name in names:
            if not (folder / name).exists():
                raise FileNotFoundError(f"PCam {split} file missing: {folder / name}")
        return folder
    searched = []
    for base, _kind in storage.data_roots():
        folder = base / PCAM_DIR
        if all((folder / name).exists() for name in names):
            return folder
        searched.append(str(folder))
    raise FileNotFoundError(
        f"no folder holds PCam's {split} files {' and '.join(names)}; searched {', '.join(searched)}"
    )


@contextlib.contextmanager
def _open_h5(path: Path, shown: Path | None = None) -> Iterator[h5py.File]:
    """``path`` opened read-only as HDF5; errors name ``shown`` (default ``path``)."""
    shown = shown or path
    if not path.exists():
        raise FileNotFoundError(f"PCam file missing: {shown}")
    if not path.is_file():
        raise ValueError(f"{shown} is not a file")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"{shown} is not readable")
    if not h5py.is_hdf5(path):
        raise ValueError(
            f"{shown} is not an HDF5 file (foreign content); PCam files are HDF5"
        )
    try:
        # No file locking: a read-only mirror may live on a file system that refuses locks.
        h5 = h5py.File(path, "r", locking=False)
    except OSError as error:
        raise ValueError(
            f"{shown} cannot be read as HDF5 (truncated or damaged: {error}); remove it"
        ) from None
    with h5:
        yield h5


def _dataset(h5: h5py.File, path: Path, key: str) -> h5py.Dataset:
    dataset = h5.get(key)
    if not isinstance(dataset, h5py.Dataset):
        raise ValueError(
            f"{path} has no dataset {key!r} (it holds {sorted(h5.keys())}): not a PCam file"
        )
    return dataset


def _images_dataset(h5: h5py.File, path: Path) -> h5py.Dataset:
    images = _dataset(h5, path, "x")
    if images.ndim != 4 or tuple(images.shape[1:]) != (PATCH_SIZE, PATCH_SIZE, 3):
        raise ValueError(
            f"{path}: images 'x' have shape {images.shape}; PCam's are (N, 96, 96, 3)"
        )
    if images.dtype != np.uint8:
        raise ValueError(
            f"{path}: images 'x' have dtype {images.dtype}; PCam's are uint8"
        )
    return images


def _labels_dataset(h5: h5py.File, path: Path) -> h5py.Dataset:
    labels = _dataset(h5, path, "y")
    if labels.ndim < 1 or any(size != 1 for size in labels.shape[1:]):
        raise ValueError(
            f"{path}: labels 'y' have shape {labels.shape}; PCam's are (N, 1, 1, 1)"
        )
    if labels.dtype.kind not in "biu":
        raise ValueError(
            f"{path}: labels 'y' have dtype {labels.dtype}; PCam's are integers"
        )
    return labels


def _matching_rows(
    images: h5py.Dataset, labels: h5py.Dataset, images_path: Path, labels_path: Path
) -> int:
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} {labels.shape[0]} labels"
        )
    return int(images.shape[0])


def _read(dataset: h5py.Dataset, start: int, n: int, path: Path) -> np.ndarray:
    try:
        return dataset[start : start + n]
    except OSError as error:
        raise ValueError(
            f"{path}: cannot read {dataset.name!r} (damaged: {error})"
        ) from None


def _check_labels(labels: np.ndarray, path: Path) -> None:
    bad = np.flatnonzero((labels != 0) & (labels != 1))
    if bad.size:
        row = int(bad[0])
        raise ValueError(
            f"{path}: label {labels[row].item()!r} at row {row}; PCam's labels are 0 or 1"
        )


def _gb(n_bytes: int) -> str:
    if n_bytes >= 100_000_000:
        return f"{n_bytes / 1e9:.1f} GB"
    if n_bytes >= 100_000:
        return f"{n_bytes / 1e6:.1f} MB"
    return f"{n_bytes:,} bytes"


# ---- the command line ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nbhelpers.data.pcam fetch --split valid [--dry-run] [--timeout SECONDS]``.

    Prints the plan first (the splits, each missing file with its size and sha256, the folder),
    then fetches the missing files with ``download_pcam`` (checked, decompressed, each file
    renamed into place only when complete) and names the folder they are in.

    The exit status it returns: 0 done (also: nothing to do, or a dry run); 1 the fetch
    failed (one line on stderr naming why; complete files are kept, so running the command
    again continues); 2 bad arguments (argparse); 130 interrupted.
    """
    args = _parser().parse_args(argv)
    splits = tuple(dict.fromkeys(args.split))
    try:
        plan = pcam_download_plan(splits)
        print(plan)
        for entry in plan.files:
            print(f"  {entry.name}.gz  {_gb(entry.gz_bytes)}  sha256 {entry.sha256}")
        if plan.files:
            print(f"  ({plan.shown} is {plan.folder})")
        if args.dry_run:
            return 0
        folder = download_pcam(
            splits, announce=lambda _: None, progress=True, timeout=args.timeout
        )
    except KeyboardInterrupt:
        print(
            "interrupted: the files already complete are kept; run the command again to "
            "fetch the rest",
            file=sys.stderr,
        )
        return 130
    except (storage.DownloadError, ValueError, OSError) as error:
        # PermissionError and ENOSPC are OSErrors: one line, not a traceback
        print(f"error: {error}", file=sys.stderr)
        return 1
    counts = ", ".join(
        f"{split} {rows:,} patches" for split, rows in folder.rows.items()
    )
    print(f"done: PCam {counts} in {folder.root / PCAM_DIR}")
    return 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds > 0, got {text!r}"
        )
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nbhelpers.data.pcam",
        description="Fetch PatchCamelyon (PCam) splits into the data folder "
        f"(${storage.DATA_ENV}/pcam), in torchvision's layout, checked against the "
        "published sha256 and md5.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser(
        "fetch",
        help="download and decompress splits (valid: 0.8 GB, test: 0.8 GB, train: 6.4 GB)",
        description="Print the plan, then download the files of the splits not yet in the "
        "data folder. An interrupted fetch keeps the complete files; run it again to "
        "fetch the rest.",
    )
    fetch.add_argument(
        "--split",
        action="append",
        required=True,
        choices=SPLITS,
        help="a split to fetch (repeat for several); 'valid' is enough for the quick profile",
    )
    fetch.add_argument(
        "--dry-run", action="store_true", help="print the plan and fetch nothing"
    )
    fetch.add_argument(
        "--timeout",
        type=_seconds,
        default=30.0,
        help="seconds each network operation may take (default 30)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
