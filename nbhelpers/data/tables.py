"""Reading the CSV files of the data folders strictly: every failure names the file."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd


def read_text_csv(path: str | os.PathLike[str], columns: Sequence[str]) -> pd.DataFrame:
    """A CSV file as strings, checked: UTF-8 text, not empty, no NUL bytes, the given columns.

    Every cell is read as a string with ``keep_default_na=False``: the name "NA" stays a name.

    Args:
        path: the file.
        columns: columns that must be present (others are kept).

    Returns:
        The table; every column dtype ``object`` (str).

    Raises:
        ValueError: not UTF-8 text, empty, NUL bytes, not parseable as CSV, or a column missing;
            the message names the file and what it expected.
    """
    path = Path(path)
    expected = f"expected a CSV with columns {','.join(columns)}"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path} is not UTF-8 text (byte {error.start}); {expected}"
        ) from None
    if not text.strip():
        raise ValueError(f"{path} is empty; {expected}")
    if "\0" in text:
        raise ValueError(f"{path} holds NUL bytes; {expected}")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as error:
        raise ValueError(
            f"{path} is not a valid CSV: {' '.join(str(error).split())}"
        ) from None
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{path} lacks the column(s) {missing}; its header is {list(frame.columns)}"
        )
    return frame
