"""Data folders and the offline switch as the loaders use them (``nbhelpers.storage``)."""

from __future__ import annotations

import pytest

from nbhelpers import storage
from nbhelpers.storage import DataSource

pytestmark = pytest.mark.usefixtures("isolated_data")


def test_data_dir_is_read_at_call_time(tmp_path, monkeypatch):
    monkeypatch.setenv("NBHELPERS_DATA", str(tmp_path / "a"))
    assert storage.data_dir() == (tmp_path / "a").resolve()
    monkeypatch.setenv("NBHELPERS_DATA", str(tmp_path / "b"))
    assert storage.writable_data_dir() == (tmp_path / "b").resolve()
    assert (tmp_path / "b").is_dir()


def test_data_dir_defaults_to_data_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("NBHELPERS_DATA")
    monkeypatch.chdir(tmp_path)
    assert storage.data_dir() == tmp_path.resolve() / "data"


def test_mirror_dir_unset_set_and_missing(tmp_path, monkeypatch):
    assert storage.mirror_dir() is None
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(tmp_path))
    assert storage.mirror_dir() == tmp_path.resolve()
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        storage.mirror_dir()


def test_find_data_prefers_the_data_folder_over_the_mirror(
    tmp_path, monkeypatch, isolated_data
):
    mirror = tmp_path / "mirror"
    (mirror / "x").mkdir(parents=True)
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(mirror))
    assert storage.find_data("x") == DataSource("mirror", "$NBHELPERS_DATA_MIRROR/x")
    (isolated_data / "x").mkdir(parents=True)
    found = storage.find_data("x")
    assert (
        found == DataSource("local", "$NBHELPERS_DATA/x")
        and found.path == isolated_data.resolve() / "x"
    )
    assert storage.find_data("y") is None


@pytest.mark.parametrize(
    "value, expected",
    [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)],
)
def test_offline_switch(monkeypatch, value, expected):
    monkeypatch.setenv("NBHELPERS_OFFLINE", value)
    assert storage.offline() is expected
