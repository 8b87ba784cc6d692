"""Spanish names: the real files (mirror), local files, a download from a local server, the stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support import MIRROR, serve_directory
from support import needs_mirror as needs_mirror_of

from nbhelpers.data import names
from nbhelpers.data.names import (
    CHARS,
    MAX_LEN,
    NamesDataset,
    embedded_names,
    load_names,
)

pytestmark = pytest.mark.usefixtures("isolated_data")

needs_mirror = needs_mirror_of("spanish-names")


@pytest.fixture(scope="module")
def real_names():
    if MIRROR is None or not (MIRROR / "spanish-names").is_dir():
        pytest.skip("no data mirror with spanish-names/")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NBHELPERS_DATA", "/nonexistent-nbhelpers-data")
        patch.setenv("NBHELPERS_DATA_MIRROR", str(MIRROR))
        frame = load_names()
        return frame, load_names.source


@needs_mirror
def test_real_names_counts_keep_the_name_na(real_names):
    frame, source = real_names
    assert source.startswith("mirror (")
    assert list(frame.columns) == ["name", "gender"]
    # 49,339 / F 24,755 in the seed, which lost the female name "NA" to pandas' NaN parsing
    assert len(frame) == 49_340
    assert frame["gender"].value_counts().to_dict() == {"F": 24_756, "M": 24_584}
    assert frame.loc[frame["name"] == "na", "gender"].tolist() == ["F"]
    assert frame["name"].str.len().max() == 27
    assert frame.index.tolist() == list(range(len(frame)))
    assert not frame.duplicated().any()


@needs_mirror
def test_chars_are_the_characters_of_the_real_data(real_names):
    frame, _ = real_names
    assert CHARS == ["."] + sorted(set("".join(frame["name"])))
    assert "".join(CHARS) == ".'_abcdefghijklmnopqrstuvwxyzçñ" and len(CHARS) == 31


def _write_names(folder: Path, male: str, female: str) -> None:
    folder.mkdir(parents=True)
    (folder / "male_names.csv").write_text(male, encoding="utf-8")
    (folder / "female_names.csv").write_text(female, encoding="utf-8")


MALE_CSV = "name,frequency,mean_age\nJOSE MARIA,10,50\nJOSE MARIA,10,50\nÑANDU,1,2\n"
FEMALE_CSV = "name,frequency,mean_age\nNA,116,26.9\nMARIA,9,40\nJOSE MARIA,1,3\n"


def test_local_files_are_preprocessed_like_the_seed(isolated_data):
    _write_names(isolated_data / "spanish-names", MALE_CSV, FEMALE_CSV)
    frame = load_names()
    assert load_names.source.startswith("local (")
    assert frame.to_dict("records") == [
        {"name": "jose_maria", "gender": "M"},
        {"name": "ñandu", "gender": "M"},
        {"name": "na", "gender": "F"},
        {"name": "maria", "gender": "F"},
        {"name": "jose_maria", "gender": "F"},
    ]


def test_embedded_stand_in_when_offline():
    frame = load_names()
    assert load_names.source.startswith("embedded (stand-in")
    assert list(frame.columns) == ["name", "gender"]
    assert len(frame) > 1_000
    assert set(frame["gender"]) == {"M", "F"}
    assert set("".join(frame["name"])) <= set(CHARS)
    assert not frame.duplicated().any() and frame.index.tolist() == list(range(len(frame)))
    genders = dict(zip(frame["name"], frame["gender"]))
    assert genders["maria"] == "F" and genders["jose"] == "M" and genders["maria_del_carmen"] == "F"
    assert frame.equals(embedded_names())


@pytest.fixture
def file_server(tmp_path, monkeypatch):
    """A local HTTP server for files under tmp_path/www, standing in for raw.githubusercontent.com."""
    for name in ("http_proxy", "HTTP_PROXY", "NBHELPERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    www = tmp_path / "www"
    www.mkdir()

    with serve_directory(www) as base_url:
        monkeypatch.setattr(names, "URL", f"{base_url}/{{file}}")
        yield www


def test_download_when_no_folder_has_the_files(file_server, isolated_data):
    (file_server / "male_names.csv").write_text(MALE_CSV, encoding="utf-8")
    (file_server / "female_names.csv").write_text(FEMALE_CSV, encoding="utf-8")
    frame = load_names()
    assert load_names.source.startswith("download (")
    assert len(frame) == 5
    assert (isolated_data / "spanish-names" / "female_names.csv").read_text(encoding="utf-8") == FEMALE_CSV
    load_names()
    assert load_names.source.startswith("local (")


def test_download_of_something_else_falls_back_to_the_stand_in(file_server, isolated_data):
    (file_server / "male_names.csv").write_text("<html>rate limited</html>\n")
    (file_server / "female_names.csv").write_text(FEMALE_CSV, encoding="utf-8")
    with pytest.warns(UserWarning, match="names download failed .*unexpected content"):
        frame = load_names()
    assert load_names.source.startswith("embedded (stand-in")
    assert len(frame) > 1_000
    assert not (isolated_data / "spanish-names" / "male_names.csv").exists()


def test_preprocess_pads_truncates_and_drops_unknown_characters():
    assert NamesDataset.preprocess("ana") == ".ana" + "." * (MAX_LEN - 3)
    assert NamesDataset.preprocess("a-b c") == ".abc" + "." * (MAX_LEN - 3)  # "-" and " " are not in CHARS
    long = "x" * 30
    assert NamesDataset.preprocess(long) == "." + "x" * MAX_LEN
    assert len(NamesDataset.preprocess("")) == MAX_LEN + 1


def test_names_dataset_items_and_round_trip():
    dataset = NamesDataset(["john_andrew", "maría", "ñ'a"], [0, 1, 1])
    x, y = dataset[0]
    assert x.dtype == torch.long and x.shape == (MAX_LEN + 1,)
    assert y.dtype == torch.long and y.item() == 0
    # the seed's example: '.john_andrew' is encoded as these token ids
    assert x[:13].tolist() == [0, 12, 17, 10, 16, 2, 3, 16, 6, 20, 7, 25, 0]
    assert dataset.decode(x) == ".john_andrew..........."
    assert dataset.decode(dataset[1][0]) == ".mara" + "." * (MAX_LEN - 4)  # "í" is dropped
    assert dataset.decode(dataset[2][0]).startswith(".ñ'a.")
    assert len(dataset) == 3 and dataset.data.shape == (3, MAX_LEN + 1)


def test_names_dataset_rejects_mismatched_lengths_and_bad_tokens():
    with pytest.raises(ValueError, match="2 names but 1 labels"):
        NamesDataset(["a", "b"], [1])
    with pytest.raises(ValueError, match="token 31"):
        names.decode([0, 31])
