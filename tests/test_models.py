"""nbhelpers.models: the book's networks, their parameter counts and shapes, and where weights come from.

No test touches the internet: an autouse fixture sets NBHELPERS_OFFLINE=1 and points torch.hub at
an empty temporary cache; the download tests use file:// URLs or a patched urlopen.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.models import ResNet18_Weights, resnet18

from nbhelpers.models import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CharCNN,
    WeightsUnavailableError,
    cached_weights_path,
    count_parameters,
    histopathology_resnet18,
    imagenet_categories,
    imagenet_classifier,
    mnist_cnn,
    resolve_weights,
    set_trainable,
)
from nbhelpers.models import pretrained


@pytest.fixture(autouse=True)
def offline_empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NBHELPERS_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(pretrained, "_failed_downloads", {})
    return tmp_path / "torch" / "hub" / "checkpoints"


def _no_network(*args, **kwargs):
    raise AssertionError("a test tried to open a URL")


# --- mnist_cnn ---------------------------------------------------------------------------------


def test_mnist_cnn_parameters_and_shapes():
    model = mnist_cnn()
    assert isinstance(model, nn.Sequential) and len(model) == 11
    assert count_parameters(model) == 233_578
    x = torch.randn(4, 1, 28, 28)
    assert model(x).shape == (4, 10)
    # The feature-map figure walks the layers one by one.
    shapes = []
    for layer in model:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes[2] == (32, 14, 14) and shapes[5] == (32, 5, 5) and shapes[6] == (800,)


# --- CharCNN -----------------------------------------------------------------------------------


def test_charcnn_defaults_match_the_seed_summary():
    model = CharCNN()
    assert count_parameters(model) == 19_448
    assert model.conv_output_length == 21
    assert model(torch.zeros(3, 23, dtype=torch.long)).shape == (3, 2)


def test_charcnn_training_configuration_shape():
    model = CharCNN(conv_width=128, context=4)
    assert model.conv_output_length == 20
    assert model(torch.randint(0, 31, (5, 23))).shape == (5, 2)


@pytest.mark.parametrize("context", [3, 4])
def test_charcnn_pooling_sees_the_last_window(context):
    """A character only in the last position must reach the output.

    The seed's MaxPool1d(kernel_size=MAX_LEN - context + 1) covers one window less than the
    convolution produces, so the same check fails for it (asserted below on the same activations).
    """
    torch.manual_seed(0)
    model = CharCNN(context=context).eval()
    with torch.no_grad():
        model.embedding.weight.zero_()
        model.embedding.weight[5].fill_(1.0)  # only token 5 carries signal
        model.conv.weight.abs_()
        model.conv.bias.zero_()
    padded = torch.zeros(1, 23, dtype=torch.long)
    last = padded.clone()
    last[0, -1] = 5
    with torch.no_grad():
        assert model.features(padded).abs().max() == 0
        assert model.features(last).min() > 0
        assert not torch.allclose(model(padded), model(last))
        activations = model.relu(model.conv(model.embedding(last).reshape(1, 1, -1)))
        seed_pool = nn.MaxPool1d(kernel_size=22 - context + 1)
        assert seed_pool(activations).shape[-1] == 1
        assert seed_pool(activations).abs().max() == 0  # the seed's pooling misses it


@settings(max_examples=25, deadline=None)
@given(
    max_len=st.integers(1, 30),
    context=st.integers(1, 6),
    embedding_dim=st.integers(1, 8),
    batch=st.integers(1, 4),
)
def test_charcnn_features_are_the_max_over_all_windows(max_len, context, embedding_dim, batch):
    if context > max_len + 1:
        with pytest.raises(ValueError, match="context"):
            CharCNN(max_len=max_len, context=context, embedding_dim=embedding_dim)
        return
    model = CharCNN(vocab_size=7, max_len=max_len, context=context, embedding_dim=embedding_dim, conv_width=5, fc_width=4)
    x = torch.randint(0, 7, (batch, max_len + 1))
    with torch.no_grad():
        activations = model.relu(model.conv(model.embedding(x).reshape(batch, 1, -1)))
        assert activations.shape == (batch, 5, max_len - context + 2)
        torch.testing.assert_close(model.features(x), activations.amax(dim=-1))
        assert model(x).shape == (batch, 2)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(2, 23), "int64"),
        (torch.zeros(2, 23, dtype=torch.int32), "int64"),
        (torch.zeros(2, 22, dtype=torch.long), r"\(B, 23\)"),
        (torch.zeros(23, dtype=torch.long), r"\(B, 23\)"),
        (torch.full((2, 23), 31, dtype=torch.long), "token id 31"),
        (torch.full((2, 23), -1, dtype=torch.long), "token id -1"),
        ([[0] * 23], "tensor"),
    ],
)
def test_charcnn_rejects_bad_input(bad, message):
    with pytest.raises(ValueError, match=message):
        CharCNN()(bad)


@pytest.mark.parametrize("kwargs", [{"vocab_size": 0}, {"context": 0}, {"max_len": 2.5}, {"conv_width": True}])
def test_charcnn_rejects_bad_hyperparameters(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        CharCNN(**kwargs)


# --- transfer-learning model -------------------------------------------------------------------


def test_histopathology_resnet18_structure_and_shapes():
    model = histopathology_resnet18(weights="none")
    assert isinstance(model, nn.Sequential) and len(model) == 2
    backbone, head = model
    assert isinstance(backbone[0], nn.Conv2d) and len(backbone) == 8  # resnet18 minus avgpool and fc
    assert [type(m) for m in head] == [
        nn.AdaptiveAvgPool2d, nn.Flatten, nn.BatchNorm1d, nn.Dropout, nn.Linear,
        nn.ReLU, nn.BatchNorm1d, nn.Dropout, nn.Linear,
    ]  # fmt: skip
    x = torch.randn(4, 3, 49, 49)
    assert backbone(x).shape == (4, 512, 2, 2)
    assert model(x).shape == (4, 2)  # train mode
    assert model.eval()(x[:1]).shape == (1, 2)
    resnet_without_fc = count_parameters(resnet18(weights=None)) - (512 * 1000 + 1000)
    assert count_parameters(backbone) == resnet_without_fc == 11_176_512
    assert model.weights_source == "random initialisation (weights='none')"


def test_set_trainable_freezes_and_unfreezes_the_backbone():
    model = histopathology_resnet18(weights="none")
    total = count_parameters(model)
    set_trainable(model[0], False)
    assert not any(p.requires_grad for p in model[0].parameters())
    assert all(p.requires_grad for p in model[1].parameters())
    assert count_parameters(model, trainable_only=True) == total - count_parameters(model[0])
    assert count_parameters(model) == total
    # A frozen backbone receives no gradient.
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is None for p in model[0].parameters())
    assert all(p.grad is not None for p in model[1].parameters())
    set_trainable(model[0], True)
    assert count_parameters(model, trainable_only=True) == total
    with pytest.raises(ValueError, match="trainable"):
        set_trainable(model, 1)


def test_count_parameters_counts_shared_parameters_once():
    linear = nn.Linear(3, 3)
    assert count_parameters(nn.Sequential(linear, linear)) == 12


def test_auto_weights_offline_fall_back_to_random_init_without_network(monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    model = histopathology_resnet18(weights="auto")
    assert model.weights_source.startswith("random initialisation (no pretrained weights: offline")
    assert "NBHELPERS_OFFLINE=1" in model.weights_source
    assert model.weights_source == model[0].weights_source
    assert model.eval()(torch.randn(1, 3, 49, 49)).shape == (1, 2)


def test_imagenet_weights_offline_raise_and_classifier_is_none(monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    with pytest.raises(WeightsUnavailableError, match="offline"):
        histopathology_resnet18(weights="imagenet")
    assert imagenet_classifier() is None
    with pytest.raises(WeightsUnavailableError, match="resnet18-f37072fd.pth"):
        imagenet_classifier(weights="imagenet")


@pytest.mark.parametrize("bad", ["pretrained", True, None])
def test_weight_modes_are_checked(bad):
    with pytest.raises(ValueError, match="weights must be"):
        histopathology_resnet18(weights=bad)
    with pytest.raises(ValueError, match="weights must be"):
        imagenet_classifier(weights=bad)


def test_unknown_architecture_is_rejected():
    with pytest.raises(ValueError, match="arch"):
        imagenet_classifier(arch="vgg16")


def test_cached_weights_are_used_offline(offline_empty_cache):
    """A file in torchvision's cache is loaded by the backbone and by the ImageNet classifier."""
    torch.manual_seed(0)
    reference = resnet18(weights=None)
    path = cached_weights_path(ResNet18_Weights.DEFAULT)
    assert path == offline_empty_cache / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)

    model = histopathology_resnet18(weights="auto")
    assert model.weights_source == "imagenet (torchvision cache)"
    torch.testing.assert_close(model[0][0].weight, reference.conv1.weight)
    torch.testing.assert_close(model[0][7][1].bn2.running_var, reference.layer4[1].bn2.running_var)

    classifier = imagenet_classifier()
    assert classifier is not None and not classifier.training
    assert classifier.weights_source == "imagenet (torchvision cache)"
    assert len(classifier.categories) == 1000 and classifier.categories == imagenet_categories()
    torch.testing.assert_close(classifier.fc.weight, reference.fc.weight)


def test_failed_download_falls_back_and_is_not_retried(monkeypatch):
    monkeypatch.delenv("NBHELPERS_OFFLINE")
    calls = []

    def unreachable(url, timeout):
        calls.append((url, timeout))
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    first = resolve_weights(ResNet18_Weights.DEFAULT, "auto")
    assert first.weights is None
    assert first.source.startswith("random initialisation (no pretrained weights: download failed: URLError")
    assert calls == [(ResNet18_Weights.DEFAULT.url, pretrained.SOCKET_TIMEOUT_S)]
    assert resolve_weights(ResNet18_Weights.DEFAULT, "auto") == first
    assert len(calls) == 1
    assert not list(cached_weights_path(ResNet18_Weights.DEFAULT).parent.glob("*"))  # nothing half-written


def _served_file(tmp_path, payload: bytes, name_hash: str) -> str:
    source = tmp_path / "served" / f"weights-{name_hash}.pth"
    source.parent.mkdir()
    source.write_bytes(payload)
    return source.as_uri()


def test_download_checked_verifies_the_hash_prefix(tmp_path):
    payload = b"not really weights" * 1000
    good = hashlib.sha256(payload).hexdigest()[:8]
    url = _served_file(tmp_path, payload, good)
    target = tmp_path / "cache" / f"weights-{good}.pth"
    assert pretrained.download_checked(url, target) == target
    assert target.read_bytes() == payload

    bad_target = tmp_path / "cache" / "weights-00000000.pth"
    with pytest.raises(ValueError, match="sha256"):
        pretrained.download_checked(url, bad_target)
    assert sorted(os.listdir(target.parent)) == [target.name]  # no partial or wrong file left


def test_download_checked_gives_up_after_the_deadline(tmp_path):
    payload = b"x" * (3 << 20)  # several reads
    url = _served_file(tmp_path, payload, hashlib.sha256(payload).hexdigest()[:8])
    target = tmp_path / "cache" / "slow.pth"
    with pytest.raises(TimeoutError, match="more than"):
        pretrained.download_checked(url, target, deadline_s=-1.0)
    assert not os.listdir(target.parent)


def test_imagenet_constants_match_torchvision():
    transform = ResNet18_Weights.DEFAULT.transforms()
    assert tuple(transform.mean) == IMAGENET_MEAN and tuple(transform.std) == IMAGENET_STD
    categories = imagenet_categories("alexnet")
    assert len(categories) == 1000 and categories[0] == "tench"
