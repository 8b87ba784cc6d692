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
        for split, n in (("valid", 6), ("test", 4)):
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

    write_split(tmp_path, "valid", 3)
    images, labels = pcam.pcam_patches("valid", root=tmp_path)
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
    assert sorted(keys) == [("/x", slice(0, 2)), ("/y", slice(0, 2))]


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


@settings(max_examples=15, deadline=None)
@given(start=st.integers(0, 6), limit=st.one_of(st.none(), st.integers(1, 7)))
def test_pcam_patches_from_start_are_that_slice_of_the_split(
    tmp_path_factory, start, limit
):
    root = tmp_path_factory.mktemp("pcam")
    x, y = write_split(root, "valid", 7, seed=start)
    stop = 7 if limit is None else start + limit
    if stop > 7 or start >= 7:
        with pytest.raises(ValueError, match=f"start={start}.* reaches beyond"):
            pcam.pcam_patches("valid", root=root, limit=limit, start=start)
        return
    images, labels = pcam.pcam_patches("valid", root=root, limit=limit, start=start)
    assert torch.equal(images, torch.from_numpy(x[start:stop]))
    assert labels.tolist() == y[start:stop].tolist()


@pytest.mark.parametrize("start", [-1, True, 1.0])
def test_pcam_patches_name_a_bad_start(tmp_path, start):
    write_split(tmp_path, "valid", 3)
    with pytest.raises(ValueError, match=f"start must be an int >= 0, got {start!r}"):
        pcam.pcam_patches("valid", root=tmp_path, start=start)


def test_pcam_patches_without_root_use_the_data_folder_before_the_mirror(
    isolated_data, tmp_path, monkeypatch
):
    mirror = tmp_path / "mirror"
    write_split(mirror, "valid", 4, seed=1)
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(mirror))
    assert pcam.pcam_patches("valid")[0].shape[0] == 4
    write_split(isolated_data, "valid", 2, seed=2)
    assert pcam.pcam_patches("valid")[0].shape[0] == 2


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


def test_pcam_patches_point_from_torchvisions_val_to_valid():
    with pytest.raises(ValueError, match="unknown PCam split 'val'.*called 'valid'"):
        pcam.pcam_patches("val")


# ---- finding ---------------------------------------------------------------------------------


def test_find_pcam_returns_the_first_root_able_to_supply_the_counts(
    isolated_data, tmp_path, monkeypatch
):
    mirror = tmp_path / "mirror"
    write_split(isolated_data, "train", 3)
    write_split(isolated_data, "valid", 3)
    write_split(mirror, "train", 8)
    write_split(mirror, "valid", 3)
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(mirror))
    local = pcam.find_pcam({"train": 3, "valid": 2})
    assert (
        local is not None
        and local.root == isolated_data.resolve()
        and local.source.kind == "local"
    )
    assert local.rows == {"train": 3, "valid": 3}
    far = pcam.find_pcam({"train": 5, "valid": 2})
    assert (
        far is not None and far.root == mirror.resolve() and far.source.kind == "mirror"
    )
    assert (
        str(far.source) == "mirror ($NBHELPERS_DATA_MIRROR/pcam: PCam train 8, valid 3)"
    )
    assert pcam.find_pcam({"train": 9}) is None


def test_find_pcam_needs_both_files_of_every_split_asked_for(isolated_data):
    write_split(isolated_data, "train", 3)
    (isolated_data / "pcam" / pcam.file_name("train", "y")).unlink()
    write_split(isolated_data, "valid", 3)
    assert pcam.find_pcam({"train": 1}) is None
    assert pcam.find_pcam({"valid": 1, "train": 0}) is not None


def test_find_pcam_refuses_more_patches_than_pcam_has():
    with pytest.raises(ValueError, match=r"needed\['valid'\]=40000 .* \(32768\)"):
        pcam.find_pcam({"valid": 40_000})


# ---- downloading -----------------------------------------------------------------------------


def test_plan_for_the_published_files_states_splits_and_real_sizes(isolated_data):
    plan = pcam.pcam_download_plan(["train", "valid"])
    assert str(plan).startswith(
        "PCam: downloading splits train, valid: 7.2 GB in 4 files"
    )
    assert "into $NBHELPERS_DATA/pcam (needs about" in str(plan)
    assert plan.folder == isolated_data.resolve() / "pcam"
    assert plan.download_bytes == 6_421_353_462 + 21_378 + 805_965_320 + 3_038


def test_published_md5_values_are_torchvisions():
    from torchvision.datasets import PCAM

    for split, (images, labels) in pcam.FILES.items():
        theirs = PCAM._FILES["val" if split == "valid" else split]  # torchvision's name
        assert (images.name, images.md5) == theirs["images"][::2]
        assert (labels.name, labels.md5) == theirs["targets"][::2]


def test_download_pcam_announces_then_fetches_checks_and_decompresses(
    isolated_data, published
):
    said = []
    folder = pcam.download_pcam(["valid", "test"], announce=said.append, progress=False)
    assert (
        said == ["PCam: downloading splits valid, test: " + said[0].split(": ", 2)[2]]
        and "in 4 files" in said[0]
    )
    assert folder.root == isolated_data.resolve() and folder.source.kind == "download"
    assert folder.rows == {"valid": 6, "test": 4}
    assert sorted(path.name for path in (isolated_data / "pcam").iterdir()) == sorted(
        entry.name for split in ("valid", "test") for entry in pcam.FILES[split]
    )
    images, labels = pcam.pcam_patches("test", root=folder.root)
    assert images.shape == (4, 96, 96, 3) and labels.shape == (4,)


def test_download_pcam_keeps_what_is_there_and_fetches_only_the_rest(
    isolated_data, published
):
    pcam.download_pcam("valid", announce=lambda _: None, progress=False)
    for entry in pcam.FILES["valid"]:
        (published / f"{entry.name}.gz").unlink()
    said = []
    folder = pcam.download_pcam(["valid", "test"], announce=said.append, progress=False)
    assert "in 2 files" in said[0] and folder.rows == {"valid": 6, "test": 4}


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
    images, labels = pcam.FILES["valid"]
    monkeypatch.setitem(
        pcam.FILES, "valid", (images, dataclasses.replace(labels, sha256="0" * 64))
    )
    with pytest.raises(
        storage.DownloadError, match="sha256 mismatch for .*valid_y.h5.gz"
    ):
        pcam.download_pcam("valid", announce=lambda _: None, progress=False)
    assert sorted(path.name for path in (isolated_data / "pcam").iterdir()) == [
        images.name
    ]


def test_download_pcam_refuses_offline_before_fetching_anything(
    isolated_data, published, monkeypatch
):
    monkeypatch.setenv("NBHELPERS_OFFLINE", "1")
    with pytest.raises(storage.DownloadError, match="NBHELPERS_OFFLINE.*PCam val"):
        pcam.download_pcam("valid", announce=pytest.fail, progress=False)
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
        pcam.download_pcam("valid", announce=lambda _: None, progress=False)
    assert not (isolated_data / "pcam").exists()


def test_resolve_pcam_downloads_when_allowed_and_says_why_not_otherwise(
    isolated_data, published, monkeypatch
):
    refused = pcam.resolve_pcam({"valid": 6}, download=False)
    assert (
        refused.folder is None and "not downloading in this profile" in refused.reason
    )
    monkeypatch.setenv("NBHELPERS_OFFLINE", "1")
    assert "offline" in pcam.resolve_pcam({"valid": 6}, download=True).reason
    monkeypatch.delenv("NBHELPERS_OFFLINE")
    fetched = pcam.resolve_pcam(
        {"valid": 6, "test": 0}, download=True, announce=lambda _: None, progress=False
    )
    assert fetched.folder is not None and fetched.folder.source.kind == "download"
    assert not (isolated_data / "pcam" / pcam.file_name("test", "x")).exists()
    again = pcam.resolve_pcam({"valid": 6}, download=True)
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


# ---- the command line ------------------------------------------------------------------------


def _cli(capsys, *arguments: str) -> tuple[int, str, str]:
    status = pcam.main(list(arguments))
    out, err = capsys.readouterr()
    return status, out, err


def test_fetch_dry_run_prints_what_how_much_and_where_and_fetches_nothing(
    isolated_data, published, capsys
):
    status, out, err = _cli(capsys, "fetch", "--split", "valid", "--dry-run")
    lines = out.splitlines()
    assert status == 0 and err == ""
    assert lines[0].startswith("PCam: downloading splits valid: ")
    assert "in 2 files from https://zenodo.org/records/2546921 into" in lines[0]
    for entry in pcam.FILES["valid"]:
        assert f"{entry.name}.gz" in out and entry.sha256 in out
    assert f"$NBHELPERS_DATA/pcam is {isolated_data.resolve() / 'pcam'}" in out
    assert not isolated_data.exists() or not any(isolated_data.iterdir())


def test_fetch_downloads_the_valid_split_then_has_nothing_left_to_do(
    isolated_data, published, capsys
):
    status, out, _ = _cli(capsys, "fetch", "--split", "valid")
    assert status == 0
    assert out.splitlines()[-1] == (
        f"done: PCam valid 6 patches in {isolated_data.resolve() / 'pcam'}"
    )
    images, labels = pcam.pcam_patches("valid", root=isolated_data)
    assert images.shape == (6, 96, 96, 3) and labels.shape == (6,)
    for entry in pcam.FILES["valid"]:
        (published / f"{entry.name}.gz").unlink()  # a second fetch must not ask again
    status, out, _ = _cli(capsys, "fetch", "--split", "valid")
    assert status == 0
    assert "already in $NBHELPERS_DATA/pcam; nothing to download" in out


def test_a_failed_fetch_keeps_the_complete_file_and_the_next_run_fetches_only_the_rest(
    isolated_data, published, capsys, monkeypatch
):
    images, labels = pcam.FILES["valid"]
    monkeypatch.setitem(
        pcam.FILES, "valid", (images, dataclasses.replace(labels, sha256="0" * 64))
    )
    status, _, err = _cli(capsys, "fetch", "--split", "valid")
    assert status == 1
    last = err.strip().splitlines()[-1]  # after the progress bars
    assert last.startswith("error: sha256 mismatch for http://127.0.0.1:")
    assert sorted(p.name for p in (isolated_data / "pcam").iterdir()) == [images.name]
    monkeypatch.setitem(pcam.FILES, "valid", (images, labels))
    (published / f"{images.name}.gz").unlink()  # the images must not be fetched again
    status, out, _ = _cli(capsys, "fetch", "--split", "valid")
    assert status == 0 and "in 1 files" in out.splitlines()[0]
    assert pcam.pcam_patches("valid", root=isolated_data)[0].shape[0] == 6


def test_an_interrupted_fetch_says_how_to_continue(
    isolated_data, published, capsys, monkeypatch
):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pcam.storage, "download", interrupted)
    status, _, err = _cli(capsys, "fetch", "--split", "valid")
    assert status == 130 and "run the command again" in err
    assert not (isolated_data / "pcam").exists()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["fetch", "--split", "val"], "invalid choice: 'val'"),
        (["fetch"], "the following arguments are required: --split"),
        (["fetch", "--split", "valid", "--timeout", "0"], "seconds > 0, got '0'"),
        (["fetch", "--split", "valid", "--timeout", "nan"], "seconds > 0, got 'nan'"),
        ([], "required: command"),
    ],
)
def test_fetch_refuses_bad_arguments_before_anything_else(
    isolated_data, capsys, arguments, message
):
    with pytest.raises(SystemExit) as stop:
        pcam.main(arguments)
    assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not isolated_data.exists()


def test_python_m_runs_the_command_line(isolated_data):
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "nbhelpers.data.pcam", "fetch", "--split", "test"],
        capture_output=True,
        text=True,
        env={**os.environ, "NBHELPERS_OFFLINE": "1"},
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stdout.startswith("PCam: downloading splits test: 0.8 GB in 2 files")
    assert result.stderr.strip() == (
        "error: offline (NBHELPERS_OFFLINE is set): not downloading PCam test"
    )
