"""MNIST: the mirror, local IDX files, a download from a local server, the embedded digits."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
import torch
from support import MIRROR, serve_directory
from support import needs_mirror as needs_mirror_of

from nbhelpers.data import mnist
from nbhelpers.data.mnist import embedded_digits, load_mnist, read_idx

pytestmark = pytest.mark.usefixtures("isolated_data")

needs_mirror = needs_mirror_of("MNIST/raw")


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _fake_mnist(n: int, seed: int) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    files = {}
    for split in ("train", "t10k"):
        files[f"{split}-images-idx3-ubyte"] = _idx(rng.integers(0, 256, (n, 28, 28)))
        files[f"{split}-labels-idx1-ubyte"] = _idx(rng.integers(0, 10, n))
    return files


def _check_items(dataset, n: int) -> None:
    assert len(dataset) == n
    X, y = dataset[0]
    assert X.shape == (1, 28, 28) and X.dtype == torch.float32
    assert isinstance(y, int) and 0 <= y <= 9
    assert dataset.images.min() == 0.0 and dataset.images.max() == 1.0  # scaled once, not twice


@needs_mirror
@pytest.mark.parametrize("train, n", [(True, 60_000), (False, 10_000)])
def test_mirror(monkeypatch, train, n):
    monkeypatch.setenv("NBHELPERS_DATA_MIRROR", str(MIRROR))
    dataset = load_mnist(train=train)
    _check_items(dataset, n)
    assert dataset.source == load_mnist.source == f"mirror ({MIRROR.resolve() / 'MNIST'})"
    assert dataset.targets.bincount().min() > n // 20  # all ten digits, none rare


def test_local_idx_files_scaled_once_and_transformed(isolated_data):
    raw = isolated_data / "MNIST" / "raw"
    raw.mkdir(parents=True)
    files = _fake_mnist(5, seed=0)
    for name, content in files.items():
        (raw / name).write_bytes(content)
    dataset = load_mnist(train=False)
    assert dataset.source.startswith("local (")
    expected = np.frombuffer(files["t10k-images-idx3-ubyte"][16:], np.uint8).reshape(5, 1, 28, 28) / 255.0
    assert torch.allclose(dataset.images, torch.from_numpy(expected).float())
    assert dataset.targets.tolist() == list(files["t10k-labels-idx1-ubyte"][8:])
    flipped = load_mnist(train=False, transform=lambda X: X.flip(-1))
    assert torch.equal(flipped[3][0], dataset[3][0].flip(-1))


def test_read_idx_rejects_corrupt_files(tmp_path):
    good = _idx(np.zeros((2, 28, 28)))
    (tmp_path / "short").write_bytes(good[:-1])
    (tmp_path / "garbage").write_bytes(b"\x89PNG this is not IDX")
    (tmp_path / "good").write_bytes(good)
    assert read_idx(tmp_path / "good").shape == (2, 28, 28)
    with pytest.raises(ValueError, match="short"):
        read_idx(tmp_path / "short")
    with pytest.raises(ValueError, match="garbage"):
        read_idx(tmp_path / "garbage")


def test_embedded_digits_when_offline():
    train, test = load_mnist(train=True), load_mnist(train=False)
    assert train.source.startswith("embedded (scikit-learn digits")
    assert load_mnist.source == test.source
    _check_items(train, 1_497)
    _check_items(test, 300)
    # white digit on black: the border is black, the ink near the middle
    assert train.images[:, :, :3].max() == 0.0 and train.images[:, :, :, :3].max() == 0.0
    assert train.images[:, :, 10:18, 10:18].mean() > 3 * train.images.mean((0, 1)).mean() / 2
    assert set(train.targets.tolist()) == set(range(10)) == set(test.targets.tolist())


def test_embedded_splits_are_disjoint():
    from sklearn.datasets import load_digits

    originals = load_digits().images
    assert len({row.tobytes() for row in originals}) == len(originals)  # no two digits are identical
    # the resizing is deterministic, so a digit in both splits would give identical rows
    train = {row.numpy().tobytes() for row in embedded_digits(True)[0]}
    test = {row.numpy().tobytes() for row in embedded_digits(False)[0]}
    assert not train & test
    assert len(train | test) == len(originals)


@pytest.fixture
def mnist_server(tmp_path, monkeypatch):
    """A local HTTP server with gzipped fake MNIST files in place of torchvision's mirror."""
    for name in ("http_proxy", "HTTP_PROXY", "NBHELPERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    www = tmp_path / "www"
    www.mkdir()
    files = _fake_mnist(4, seed=1)
    for name, content in files.items():
        (www / f"{name}.gz").write_bytes(gzip.compress(content, mtime=0))
    monkeypatch.setattr(mnist, "RAW_FILES", {name: hashlib.sha256(c).hexdigest() for name, c in files.items()})

    with serve_directory(www) as base_url:
        monkeypatch.setattr(mnist, "DOWNLOAD_URL", f"{base_url}/{{name}}.gz")
        yield www, files


def test_download_unpacks_checks_and_caches(mnist_server, isolated_data):
    www, files = mnist_server
    dataset = load_mnist(train=False)
    assert dataset.source.startswith("download (")
    assert len(dataset) == 4
    raw = isolated_data / "MNIST" / "raw"
    # only the test split was fetched; no .gz and no temporary files remain
    assert sorted(p.name for p in raw.iterdir()) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    assert (raw / "t10k-images-idx3-ubyte").read_bytes() == files["t10k-images-idx3-ubyte"]
    assert load_mnist(train=False).source.startswith("local (")
    assert load_mnist(train=True).source.startswith("download (")


def test_download_with_a_wrong_checksum_falls_back_to_embedded(mnist_server, isolated_data, monkeypatch):
    monkeypatch.setitem(mnist.RAW_FILES, "train-labels-idx1-ubyte", "0" * 64)
    with pytest.warns(UserWarning, match="MNIST download failed .*sha256 mismatch"):
        dataset = load_mnist()
    assert dataset.source.startswith("embedded (")
    raw = isolated_data / "MNIST" / "raw"
    # the verified images file stays for next time; nothing else, no temporary leftovers
    assert [p.name for p in raw.iterdir()] == ["train-images-idx3-ubyte"]


def test_unreachable_download_falls_back_to_embedded(monkeypatch, isolated_data):
    monkeypatch.delenv("NBHELPERS_OFFLINE")
    monkeypatch.setattr(mnist, "DOWNLOAD_URL", "http://127.0.0.1:9/{name}.gz")  # discard port: refused
    with pytest.warns(UserWarning, match="MNIST download failed .*network unreachable"):
        assert load_mnist().source.startswith("embedded (")
    assert list(isolated_data.iterdir()) == []  # no empty MNIST/raw left behind
