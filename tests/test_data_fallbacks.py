"""A failed download: a short note in the source (for banners), a filterable warning (for code).

The loaders fall back to what ships with the packages when a download fails. They say why in
two ways: ``source.note``, one short line without paths or urls that the chapters' banner
shows, and a ``DataFallbackWarning`` with the full reason for callers who never print the
source. ``start_chapter`` prints the banner, so it hides the warning from then on.
"""

from __future__ import annotations

import os
import warnings

import pytest

from nbhelpers import storage
from nbhelpers.chapter import start_chapter
from nbhelpers.data import mnist, names
from nbhelpers.data.mnist import load_mnist
from nbhelpers.data.names import load_names
from nbhelpers.storage import DataFallbackWarning, DataSource, DownloadError

# discard port: the connection is refused at once
REFUSED = "http://127.0.0.1:9"


@pytest.fixture
def unreachable(isolated_data, monkeypatch):
    """Online, but every download is refused."""
    monkeypatch.delenv("NBHELPERS_OFFLINE")
    monkeypatch.setattr(mnist, "DOWNLOAD_URL", REFUSED + "/{name}.gz")
    monkeypatch.setattr(names, "URL", REFUSED + "/{file}")
    return isolated_data


def test_the_note_is_part_of_the_source_and_of_its_banner_form():
    plain = DataSource("embedded", "digits")
    noted = DataSource("embedded", "digits", note="MNIST download failed: HTTP 404")
    assert str(plain) == "embedded (digits)"
    assert str(noted) == "embedded (digits; MNIST download failed: HTTP 404)"
    assert plain != noted


@pytest.mark.parametrize(
    ("message", "gist"),
    [
        (
            "network unreachable: cannot resolve the host of https://ossci.example/x.gz "
            "([Errno -3] Temporary failure in name resolution)",
            "network unreachable",
        ),
        ("HTTP 404 Not Found for https://example.org/a.csv", "HTTP 404 Not Found"),
        (
            "sha256 mismatch for https://example.org/a.csv: expected 00, got 11",
            "sha256 mismatch",
        ),
        (
            "timed out connecting to or reading https://example.org/a (gave up after "
            "2 attempts)",
            "timed out",
        ),
        (
            "[Errno 28] No space left on device: '/home/reader/data/x.part'",
            "[Errno 28] No space left on device",
        ),
        ("/work/data/MNIST is not writable", "MNIST is not writable"),
    ],
)
def test_the_short_reason_keeps_the_gist_without_urls_or_paths(message, gist):
    short = storage.short_reason(DownloadError(message))
    assert short == gist
    assert "http" not in short and "/" not in short


def test_an_unreachable_mnist_download_is_noted_in_the_source_and_warned(unreachable):
    with pytest.warns(DataFallbackWarning, match="MNIST download failed .*127.0.0.1"):
        dataset = load_mnist(train=False)
    assert dataset.source.kind == "embedded"
    assert dataset.source.note == "MNIST download failed: network unreachable"
    assert str(dataset.source).endswith("; MNIST download failed: network unreachable)")
    assert list(unreachable.iterdir()) == []


def test_an_unreachable_names_download_is_noted_in_the_source_and_warned(unreachable):
    with pytest.warns(DataFallbackWarning, match="names download failed"):
        table = load_names()
    assert table.source.kind == "embedded" and len(table.frame) == 49_340
    assert table.source.note == "names download failed: network unreachable"


def test_a_read_only_data_folder_is_noted_without_its_path(unreachable):
    unreachable.mkdir()
    os.chmod(unreachable, 0o555)
    try:
        with pytest.warns(DataFallbackWarning, match="not writable"):
            dataset = load_mnist(train=False)
    finally:
        os.chmod(unreachable, 0o755)
    assert (
        dataset.source.note == "MNIST not downloaded: the data folder is not writable"
    )


def test_offline_the_source_has_no_note_and_nothing_warns(isolated_data, recwarn):
    assert load_mnist(train=False).source.note == ""
    assert load_names().source.note == ""
    assert [str(w.message) for w in recwarn] == []


def test_library_callers_can_filter_the_category_alone(unreachable):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=DataFallbackWarning)
        warnings.warn("another warning", UserWarning, stacklevel=1)
        load_mnist(train=False)
    assert [str(w.message) for w in caught] == ["another warning"]


def test_after_start_chapter_the_banner_says_it_and_nothing_warns(
    unreachable, monkeypatch, capsys
):
    monkeypatch.setenv("NBHELPERS_DEVICE", "cpu")
    monkeypatch.delenv("NBHELPERS_THREADS", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start_chapter()
        source = load_mnist(train=False).source
    assert caught == []
    print("data:", source)
    out = capsys.readouterr().out
    assert "data: embedded (scikit-learn digits" in out
    assert out.rstrip().endswith("MNIST download failed: network unreachable)")
