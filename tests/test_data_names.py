"""Spanish names: the real files (mirror), local files, a checked download, the names shipped with the package."""

from __future__ import annotations

import hashlib
import io

import pandas as pd
import pytest
import torch
from support import FEMALE_CSV, MIRROR, serve_directory, write_names
from support import needs_mirror as needs_mirror_of

from nbhelpers.data import names
from nbhelpers.data.names import (
    NamesDataset,
    NamesTable,
    embedded_names,
    load_names,
    read_names_csv,
)
from nbhelpers.data.tokens import CHARS, MAX_LEN, encode, normalize_name
from nbhelpers.storage import DataSource

pytestmark = pytest.mark.usefixtures("isolated_data")

needs_mirror = needs_mirror_of("spanish-names")


@pytest.fixture(scope="module")
def shipped() -> NamesTable:
    return embedded_names()


@pytest.fixture(scope="module")
def real_names() -> NamesTable:
    if MIRROR is None or not (MIRROR / "spanish-names").is_dir():
        pytest.skip("no data mirror with spanish-names/")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NBHELPERS_DATA", "/nonexistent-nbhelpers-data")
        patch.setenv("NBHELPERS_DATA_MIRROR", str(MIRROR))
        return load_names()


def test_offline_without_files_the_real_names_shipped_with_the_package_are_used(
    shipped,
):
    table = load_names()
    assert table.source.kind == "embedded"
    assert (
        str(table.source)
        == "embedded (INE Spanish names shipped with nbhelpers, 49,340 names (ODbL 1.0))"
    )
    assert table.frame.equals(shipped.frame)
    frame = table.frame
    assert list(frame.columns) == ["name", "gender"]
    # 49,339 / F 24,755 in the seed, which lost the female name "NA" to pandas' NaN parsing
    assert len(frame) == 49_340
    assert frame["gender"].value_counts().to_dict() == {"F": 24_756, "M": 24_584}
    assert frame.loc[frame["name"] == "na", "gender"].tolist() == ["F"]
    assert frame["name"].str.len().max() == 27
    assert frame.index.tolist() == list(range(len(frame)))
    assert not frame.duplicated().any()
    genders = dict(zip(frame["name"], frame["gender"]))
    assert genders["maria_carmen"] == "F" and genders["antonio"] == "M"


def test_every_shipped_name_encodes(shipped):
    encoded = torch.tensor([encode(name) for name in shipped.frame["name"]])
    assert encoded.shape == (49_340, MAX_LEN + 1)
    assert CHARS == ["."] + sorted(set("".join(shipped.frame["name"])))
    assert "".join(CHARS) == ".'_abcdefghijklmnopqrstuvwxyzçñ" and len(CHARS) == 31


def test_shipped_file_has_its_license_and_attribution_beside_it():
    from importlib import resources

    files = resources.files("nbhelpers.data").joinpath("files")
    license_text = files.joinpath("spanish_names.LICENSE.md").read_text(
        encoding="utf-8"
    )
    assert (
        "Open Database License" in license_text
        and "Database Contents License" in license_text
    )
    readme = files.joinpath("README.md").read_text(encoding="utf-8")
    assert "Instituto Nacional de Estadística" in readme and "ODbL" in readme
    assert len(files.joinpath("spanish_names.csv.gz").read_bytes()) < 250_000


@needs_mirror
def test_real_files_give_exactly_the_shipped_table(real_names, shipped):
    assert real_names.source == DataSource(
        "mirror", "$NBHELPERS_DATA_MIRROR/spanish-names"
    )
    assert real_names.frame.equals(shipped.frame)


@needs_mirror
def test_the_checksums_are_those_of_the_mirror_files():
    for file, digest in names.SHA256.items():
        assert (
            hashlib.sha256((MIRROR / "spanish-names" / file).read_bytes()).hexdigest()
            == digest
        )


def test_local_files_are_normalized_like_typed_names(isolated_data):
    write_names(isolated_data / "spanish-names")
    table = load_names()
    assert str(table.source) == "local ($NBHELPERS_DATA/spanish-names)"
    assert table.frame.to_dict("records") == [
        {"name": "jose_maria", "gender": "M"},
        {"name": "ñandu", "gender": "M"},
        {"name": "na", "gender": "F"},
        {"name": "maria", "gender": "F"},
        {"name": "jose_maria", "gender": "F"},
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "is empty"),
        ("frequency,mean_age\n10,50\n", "lacks the column\\(s\\) \\['name'\\]"),
        ("name,frequency\n ,3\n", "empty name in data row 1"),
        (
            "name,frequency\nANA-MARIA,3\n",
            "data row 1: name 'ANA-MARIA' holds the character '-'",
        ),
    ],
)
def test_a_bad_local_file_is_named(isolated_data, content, message):
    write_names(isolated_data / "spanish-names", male=content)
    with pytest.raises(ValueError, match=message) as caught:
        load_names()
    assert "male_names.csv" in str(caught.value)


def test_a_binary_file_is_named(isolated_data):
    write_names(isolated_data / "spanish-names")
    (isolated_data / "spanish-names" / "female_names.csv").write_bytes(
        b"\xff\xfe\x00\x01" * 50
    )
    with pytest.raises(ValueError, match="female_names.csv is not UTF-8 text"):
        load_names()


def test_read_names_csv_keeps_the_name_na(tmp_path):
    (tmp_path / "f.csv").write_text("name\nNA\nNAN\nNULL\n")
    assert read_names_csv(tmp_path / "f.csv").tolist() == ["NA", "NAN", "NULL"]


@pytest.fixture
def file_server(tmp_path, monkeypatch):
    """A local HTTP server for files under tmp_path/www, standing in for raw.githubusercontent.com."""
    for name in ("http_proxy", "HTTP_PROXY", "NBHELPERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    www = tmp_path / "www"
    www.mkdir()
    write_names(www)
    monkeypatch.setattr(
        names,
        "SHA256",
        {
            file: hashlib.sha256((www / file).read_bytes()).hexdigest()
            for file in names.FILES.values()
        },
    )
    with serve_directory(www) as base_url:
        monkeypatch.setattr(names, "URL", f"{base_url}/{{file}}")
        yield www


def test_download_when_no_folder_has_the_files(file_server, isolated_data):
    table = load_names()
    assert table.source.kind == "download"
    assert table.source.detail.startswith(
        "$NBHELPERS_DATA/spanish-names, from 127.0.0.1:"
    )
    assert len(table.frame) == 5
    assert (isolated_data / "spanish-names" / "female_names.csv").read_text(
        encoding="utf-8"
    ) == FEMALE_CSV
    # no temporary folder left
    assert sorted(p.name for p in isolated_data.iterdir()) == ["spanish-names"]
    assert load_names().source.kind == "local"


def test_a_junk_csv_with_a_name_header_is_not_accepted(file_server, isolated_data):
    (file_server / "male_names.csv").write_text("name,frequency,mean_age\nSPAM,1,1\n")
    with pytest.warns(
        UserWarning, match="names download failed .*sha256 mismatch .*male_names.csv"
    ):
        table = load_names()
    assert table.source.kind == "embedded" and len(table.frame) == 49_340
    assert list(isolated_data.iterdir()) == []  # neither file cached


def test_html_instead_of_the_csv_falls_back_to_the_shipped_names(
    file_server, isolated_data, monkeypatch
):
    (file_server / "male_names.csv").write_text("<html>rate limited</html>\n")
    monkeypatch.setitem(
        names.SHA256,
        "male_names.csv",
        hashlib.sha256(b"<html>rate limited</html>\n").hexdigest(),
    )
    with pytest.warns(
        UserWarning,
        match="names download failed .*unexpected content .*expected the header",
    ):
        assert load_names().source.kind == "embedded"
    assert list(isolated_data.iterdir()) == []


def test_names_dataset_items_and_round_trip():
    dataset = NamesDataset(["john_andrew", "maría".replace("í", "i"), "ñ'a"], [0, 1, 1])
    x, y = dataset[0]
    assert x.dtype == torch.long and x.shape == (MAX_LEN + 1,)
    assert y.dtype == torch.long and y.item() == 0
    # the seed's example: '.john_andrew' is encoded as these token ids
    assert x[:13].tolist() == [0, 12, 17, 10, 16, 2, 3, 16, 6, 20, 7, 25, 0]
    assert dataset.decode(x) == ".john_andrew..........."
    assert dataset.decode(dataset[1][0]) == ".maria" + "." * (MAX_LEN - 5)
    assert dataset.decode(dataset[2][0]).startswith(".ñ'a.")
    assert len(dataset) == 3 and dataset.data.shape == (3, MAX_LEN + 1)


def test_names_dataset_refuses_what_it_cannot_encode():
    with pytest.raises(ValueError, match="2 names but 1 labels"):
        NamesDataset(["a", "b"], [1])
    with pytest.raises(ValueError, match="name 'maría' holds the character 'í'"):
        NamesDataset(["ana", "maría"], [1, 1])
    with pytest.raises(ValueError, match="token 31"):
        names.decode([0, 31])


def test_the_frame_is_a_plain_dataframe_in_a_frozen_table(shipped):
    assert isinstance(shipped.frame, pd.DataFrame)
    with pytest.raises(AttributeError):
        shipped.source = None  # type: ignore[misc]


def test_raw_shipped_names_normalize_to_the_frame(shipped):
    import gzip
    from importlib import resources

    raw = gzip.decompress(
        resources.files("nbhelpers.data")
        .joinpath("files", "spanish_names.csv.gz")
        .read_bytes()
    )
    frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    # the seed's preprocessing
    seed_style = frame["name"].str.replace(" ", "_", regex=False).str.lower()
    assert seed_style.map(normalize_name).equals(seed_style)
    # duplicates dropped, order kept
    seed_rows = list(dict.fromkeys(zip(seed_style, frame["gender"])))
    assert seed_rows == list(zip(shipped.frame["name"], shipped.frame["gender"]))
