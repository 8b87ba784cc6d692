"""Spanish given names with their gender, and their encoding as fixed-length token sequences.

Sources, in order: ``spanish-names/{male,female}_names.csv`` in the data folder or the mirror
(from jvalhondo/spanish-names-surnames, INE data); a download of those two files into the data
folder; an embedded stand-in built from the name dictionary bundled with the gender-guesser
package (see ``embedded_names``).
"""

from __future__ import annotations

import unicodedata
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import Dataset

from nbhelpers.data.download import DownloadError, download
from nbhelpers.data.paths import DOWNLOAD, EMBEDDED, data_dir, data_roots, offline, record_source
from nbhelpers.data.tokens import CHARS, MAX_LEN, decode, encode, preprocess

NAMES_DIR = "spanish-names"
FILES = {"M": "male_names.csv", "F": "female_names.csv"}
URL = "https://raw.githubusercontent.com/jvalhondo/spanish-names-surnames/master/{file}"
DOWNLOAD_TIMEOUT_S = 10.0
GENDERS = ("M", "F")  # label i means GENDERS[i]: M -> 0, F -> 1, as in the seed

# gender-guesser's nam_dict.txt: fixed columns. Gender code in 0..1, name in 3..28, a "+" in
# column 29 marks a duplicate entry sorted by expanded umlauts (the file says to skip those),
# one frequency digit per country from column 30; Spain is column 36.
_GG_NAME = slice(3, 29)
_GG_SORT_FLAG = 29
_GG_SPAIN = 36
_GG_GENDERS = {"M": "M", "1M": "M", "F": "F", "1F": "F"}  # "?", "?M", "?F" (unisex) are dropped
_KEEP_MARKS = {"ñ", "ç"}


def load_names() -> pd.DataFrame:
    """Spanish given names as a DataFrame with columns name (str) and gender ("M" or "F").

    Preprocessed like the seed: spaces become "_", lower case, duplicate (name, gender) rows
    dropped, index 0..N-1. Unlike the seed, the female name "NA" is kept (pandas would read it
    as missing). With the real files: 49,340 rows, 24,756 F and 24,584 M. Offline and without
    the files, the embedded stand-in (about 1,600 names, see ``embedded_names``) is returned.
    ``load_names.source`` says which.
    """
    for root, label in data_roots():
        folder = root / NAMES_DIR
        if all((folder / file).is_file() for file in FILES.values()):
            frame = _read_files(folder)
            record_source(load_names, f"{label} ({folder})")
            return frame
    failure = "offline" if offline() else _try_download()
    if failure is None:
        folder = data_dir() / NAMES_DIR
        frame = _read_files(folder)
        record_source(load_names, f"{DOWNLOAD} ({folder})")
        return frame
    if failure != "offline":
        warnings.warn(f"names download failed ({failure}); using the embedded stand-in", stacklevel=2)
    frame = embedded_names()
    record_source(
        load_names,
        f"{EMBEDDED} (stand-in: {len(frame):,} names used in Spain from gender-guesser's dictionary, "
        "not the INE list)",
    )
    return frame


def preprocess_names(frame: pd.DataFrame) -> pd.DataFrame:
    """Spaces to "_", lower case, duplicate rows dropped, fresh index; columns name, gender."""
    names = frame["name"].astype(str).str.replace(" ", "_", regex=False).str.lower()
    out = pd.DataFrame({"name": names, "gender": frame["gender"].astype(str)})
    return out.drop_duplicates().reset_index(drop=True)


def _read_files(folder: Path) -> pd.DataFrame:
    parts = []
    for gender, file in FILES.items():
        path = folder / file
        # keep_default_na=False: the name "NA" is a name, not a missing value.
        frame = pd.read_csv(path, usecols=["name"], dtype={"name": str}, keep_default_na=False)
        if (frame["name"].str.strip() == "").any():
            raise ValueError(f"{path} holds an empty name")
        parts.append(frame.assign(gender=gender))
    return preprocess_names(pd.concat(parts, ignore_index=True))


def _check_names_csv(path: Path) -> None:
    with path.open(encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    if "name" not in header:
        raise ValueError(f"expected a CSV with a 'name' column, got the header {header}")


def _try_download() -> str | None:
    """Download both files into the data folder; None on success, else why it failed."""
    folder = data_dir() / NAMES_DIR
    for file in FILES.values():
        if (folder / file).is_file():
            continue
        try:
            url = URL.format(file=file)
            download(url, folder / file, retries=1, timeout=DOWNLOAD_TIMEOUT_S, check=_check_names_csv)
        except DownloadError as error:
            return str(error)
    return None


def embedded_names() -> pd.DataFrame:
    """The offline stand-in: names with a frequency entry for Spain in gender-guesser's dictionary.

    From ``gender_guesser/data/nam_dict.txt`` (Jörg Michael's name dictionary, GNU FDL): entries
    marked male (M, 1M) or female (F, 1F) with a Spain frequency, unisex ones dropped. Names are
    written like the INE list: "+" (which joins name parts) becomes a space, accents other than
    those of ñ and ç are removed. After the same preprocessing as the real data, names with a
    character outside ``CHARS`` (such as "-") are dropped, so the vocabulary stays the same.
    """
    import gender_guesser

    path = Path(gender_guesser.__file__).parent / "data" / "nam_dict.txt"
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line[:1] in ("#", "=", "") or len(line) <= _GG_SPAIN:
                continue
            gender = _GG_GENDERS.get(line[:2].strip())
            if gender is None or line[_GG_SORT_FLAG] == "+" or line[_GG_SPAIN] == " ":
                continue
            name = _strip_accents(line[_GG_NAME].strip().replace("+", " "))
            rows.append((name, gender))
    frame = preprocess_names(pd.DataFrame(rows, columns=["name", "gender"]))
    allowed = set(CHARS)
    keep = frame["name"].map(lambda name: bool(name) and set(name) <= allowed)
    return frame[keep].reset_index(drop=True)


def _strip_accents(name: str) -> str:
    kept = []
    for char in name:
        if char.lower() in _KEEP_MARKS:
            kept.append(char)
        else:
            kept.append("".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c)))
    return "".join(kept)


class NamesDataset(Dataset):
    """Encoded names and labels; ``dataset[i]`` is ``(x, y)``.

    x: (MAX_LEN + 1,) int64 token ids (``encode``); y: int64 scalar tensor. ``data`` holds all
    of x as (N, MAX_LEN + 1), ``label`` all of y as (N,).

    Raises:
        ValueError: names and labels differ in length.
    """

    def __init__(self, names: Sequence[str], labels: Sequence[int]) -> None:
        if len(names) != len(labels):
            raise ValueError(f"{len(names)} names but {len(labels)} labels")
        self.data = torch.tensor([encode(name) for name in names], dtype=torch.long).reshape(-1, MAX_LEN + 1)
        self.label = torch.as_tensor(list(labels), dtype=torch.long)

    encode = staticmethod(encode)
    decode = staticmethod(decode)
    preprocess = staticmethod(preprocess)

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data[index], self.label[index]


load_names.source = None  # type: ignore[attr-defined]  # set by each call; see nbhelpers.data.paths
