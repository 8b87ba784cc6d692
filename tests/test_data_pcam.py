"""PCam in torchvision's layout: tiny HDF5 files built here; downloads from a local HTTP server."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from support import serve_directory
from support import write_pcam_split as write_split

from nbhelpers import storage
from nbhelpers.data import pcam


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A local server publishing tiny val (6 patches) and test (4 patches) splits as ``.h5.gz``.

    ``pcam.FILES`` points at it; yields the served folder (delete a file there to prove it is not
    fetched again).
    """
    build, served = tmp_path / "build", tmp_path / "served"
    served.mkdir()
    table = dict(pcam.FILES)
    with serve_directory(served) as base:
        for split, n in (("val", 6), ("test", 4)):
            write_split(build, split, n, seed=len(split))
            entries = []
            for source in pcam.FILES[split]:
                body = gzip.compress((build / "pcam" / source.name).read_bytes())
                (served / f"{source.name}.gz").write_bytes(body)
                entries.append(
                    dataclasses.replace(
                        source,
                        url=f"{base}/{source.name}.gz",
                        gz_bytes=len(body),
                        rows=n,
                        md5=hashlib.md5(body).hexdigest(),
                        sha256=hashlib.sha256(body).hexdigest(),
                    )
                )
            table[split] = tuple(entries)
        monkeypatch.setattr(pcam, "FILES", table)
        monkeypatch.delenv("NBHELPERS_OFFLINE")
        yield served


# ---- reading ---------------------------------------------------------------------------------


def test_pcam_patches_reads_uint8_images_and_int64_labels_in_torchvision_layout(
    tmp_path,
):
    x, y = write_split(tmp_path, "train", 7)
    images, labels = pcam.pcam_patches("train", root=tmp_path)
    assert images.dtype == torch.uint8 and images.shape == (7, 96, 96, 3)
    assert labels.dtype == torch.int64 and labels.shape == (7,)
    assert torch.equal(images, torch.from_numpy(x)) and labels.tolist() == y.tolist()


def test_pcam_patches_agree_with_torchvision_pcam_on_the_same_folder(tmp_path):
    from torchvision.datasets import PCAM

    write_split(tmp_path, "val", 3)
    images, labels = pcam.pcam_patches("val", root=tmp_path)
    theirs = PCAM(str(tmp_path), split="val")
    for index in range(3):
        image, label = theirs[index]
        assert (
            np.array_equal(np.asarray(image), images[index].numpy())
            and label == labels[index].item()
        )


def test_pcam_patches_with_a_limit_slice_the_datasets_and_never_read_further_rows(
    tmp_path, monkeypatch
):
    x, _ = write_split(tmp_path, "train", 9)
    keys = []
    original = h5py.Dataset.__getitem__

    def spy(self, key, *args, **kwargs):
        keys.append((self.name, key))
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    images, labels = pcam.pcam_patches("train", root=tmp_path, limit=2)
    assert torch.equal(images, torch.from_numpy(x[:2])) and labels.shape == (2,)
    assert sorted(keys) == [("/x", slice(None, 2)), ("/y", slice(None, 2))]


@settings(max_examples=10, deadline=None)
@given(limit=st.integers(1, 5))
def test_pcam_patches_with_any_limit_are_the_first_rows_of_the_split(
    tmp_path_factory, limit
):
    root = tmp_path_factory.mktemp("pcam")
    x, y = write_split(root, "test", 5, seed=limit)
    images, labels = pcam.pcam_patches("test", root=root, limit=limit)
    assert (
        torch.equal(images, torch.from_numpy(x[:limit]))
        and labels.tolist() == y[:limit].tolist()
    )


def test_pcam_patches_without_root_use_the_data_folder_before_the_mirror(
    isolated_data, tmp_path, monkeypatch
):
    mirror = tmp_path / "mirror"
    write_split(mirror, "val", 4, seed=1)
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(mirror))
    assert pcam.pcam_patches("val")[0].shape[0] == 4
    write_split(isolated_data, "val", 2, seed=2)
    assert pcam.pcam_patches("val")[0].shape[0] == 2


def test_pcam_patches_name_the_file_of_a_truncated_h5(tmp_path):
    write_split(tmp_path, "train", 4)
    path = tmp_path / "pcam" / pcam.file_name("train", "x")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(
        ValueError, match=f"{path.name} cannot be read as HDF5 .*truncated"
    ):
        pcam.pcam_patches("train", root=tmp_path)


def test_pcam_patches_name_a_foreign_file(tmp_path):
    write_split(tmp_path, "train", 4)
    path = tmp_path / "pcam" / pcam.file_name("train", "y")
    path.write_text("id,label\n")
    with pytest.raises(ValueError, match=f"{path.name} is not an HDF5 file"):
        pcam.pcam_patches("train", root=tmp_path)


def test_pcam_patches_point_from_valid_to_val():
    with pytest.raises(ValueError, match="'valid'.*'val'"):
        pcam.pcam_patches("valid")


# ---- finding ---------------------------------------------------------------------------------


def test_find_pcam_returns_the_first_root_able_to_supply_the_counts(
    isolated_data, tmp_path, monkeypatch
):
    mirror = tmp_path / "mirror"
    write_split(isolated_data, "train", 3)
    write_split(isolated_data, "val", 3)
    write_split(mirror, "train", 8)
    write_split(mirror, "val", 3)
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(mirror))
    local = pcam.find_pcam({"train": 3, "val": 2})
    assert (
        local is not None
        and local.root == isolated_data.resolve()
        and local.source.kind == "local"
    )
    assert local.rows == {"train": 3, "val": 3}
    far = pcam.find_pcam({"train": 5, "val": 2})
    assert (
        far is not None and far.root == mirror.resolve() and far.source.kind == "mirror"
    )
    assert (
        str(far.source) == "mirror ($NBHELPERS_DATA_MIRROR/pcam: PCam train 8, val 3)"
    )
    assert pcam.find_pcam({"train": 9}) is None


def test_find_pcam_needs_both_files_of_every_split_asked_for(isolated_data):
    write_split(isolated_data, "train", 3)
    (isolated_data / "pcam" / pcam.file_name("train", "y")).unlink()
    write_split(isolated_data, "val", 3)
    assert pcam.find_pcam({"train": 1}) is None
    assert pcam.find_pcam({"val": 1, "train": 0}) is not None


def test_find_pcam_refuses_more_patches_than_pcam_has():
    with pytest.raises(ValueError, match=r"needed\['val'\]=40000 .* \(32768\)"):
        pcam.find_pcam({"val": 40_000})


# ---- downloading -----------------------------------------------------------------------------


def test_plan_for_the_published_files_states_splits_and_real_sizes(isolated_data):
    plan = pcam.pcam_download_plan(["train", "val"])
    assert str(plan).startswith(
        "PCam: downloading splits train, val: 7.2 GB in 4 files"
    )
    assert plan.download_bytes == 6_421_353_462 + 21_378 + 805_965_320 + 3_038


def test_published_md5_values_are_torchvisions():
    from torchvision.datasets import PCAM

    for split, (images, labels) in pcam.FILES.items():
        theirs = PCAM._FILES[split]
        assert (images.name, images.md5) == theirs["images"][::2]
        assert (labels.name, labels.md5) == theirs["targets"][::2]


def test_download_pcam_announces_then_fetches_checks_and_decompresses(
    isolated_data, published
):
    said = []
    folder = pcam.download_pcam(["val", "test"], announce=said.append, progress=False)
    assert (
        said == ["PCam: downloading splits val, test: " + said[0].split(": ", 2)[2]]
        and "in 4 files" in said[0]
    )
    assert folder.root == isolated_data.resolve() and folder.source.kind == "download"
    assert folder.rows == {"val": 6, "test": 4}
    assert sorted(path.name for path in (isolated_data / "pcam").iterdir()) == sorted(
        entry.name for split in ("val", "test") for entry in pcam.FILES[split]
    )
    images, labels = pcam.pcam_patches("test", root=folder.root)
    assert images.shape == (4, 96, 96, 3) and labels.shape == (4,)


def test_download_pcam_keeps_what_is_there_and_fetches_only_the_rest(
    isolated_data, published
):
    pcam.download_pcam("val", announce=lambda _: None, progress=False)
    for entry in pcam.FILES["val"]:
        (published / f"{entry.name}.gz").unlink()
    said = []
    folder = pcam.download_pcam(["val", "test"], announce=said.append, progress=False)
    assert "in 2 files" in said[0] and folder.rows == {"val": 6, "test": 4}


def test_download_pcam_with_nothing_missing_works_offline(
    isolated_data, published, monkeypatch
):
    pcam.download_pcam("test", announce=lambda _: None, progress=False)
    monkeypatch.setenv("NBHELPERS_OFFLINE", "1")
    folder = pcam.download_pcam("test", announce=lambda _: None, progress=False)
    assert folder.source.kind == "local"


def test_download_pcam_reuses_a_checked_archive_left_by_an_interrupted_run(
    isolated_data, published
):
    (isolated_data / "pcam").mkdir(parents=True)
    for entry in pcam.FILES["test"]:
        shutil.move(
            published / f"{entry.name}.gz", isolated_data / "pcam" / f"{entry.name}.gz"
        )
    pcam.download_pcam("test", announce=lambda _: None, progress=False)
    assert not list((isolated_data / "pcam").glob("*.gz"))
    assert pcam.pcam_patches("test", root=isolated_data)[1].shape == (4,)


def test_download_pcam_with_a_bad_checksum_leaves_nothing_behind(
    isolated_data, published, monkeypatch
):
    images, labels = pcam.FILES["val"]
    monkeypatch.setitem(
        pcam.FILES, "val", (images, dataclasses.replace(labels, sha256="0" * 64))
    )
    with pytest.raises(
        storage.DownloadError, match="sha256 mismatch for .*valid_y.h5.gz"
    ):
        pcam.download_pcam("val", announce=lambda _: None, progress=False)
    assert sorted(path.name for path in (isolated_data / "pcam").iterdir()) == [
        images.name
    ]


def test_download_pcam_refuses_offline_before_fetching_anything(
    isolated_data, published, monkeypatch
):
    monkeypatch.setenv("NBHELPERS_OFFLINE", "1")
    with pytest.raises(storage.DownloadError, match="NBHELPERS_OFFLINE.*PCam val"):
        pcam.download_pcam("val", announce=pytest.fail, progress=False)
    assert not (isolated_data / "pcam").exists()


def test_download_pcam_refuses_when_the_disk_is_too_small(
    isolated_data, published, monkeypatch
):
    monkeypatch.setattr(
        pcam.shutil,
        "disk_usage",
        lambda path: shutil._ntuple_diskusage(10**12, 10**12, 100),
    )
    with pytest.raises(OSError, match="not enough free disk .* needs about"):
        pcam.download_pcam("val", announce=lambda _: None, progress=False)
    assert not (isolated_data / "pcam").exists()


def test_resolve_pcam_downloads_when_allowed_and_says_why_not_otherwise(
    isolated_data, published, monkeypatch
):
    refused = pcam.resolve_pcam({"val": 6}, download=False)
    assert (
        refused.folder is None and "not downloading in this profile" in refused.reason
    )
    monkeypatch.setenv("NBHELPERS_OFFLINE", "1")
    assert "offline" in pcam.resolve_pcam({"val": 6}, download=True).reason
    monkeypatch.delenv("NBHELPERS_OFFLINE")
    fetched = pcam.resolve_pcam(
        {"val": 6, "test": 0}, download=True, announce=lambda _: None, progress=False
    )
    assert fetched.folder is not None and fetched.folder.source.kind == "download"
    assert not (isolated_data / "pcam" / pcam.file_name("test", "x")).exists()
    again = pcam.resolve_pcam({"val": 6}, download=True)
    assert again.folder is not None and again.folder.source.kind == "local"


def test_resolve_pcam_turns_a_failed_download_into_a_reason(isolated_data, published):
    for path in published.iterdir():
        path.unlink()
    lookup = pcam.resolve_pcam(
        {"test": 2}, download=True, announce=lambda _: None, progress=False
    )
    assert lookup.folder is None and lookup.reason.startswith(
        "PCam download failed: HTTP 404"
    )
    assert not (isolated_data / "pcam").exists()
