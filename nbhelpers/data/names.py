"""Spanish given names with their gender, and their encoding as fixed-length token sequences.

The data: the names of the Spanish population register (INE, 2015), as compiled in
jvalhondo/spanish-names-surnames (``male_names.csv``, ``female_names.csv``; ODbL 1.0 / DbCL 1.0).
Sources, in order: ``spanish-names/`` in the data folder or the mirror; a checked download of
the two files into the data folder; the same names shipped with this package
(``nbhelpers/data/files/spanish_names.csv.gz``, see the README and license beside it), so that
the real data is there offline too. The table returned says which in its ``source``.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import Dataset

from nbhelpers import storage
from nbhelpers.data.tables import read_text_csv
from nbhelpers.data.tokens import MAX_LEN, decode, encode, normalize_name, preprocess
from nbhelpers.storage import DataSource

NAMES_DIR = "spanish-names"
FILES = {"M": "male_names.csv", "F": "female_names.csv"}
# sha256 of the canonical files of jvalhondo/spanish-names-surnames (commit fdce099), computed
# from the mirror copies, which are those files byte for byte (see the mirror's SOURCES.md).
SHA256 = {
    "male_names.csv": "14a5dd22d253148d04f044ee373bb1637bda3c83c2707cf7ace912c1e9bace8e",
    "female_names.csv": "55527e547db44f595b04c44d9c00881ca559e1cc38682b3d75ce72d5dd831948",
}
# Tests point this at a local server.
URL = "https://raw.githubusercontent.com/jvalhondo/spanish-names-surnames/master/{file}"
DOWNLOAD_TIMEOUT_S = 10.0
# seconds each file may take in all (about 1 MB): then the packaged names are used
DOWNLOAD_DEADLINE_S = 60.0
DOWNLOAD_RETRIES = 1
EMBEDDED_FILE = "spanish_names.csv.gz"
# label i means GENDERS[i]: M -> 0, F -> 1, as in the lecture notebook
GENDERS = (
    "M",
    "F",
)
EXPECTED_HEADER = ("name", "frequency", "mean_age")


@dataclass(frozen=True)
class NamesTable:
    """Names with their gender, and where they came from.

    Attributes:
        frame: DataFrame with columns name (str, in the vocabulary's spelling: lower case, "_"
            for spaces, see ``normalize_name``) and gender ("M" or "F"); index 0..N-1, no
            duplicate (name, gender) rows.
        source: where the names came from.
    """

    frame: pd.DataFrame
    source: DataSource


def load_names() -> NamesTable:
    """The Spanish given names of the INE register as a ``NamesTable``.

    Each name normalized like a typed name (``normalize_name``: lower case, spaces to "_", the
    lecture notebook's preprocessing), duplicate (name, gender) rows dropped, male names first then female
    ones, each in the order of the source files. Unlike the lecture notebook, the female name "NA" is kept
    (pandas would read it as missing): 49,340 rows, 24,756 F and 24,584 M, whichever the source.

    The download is skipped silently when ``NBHELPERS_OFFLINE`` is set. When the data folder is
    not writable or the download fails (HTTP error, checksum mismatch), the names shipped with
    the package are used, and a ``storage.DataFallbackWarning`` and ``table.source.note`` say
    why.

    Raises:
        ValueError: a names file in the data folder or the mirror is empty, not UTF-8 text, not
            a names CSV, or holds a name that cannot be normalized (the message names the file
            and, where there is one, the row).
    """
    for root, kind in storage.data_roots():
        folder = root / NAMES_DIR
        if _holds_files(folder):
            frame = _read_folder(folder)
            return NamesTable(
                frame,
                DataSource(kind, storage.relative_detail(folder, root, kind), folder),
            )
    fetched = _download()
    if fetched.source is not None:
        return NamesTable(_read_folder(fetched.source.path), fetched.source)
    shipped = embedded_names()
    return replace(shipped, source=replace(shipped.source, note=fetched.failure))


def embedded_names() -> NamesTable:
    """The INE names shipped with the package (``nbhelpers/data/files/spanish_names.csv.gz``).

    The same 49,340 rows as ``load_names`` gives from the real files, read without a network.
    """
    packaged = resources.files("nbhelpers.data").joinpath("files", EMBEDDED_FILE)
    label = f"nbhelpers/data/files/{EMBEDDED_FILE}"
    text = gzip.decompress(packaged.read_bytes()).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or rows[0] != ["name", "gender"]:
        raise ValueError(f"{label} is not the packaged names file (header {rows[:1]})")
    raw = pd.DataFrame(rows[1:], columns=["name", "gender"])
    frame = _normalized(raw, label)
    detail = (
        f"INE Spanish names shipped with nbhelpers, {len(frame):,} names (ODbL 1.0)"
    )
    path = Path(str(packaged)) if isinstance(packaged, Path) else None
    return NamesTable(frame, DataSource(storage.EMBEDDED, detail, path))


def read_names_csv(path: str | os.PathLike[str]) -> pd.Series:
    """The ``name`` column of one names file (``male_names.csv`` or ``female_names.csv``), as written.

    Read with ``keep_default_na=False``: the name "NA" is a name, not a missing value.

    Raises:
        ValueError: the file is empty, not UTF-8 text, has no ``name`` column, or holds an
            empty name; the message names the file (and the row).
    """
    path = Path(path)
    frame = read_text_csv(path, ("name",))
    blank = frame["name"].str.strip() == ""
    if blank.any():
        raise ValueError(
            f"{path}: empty name in data row {int(blank.to_numpy().nonzero()[0][0]) + 1}"
        )
    return frame["name"]


def _holds_files(folder: Path) -> bool:
    """True when ``folder`` holds both files; a dangling link or a folder in their place is an error."""
    paths = [folder / file for file in FILES.values()]
    present = [path for path in paths if os.path.lexists(path)]
    for path in present:
        if not path.exists():
            raise ValueError(
                f"{path} is a dangling symbolic link (to {os.readlink(path)})"
            )
        if not path.is_file():
            raise ValueError(f"{path} is not a file")
    return len(present) == len(paths)


def _read_folder(folder: Path) -> pd.DataFrame:
    parts = []
    for gender, file in FILES.items():
        names = read_names_csv(folder / file)
        parts.append(
            _normalized(
                pd.DataFrame({"name": names, "gender": gender}), str(folder / file)
            )
        )
    return pd.concat(parts, ignore_index=True).drop_duplicates().reset_index(drop=True)


def _normalized(raw: pd.DataFrame, label: str) -> pd.DataFrame:
    """Names normalized (``normalize_name``), duplicates dropped, fresh index; errors name ``label`` and the row."""
    unknown = sorted(set(raw["gender"]) - set(GENDERS))
    if unknown:
        raise ValueError(
            f"{label}: unknown gender value(s) {unknown}; expected {GENDERS}"
        )
    names = []
    for row, name in enumerate(raw["name"], start=1):
        try:
            names.append(normalize_name(name))
        except ValueError as error:
            raise ValueError(f"{label}, data row {row}: {error}") from None
    frame = pd.DataFrame({"name": names, "gender": raw["gender"].to_numpy()})
    return frame.drop_duplicates().reset_index(drop=True)


# ---- downloading ------------------------------------------------------------------------------------


def _download() -> storage.Fetched:
    """Fetch the missing names files into ``$NBHELPERS_DATA/spanish-names``, or say why not.

    Each file is checked (sha256, then read as a names CSV) in a temporary folder; both are
    moved into place only when both are good.
    """
    return storage.fetch_into_data_folder(
        NAMES_DIR,
        list(FILES.values()),
        _fetch_names_file,
        what="names",
        fallback="the names shipped with nbhelpers",
        host=URL.split("/")[2],
    )


def _fetch_names_file(file: str, folder: Path) -> Path:
    """Download one names file into ``folder``, checked by sha256 and read as a names CSV."""
    return storage.download(
        URL.format(file=file),
        folder / file,
        sha256=SHA256[file],
        check=_check_names_csv,
        retries=DOWNLOAD_RETRIES,
        timeout=DOWNLOAD_TIMEOUT_S,
        deadline=DOWNLOAD_DEADLINE_S,
    )


def _check_names_csv(path: Path) -> None:
    with path.open("rb") as handle:
        header = handle.readline().decode("utf-8", errors="replace").strip()
    if tuple(header.split(",")) != EXPECTED_HEADER:
        raise ValueError(
            f"expected the header {','.join(EXPECTED_HEADER)!r}, got {header[:80]!r}"
        )
    read_names_csv(path)


# ---- encoding -----------------------------------------------------------------------------------------


class NamesDataset(Dataset):
    """Encoded names and labels; ``dataset[i]`` is ``(x, y)``.

    x: (MAX_LEN + 1,) int64 token ids (``encode``); y: int64 scalar tensor. ``data`` holds all
    of x as (N, MAX_LEN + 1), ``label`` all of y as (N,).

    Raises:
        ValueError: names and labels differ in length, or a name holds a character outside
            ``CHARS`` (see ``normalize_name``; the message names it).
    """

    def __init__(self, names: Sequence[str], labels: Sequence[int]) -> None:
        if len(names) != len(labels):
            raise ValueError(f"{len(names)} names but {len(labels)} labels")
        self.data = torch.tensor(
            [encode(name) for name in names], dtype=torch.long
        ).reshape(-1, MAX_LEN + 1)
        self.label = torch.as_tensor(list(labels), dtype=torch.long)

    encode = staticmethod(encode)
    decode = staticmethod(decode)
    preprocess = staticmethod(preprocess)

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data[index], self.label[index]
