"""MNIST: the mirror, local IDX files, a checked download from a local server, the embedded digits."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from support import MIRROR, fake_mnist, gz_tables, idx_bytes, serve_directory
from support import needs_mirror as needs_mirror_of

from nbhelpers.data import mnist
from nbhelpers.data.mnist import MNISTDataset, embedded_digits, load_mnist, read_idx
from nbhelpers.storage import DataSource

pytestmark = pytest.mark.usefixtures("isolated_data")

needs_mirror = needs_mirror_of("MNIST/raw")


def _check_items(dataset, n: int) -> None:
    assert len(dataset) == n
    X, y = dataset[0]
    assert X.shape == (1, 28, 28) and X.dtype == torch.float32
    assert isinstance(y, int) and 0 <= y <= 9
    # scaled once, not twice
    assert dataset.images.min() == 0.0 and dataset.images.max() == 1.0


def _write_raw(folder, files) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)


@needs_mirror
@pytest.mark.parametrize("train, n", [(True, 60_000), (False, 10_000)])
def test_mirror(monkeypatch, train, n):
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(MIRROR))
    dataset = load_mnist(train=train)
    _check_items(dataset, n)
    assert dataset.source == DataSource("mirror", "$NBHELPERS_DATA_MIRROR/MNIST/raw")
    assert dataset.source.path == MIRROR.resolve() / "MNIST" / "raw"
    # no absolute path in what chapters print
    assert str(MIRROR) not in str(dataset.source)
    assert dataset.targets.bincount().min() > n // 20  # all ten digits, none rare


def test_local_idx_files_scaled_once_and_transformed(isolated_data):
    files = fake_mnist(5, seed=0)
    _write_raw(isolated_data / "MNIST" / "raw", files)
    dataset = load_mnist(train=False)
    assert str(dataset.source) == "local ($NBHELPERS_DATA/MNIST/raw)"
    expected = (
        np.frombuffer(files["t10k-images-idx3-ubyte"][16:], np.uint8).reshape(
            5, 1, 28, 28
        )
        / 255.0
    )
    assert torch.allclose(dataset.images, torch.from_numpy(expected).float())
    assert dataset.targets.tolist() == list(files["t10k-labels-idx1-ubyte"][8:])
    flipped = load_mnist(train=False, transform=lambda X: X.flip(-1))
    assert torch.equal(flipped[3][0], dataset[3][0].flip(-1))


def test_the_data_folder_wins_over_the_mirror(isolated_data, tmp_path, monkeypatch):
    _write_raw(tmp_path / "mirror" / "MNIST" / "raw", fake_mnist(3, seed=1))
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(tmp_path / "mirror"))
    assert load_mnist().source.kind == "mirror" and len(load_mnist()) == 3
    _write_raw(isolated_data / "MNIST" / "raw", fake_mnist(4, seed=2))
    assert load_mnist().source.kind == "local" and len(load_mnist()) == 4


def test_a_folder_with_only_one_file_of_the_split_is_skipped(isolated_data):
    files = fake_mnist(3, seed=0)
    _write_raw(
        isolated_data / "MNIST" / "raw",
        {"t10k-images-idx3-ubyte": files["t10k-images-idx3-ubyte"]},
    )
    assert load_mnist(train=False).source.kind == "embedded"


def test_read_idx_rejects_corrupt_files(tmp_path):
    good = idx_bytes(np.zeros((2, 28, 28)))
    (tmp_path / "short").write_bytes(good[:-1])
    (tmp_path / "garbage").write_bytes(b"\x89PNG this is not IDX")
    (tmp_path / "good").write_bytes(good)
    assert read_idx(tmp_path / "good").shape == (2, 28, 28)
    with pytest.raises(ValueError, match="short holds 1,567 bytes of data"):
        read_idx(tmp_path / "short")
    with pytest.raises(ValueError, match="garbage is not an unsigned-byte IDX file"):
        read_idx(tmp_path / "garbage")


def test_load_mnist_refuses_a_label_byte_above_9(isolated_data):
    files = fake_mnist(5, seed=0)
    labels = np.frombuffer(files["train-labels-idx1-ubyte"][8:], np.uint8).copy()
    labels[3] = 200
    files["train-labels-idx1-ubyte"] = idx_bytes(labels)
    _write_raw(isolated_data / "MNIST" / "raw", files)
    with pytest.raises(
        ValueError,
        match=r"train-labels-idx1-ubyte: label 200 at index 3 is not a digit",
    ):
        load_mnist()


def test_images_and_labels_of_different_lengths_are_refused(isolated_data):
    files = fake_mnist(5, seed=0)
    files["train-labels-idx1-ubyte"] = idx_bytes(np.zeros(4))
    _write_raw(isolated_data / "MNIST" / "raw", files)
    with pytest.raises(ValueError, match=r"\(4,\) labels for the 5 images"):
        load_mnist()


def test_mnist_dataset_checks_its_tensors():
    source = DataSource("embedded", "test")
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\) float32"):
        MNISTDataset(torch.zeros(2, 28, 28), torch.zeros(2), source)
    with pytest.raises(ValueError, match="targets must be"):
        MNISTDataset(torch.zeros(2, 1, 28, 28), torch.zeros(3), source)
    with pytest.raises(ValueError, match="0..9"):
        MNISTDataset(torch.zeros(2, 1, 28, 28), torch.tensor([0, 10]), source)


def test_embedded_digits_when_offline():
    train, test = load_mnist(train=True), load_mnist(train=False)
    assert (
        str(train.source)
        == "embedded (scikit-learn digits, 1,497 training images resized to 28x28)"
    )
    assert test.source.kind == "embedded" and "300 test images" in test.source.detail
    _check_items(train, 1_497)
    _check_items(test, 300)
    # white digit on black: the border is black, the ink near the middle
    assert (
        train.images[:, :, :3].max() == 0.0 and train.images[:, :, :, :3].max() == 0.0
    )
    assert (
        train.images[:, :, 10:18, 10:18].mean()
        > 3 * train.images.mean((0, 1)).mean() / 2
    )
    assert set(train.targets.tolist()) == set(range(10)) == set(test.targets.tolist())


def test_embedded_splits_are_disjoint():
    from sklearn.datasets import load_digits

    originals = load_digits().images
    # no two digits are identical
    assert len({row.tobytes() for row in originals}) == len(originals)
    # the resizing is deterministic, so a digit in both splits would give identical rows
    train = {row.numpy().tobytes() for row in embedded_digits(True)[0]}
    test = {row.numpy().tobytes() for row in embedded_digits(False)[0]}
    assert not train & test
    assert len(train | test) == len(originals)


def test_load_mnist_wants_a_bool():
    with pytest.raises(ValueError, match="train must be True or False, got 'yes'"):
        load_mnist(train="yes")


@pytest.fixture
def mnist_server(tmp_path, monkeypatch):
    """A local HTTP server with gzipped fake MNIST files in place of torchvision's mirror."""
    for name in ("http_proxy", "HTTP_PROXY", "NBHELPERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    www = tmp_path / "www"
    www.mkdir()
    files = fake_mnist(4, seed=1)
    bodies, table = gz_tables(files)
    for name, body in bodies.items():
        (www / f"{name}.gz").write_bytes(body)
    monkeypatch.setattr(mnist, "RAW_FILES", table)
    with serve_directory(www) as base_url:
        monkeypatch.setattr(mnist, "DOWNLOAD_URL", f"{base_url}/{{name}}.gz")
        yield www, files


def test_download_unpacks_checks_and_caches(mnist_server, isolated_data):
    www, files = mnist_server
    dataset = load_mnist(train=False)
    assert dataset.source.kind == "download"
    host = mnist.DOWNLOAD_URL.split("/")[2]
    assert (
        dataset.source.detail == f"$NBHELPERS_DATA/MNIST/raw, from {host}"
        and host.startswith("127.0.0.1:")
    )
    assert len(dataset) == 4
    raw = isolated_data / "MNIST" / "raw"
    # only the test split was fetched; no .gz and no temporary files remain
    assert sorted(p.name for p in raw.iterdir()) == [
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    assert sorted(p.name for p in isolated_data.iterdir()) == ["MNIST"]
    assert (raw / "t10k-images-idx3-ubyte").read_bytes() == files[
        "t10k-images-idx3-ubyte"
    ]
    assert load_mnist(train=False).source.kind == "local"
    assert load_mnist(train=True).source.kind == "download"


def test_downloaded_files_get_the_umask_permissions(mnist_server, isolated_data):
    old = os.umask(0o002)
    try:
        load_mnist(train=False)
    finally:
        os.umask(old)
    raw = isolated_data / "MNIST" / "raw"
    assert oct((raw / "t10k-images-idx3-ubyte").stat().st_mode & 0o777) == oct(0o664)


def test_a_wrong_checksum_falls_back_to_embedded_and_leaves_nothing(
    mnist_server, isolated_data, monkeypatch
):
    good = mnist.RAW_FILES["train-labels-idx1-ubyte"]
    monkeypatch.setitem(
        mnist.RAW_FILES,
        "train-labels-idx1-ubyte",
        mnist.RawFile("0" * 64, good.gz_md5, good.size),
    )
    with pytest.warns(
        UserWarning, match="MNIST download failed .*sha256 mismatch .*train-labels"
    ):
        dataset = load_mnist()
    assert dataset.source.kind == "embedded"
    # all or nothing: the verified images file is not kept without its labels; no empty folders
    assert list(isolated_data.iterdir()) == []


def test_a_captive_portal_page_falls_back_to_embedded(mnist_server, isolated_data):
    www, _ = mnist_server
    (www / "train-images-idx3-ubyte.gz").write_bytes(
        b"<html><body>Please log in</body></html>"
    )
    with pytest.warns(UserWarning, match="MNIST download failed .*md5 mismatch"):
        assert load_mnist().source.kind == "embedded"
    assert list(isolated_data.iterdir()) == []


def test_unreachable_download_falls_back_to_embedded(monkeypatch, isolated_data):
    monkeypatch.delenv("NBHELPERS_OFFLINE")
    # discard port: refused
    monkeypatch.setattr(mnist, "DOWNLOAD_URL", "http://127.0.0.1:9/{name}.gz")
    with pytest.warns(UserWarning, match="MNIST download failed .*network unreachable"):
        assert load_mnist().source.kind == "embedded"
    assert list(isolated_data.iterdir()) == []  # no empty MNIST/raw left behind


def test_offline_skips_the_download_without_a_warning(isolated_data, recwarn):
    assert load_mnist().source.kind == "embedded"
    assert [str(w.message) for w in recwarn] == []
