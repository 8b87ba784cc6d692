"""Hostile inputs against nbhelpers.data.pcam: bad splits and counts, damaged HDF5 files, downloads."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import io
import os
import shutil
import urllib.parse

import h5py
import numpy as np
import pytest
from harness import Case, Route, Workspace, run_case, within

from nbhelpers import storage
from nbhelpers.data import pcam

QUIET = {"announce": lambda _: None, "progress": False}


def _h5(ws: Workspace, relative: str, **datasets: np.ndarray) -> None:
    path = ws.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        for key, value in datasets.items():
            h5.create_dataset(key, data=value)


def _images(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(
        0, 256, size=(n, 96, 96, 3), dtype=np.uint8
    )


def _labels(n: int) -> np.ndarray:
    return (np.arange(n) % 2).astype(np.uint8).reshape(n, 1, 1, 1)


def _split(
    ws: Workspace, split: str = "train", n: int = 4, folder: str = "data"
) -> None:
    _h5(ws, f"{folder}/pcam/{pcam.file_name(split, 'x')}", x=_images(n))
    _h5(ws, f"{folder}/pcam/{pcam.file_name(split, 'y')}", y=_labels(n))


def _x(split: str = "train") -> str:
    return f"data/pcam/{pcam.file_name(split, 'x')}"


def _y(split: str = "train") -> str:
    return f"data/pcam/{pcam.file_name(split, 'y')}"


def _truncate(ws: Workspace, relative: str) -> None:
    path = ws.root / relative
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _patches(ws: Workspace, split: object = "train", **kwargs: object) -> object:
    return pcam.pcam_patches(split, root=ws.data, **kwargs)  # type: ignore[arg-type]


def _publish(
    ws: Workspace,
    split: str = "valid",
    n: int = 3,
    body: dict[str, bytes] | None = None,
) -> None:
    """Serve ``split`` from the fault server (``body`` replaces a file's content) and point FILES at it."""
    entries = []
    for kind, data in (("x", {"x": _images(n)}), ("y", {"y": _labels(n)})):
        relative = f"build/{pcam.file_name(split, kind)}"
        _h5(ws, relative, **data)
        content = (body or {}).get(kind) or gzip.compress(
            (ws.root / relative).read_bytes()
        )
        os.remove(ws.root / relative)
        source = pcam.FILES[split][0 if kind == "x" else 1]
        path = f"/{source.name}.gz"
        ws.server.routes[path] = Route(body=content)
        entries.append(
            dataclasses.replace(
                source,
                url=ws.server.url(path),
                gz_bytes=len(content),
                rows=n,
                md5=hashlib.md5(content).hexdigest(),
                sha256=hashlib.sha256(content).hexdigest(),
            )
        )
    os.rmdir(ws.root / "build")
    ws.env.setitem(pcam.FILES, split, tuple(entries))
    ws.env.delenv("NBHELPERS_OFFLINE")


def _tamper(ws: Workspace, split: str, kind: str, **changes: object) -> None:
    images, labels = pcam.FILES[split]
    if kind == "x":
        ws.env.setitem(
            pcam.FILES, split, (dataclasses.replace(images, **changes), labels)
        )
    else:
        ws.env.setitem(
            pcam.FILES, split, (images, dataclasses.replace(labels, **changes))
        )


def _is_none(result: object, _ws: Workspace) -> None:
    assert result is None, result


def _no_folder_with_reason(words: str):
    def check(result: object, _ws: Workspace) -> None:
        assert isinstance(result, pcam.PcamLookup) and result.folder is None, result
        assert words in result.reason, result.reason

    return check


class FetchFailed(Exception):
    """The fetch command ended with a non-zero status; the message holds it and stderr's last line."""


def _fetch(ws: Workspace, *arguments: str) -> str:
    """Run ``python -m nbhelpers.data.pcam fetch ARGUMENTS`` in-process; FetchFailed if it fails."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            status = pcam.main(["fetch", *arguments])
        except SystemExit as stop:
            status = stop.code
    if status != 0:
        lines = err.getvalue().strip().splitlines() or ["(no message)"]
        raise FetchFailed(f"exit {status}: {lines[-1]}")
    return out.getvalue()


def _serve_instead(ws: Workspace, kind: str, route: Route) -> None:
    """Publish the valid split, then answer ``route`` where the ``kind`` file should come."""
    _publish(ws, "valid")
    entry = pcam.FILES["valid"][0 if kind == "x" else 1]
    ws.server.routes["/" + entry.url.rsplit("/", 1)[-1]] = route


def _half_of_the_images(ws: Workspace) -> None:
    _publish(ws, "valid")
    path = "/" + pcam.file_name("valid", "x") + ".gz"
    body = ws.server.routes[path].body
    ws.server.routes[path] = Route(body=body[: len(body) // 2], announce=len(body))


_VALID_X_URL = "http://127.0.0.1:[0-9]+/camelyonpatch_level_2_split_valid_x.h5.gz"


def _full_disk(ws: Workspace) -> None:
    ws.env.setattr(
        pcam.shutil,
        "disk_usage",
        lambda path: shutil._ntuple_diskusage(10**12, 10**12, 10),
    )


def _throttled(ws: Workspace) -> None:
    _publish(ws)
    for entry in pcam.FILES["valid"]:
        path = urllib.parse.urlsplit(entry.url).path
        ws.server.routes[path] = Route(
            body=ws.server.routes[path].body, trickle=2.0, trickle_body_only=True
        )
    ws.env.setattr(pcam, "DOWNLOAD_BASE_S", 3.0)


CASES = [
    # ---- arguments
    Case(
        "split-val",
        "arguments",
        "pcam_patches",
        "split='val' (torchvision's word, not the file names' and the book's)",
        "ValueError naming 'val' and pointing to 'valid'",
        act=lambda ws: _patches(ws, "val"),
        raises=ValueError,
        names="'val'.*'valid'",
    ),
    Case(
        "split-not-a-string",
        "arguments",
        "pcam_patches",
        "split=0",
        "ValueError naming the value",
        act=lambda ws: _patches(ws, 0),
        raises=ValueError,
        names="unknown PCam split 0",
    ),
    Case(
        "limit-zero",
        "arguments",
        "pcam_patches",
        "limit=0",
        "ValueError naming the limit",
        setup=_split,
        act=lambda ws: _patches(ws, limit=0),
        raises=ValueError,
        names="limit must be a positive int or None, got 0",
    ),
    Case(
        "limit-bool",
        "arguments",
        "pcam_patches",
        "limit=True (a bool where a count belongs)",
        "ValueError naming the value",
        setup=_split,
        act=lambda ws: _patches(ws, limit=True),
        raises=ValueError,
        names="got True",
    ),
    Case(
        "limit-above-split",
        "arguments",
        "pcam_patches",
        "limit=5 for a split of 4 patches",
        "ValueError naming the limit, the file and its size",
        setup=_split,
        act=lambda ws: _patches(ws, limit=5),
        raises=ValueError,
        names="limit=5 .*split_train_x.h5 holds 4",
    ),
    Case(
        "needed-unknown-split",
        "arguments",
        "find_pcam",
        "needed={'validation': 10}",
        "ValueError naming the split",
        act=lambda ws: pcam.find_pcam({"validation": 10}),
        raises=ValueError,
        names="'validation'",
    ),
    Case(
        "needed-negative",
        "arguments",
        "find_pcam",
        "needed={'train': -1}",
        "ValueError naming the split and the count",
        act=lambda ws: pcam.find_pcam({"train": -1}),
        raises=ValueError,
        names=r"needed\['train'\] .* got -1",
    ),
    Case(
        "needed-above-pcam",
        "arguments",
        "find_pcam",
        "needed={'train': 300000}, more than PCam's 262,144",
        "ValueError naming the count and the split's size",
        act=lambda ws: pcam.find_pcam({"train": 300_000}),
        raises=ValueError,
        names=r"needed\['train'\]=300000 .*262144",
    ),
    Case(
        "needed-nothing",
        "arguments",
        "find_pcam",
        "needed={'valid': 0}",
        "ValueError: nothing asked for",
        act=lambda ws: pcam.find_pcam({"valid": 0}),
        raises=ValueError,
        names="asks for no patches",
    ),
    Case(
        "needed-a-list",
        "arguments",
        "find_pcam",
        "needed=['train'] (a list, not split -> count)",
        "ValueError naming the value",
        act=lambda ws: pcam.find_pcam(["train"]),  # type: ignore[arg-type]
        raises=ValueError,
        names=r"\['train'\]",
    ),
    Case(
        "download-no-split",
        "arguments",
        "download_pcam",
        "splits=[]",
        "ValueError: name a split",
        act=lambda ws: pcam.download_pcam([], **QUIET),
        raises=ValueError,
        names="no PCam split given",
    ),
    Case(
        "download-unknown-split",
        "arguments",
        "download_pcam",
        "splits=['train', 'training']",
        "ValueError naming 'training'; nothing fetched",
        act=lambda ws: pcam.download_pcam(["train", "training"], **QUIET),
        raises=ValueError,
        names="'training'",
    ),
    # ---- files
    Case(
        "foreign-images-file",
        "files",
        "pcam_patches",
        "the images file is a CSV under the .h5 name",
        "ValueError naming the file as not HDF5",
        setup=lambda ws: (_split(ws), (ws.root / _x()).write_text("id,label\n")),
        act=_patches,
        raises=ValueError,
        names="split_train_x.h5 is not an HDF5 file",
    ),
    Case(
        "truncated-images-file",
        "files",
        "pcam_patches",
        "the images file cut to half its size",
        "ValueError naming the file as truncated or damaged",
        setup=lambda ws: (_split(ws), _truncate(ws, _x())),
        act=_patches,
        raises=ValueError,
        names="split_train_x.h5 cannot be read as HDF5 .*truncated",
    ),
    Case(
        "empty-labels-file",
        "files",
        "pcam_patches",
        "the labels file is empty (0 bytes)",
        "ValueError naming the file",
        setup=lambda ws: (_split(ws), (ws.root / _y()).write_bytes(b"")),
        act=_patches,
        raises=ValueError,
        names="split_train_y.h5 is not an HDF5 file",
    ),
    Case(
        "missing-dataset-x",
        "files",
        "pcam_patches",
        "an HDF5 images file whose dataset is called 'images', not 'x'",
        "ValueError naming the file and 'x'",
        setup=lambda ws: (_split(ws), _h5(ws, _x(), images=_images(4))),
        act=_patches,
        raises=ValueError,
        names="split_train_x.h5 has no dataset 'x'",
    ),
    Case(
        "images-wrong-shape",
        "files",
        "pcam_patches",
        "images of shape (4, 32, 32, 3)",
        "ValueError naming the file and the shape",
        setup=lambda ws: (
            _split(ws),
            _h5(ws, _x(), x=np.zeros((4, 32, 32, 3), np.uint8)),
        ),
        act=_patches,
        raises=ValueError,
        names=r"split_train_x.h5: images 'x' have shape \(4, 32, 32, 3\)",
    ),
    Case(
        "images-float",
        "files",
        "pcam_patches",
        "images stored as float32",
        "ValueError naming the file and the dtype",
        setup=lambda ws: (
            _split(ws),
            _h5(ws, _x(), x=np.zeros((4, 96, 96, 3), np.float32)),
        ),
        act=_patches,
        raises=ValueError,
        names="split_train_x.h5: images 'x' have dtype float32",
    ),
    Case(
        "labels-float",
        "files",
        "pcam_patches",
        "labels stored as float64",
        "ValueError naming the file and the dtype",
        setup=lambda ws: (_split(ws), _h5(ws, _y(), y=np.zeros((4, 1, 1, 1)))),
        act=_patches,
        raises=ValueError,
        names="split_train_y.h5: labels 'y' have dtype float64",
    ),
    Case(
        "lengths-differ",
        "files",
        "pcam_patches",
        "4 images but 3 labels",
        "ValueError naming both files and both lengths",
        setup=lambda ws: (_split(ws), _h5(ws, _y(), y=_labels(3))),
        act=_patches,
        raises=ValueError,
        names="split_train_x.h5 holds 4 images but .*split_train_y.h5 3 labels",
    ),
    Case(
        "label-two",
        "files",
        "pcam_patches",
        "a label 2 at row 1",
        "ValueError naming the file, the row and the label",
        setup=lambda ws: (
            _split(ws),
            _h5(ws, _y(), y=np.array([0, 2, 1, 0], np.uint8).reshape(4, 1, 1, 1)),
        ),
        act=_patches,
        raises=ValueError,
        names="split_train_y.h5: label 2 at row 1",
    ),
    Case(
        "images-file-is-a-folder",
        "files",
        "pcam_patches",
        "a folder where the images file belongs",
        "ValueError naming the path",
        setup=lambda ws: (
            _split(ws),
            os.remove(ws.root / _x()),
            os.mkdir(ws.root / _x()),
        ),
        act=_patches,
        raises=ValueError,
        names="split_train_x.h5 is not a file",
    ),
    Case(
        "labels-file-missing",
        "files",
        "pcam_patches",
        "the images file without its labels file",
        "FileNotFoundError naming the missing file",
        setup=lambda ws: (_split(ws), os.remove(ws.root / _y())),
        act=_patches,
        raises=FileNotFoundError,
        names="PCam train file missing: .*split_train_y.h5",
    ),
    Case(
        "root-is-the-pcam-folder",
        "files",
        "pcam_patches",
        "root=data/pcam (the folder holding the files rather than the one holding pcam/)",
        "FileNotFoundError naming the folder and explaining root",
        setup=_split,
        act=lambda ws: pcam.pcam_patches("train", root=ws.data / "pcam"),
        raises=FileNotFoundError,
        names="pcam/pcam.*not pcam/ itself",
    ),
    Case(
        "nowhere",
        "files",
        "pcam_patches",
        "root=None and neither data folder nor mirror holds PCam",
        "FileNotFoundError naming the files and the folders searched",
        setup=lambda ws: ws.env.setenv("NBHELPERS_DATA_MIRROR", str(ws.mirror)),
        act=lambda ws: pcam.pcam_patches("test"),
        raises=FileNotFoundError,
        names="split_test_x.h5 and .*split_test_y.h5; searched .*data/pcam, .*mirror/pcam",
    ),
    Case(
        "find-truncated-in-mirror",
        "files",
        "find_pcam",
        "the mirror's labels file cut in half",
        "ValueError naming the file (not silently skipped)",
        setup=lambda ws: (
            _split(ws, "valid", folder="mirror"),
            _truncate(ws, "mirror/pcam/" + pcam.file_name("valid", "y")),
            ws.env.setenv("NBHELPERS_DATA_MIRROR", str(ws.mirror)),
        ),
        act=lambda ws: pcam.find_pcam({"valid": 2}),
        raises=ValueError,
        names="mirror/pcam/camelyonpatch_level_2_split_valid_y.h5 cannot be read",
    ),
    Case(
        "find-too-few-rows",
        "files",
        "find_pcam",
        "a data folder holding 4 training patches when 10 are needed",
        "None: the caller falls back",
        setup=_split,
        act=lambda ws: pcam.find_pcam({"train": 10}),
        expect=_is_none,
    ),
    Case(
        "download-over-a-foreign-archive",
        "files",
        "download_pcam",
        "a .h5.gz of the same name but other content already in data/pcam",
        "ValueError naming the archive; it is kept, nothing fetched",
        setup=lambda ws: (
            _publish(ws),
            (ws.data / "pcam").mkdir(),
            (ws.data / "pcam" / (pcam.file_name("valid", "x") + ".gz")).write_bytes(
                b"someone's file"
            ),
        ),
        act=lambda ws: pcam.download_pcam("valid", **QUIET),
        raises=ValueError,
        names="split_valid_x.h5.gz is not the published",
    ),
    Case(
        "download-over-a-damaged-h5",
        "files",
        "download_pcam",
        "a truncated .h5 already in data/pcam",
        "ValueError naming the file; it is kept, nothing fetched",
        setup=lambda ws: (
            _publish(ws),
            _split(ws, "valid", n=3),
            _truncate(ws, _x("valid")),
        ),
        act=lambda ws: pcam.download_pcam("valid", **QUIET),
        raises=ValueError,
        names="split_valid_x.h5 cannot be read as HDF5",
    ),
    # ---- environment
    Case(
        "download-offline",
        "environment",
        "download_pcam",
        "NBHELPERS_OFFLINE=1 with splits missing",
        "DownloadError naming the variable and the splits, before anything is fetched",
        act=lambda ws: pcam.download_pcam(["train", "valid"], **QUIET),
        raises=storage.DownloadError,
        names="NBHELPERS_OFFLINE.*PCam train, val",
    ),
    Case(
        "download-read-only-data",
        "environment",
        "download_pcam",
        "a read-only data folder",
        "PermissionError naming the folder",
        setup=lambda ws: (ws.env.delenv("NBHELPERS_OFFLINE"), os.chmod(ws.data, 0o555)),
        act=lambda ws: pcam.download_pcam("test", **QUIET),
        raises=PermissionError,
        names="data folder .*/data is not writable",
    ),
    Case(
        "download-disk-full",
        "environment",
        "download_pcam",
        "10 bytes free on the data folder's disk",
        "OSError (ENOSPC) naming the folder and the sizes, before anything is fetched",
        setup=lambda ws: (_publish(ws), _full_disk(ws)),
        act=lambda ws: pcam.download_pcam("valid", **QUIET),
        raises=OSError,
        names="not enough free disk in .*/data .*needs about",
    ),
    Case(
        "mirror-variable-wrong",
        "environment",
        "find_pcam",
        "NBHELPERS_DATA_MIRROR names a missing folder",
        "FileNotFoundError naming the variable",
        setup=lambda ws: ws.env.setenv("NBHELPERS_DATA_MIRROR", str(ws.root / "gone")),
        act=lambda ws: pcam.find_pcam({"valid": 1}),
        raises=FileNotFoundError,
        names="NBHELPERS_DATA_MIRROR=.*gone",
    ),
    Case(
        "resolve-offline",
        "environment",
        "resolve_pcam",
        "the full profile offline, no PCam anywhere",
        "no folder, a reason naming the offline switch (the caller falls back)",
        act=lambda ws: pcam.resolve_pcam({"train": 100}, download=True, **QUIET),
        expect=_no_folder_with_reason("offline (NBHELPERS_OFFLINE is set)"),
    ),
    Case(
        "resolve-read-only",
        "environment",
        "resolve_pcam",
        "the full profile online with a read-only data folder",
        "no folder, a reason naming the read-only folder",
        setup=lambda ws: (ws.env.delenv("NBHELPERS_OFFLINE"), os.chmod(ws.data, 0o555)),
        act=lambda ws: pcam.resolve_pcam({"train": 100}, download=True, **QUIET),
        expect=_no_folder_with_reason("is read-only, not downloading"),
    ),
    # ---- network
    Case(
        "download-checksum-mismatch",
        "network",
        "download_pcam",
        "the labels' .h5.gz served differs from the published sha256 (a changed file, a proxy's page)",
        "DownloadError naming the url; the images already fetched kept complete, nothing half-written",
        setup=lambda ws: (_publish(ws), _tamper(ws, "valid", "y", sha256="0" * 64)),
        act=lambda ws: pcam.download_pcam("valid", **QUIET),
        raises=storage.DownloadError,
        names="sha256 mismatch for http://127.0.0.1:[0-9]+/camelyonpatch_level_2_split_valid_y.h5.gz",
        may_create=("data/pcam", "data/pcam/" + pcam.file_name("valid", "x")),
    ),
    Case(
        "download-404",
        "network",
        "download_pcam",
        "the server answers 404 for the images",
        "DownloadError naming the url and the status; no empty pcam/ left",
        setup=lambda ws: (
            _publish(ws),
            ws.server.routes.pop("/" + pcam.file_name("valid", "x") + ".gz"),
        ),
        act=lambda ws: pcam.download_pcam("valid", **QUIET),
        raises=storage.DownloadError,
        names="HTTP 404 .* for http://127.0.0.1:[0-9]+/camelyonpatch_level_2_split_valid_x.h5.gz",
    ),
    Case(
        "download-not-gzip",
        "network",
        "download_pcam",
        "the published checksum matches, but the bytes are not gzip",
        "ValueError naming the url; neither the archive nor a partial .h5 left",
        setup=lambda ws: _publish(ws, body={"x": b"plain bytes, not gzip"}),
        act=lambda ws: pcam.download_pcam("valid", **QUIET),
        raises=ValueError,
        names="split_valid_x.h5.gz does not decompress as gzip",
    ),
    Case(
        "download-gzip-of-a-foreign-file",
        "network",
        "download_pcam",
        "a checked .h5.gz that decompresses to a text file",
        "ValueError naming the target file; nothing left",
        setup=lambda ws: _publish(ws, body={"y": gzip.compress(b"label\n0\n1\n")}),
        act=lambda ws: pcam.download_pcam("valid", **QUIET),
        raises=ValueError,
        names="data/pcam/camelyonpatch_level_2_split_valid_y.h5 is not an HDF5 file",
        may_create=("data/pcam", "data/pcam/" + pcam.file_name("valid", "x")),
    ),
    Case(
        "download-wrong-rows",
        "network",
        "download_pcam",
        "a download holding 3 rows where the table says 5",
        "ValueError naming the file and both counts",
        setup=lambda ws: (_publish(ws), _tamper(ws, "valid", "x", rows=5)),
        act=lambda ws: pcam.download_pcam("valid", **QUIET),
        raises=ValueError,
        names="split_valid_x.h5 holds 3 rows; PCam's valid split has 5",
    ),
    Case(
        "resolve-network-down",
        "network",
        "resolve_pcam",
        "the full profile online, the server refuses every connection",
        "no folder, the download's failure as the reason (the caller falls back)",
        setup=lambda ws: (
            _publish(ws),
            _tamper(ws, "valid", "x", url="http://127.0.0.1:9/x.h5.gz"),
        ),
        act=lambda ws: pcam.resolve_pcam({"valid": 3}, download=True, **QUIET),
        expect=_no_folder_with_reason("PCam download failed: network unreachable"),
    ),
    Case(
        "resolve-throttled-server",
        "throttled servers",
        "resolve_pcam",
        "the full profile online, the PCam server sends one byte every 2 s; each file "
        "may take 3 s plus its size at 250 kB/s",
        "no folder within the deadline, the deadline as the reason (the caller falls "
        "back to the synthetic set); nothing left",
        setup=_throttled,
        act=lambda ws: within(
            8.0, pcam.resolve_pcam, {"valid": 3}, download=True, **QUIET
        ),
        expect=_no_folder_with_reason("took more than 3"),
    ),
]


CASES += [
    # ---- the command line: python -m nbhelpers.data.pcam fetch
    Case(
        "fetch-split-val",
        "cli",
        "python -m nbhelpers.data.pcam fetch",
        "--split val (torchvision's word)",
        "exit 2 naming 'val' and the choices, before anything is fetched",
        act=lambda ws: _fetch(ws, "--split", "val"),
        raises=FetchFailed,
        names="exit 2: .*invalid choice: 'val' \\(choose from 'train', 'valid', 'test'\\)",
    ),
    Case(
        "fetch-timeout-negative",
        "cli",
        "python -m nbhelpers.data.pcam fetch",
        "--timeout -1",
        "exit 2 naming the value, before anything is fetched",
        act=lambda ws: _fetch(ws, "--split", "valid", "--timeout", "-1"),
        raises=FetchFailed,
        names="exit 2: .*--timeout: must be a number of seconds > 0, got '-1'",
    ),
    Case(
        "fetch-offline",
        "cli",
        "python -m nbhelpers.data.pcam fetch",
        "NBHELPERS_OFFLINE=1",
        "the plan, then exit 1 naming the variable; nothing fetched",
        act=lambda ws: _fetch(ws, "--split", "valid"),
        raises=FetchFailed,
        names="exit 1: error: offline \\(NBHELPERS_OFFLINE is set\\)",
    ),
    Case(
        "fetch-read-only-data",
        "cli",
        "python -m nbhelpers.data.pcam fetch",
        "a read-only data folder",
        "exit 1 naming the folder and the variable to set",
        setup=lambda ws: (ws.env.delenv("NBHELPERS_OFFLINE"), os.chmod(ws.data, 0o555)),
        act=lambda ws: _fetch(ws, "--split", "valid"),
        raises=FetchFailed,
        names="exit 1: error: the data folder .*/data is not writable.*NBHELPERS_DATA",
    ),
    Case(
        "fetch-truncated-transfer",
        "network",
        "python -m nbhelpers.data.pcam fetch",
        "the server announces the whole images file and sends half of it, every time",
        "exit 1 naming the url after the retries; no pcam/ and no partial file left",
        setup=_half_of_the_images,
        act=lambda ws: _fetch(ws, "--split", "valid"),
        raises=FetchFailed,
        names=f"exit 1: error: .*{_VALID_X_URL}.*gave up after 4 attempts",
    ),
    Case(
        "fetch-wrong-hash",
        "network",
        "python -m nbhelpers.data.pcam fetch",
        "the images file served differs from the published digests (a changed upload)",
        "exit 1 naming the url and the digests; nothing left",
        setup=lambda ws: _serve_instead(
            ws, "x", Route(body=gzip.compress(b"other bytes"))
        ),
        act=lambda ws: _fetch(ws, "--split", "valid"),
        raises=FetchFailed,
        names=f"exit 1: error: (md5|sha256) mismatch for {_VALID_X_URL}: expected",
    ),
    Case(
        "fetch-html-page",
        "network",
        "python -m nbhelpers.data.pcam fetch",
        "HTTP 200 with an HTML page (a captive portal) where the labels file belongs",
        "exit 1 naming the url; the images fetched before are kept complete and checked",
        setup=lambda ws: _serve_instead(
            ws, "y", Route(body=b"<html><body>Sign in to the network</body></html>")
        ),
        act=lambda ws: _fetch(ws, "--split", "valid"),
        raises=FetchFailed,
        names="exit 1: error: (md5|sha256) mismatch for .*split_valid_y.h5.gz",
        may_create=("data/pcam", "data/pcam/" + pcam.file_name("valid", "x")),
    ),
    Case(
        "fetch-stalled-server",
        "network",
        "python -m nbhelpers.data.pcam fetch --timeout 0.2",
        "the server waits 2 s before answering, every time",
        "exit 1 naming the url within the retries' time; nothing left",
        setup=lambda ws: _serve_instead(ws, "x", Route(body=b"late", delay=2.0)),
        act=lambda ws: _fetch(ws, "--split", "valid", "--timeout", "0.2"),
        raises=FetchFailed,
        names=f"exit 1: error: .*{_VALID_X_URL}",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_pcam_case(case: Case, workspace: Workspace) -> None:
    run_case(case, workspace)
