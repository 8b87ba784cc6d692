"""Hostile inputs against nbhelpers.data: corrupt files, a hostile environment, a misbehaving network, bad arguments."""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from harness import Case, Route, Workspace, run_case, within
from support import (
    FEMALE_CSV,
    MALE_CSV,
    fake_mnist,
    gz_tables,
    idx_bytes,
    write_names,
    write_patch_layout,
)

from nbhelpers.data import (
    histopathology,
    images,
    mnist,
    names,
    synthetic_histopathology,
    tokens,
)
from nbhelpers.data.histopathology import KAGGLE_DIR
from nbhelpers.storage import DataSource

ROOT = os.geteuid() == 0  # root reads files whatever their mode
SYNTHETIC = "histopathology-synthetic-v1-n4-seed0"


# ---- building blocks -------------------------------------------------------------------------------


def _mnist_files(
    ws: Workspace,
    under: str = "data",
    change: Callable[[dict[str, bytes]], None] | None = None,
) -> None:
    files = fake_mnist(5, seed=0)
    if change is not None:
        change(files)
    raw = ws.root / under / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (raw / name).write_bytes(content)


def _replace(name: str, content: bytes) -> Callable[[dict[str, bytes]], None]:
    return lambda files: files.__setitem__(name, content)


def _edit(
    name: str, change: Callable[[bytes], bytes]
) -> Callable[[dict[str, bytes]], None]:
    return lambda files: files.__setitem__(name, change(files[name]))


def _replace_by_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _label_200(files: dict[str, bytes]) -> None:
    labels = np.frombuffer(files["train-labels-idx1-ubyte"][8:], np.uint8).copy()
    labels[2] = 200
    files["train-labels-idx1-ubyte"] = idx_bytes(labels)


def _raw(ws: Workspace, under: str = "data") -> Path:
    return ws.root / under / "MNIST" / "raw"


def _link(ws: Workspace, link: str, target: str, folder: bool = False) -> None:
    path = ws.root / link
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    if folder:
        (ws.root / target).mkdir(parents=True, exist_ok=True)
    path.symlink_to(ws.root / target, target_is_directory=folder)


def _names_files(
    ws: Workspace, under: str = "data", male: str | bytes = MALE_CSV
) -> None:
    folder = ws.root / under / "spanish-names"
    write_names(folder)
    if isinstance(male, bytes):
        (folder / "male_names.csv").write_bytes(male)
    else:
        (folder / "male_names.csv").write_text(male, encoding="utf-8")


def _layout(
    ws: Workspace, under: str = "kaggle", labels: str | bytes | None = None
) -> Path:
    root = write_patch_layout(ws.root / under)
    if isinstance(labels, bytes):
        (root / "train_labels.csv").write_bytes(labels)
    elif labels is not None:
        (root / "train_labels.csv").write_text(labels)
    return root


def _patch(ws: Workspace, image: np.ndarray | bytes) -> None:
    import cv2

    root = _layout(ws)
    target = root / "train" / "p0.tif"
    if isinstance(image, bytes):
        target.write_bytes(image)
    else:
        cv2.imwrite(str(target), image)


def _dataset_item(ws: Workspace, ids: list[str] | None = None) -> Any:
    root = ws.root / "kaggle"
    labels = histopathology.load_histopathology_labels(root)
    if ids is not None:
        labels = pd.DataFrame({"id": ids, "label": [0] * len(ids)})
    dataset = histopathology.HistopathologicDataset(
        labels, root, transform=histopathology.infer_transform()
    )
    return dataset[0]


def _synthetic(
    ws: Workspace, marker: str | None = None, drop_patch: bool = False
) -> None:
    histopathology.synthetic_patches(4)
    root = ws.data / SYNTHETIC
    if marker is not None:
        (root / "synthetic.json").write_text(marker)
    if drop_patch:
        next((root / "train").iterdir()).unlink()


def _read_only_data(ws: Workspace) -> None:
    os.chmod(ws.data, 0o555)


def _use_mirror(ws: Workspace) -> None:
    ws.env.setenv("NBHELPERS_DATA_MIRROR", str(ws.mirror))


def _online(ws: Workspace) -> None:
    """Downloads allowed, aimed at the fault server (which answers 404 unless a route is set)."""
    ws.env.delenv("NBHELPERS_OFFLINE")
    ws.env.setattr(mnist, "DOWNLOAD_URL", ws.server.url("/mnist/") + "{name}.gz")
    ws.env.setattr(mnist, "DOWNLOAD_RETRIES", 1)
    ws.env.setattr(names, "URL", ws.server.url("/names/") + "{file}")


def _warned(call: Callable[[], Any]) -> tuple[Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(warning.message) for warning in caught]


def _kind(
    kind: str, warning: str | None = None, no_requests: bool = False
) -> Callable[[Any, Workspace], None]:
    """expect: the loader's source has ``kind``; a warning matching ``warning`` (or none) was given."""

    def check(result: Any, ws: Workspace) -> None:
        value, messages = result if isinstance(result, tuple) else (result, [])
        assert value.source.kind == kind, value.source
        if warning is not None:
            assert any(warning in message for message in messages), messages
        if no_requests:
            assert ws.server.requests == {}, ws.server.requests

    return check


def _serve_mnist(
    ws: Workspace, bodies: dict[str, bytes], table: dict[str, Any] | None = None
) -> None:
    _online(ws)
    for name, body in bodies.items():
        ws.server.routes[f"/mnist/{name}.gz"] = Route(body=body)
    if table is not None:
        ws.env.setattr(mnist, "RAW_FILES", table)


def _serve_all_mnist(ws: Workspace, route: Route) -> None:
    _online(ws)
    for name in mnist.RAW_FILES:
        ws.server.routes[f"/mnist/{name}.gz"] = route


def _serve_names(ws: Workspace, route: Route, good_female: bool = True) -> None:
    _online(ws)
    ws.server.routes["/names/male_names.csv"] = route
    if good_female:
        ws.server.routes["/names/female_names.csv"] = Route(body=FEMALE_CSV.encode())


def _good_fake_mnist(ws: Workspace) -> None:
    bodies, table = gz_tables(fake_mnist(4, seed=1))
    _serve_mnist(ws, bodies, table)


def _gz_of_wrong_data(ws: Workspace) -> None:
    """Valid gzip files whose md5 the table accepts but whose unpacked sha256 is not the expected one."""
    bodies, table = gz_tables(fake_mnist(4, seed=1))
    table = {
        name: mnist.RawFile("0" * 64, entry.gz_md5, entry.size)
        for name, entry in table.items()
    }
    _serve_mnist(ws, bodies, table)


def _corrupt_gzip(ws: Workspace) -> None:
    bodies, table = gz_tables(fake_mnist(4, seed=1))
    broken = {
        name: body[:10] + b"\x00" * 20 + body[30:] for name, body in bodies.items()
    }
    table = {
        name: mnist.RawFile(entry.sha256, _md5(broken[name]), entry.size)
        for name, entry in table.items()
    }
    _serve_mnist(ws, broken, table)


def _md5(data: bytes) -> str:
    import hashlib

    return hashlib.md5(data).hexdigest()


def _temporary_synthetic(result: Any, ws: Workspace) -> None:
    try:
        assert (
            result.source.kind == "embedded"
            and "temporary folder" in result.source.detail
        ), result.source
        assert len(histopathology.load_histopathology_labels(result.root)) == 4
        assert not any(ws.data.iterdir())
    finally:
        shutil.rmtree(result.root.parent, ignore_errors=True)


def _is(expected: Any) -> Callable[[Any, Workspace], None]:
    def check(result: Any, _ws: Workspace) -> None:
        assert result == expected, result

    return check


HTML = b"<!DOCTYPE html><html><body>Welcome to the hotel Wi-Fi: please log in</body></html>"
MIRROR_MNIST = ("mirror/MNIST", "mirror/MNIST/**")


# ---- files -----------------------------------------------------------------------------------------------

FILE_CASES = [
    Case(
        "mnist-label-200",
        "files",
        "load_mnist",
        "label byte 200 in train-labels-idx1-ubyte",
        "ValueError naming the file, the label and its index",
        setup=lambda ws: _mnist_files(ws, change=_label_200),
        act=lambda ws: mnist.load_mnist(),
        raises=ValueError,
        names=r"train-labels-idx1-ubyte: label 200 at index 2",
    ),
    Case(
        "mnist-truncated-images",
        "files",
        "load_mnist",
        "train-images-idx3-ubyte cut short by 100 bytes",
        "ValueError naming the file and its size against its header",
        setup=lambda ws: _mnist_files(
            ws, change=_edit("train-images-idx3-ubyte", lambda data: data[:-100])
        ),
        act=lambda ws: mnist.load_mnist(),
        raises=ValueError,
        names=r"train-images-idx3-ubyte holds 3,820 bytes of data, its header says \(5, 28, 28\)",
    ),
    Case(
        "mnist-truncated-header",
        "files",
        "load_mnist",
        "train-labels-idx1-ubyte of 6 bytes (half a header)",
        "ValueError naming the file as truncated",
        setup=lambda ws: _mnist_files(
            ws, change=_replace("train-labels-idx1-ubyte", b"\x00\x00\x08\x01\x00\x00")
        ),
        act=lambda ws: mnist.load_mnist(),
        raises=ValueError,
        names=r"train-labels-idx1-ubyte is truncated",
    ),
    Case(
        "mnist-wrong-magic",
        "files",
        "load_mnist",
        "images file with the magic number of signed bytes (0x0903)",
        "ValueError naming the file and its magic number",
        setup=lambda ws: _mnist_files(
            ws,
            change=_edit("t10k-images-idx3-ubyte", lambda data: b"\0\0\x09" + data[3:]),
        ),
        act=lambda ws: mnist.load_mnist(train=False),
        raises=ValueError,
        names=r"t10k-images-idx3-ubyte is not an unsigned-byte IDX file \(magic number 00000903\)",
    ),
    Case(
        "mnist-empty-file",
        "files",
        "load_mnist",
        "an empty train-labels-idx1-ubyte",
        "ValueError naming the file",
        setup=lambda ws: _mnist_files(
            ws, change=_replace("train-labels-idx1-ubyte", b"")
        ),
        act=lambda ws: mnist.load_mnist(),
        raises=ValueError,
        names=r"train-labels-idx1-ubyte is not an unsigned-byte IDX file \(magic number missing\)",
    ),
    Case(
        "mnist-wrong-image-size",
        "files",
        "load_mnist",
        "images of 27x27 pixels in a well-formed IDX file",
        "ValueError naming the file and the shape",
        setup=lambda ws: _mnist_files(
            ws,
            change=_replace(
                "train-images-idx3-ubyte", idx_bytes(np.zeros((5, 27, 27)))
            ),
        ),
        act=lambda ws: mnist.load_mnist(),
        raises=ValueError,
        names=r"train-images-idx3-ubyte holds images of shape \(5, 27, 27\)",
    ),
    Case(
        "mnist-count-mismatch",
        "files",
        "load_mnist",
        "5 images but 4 labels",
        "ValueError naming both files",
        setup=lambda ws: _mnist_files(
            ws, change=_replace("train-labels-idx1-ubyte", idx_bytes(np.zeros(4)))
        ),
        act=lambda ws: mnist.load_mnist(),
        raises=ValueError,
        names=r"train-labels-idx1-ubyte holds \(4,\) labels for the 5 images of .*train-images-idx3-ubyte",
    ),
    Case(
        "mnist-dangling-symlink",
        "files",
        "load_mnist",
        "train-labels-idx1-ubyte is a symbolic link to a deleted file",
        "ValueError naming the link and its target, not a silent fallback",
        setup=lambda ws: (
            _mnist_files(ws),
            _link(ws, "data/MNIST/raw/train-labels-idx1-ubyte", "gone"),
        ),
        act=lambda ws: mnist.load_mnist(),
        raises=ValueError,
        names=r"train-labels-idx1-ubyte is a dangling symbolic link \(to .*gone\)",
    ),
    Case(
        "mnist-symlink-to-folder",
        "files",
        "load_mnist",
        "train-images-idx3-ubyte is a symbolic link to a folder",
        "ValueError naming it",
        setup=lambda ws: (
            _mnist_files(ws),
            _link(ws, "data/MNIST/raw/train-images-idx3-ubyte", "somedir", folder=True),
        ),
        act=lambda ws: mnist.load_mnist(),
        raises=ValueError,
        names=r"train-images-idx3-ubyte is not a file",
    ),
    Case(
        "mnist-unreadable-file",
        "files",
        "load_mnist",
        "train-images-idx3-ubyte with mode 000",
        "root reads it anyway (the set loads); any other user gets a PermissionError naming the file",
        setup=lambda ws: (
            _mnist_files(ws),
            os.chmod(_raw(ws) / "train-images-idx3-ubyte", 0),
        ),
        act=lambda ws: mnist.load_mnist(),
        raises=None if ROOT else PermissionError,
        names=None if ROOT else r"train-images-idx3-ubyte",
        expect=_kind("local") if ROOT else None,
    ),
    Case(
        "mnist-corrupt-mirror",
        "files",
        "load_mnist",
        "the mirror's labels file holds a label 200",
        "ValueError naming the mirror file (no silent fallback to the digits)",
        setup=lambda ws: (
            _use_mirror(ws),
            _mnist_files(ws, under="mirror", change=_label_200),
        ),
        act=lambda ws: mnist.load_mnist(),
        raises=ValueError,
        names=r"mirror/MNIST/raw/train-labels-idx1-ubyte: label 200",
    ),
    Case(
        "mnist-half-a-split",
        "files",
        "load_mnist",
        "the data folder holds the test images but not the test labels (offline)",
        "the incomplete folder is skipped: the embedded digits, nothing written",
        setup=lambda ws: (
            _mnist_files(ws),
            (_raw(ws) / "t10k-labels-idx1-ubyte").unlink(),
        ),
        act=lambda ws: mnist.load_mnist(train=False),
        expect=_kind("embedded"),
    ),
    Case(
        "names-empty-csv",
        "files",
        "load_names",
        "an empty male_names.csv",
        "ValueError naming the file",
        setup=lambda ws: _names_files(ws, male=""),
        act=lambda ws: names.load_names(),
        raises=ValueError,
        names=r"male_names.csv is empty",
    ),
    Case(
        "names-binary-csv",
        "files",
        "load_names",
        "male_names.csv holds random bytes",
        "ValueError naming the file (not UTF-8)",
        setup=lambda ws: _names_files(ws, male=bytes(range(128, 256)) * 8),
        act=lambda ws: names.load_names(),
        raises=ValueError,
        names=r"male_names.csv is not UTF-8 text",
    ),
    Case(
        "names-nul-bytes",
        "files",
        "load_names",
        "male_names.csv is valid UTF-8 but full of NUL bytes",
        "ValueError naming the file",
        setup=lambda ws: _names_files(ws, male=b"name\n" + b"\x00" * 64),
        act=lambda ws: names.load_names(),
        raises=ValueError,
        names=r"male_names.csv holds NUL bytes",
    ),
    Case(
        "names-missing-column",
        "files",
        "load_names",
        "male_names.csv without a name column",
        "ValueError naming the file and its header",
        setup=lambda ws: _names_files(ws, male="nombre,frequency\nJUAN,3\n"),
        act=lambda ws: names.load_names(),
        raises=ValueError,
        names=r"male_names.csv lacks the column\(s\) \['name'\]; its header is \['nombre', 'frequency'\]",
    ),
    Case(
        "names-bad-character",
        "files",
        "load_names",
        "a name with a hyphen (ANA-MARIA) in male_names.csv",
        "ValueError naming the file, the row, the name and the character",
        setup=lambda ws: _names_files(ws, male="name,frequency\nJUAN,3\nANA-MARIA,2\n"),
        act=lambda ws: names.load_names(),
        raises=ValueError,
        names=r"male_names.csv, data row 2: name 'ANA-MARIA' holds the character '-'",
    ),
    Case(
        "names-blank-name",
        "files",
        "load_names",
        "a blank name in male_names.csv",
        "ValueError naming the file and the row",
        setup=lambda ws: _names_files(ws, male="name,frequency\nJUAN,3\n   ,2\n"),
        act=lambda ws: names.load_names(),
        raises=ValueError,
        names=r"male_names.csv: empty name in data row 2",
    ),
    Case(
        "names-dangling-symlink",
        "files",
        "load_names",
        "female_names.csv is a dangling symbolic link",
        "ValueError naming the link",
        setup=lambda ws: (
            _names_files(ws),
            _link(ws, "data/spanish-names/female_names.csv", "gone.csv"),
        ),
        act=lambda ws: names.load_names(),
        raises=ValueError,
        names=r"female_names.csv is a dangling symbolic link",
    ),
    Case(
        "names-unreadable-file",
        "files",
        "load_names",
        "male_names.csv with mode 000",
        "root reads it anyway (the names load); any other user gets a PermissionError naming the file",
        setup=lambda ws: (
            _names_files(ws),
            os.chmod(ws.data / "spanish-names" / "male_names.csv", 0),
        ),
        act=lambda ws: names.load_names(),
        raises=None if ROOT else PermissionError,
        names=None if ROOT else r"male_names.csv",
        expect=_kind("local") if ROOT else None,
    ),
    Case(
        "labels-empty-csv",
        "files",
        "load_histopathology_labels",
        "an empty train_labels.csv",
        "ValueError naming the file (not a bare pandas error)",
        setup=lambda ws: _layout(ws, labels=""),
        act=lambda ws: histopathology.load_histopathology_labels(ws.root / "kaggle"),
        raises=ValueError,
        names=r"kaggle/train_labels.csv is empty",
    ),
    Case(
        "labels-binary-csv",
        "files",
        "load_histopathology_labels",
        "train_labels.csv holds a PNG",
        "ValueError naming the file",
        setup=lambda ws: _layout(ws, labels=b"\x89PNG\r\n\x1a\n" + bytes(range(256))),
        act=lambda ws: histopathology.load_histopathology_labels(ws.root / "kaggle"),
        raises=ValueError,
        names=r"kaggle/train_labels.csv is not UTF-8 text",
    ),
    Case(
        "labels-unbalanced-quote",
        "files",
        "load_histopathology_labels",
        "train_labels.csv with an unterminated quote",
        "ValueError naming the file",
        setup=lambda ws: _layout(ws, labels='id,label\n"p0,1\n'),
        act=lambda ws: histopathology.load_histopathology_labels(ws.root / "kaggle"),
        raises=ValueError,
        names=r"kaggle/train_labels.csv is not a valid CSV",
    ),
    Case(
        "labels-missing-column",
        "files",
        "load_histopathology_labels",
        "train_labels.csv with columns id,target",
        "ValueError naming the file and the missing column",
        setup=lambda ws: _layout(ws, labels="id,target\np0,1\n"),
        act=lambda ws: histopathology.load_histopathology_labels(ws.root / "kaggle"),
        raises=ValueError,
        names=r"train_labels.csv lacks the column\(s\) \['label'\]",
    ),
    Case(
        "labels-padded-duplicate-ids",
        "files",
        "load_histopathology_labels",
        "ids 'p0' and ' p0 ' with conflicting labels",
        "ValueError naming both spellings and their lines",
        setup=lambda ws: _layout(ws, labels="id,label\np0,1\n p0 ,0\n"),
        act=lambda ws: histopathology.load_histopathology_labels(ws.root / "kaggle"),
        raises=ValueError,
        names=r"id 'p0' \(line 2\) and id ' p0 ' \(line 3\) are the same id",
    ),
    Case(
        "labels-duplicate-ids",
        "files",
        "load_histopathology_labels",
        "id p1 twice",
        "ValueError naming the id and both lines",
        setup=lambda ws: _layout(ws, labels="id,label\np1,1\np0,0\np1,1\n"),
        act=lambda ws: histopathology.load_histopathology_labels(ws.root / "kaggle"),
        raises=ValueError,
        names=r"id 'p1' \(line 2\) and id 'p1' \(line 4\)",
    ),
    Case(
        "labels-label-2",
        "files",
        "load_histopathology_labels",
        "a label 2",
        "ValueError naming the line, the label and the id",
        setup=lambda ws: _layout(ws, labels="id,label\np0,0\np1,2\n"),
        act=lambda ws: histopathology.load_histopathology_labels(ws.root / "kaggle"),
        raises=ValueError,
        names=r"line 3: label '2' of id 'p1' is not 0 or 1",
    ),
    Case(
        "labels-dangling-symlink",
        "files",
        "load_histopathology_labels",
        "train_labels.csv is a dangling symbolic link",
        "FileNotFoundError naming the link",
        setup=lambda ws: (
            _layout(ws),
            _link(ws, "kaggle/train_labels.csv", "gone.csv"),
        ),
        act=lambda ws: histopathology.load_histopathology_labels(ws.root / "kaggle"),
        raises=FileNotFoundError,
        names=r"train_labels.csv is a dangling symbolic link",
    ),
    Case(
        "labels-is-a-folder",
        "files",
        "load_histopathology_labels",
        "train_labels.csv is a folder",
        "ValueError naming it",
        setup=lambda ws: (
            _layout(ws),
            _replace_by_folder(ws.root / "kaggle" / "train_labels.csv"),
        ),
        act=lambda ws: histopathology.load_histopathology_labels(ws.root / "kaggle"),
        raises=ValueError,
        names=r"train_labels.csv is not a file",
    ),
    Case(
        "kaggle-corrupt-labels-in-data-folder",
        "files",
        "find_kaggle_patches",
        "the data folder's Kaggle set has an empty train_labels.csv",
        "ValueError naming the file (not silently skipped)",
        setup=lambda ws: _layout(ws, under=f"data/{KAGGLE_DIR}", labels=""),
        act=lambda ws: histopathology.find_kaggle_patches(),
        raises=ValueError,
        names=rf"{KAGGLE_DIR}/train_labels.csv is empty",
    ),
    Case(
        "patch-50x70",
        "files",
        "HistopathologicDataset",
        "a 50x70 patch passes through the dataset and transform",
        "ValueError naming the file and its size when the item is read",
        setup=lambda ws: _patch(ws, np.zeros((70, 50, 3), np.uint8)),
        act=lambda ws: _dataset_item(ws),
        raises=ValueError,
        names=r"p0.tif is a 50x70 image with 3 channel\(s\) of uint8; expected 96x96 RGB",
    ),
    Case(
        "patch-grey",
        "files",
        "HistopathologicDataset",
        "a 96x96 grey (one channel) patch",
        "ValueError naming the file and its channels",
        setup=lambda ws: _patch(ws, np.zeros((96, 96), np.uint8)),
        act=lambda ws: _dataset_item(ws),
        raises=ValueError,
        names=r"p0.tif is a 96x96 image with 1 channel",
    ),
    Case(
        "patch-rgba",
        "files",
        "read_patch",
        "a 96x96 patch with an alpha channel",
        "ValueError naming the file and its 4 channels",
        setup=lambda ws: _patch(ws, np.zeros((96, 96, 4), np.uint8)),
        act=lambda ws: histopathology.read_patch(
            ws.root / "kaggle" / "train" / "p0.tif"
        ),
        raises=ValueError,
        names=r"p0.tif is a 96x96 image with 4 channel",
    ),
    Case(
        "patch-not-an-image",
        "files",
        "HistopathologicDataset",
        "p0.tif holds text",
        "ValueError naming the file",
        setup=lambda ws: _patch(ws, b"this is not a TIFF file\n" * 20),
        act=lambda ws: _dataset_item(ws),
        raises=ValueError,
        names=r"cannot read or decode the image file .*p0.tif",
    ),
    Case(
        "patch-dangling-symlink",
        "files",
        "HistopathologicDataset",
        "an id whose .tif is a dangling symbolic link",
        "ValueError when the dataset is built (as documented), naming the id and the link",
        setup=lambda ws: (
            _layout(ws),
            _link(ws, "kaggle/train/ghost.tif", "kaggle/deleted.tif"),
        ),
        act=lambda ws: _dataset_item(ws, ids=["p0", "ghost"]),
        raises=ValueError,
        names=r"patch id 'ghost': .*ghost.tif is a dangling symbolic link",
    ),
    Case(
        "patch-symlink-to-folder",
        "files",
        "HistopathologicDataset",
        "an id whose .tif is a symbolic link to a folder",
        "ValueError when the dataset is built, naming the id",
        setup=lambda ws: (
            _layout(ws),
            _link(ws, "kaggle/train/dir.tif", "kaggle/adir", folder=True),
        ),
        act=lambda ws: _dataset_item(ws, ids=["dir"]),
        raises=ValueError,
        names=r"patch id 'dir': .*dir.tif is not a file",
    ),
    Case(
        "patch-id-escapes-the-folder",
        "files",
        "HistopathologicDataset",
        "the id ../train/p0",
        "ValueError naming the id",
        setup=lambda ws: _layout(ws),
        act=lambda ws: _dataset_item(ws, ids=["../train/p0"]),
        raises=ValueError,
        names=r"bad patch id '\.\./train/p0': not a plain file name",
    ),
    Case(
        "patch-missing-file",
        "files",
        "HistopathologicDataset",
        "an id without a file",
        "ValueError when the dataset is built, naming the id and the path",
        setup=lambda ws: _layout(ws),
        act=lambda ws: _dataset_item(ws, ids=["p0", "p9"]),
        raises=ValueError,
        names=r"patch id 'p9' has no file .*train/p9.tif",
    ),
    Case(
        "dataset-root-missing",
        "files",
        "HistopathologicDataset",
        "a root folder that does not exist",
        "FileNotFoundError naming the folder",
        act=lambda ws: histopathology.HistopathologicDataset(
            pd.DataFrame({"id": ["a"]}), ws.root / "nowhere"
        ),
        raises=FileNotFoundError,
        names=r"no folder .*nowhere/train",
    ),
    Case(
        "synthetic-corrupt-marker",
        "files",
        "synthetic_patches",
        "the synthetic set's synthetic.json is not JSON",
        "ValueError naming the folder and saying to delete it; nothing deleted",
        setup=lambda ws: _synthetic(ws, marker="{broken"),
        act=lambda ws: histopathology.synthetic_patches(4),
        raises=ValueError,
        names=rf"{SYNTHETIC} is not a complete synthetic set: synthetic.json unreadable .*delete the folder",
    ),
    Case(
        "synthetic-marker-for-another-set",
        "files",
        "synthetic_patches",
        "synthetic.json says n=5 in the folder for n=4",
        "ValueError naming the folder and both sizes",
        setup=lambda ws: _synthetic(
            ws,
            marker='{"generator": "nbhelpers synthetic histopathology", "version": 1, "n": 5, "seed": 0}',
        ),
        act=lambda ws: histopathology.synthetic_patches(4),
        raises=ValueError,
        names=rf"{SYNTHETIC} holds a synthetic set with .*'n': 5.*expected .*'n': 4",
    ),
    Case(
        "synthetic-foreign-folder",
        "files",
        "synthetic_patches",
        "an unrelated folder under the synthetic set's name",
        "ValueError naming it; the folder untouched",
        setup=lambda ws: (ws.data / SYNTHETIC / "mine").mkdir(parents=True),
        act=lambda ws: histopathology.synthetic_patches(4),
        raises=ValueError,
        names=rf"{SYNTHETIC} is not a complete synthetic set",
    ),
    Case(
        "synthetic-missing-patch",
        "files",
        "synthetic_patches",
        "one patch file of the synthetic set deleted",
        "ValueError naming the folder and the counts",
        setup=lambda ws: _synthetic(ws, drop_patch=True),
        act=lambda ws: histopathology.synthetic_patches(4),
        raises=ValueError,
        names=rf"{SYNTHETIC} is not a complete synthetic set: 4 labels and 3 patches",
    ),
    Case(
        "make-synthetic-over-an-existing-folder",
        "files",
        "make_synthetic_histopathology",
        "generate into a folder that already holds a file",
        "FileExistsError naming the folder; its content untouched, no temporary folder left",
        setup=lambda ws: (
            (ws.root / "taken").mkdir(),
            (ws.root / "taken" / "mine.txt").write_text("keep me"),
        ),
        act=lambda ws: synthetic_histopathology.make_synthetic_histopathology(
            ws.root / "taken", 3
        ),
        raises=FileExistsError,
        names=r"taken already exists",
    ),
    Case(
        "make-synthetic-into-read-only-folder",
        "files",
        "make_synthetic_histopathology",
        "generate into a read-only (0o555) parent folder",
        "PermissionError naming the folder; nothing created",
        setup=lambda ws: (
            (ws.root / "locked").mkdir(),
            os.chmod(ws.root / "locked", 0o555),
        ),
        act=lambda ws: synthetic_histopathology.make_synthetic_histopathology(
            ws.root / "locked" / "set", 3
        ),
        raises=PermissionError,
        names=r"folder .*locked is not writable",
    ),
    Case(
        "read-idx-missing-file",
        "files",
        "read_idx",
        "a path that does not exist",
        "FileNotFoundError naming it",
        act=lambda ws: mnist.read_idx(ws.root / "nope-idx1-ubyte"),
        raises=FileNotFoundError,
        names=r"nope-idx1-ubyte",
    ),
    Case(
        "demo-image-not-an-image",
        "files",
        "demo_image",
        "shorty.png holds text",
        "ValueError naming the file",
        setup=lambda ws: (ws.data / "shorty.png").write_text("not a picture"),
        act=lambda ws: images.demo_image(),
        raises=ValueError,
        names=r"cannot decode the demo image .*shorty.png",
    ),
    Case(
        "demo-image-dangling-symlink",
        "files",
        "demo_image",
        "shorty.png is a dangling symbolic link",
        "ValueError naming the link (not a silent switch to the cat)",
        setup=lambda ws: _link(ws, "data/shorty.png", "gone.png"),
        act=lambda ws: images.demo_image(),
        raises=ValueError,
        names=r"shorty.png is a dangling symbolic link",
    ),
    Case(
        "demo-image-folder",
        "files",
        "demo_image",
        "shorty.png is a folder",
        "ValueError naming it",
        setup=lambda ws: (ws.data / "shorty.png").mkdir(),
        act=lambda ws: images.demo_image(),
        raises=ValueError,
        names=r"shorty.png is not a file",
    ),
]


# ---- environment -----------------------------------------------------------------------------------------

ENVIRONMENT_CASES = [
    Case(
        "mnist-read-only-data-uses-mirror",
        "environment",
        "load_mnist",
        "a read-only NBHELPERS_DATA, downloads allowed, the mirror holds MNIST",
        "the mirror; nothing downloaded or written",
        setup=lambda ws: (
            _read_only_data(ws),
            _use_mirror(ws),
            _mnist_files(ws, under="mirror"),
            _online(ws),
        ),
        act=lambda ws: mnist.load_mnist(),
        expect=_kind("mirror", no_requests=True),
    ),
    Case(
        "mnist-read-only-data-uses-embedded",
        "environment",
        "load_mnist",
        "a read-only NBHELPERS_DATA, downloads allowed, no mirror",
        "the embedded digits with a warning naming the folder; no request, nothing written",
        setup=lambda ws: (_read_only_data(ws), _online(ws)),
        act=lambda ws: _warned(mnist.load_mnist),
        expect=_kind("embedded", warning="is not writable", no_requests=True),
    ),
    Case(
        "mnist-data-under-read-only-parent",
        "environment",
        "load_mnist",
        "NBHELPERS_DATA does not exist and its parent folder is read-only",
        "the embedded digits; no error, nothing created",
        setup=lambda ws: (
            (ws.root / "locked").mkdir(),
            os.chmod(ws.root / "locked", 0o555),
            _online(ws),
            ws.env.setenv("NBHELPERS_DATA", str(ws.root / "locked" / "data")),
        ),
        act=lambda ws: _warned(mnist.load_mnist),
        expect=_kind("embedded", warning="is not writable", no_requests=True),
    ),
    Case(
        "names-read-only-data-uses-mirror",
        "environment",
        "load_names",
        "a read-only NBHELPERS_DATA, downloads allowed, the mirror holds the names",
        "the mirror; nothing written",
        setup=lambda ws: (
            _read_only_data(ws),
            _use_mirror(ws),
            _names_files(ws, under="mirror"),
            _online(ws),
        ),
        act=lambda ws: names.load_names(),
        expect=_kind("mirror", no_requests=True),
    ),
    Case(
        "names-read-only-data-uses-embedded",
        "environment",
        "load_names",
        "a read-only NBHELPERS_DATA, downloads allowed, no mirror",
        "the names shipped with the package, with a warning; no request",
        setup=lambda ws: (_read_only_data(ws), _online(ws)),
        act=lambda ws: _warned(names.load_names),
        expect=_kind("embedded", warning="is not writable", no_requests=True),
    ),
    Case(
        "demo-image-read-only-data",
        "environment",
        "demo_image",
        "a read-only NBHELPERS_DATA without shorty.png",
        "the cat shipped with the package",
        setup=_read_only_data,
        act=lambda ws: images.demo_image(),
        expect=_kind("embedded"),
    ),
    Case(
        "synthetic-read-only-data",
        "environment",
        "synthetic_patches",
        "a read-only NBHELPERS_DATA",
        "a synthetic set generated into a fresh temporary folder, as its source says",
        setup=_read_only_data,
        act=lambda ws: histopathology.synthetic_patches(4),
        expect=_temporary_synthetic,
    ),
    Case(
        "kaggle-read-only-data-uses-mirror",
        "environment",
        "find_kaggle_patches",
        "a read-only NBHELPERS_DATA, the mirror holds a Kaggle set",
        "the mirror's set",
        setup=lambda ws: (
            _read_only_data(ws),
            _use_mirror(ws),
            _layout(ws, under=f"mirror/{KAGGLE_DIR}"),
        ),
        act=lambda ws: histopathology.find_kaggle_patches(),
        expect=_kind("mirror"),
    ),
    Case(
        "mnist-data-is-a-file",
        "environment",
        "load_mnist",
        "NBHELPERS_DATA names a file",
        "ValueError naming the variable",
        setup=lambda ws: (ws.root / "afile").write_bytes(b"x"),
        act=lambda ws: (
            ws.env.setenv("NBHELPERS_DATA", str(ws.root / "afile")),
            mnist.load_mnist(),
        ),
        raises=ValueError,
        names=r"NBHELPERS_DATA=.*afile.* is a file",
    ),
    Case(
        "names-data-is-a-file",
        "environment",
        "load_names",
        "NBHELPERS_DATA names a file",
        "ValueError naming the variable",
        setup=lambda ws: (ws.root / "afile").write_bytes(b"x"),
        act=lambda ws: (
            ws.env.setenv("NBHELPERS_DATA", str(ws.root / "afile")),
            names.load_names(),
        ),
        raises=ValueError,
        names=r"NBHELPERS_DATA=.*afile.* is a file",
    ),
    Case(
        "synthetic-data-is-a-file",
        "environment",
        "synthetic_patches",
        "NBHELPERS_DATA names a file",
        "ValueError naming the variable",
        setup=lambda ws: (ws.root / "afile").write_bytes(b"x"),
        act=lambda ws: (
            ws.env.setenv("NBHELPERS_DATA", str(ws.root / "afile")),
            histopathology.synthetic_patches(4),
        ),
        raises=ValueError,
        names=r"NBHELPERS_DATA=.*afile.* is a file",
    ),
    Case(
        "mnist-mirror-missing",
        "environment",
        "load_mnist",
        "NBHELPERS_DATA_MIRROR names a missing folder",
        "FileNotFoundError naming the variable (a typo is not 'no mirror')",
        act=lambda ws: (
            ws.env.setenv("NBHELPERS_DATA_MIRROR", str(ws.root / "nowhere")),
            mnist.load_mnist(),
        ),
        raises=FileNotFoundError,
        names=r"NBHELPERS_DATA_MIRROR=.*nowhere",
    ),
    Case(
        "demo-image-mirror-missing",
        "environment",
        "demo_image",
        "NBHELPERS_DATA_MIRROR names a missing folder",
        "FileNotFoundError naming the variable",
        act=lambda ws: (
            ws.env.setenv("NBHELPERS_DATA_MIRROR", str(ws.root / "nowhere")),
            images.demo_image(),
        ),
        raises=FileNotFoundError,
        names=r"NBHELPERS_DATA_MIRROR=.*nowhere",
    ),
    Case(
        "kaggle-mirror-missing",
        "environment",
        "find_kaggle_patches",
        "NBHELPERS_DATA_MIRROR names a missing folder",
        "FileNotFoundError naming the variable",
        act=lambda ws: (
            ws.env.setenv("NBHELPERS_DATA_MIRROR", str(ws.root / "nowhere")),
            histopathology.find_kaggle_patches(),
        ),
        raises=FileNotFoundError,
        names=r"NBHELPERS_DATA_MIRROR=.*nowhere",
    ),
    Case(
        "names-offline-typo",
        "environment",
        "load_names",
        "NBHELPERS_OFFLINE=of (a typo), no names files anywhere",
        "ValueError naming the variable and its value; no request",
        act=lambda ws: (
            _online(ws),
            ws.env.setenv("NBHELPERS_OFFLINE", "of"),
            names.load_names(),
        ),
        raises=ValueError,
        names=r"NBHELPERS_OFFLINE='of'",
    ),
    Case(
        "mnist-offline-typo",
        "environment",
        "load_mnist",
        "NBHELPERS_OFFLINE=ture (a typo), no MNIST files anywhere",
        "ValueError naming the variable and its value",
        act=lambda ws: (ws.env.setenv("NBHELPERS_OFFLINE", "ture"), mnist.load_mnist()),
        raises=ValueError,
        names=r"NBHELPERS_OFFLINE='ture'",
    ),
]


# ---- network ----------------------------------------------------------------------------------------------

NETWORK_CASES = [
    Case(
        "mnist-download-succeeds",
        "network",
        "load_mnist",
        "a server with good (checksum-matching) gzip files",
        "the files are downloaded, checked and cached; source 'download'",
        setup=_good_fake_mnist,
        act=lambda ws: mnist.load_mnist(train=False),
        expect=_kind("download"),
        may_create=("data/MNIST", "data/MNIST/raw", "data/MNIST/raw/t10k-*-ubyte"),
    ),
    Case(
        "mnist-captive-portal",
        "network",
        "load_mnist",
        "an HTTP 200 HTML page (captive portal) instead of the gzip",
        "the embedded digits with a warning naming the url; no MNIST/raw left",
        setup=lambda ws: _serve_all_mnist(
            ws, Route(body=HTML, headers={"Content-Type": "text/html"})
        ),
        act=lambda ws: _warned(mnist.load_mnist),
        expect=_kind("embedded", warning="md5 mismatch for http://127.0.0.1"),
    ),
    Case(
        "mnist-404",
        "network",
        "load_mnist",
        "HTTP 404 for the images file",
        "the embedded digits with a warning naming the status",
        setup=lambda ws: _serve_all_mnist(ws, Route(status=404, body=b"not found")),
        act=lambda ws: _warned(mnist.load_mnist),
        expect=_kind("embedded", warning="HTTP 404"),
    ),
    Case(
        "mnist-500",
        "network",
        "load_mnist",
        "HTTP 500 every time",
        "retried, then the embedded digits with a warning",
        setup=lambda ws: _serve_all_mnist(ws, Route(status=500, body=b"oops")),
        act=lambda ws: _warned(mnist.load_mnist),
        expect=_kind("embedded", warning="HTTP 500"),
    ),
    Case(
        "mnist-truncated-body",
        "network",
        "load_mnist",
        "a body shorter than its Content-Length",
        "retried, then the embedded digits; no partial file",
        setup=lambda ws: _serve_all_mnist(
            ws, Route(body=b"\x1f\x8b" + b"\x00" * 100, announce=10_000)
        ),
        act=lambda ws: _warned(mnist.load_mnist),
        expect=_kind("embedded", warning="MNIST download failed"),
    ),
    Case(
        "mnist-unpacked-checksum-mismatch",
        "network",
        "load_mnist",
        "valid gzip files that unpack to other data than MNIST's",
        "the embedded digits with a warning naming the sha256 mismatch; nothing cached",
        setup=_gz_of_wrong_data,
        act=lambda ws: _warned(mnist.load_mnist),
        expect=_kind("embedded", warning="sha256 mismatch for http://127.0.0.1"),
    ),
    Case(
        "mnist-corrupt-gzip",
        "network",
        "load_mnist",
        "a gzip file with a damaged middle (matching its md5)",
        "the embedded digits with a warning (no BadGzipFile escapes)",
        setup=_corrupt_gzip,
        act=lambda ws: _warned(mnist.load_mnist),
        expect=_kind("embedded", warning="is not a valid gzip file"),
    ),
    Case(
        "names-junk-csv-with-name-header",
        "network",
        "load_names",
        "a junk CSV with the right header instead of male_names.csv",
        "rejected by its sha256: the shipped names, with a warning; nothing cached",
        setup=lambda ws: _serve_names(
            ws, Route(body=b"name,frequency,mean_age\nSPAM,1,1\n")
        ),
        act=lambda ws: _warned(names.load_names),
        expect=_kind("embedded", warning="sha256 mismatch for http://127.0.0.1"),
    ),
    Case(
        "names-captive-portal",
        "network",
        "load_names",
        "an HTTP 200 HTML page instead of the CSV",
        "the shipped names with a warning; nothing cached",
        setup=lambda ws: _serve_names(ws, Route(body=HTML)),
        act=lambda ws: _warned(names.load_names),
        expect=_kind("embedded", warning="names download failed"),
    ),
    Case(
        "names-404",
        "network",
        "load_names",
        "HTTP 404 for male_names.csv",
        "the shipped names with a warning naming the status",
        setup=lambda ws: _serve_names(ws, Route(status=404)),
        act=lambda ws: _warned(names.load_names),
        expect=_kind("embedded", warning="HTTP 404"),
    ),
    Case(
        "names-500",
        "network",
        "load_names",
        "HTTP 500 every time",
        "retried, then the shipped names with a warning",
        setup=lambda ws: _serve_names(ws, Route(status=500)),
        act=lambda ws: _warned(names.load_names),
        expect=_kind("embedded", warning="HTTP 500"),
    ),
    Case(
        "names-truncated-body",
        "network",
        "load_names",
        "a body shorter than its Content-Length",
        "retried, then the shipped names; no partial file",
        setup=lambda ws: _serve_names(
            ws, Route(body=MALE_CSV.encode()[:20], announce=5_000)
        ),
        act=lambda ws: _warned(names.load_names),
        expect=_kind("embedded", warning="names download failed"),
    ),
    Case(
        "names-offline-no-request",
        "network",
        "load_names",
        "NBHELPERS_OFFLINE=1 with a server that would answer",
        "the shipped names, silently; no request made",
        setup=lambda ws: (
            _serve_names(ws, Route(body=MALE_CSV.encode())),
            ws.env.setenv("NBHELPERS_OFFLINE", "1"),
        ),
        act=lambda ws: _warned(names.load_names),
        expect=lambda result, ws: (
            _kind("embedded", no_requests=True)(result, ws),
            _is([])(result[1], ws),
        ),
    ),
]


# ---- arguments ---------------------------------------------------------------------------------------------


def _argument_case(
    case_id: str,
    target: str,
    tried: str,
    call: Callable[[], Any],
    raises: type[BaseException],
    pattern: str,
) -> Case:
    outcome = f"{raises.__name__} naming the value"
    return Case(
        case_id,
        "arguments",
        target,
        tried,
        outcome,
        act=lambda ws: call(),
        raises=raises,
        names=pattern,
    )


ARGUMENT_CASES = [
    _argument_case(
        "normalize-hyphen",
        "normalize_name",
        "'Ana-María'",
        lambda: tokens.normalize_name("Ana-María"),
        ValueError,
        r"'Ana-María' holds the character '-'",
    ),
    _argument_case(
        "normalize-digit",
        "normalize_name",
        "'R2D2'",
        lambda: tokens.normalize_name("R2D2"),
        ValueError,
        r"'R2D2' holds the character '2'",
    ),
    _argument_case(
        "normalize-dot",
        "normalize_name",
        "'J. R.'",
        lambda: tokens.normalize_name("J. R."),
        ValueError,
        r"'J\. R\.' holds the character '\.'",
    ),
    _argument_case(
        "normalize-empty",
        "normalize_name",
        "''",
        lambda: tokens.normalize_name(""),
        ValueError,
        r"at least one letter, got ''",
    ),
    _argument_case(
        "normalize-blank",
        "normalize_name",
        "blanks only",
        lambda: tokens.normalize_name(" \t "),
        ValueError,
        r"at least one letter, got ' \\t '",
    ),
    _argument_case(
        "normalize-not-a-str",
        "normalize_name",
        "the int 7",
        lambda: tokens.normalize_name(7),
        TypeError,
        r"got int 7",
    ),
    _argument_case(
        "encode-upper-case",
        "encode",
        "'JUAN' (not normalized)",
        lambda: tokens.encode("JUAN"),
        ValueError,
        r"'JUAN' holds the character 'J'",
    ),
    _argument_case(
        "encode-space",
        "encode",
        "'ana maria'",
        lambda: tokens.encode("ana maria"),
        ValueError,
        r"'ana maria' holds the character ' '",
    ),
    _argument_case(
        "encode-padding-char",
        "encode",
        "'j.r' (the padding character)",
        lambda: tokens.encode("j.r"),
        ValueError,
        r"'j\.r' holds the character '\.' \(the padding character\)",
    ),
    _argument_case(
        "encode-empty",
        "encode",
        "''",
        lambda: tokens.encode(""),
        ValueError,
        r"empty name",
    ),
    _argument_case(
        "demo-size-zero",
        "demo_image",
        "size=(0, 10)",
        lambda: images.demo_image(size=(0, 10)),
        ValueError,
        r"got \(0, 10\)",
    ),
    _argument_case(
        "demo-size-int",
        "demo_image",
        "size=128",
        lambda: images.demo_image(size=128),
        ValueError,
        r"got 128",
    ),
    _argument_case(
        "demo-size-float",
        "demo_image",
        "size=(1.5, 2)",
        lambda: images.demo_image(size=(1.5, 2)),
        ValueError,
        r"got \(1\.5, 2\)",
    ),
    _argument_case(
        "demo-size-huge",
        "demo_image",
        "size=(100000, 10)",
        lambda: images.demo_image(size=(100_000, 10)),
        ValueError,
        r"got \(100000, 10\)",
    ),
    _argument_case(
        "synthetic-n-zero",
        "synthetic_patches",
        "n=0",
        lambda: histopathology.synthetic_patches(0),
        ValueError,
        r"n must be an int in 1\.\.1,000,000, got 0",
    ),
    _argument_case(
        "synthetic-n-negative",
        "synthetic_patches",
        "n=-5",
        lambda: histopathology.synthetic_patches(-5),
        ValueError,
        r"got -5",
    ),
    _argument_case(
        "synthetic-n-float",
        "synthetic_patches",
        "n=2.5",
        lambda: histopathology.synthetic_patches(2.5),
        ValueError,
        r"got 2\.5",
    ),
    _argument_case(
        "synthetic-n-huge",
        "synthetic_patches",
        "n=10**9 (a typo)",
        lambda: histopathology.synthetic_patches(10**9),
        ValueError,
        r"got 1000000000",
    ),
    _argument_case(
        "synthetic-seed-negative",
        "synthetic_patches",
        "seed=-1",
        lambda: histopathology.synthetic_patches(4, seed=-1),
        ValueError,
        r"seed must be an int >= 0, got -1",
    ),
    _argument_case(
        "synthetic-seed-str",
        "synthetic_patches",
        "seed='0'",
        lambda: histopathology.synthetic_patches(4, seed="0"),
        ValueError,
        r"got '0'",
    ),
    _argument_case(
        "kaggle-min-negative",
        "find_kaggle_patches",
        "min_labelled=-1",
        lambda: histopathology.find_kaggle_patches(-1),
        ValueError,
        r"min_labelled must be an int >= 0, got -1",
    ),
    _argument_case(
        "kaggle-min-str",
        "find_kaggle_patches",
        "min_labelled='100'",
        lambda: histopathology.find_kaggle_patches("100"),
        ValueError,
        r"got '100'",
    ),
    _argument_case(
        "kaggle-min-bool",
        "find_kaggle_patches",
        "min_labelled=True",
        lambda: histopathology.find_kaggle_patches(True),
        ValueError,
        r"got True",
    ),
    _argument_case(
        "mnist-train-str",
        "load_mnist",
        "train='test'",
        lambda: mnist.load_mnist(train="test"),
        ValueError,
        r"train must be True or False, got 'test'",
    ),
    _argument_case(
        "decode-token-out-of-range",
        "decode",
        "token 99",
        lambda: tokens.decode([0, 99]),
        ValueError,
        r"token 99 is outside 0\.\.30",
    ),
    _argument_case(
        "names-dataset-length-mismatch",
        "NamesDataset",
        "2 names, 1 label",
        lambda: names.NamesDataset(["ana", "juan"], [1]),
        ValueError,
        r"2 names but 1 labels",
    ),
    _argument_case(
        "names-dataset-unnormalized-name",
        "NamesDataset",
        "the typed name 'María'",
        lambda: names.NamesDataset(["María"], [1]),
        ValueError,
        r"name 'María' holds the character 'M'",
    ),
    _argument_case(
        "mnist-dataset-wrong-shape",
        "MNISTDataset",
        "images of shape (2, 28, 28)",
        lambda: mnist.MNISTDataset(
            torch.zeros(2, 28, 28), torch.zeros(2), DataSource("embedded", "test")
        ),
        ValueError,
        r"got \(2, 28, 28\) torch\.float32",
    ),
    _argument_case(
        "synthetic-patch-negative-index",
        "synthetic_patch",
        "index=-1",
        lambda: synthetic_histopathology.synthetic_patch(0, -1),
        ValueError,
        r"index must be an int >= 0, got -1",
    ),
    _argument_case(
        "dataset-unknown-split",
        "HistopathologicDataset",
        "split='valid'",
        lambda: histopathology.HistopathologicDataset(
            pd.DataFrame({"id": ["a"]}), ".", split="valid"
        ),
        ValueError,
        r"split must be one of .*got 'valid'",
    ),
]

# ---- MNIST as users have it --------------------------------------------------------------------------

USERS_FILES = fake_mnist(5, seed=3)
USERS_BODIES, USERS_TABLE = gz_tables(USERS_FILES)
TEST_LABELS = list(USERS_FILES["t10k-labels-idx1-ubyte"][8:])


def _published(ws: Workspace) -> None:
    """This case's fake files are "the published MNIST" (their sha256 in ``RAW_FILES``)."""
    ws.env.setattr(mnist, "RAW_FILES", USERS_TABLE)


def _place(ws: Workspace, where: Callable[[str], str], content=None) -> None:
    """Setup: the published files (or ``content(name)``), each at ``data/MNIST/<where(name)>``."""
    _published(ws)
    for name in mnist.RAW_FILES:
        path = ws.data / "MNIST" / where(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content(name) if content else USERS_FILES[name])


def _dotted(name: str) -> str:
    return name.replace("-idx", ".idx")


def _other_labels(name: str) -> bytes:
    """Not the published file: the labels of the test split shifted by one."""
    if name != "t10k-labels-idx1-ubyte":
        return USERS_FILES[name]
    labels = np.frombuffer(USERS_FILES[name][8:], np.uint8)
    return idx_bytes((labels + 1) % 10)


def _test_split(ws: Workspace) -> tuple[Any, list[str]]:
    return _warned(lambda: mnist.load_mnist(train=False))


def _used(detail: str, warning: str | None = None):
    """expect: the published test labels read from ``detail``; ``warning`` given (or none)."""

    def check(result: Any, ws: Workspace) -> None:
        dataset, messages = result
        assert dataset.source == DataSource("local", detail), dataset.source
        assert dataset.targets.tolist() == TEST_LABELS
        if warning is None:
            assert messages == [], messages
        else:
            assert any(warning in message for message in messages), messages

    return check


def _not_used(result: Any, ws: Workspace) -> None:
    dataset, messages = result
    assert dataset.source.kind == "embedded", dataset.source
    assert "1 MNIST file(s) found and not used" in dataset.source.detail
    assert any(
        "MNIST files found and not used" in message
        and "t10k-labels.idx1-ubyte (not the published t10k-labels-idx1-ubyte"
        in message
        for message in messages
    ), messages


def _used_other_labels(result: Any, ws: Workspace) -> None:
    dataset, messages = result
    assert dataset.source.kind == "local", dataset.source
    assert dataset.targets.tolist() == [(label + 1) % 10 for label in TEST_LABELS]
    assert any(
        "raw/t10k-labels-idx1-ubyte is not the published t10k-labels-idx1-ubyte (its "
        "sha256 differs from"
        in message
        and "using it as it is" in message
        for message in messages
    ), messages


USERS_MNIST = [
    Case(
        "mnist-gz-alone-in-raw",
        "files",
        "load_mnist",
        "offline, only the published .gz files in MNIST/raw (as downloaded by hand)",
        "read from the .gz files, as torchvision would (not the 1,497 embedded digits)",
        setup=lambda ws: _place(ws, lambda name: f"raw/{name}.gz", USERS_BODIES.get),
        act=_test_split,
        expect=_used("$NBHELPERS_DATA/MNIST/raw"),
    ),
    Case(
        "mnist-kaggle-names",
        "files",
        "load_mnist",
        "offline, the files under Kaggle's names (t10k-images.idx3-ubyte) in MNIST/raw",
        "used: they are the published files (sha256 checked)",
        setup=lambda ws: _place(ws, lambda name: f"raw/{_dotted(name)}"),
        act=_test_split,
        expect=_used("$NBHELPERS_DATA/MNIST/raw"),
    ),
    Case(
        "mnist-kaggle-folders",
        "files",
        "load_mnist",
        "offline, Kaggle's archive unpacked into MNIST/ (each file in a folder of its name)",
        "used: they are the published files (sha256 checked)",
        setup=lambda ws: _place(ws, lambda name: f"{name}/{name}"),
        act=_test_split,
        expect=_used("$NBHELPERS_DATA/MNIST"),
    ),
    Case(
        "mnist-files-straight-in-mnist",
        "files",
        "load_mnist",
        "offline, the four files directly in MNIST/ (no raw/)",
        "used: they are the published files (sha256 checked)",
        setup=lambda ws: _place(ws, lambda name: name),
        act=_test_split,
        expect=_used("$NBHELPERS_DATA/MNIST"),
    ),
    Case(
        "mnist-raw-differs-gz-published",
        "files",
        "load_mnist",
        "MNIST/raw/t10k-labels-idx1-ubyte differs from the published file; the published "
        ".gz lies beside it",
        "the .gz is read, with a warning naming the raw file that differs",
        setup=lambda ws: (
            _place(ws, lambda name: f"raw/{name}", _other_labels),
            _place(ws, lambda name: f"raw/{name}.gz", USERS_BODIES.get),
        ),
        act=_test_split,
        expect=_used(
            "$NBHELPERS_DATA/MNIST/raw",
            "raw/t10k-labels-idx1-ubyte is not the published t10k-labels-idx1-ubyte "
            "(its sha256 differs); using",
        ),
    ),
    Case(
        "mnist-raw-differs-alone",
        "files",
        "load_mnist",
        "MNIST/raw/t10k-labels-idx1-ubyte differs from the published file, nothing beside it",
        "read as it is (torchvision's place), with a warning naming it and the digests",
        setup=lambda ws: _place(ws, lambda name: f"raw/{name}", _other_labels),
        act=_test_split,
        expect=_used_other_labels,
    ),
    Case(
        "mnist-kaggle-names-not-published",
        "files",
        "load_mnist",
        "offline, files under Kaggle's names that are not the published ones",
        "not used: the embedded digits, with a warning naming each file found and why, "
        "and the count in the source",
        setup=lambda ws: _place(ws, lambda name: f"raw/{_dotted(name)}", _other_labels),
        act=_test_split,
        expect=_not_used,
    ),
]


# ---- throttled servers and full disks ------------------------------------------------------------------


def _throttled_mnist(ws: Workspace) -> None:
    _serve_all_mnist(ws, Route(body=b"x" * 1000, trickle=2.0, trickle_body_only=True))
    ws.env.setattr(mnist, "DOWNLOAD_DEADLINE_S", 3.0)


def _throttled_names(ws: Workspace) -> None:
    _serve_names(ws, Route(body=b"x" * 1000, trickle=2.0, trickle_body_only=True))
    ws.env.setattr(names, "DOWNLOAD_DEADLINE_S", 3.0)


def _mnist_too_big_for_disk(ws: Workspace) -> None:
    ws.small_disk("data", 64)
    bodies, table = gz_tables(fake_mnist(200, seed=1))  # 157 kB of test images
    _serve_mnist(ws, bodies, table)


def _nothing_left(ws: Workspace) -> None:
    assert list(ws.data.iterdir()) == [], list(ws.data.iterdir())


def _embedded_saying(words: str):
    def check(result: Any, ws: Workspace) -> None:
        _kind("embedded", words)(result, ws)
        _nothing_left(ws)

    return check


SLOW_AND_FULL = [
    Case(
        "mnist-throttled-server",
        "throttled servers",
        "load_mnist",
        "online, the MNIST server sends one byte every 2 s (hung without end before); "
        "deadline 3 s",
        "the embedded digits within the deadline, with a warning naming it; nothing left",
        setup=_throttled_mnist,
        act=lambda ws: within(8.0, _warned, lambda: mnist.load_mnist(train=False)),
        expect=_embedded_saying("took more than 3 s; gave up"),
    ),
    Case(
        "names-throttled-server",
        "throttled servers",
        "load_names",
        "online, the names server sends one byte every 2 s (hung without end before); "
        "deadline 3 s",
        "the packaged names within the deadline, with a warning naming it; nothing left",
        setup=_throttled_names,
        act=lambda ws: within(8.0, _warned, names.load_names),
        expect=_embedded_saying("took more than 3 s; gave up"),
    ),
    Case(
        "mnist-download-full-disk",
        "full disk",
        "load_mnist",
        "online, the data folder is a real 64 KiB tmpfs and the test images are 157 kB",
        "the embedded digits, with a warning naming the file and the full disk; nothing "
        "left in the data folder",
        setup=_mnist_too_big_for_disk,
        act=lambda ws: _warned(lambda: mnist.load_mnist(train=False)),
        expect=_embedded_saying("No space left on device"),
    ),
    Case(
        "synthetic-full-disk",
        "full disk",
        "make_synthetic_histopathology",
        "generate 50 synthetic patches (27 kB each) onto a real 64 KiB tmpfs",
        "OSError (ENOSPC) naming the set's folder; no .part folder, no half set",
        setup=lambda ws: ws.small_disk("data/disk", 64),
        act=lambda ws: synthetic_histopathology.make_synthetic_histopathology(
            ws.data / "disk" / "synthetic", n=50
        ),
        raises=OSError,
        names=r"\[Errno 28\] could not write .*disk/synthetic: No space left on device",
    ),
]

CASES = (
    FILE_CASES
    + ENVIRONMENT_CASES
    + NETWORK_CASES
    + ARGUMENT_CASES
    + USERS_MNIST
    + SLOW_AND_FULL
)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_data_case(case: Case, workspace: Workspace) -> None:
    run_case(case, workspace)
