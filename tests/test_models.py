"""nbhelpers.models: the book's networks, their parameter counts and shapes, and where weights come from.

No test touches the internet: an autouse fixture sets NBHELPERS_OFFLINE=1 and points torch.hub at
an empty temporary cache; the download tests serve fake weights (a torch.save'd state dict of an
untrained ResNet18, its sha256 prefix in its name) from a local HTTP server, pointed to by
``pretrained.WEIGHTS_URLS``.
"""

from __future__ import annotations

import urllib.request

import pytest
import torch
import torch.nn as nn
from fake_weights import (
    REAL_RESNET18_NAME,
    fake_resnet18_state,
    fake_resnet18_weights,
    hashed_name,
    malicious_pickle,
    place,
    saved,
    unfit_state,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from support import serve_directory
from torchvision.models import ResNet18_Weights, resnet18

from nbhelpers.data.tokens import CHARS, MAX_LEN, encode
from nbhelpers.models import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BuiltModel,
    CharCNN,
    ImageNetClassifier,
    Normalize,
    TextCNN,
    WeightsFileError,
    WeightsUnavailableError,
    batchnorm_statistics,
    cached_weights_path,
    count_parameters,
    histopathology_resnet18,
    imagenet_categories,
    imagenet_classifier,
    mnist_cnn,
    pretrained,
    resolve_weights,
    set_trainable,
)


@pytest.fixture(autouse=True)
def offline_empty_cache(tmp_path, monkeypatch):
    """NBHELPERS_OFFLINE=1 and an empty torch hub; returns the (missing) checkpoints folder."""
    monkeypatch.setenv("NBHELPERS_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def fake_url(monkeypatch):
    """Point resnet18's weights url at a file named after the fake weights' hash (no server: offline)."""
    name = hashed_name(fake_resnet18_weights())
    monkeypatch.setitem(
        pretrained.WEIGHTS_URLS, "resnet18", f"http://127.0.0.1:9/models/{name}"
    )
    return name


@pytest.fixture
def served(tmp_path, monkeypatch):
    """Online, with resnet18's url on a local server; returns the folder it serves from."""
    monkeypatch.delenv("NBHELPERS_OFFLINE")
    monkeypatch.setattr(pretrained, "DOWNLOAD_BACKOFF_S", 0.01)
    folder = tmp_path / "served"
    folder.mkdir()
    with serve_directory(folder) as base:
        monkeypatch.setitem(
            pretrained.WEIGHTS_URLS,
            "resnet18",
            f"{base}/{hashed_name(fake_resnet18_weights())}",
        )
        yield folder


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


def test_charcnn_defaults_come_from_the_vocabulary():
    model = CharCNN()
    assert model.vocab_size == len(CHARS) == 31 and model.seq_len == MAX_LEN + 1
    tokens = torch.tensor([encode("zoe"), encode("ñ" * 40)])
    assert model.eval()(tokens).shape == (2, 2)


def test_charcnn_takes_an_empty_batch():
    assert CharCNN()(torch.zeros(0, 23, dtype=torch.long)).shape == (0, 2)


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
def test_charcnn_features_are_the_max_over_all_windows(
    max_len, context, embedding_dim, batch
):
    if context > max_len + 1:
        with pytest.raises(ValueError, match="context"):
            CharCNN(max_len=max_len, context=context, embedding_dim=embedding_dim)
        return
    model = CharCNN(
        vocab_size=7,
        max_len=max_len,
        context=context,
        embedding_dim=embedding_dim,
        conv_width=5,
        fc_width=4,
    )
    x = torch.randint(0, 7, (batch, max_len + 1))
    with torch.no_grad():
        activations = model.relu(model.conv(model.embedding(x).reshape(batch, 1, -1)))
        assert activations.shape == (batch, 5, max_len - context + 2)
        torch.testing.assert_close(model.features(x), activations.amax(dim=-1))
        assert model(x).shape == (batch, 2)


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (torch.zeros(2, 23), TypeError, "int64 token ids, got dtype torch.float32"),
        (
            torch.zeros(2, 23, dtype=torch.int32),
            TypeError,
            "int64 token ids, got dtype torch.int32",
        ),
        (
            torch.zeros(2, 22, dtype=torch.long),
            ValueError,
            r"\(B, 23\) \(max_len \+ 1\), got \(2, 22\)",
        ),
        (
            torch.zeros(23, dtype=torch.long),
            ValueError,
            r"\(B, 23\) \(max_len \+ 1\), got \(23,\)",
        ),
        (torch.full((2, 23), 31, dtype=torch.long), ValueError, "token id 31"),
        (torch.full((2, 23), -1, dtype=torch.long), ValueError, "token id -1"),
        (
            torch.zeros(2, 23, dtype=torch.long, device="meta"),
            ValueError,
            "on meta but the model is on cpu",
        ),
        ([[0] * 23], TypeError, "tensor of token ids, got list"),
    ],
)
def test_charcnn_rejects_bad_input_naming_it(bad, error, message):
    with pytest.raises(error, match=message):
        CharCNN()(bad)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"vocab_size": 0}, ValueError),
        ({"context": 0}, ValueError),
        ({"embedding_dim": -3}, ValueError),
        ({"max_len": 2.5}, TypeError),
        ({"conv_width": True}, TypeError),
        ({"fc_width": "256"}, TypeError),
    ],
)
def test_charcnn_rejects_bad_hyperparameters_naming_them(kwargs, error):
    name, value = next(iter(kwargs.items()))
    with pytest.raises(error, match=f"{name} must be a positive int, got {value!r}"):
        CharCNN(**kwargs)


# --- TextCNN -----------------------------------------------------------------------------------


def test_textcnn_defaults_follow_the_table_of_its_docstring():
    model = TextCNN()
    assert model.contexts == (2, 3, 4, 5)
    assert count_parameters(model) == 38_456
    x = torch.randint(0, 31, (3, 23))
    embedded = model.embedding(x).transpose(1, 2)
    assert embedded.shape == (3, 10, 23)
    for conv, c in zip(model.convs, model.contexts):
        assert conv(embedded).shape == (3, 32, 24 - c)
    assert model.features(x).shape == (3, 128)
    assert model(x).shape == (3, 2)
    assert TextCNN()(torch.zeros(0, 23, dtype=torch.long)).shape == (0, 2)


def test_each_width_of_textcnn_is_a_charcnn_detector_in_the_channels_layout():
    """With CharCNN's single-channel kernel rearranged to (out, embedding_dim, c), the
    pooled features of each width equal CharCNN's features for that context."""
    torch.manual_seed(0)
    text = TextCNN(contexts=(2, 4), conv_width=6, embedding_dim=5).eval()
    x = torch.randint(0, 31, (4, 23))
    features = text.features(x)
    for index, (conv, c) in enumerate(zip(text.convs, text.contexts)):
        char = CharCNN(context=c, conv_width=6, embedding_dim=5).eval()
        with torch.no_grad():
            char.embedding.weight.copy_(text.embedding.weight)
            # CharCNN's kernel reads position-major (c, embedding_dim) values in one row
            char.conv.weight.copy_(conv.weight.transpose(1, 2).reshape(6, 1, c * 5))
            char.conv.bias.copy_(conv.bias)
            expected = char.features(x)
        torch.testing.assert_close(features[:, 6 * index : 6 * (index + 1)], expected)


def test_textcnn_pools_over_every_window_including_the_last():
    model = TextCNN(contexts=(3,), conv_width=1).eval()
    with torch.no_grad():
        model.embedding.weight.zero_()
        model.embedding.weight[5] = 1.0  # only token 5 has a nonzero embedding
        model.convs[0].weight.fill_(1.0)
        model.convs[0].bias.zero_()
        x = torch.zeros(1, 23, dtype=torch.long)
        x[0, -1] = 5  # token 5 only in the last window
        assert model.features(x).item() > 0


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"contexts": ()}, ValueError, "at least one"),
        ({"contexts": (3, 3)}, ValueError, "distinct"),
        ({"contexts": 3}, TypeError, "a sequence of ints, got 3"),
        ({"contexts": "345"}, TypeError, "a sequence of ints"),
        ({"contexts": (2, 0)}, ValueError, "context must be a positive int, got 0"),
        ({"contexts": (2.0,)}, TypeError, "context must be a positive int, got 2.0"),
        ({"contexts": (24,)}, ValueError, "context=24 is longer than .* 23 tokens"),
        ({"conv_width": 0}, ValueError, "conv_width must be a positive int, got 0"),
        ({"max_len": "22"}, TypeError, "max_len must be a positive int"),
    ],
)
def test_textcnn_rejects_bad_hyperparameters_naming_them(kwargs, error, message):
    with pytest.raises(error, match=message):
        TextCNN(**kwargs)


def test_textcnn_checks_its_token_ids_as_charcnn_does():
    with pytest.raises(ValueError, match="token id 31"):
        TextCNN()(torch.full((2, 23), 31, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, 23\) \(max_len \+ 1\), got \(2, 22\)"):
        TextCNN()(torch.zeros(2, 22, dtype=torch.long))


# --- transfer-learning model -------------------------------------------------------------------


def test_histopathology_resnet18_structure_and_shapes():
    built = histopathology_resnet18(weights="none")
    assert isinstance(built, BuiltModel)
    assert built.weights_source == "random initialisation (weights='none')"
    model = built.model
    assert isinstance(model, nn.Sequential) and len(model) == 2
    backbone, head = model
    # the normalisation, then resnet18 minus avgpool and fc
    assert isinstance(backbone[0], Normalize) and len(backbone) == 9
    assert isinstance(backbone[1], nn.Conv2d)

    assert [type(m) for m in head] == [
        nn.AdaptiveAvgPool2d,
        nn.Flatten,
        nn.BatchNorm1d,
        nn.Dropout,
        nn.Linear,
        nn.ReLU,
        nn.BatchNorm1d,
        nn.Dropout,
        nn.Linear,
    ]
    x = torch.randn(4, 3, 49, 49)
    assert backbone(x).shape == (4, 512, 2, 2)
    assert model(x).shape == (4, 2)  # train mode
    assert model.eval()(x[:1]).shape == (1, 2)
    resnet_without_fc = count_parameters(resnet18(weights=None)) - (512 * 1000 + 1000)
    assert count_parameters(backbone) == resnet_without_fc == 11_176_512


def test_provenance_is_returned_not_attached_to_modules(fake_url, offline_empty_cache):
    place(offline_empty_cache, fake_url, fake_resnet18_weights())
    built = histopathology_resnet18()
    classifier = imagenet_classifier()
    for module in (built.model, built.model[0], classifier.model):
        for attribute in ("weights_source", "categories", "training_meta"):
            assert not hasattr(module, attribute), attribute
    with pytest.raises(AttributeError):
        built.weights_source = "changed"  # frozen


def test_set_trainable_freezes_and_unfreezes_the_backbone():
    model = histopathology_resnet18(weights="none").model
    total = count_parameters(model)
    set_trainable(model[0], False)
    assert not any(p.requires_grad for p in model[0].parameters())
    assert all(p.requires_grad for p in model[1].parameters())
    assert count_parameters(model, trainable_only=True) == total - count_parameters(
        model[0]
    )
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


# --- where the weights come from ---------------------------------------------------------------


def test_auto_weights_offline_fall_back_to_random_init_without_network(monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    built = histopathology_resnet18(weights="auto")
    assert built.weights_source.startswith(
        "random initialisation (no pretrained weights: offline"
    )
    assert (
        "NBHELPERS_OFFLINE is set" in built.weights_source
        and REAL_RESNET18_NAME in built.weights_source
    )
    assert built.model.eval()(torch.randn(1, 3, 49, 49)).shape == (1, 2)


def test_imagenet_weights_offline_raise_and_classifier_is_none(monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    with pytest.raises(
        WeightsUnavailableError, match="offline, NBHELPERS_OFFLINE is set"
    ):
        histopathology_resnet18(weights="imagenet")
    assert imagenet_classifier() is None
    with pytest.raises(WeightsUnavailableError, match=REAL_RESNET18_NAME):
        imagenet_classifier(weights="imagenet")


@pytest.mark.parametrize(
    "bad, error", [("pretrained", ValueError), (True, TypeError), (None, TypeError)]
)
def test_weight_modes_are_checked(bad, error):
    with pytest.raises(error, match=f"weights must be one of .*, got {bad!r}"):
        histopathology_resnet18(weights=bad)
    with pytest.raises(error, match=f"weights must be one of .*, got {bad!r}"):
        imagenet_classifier(weights=bad)
    with pytest.raises(error, match=f"weights must be one of .*, got {bad!r}"):
        resolve_weights(bad)


def test_an_imagenet_classifier_needs_its_weights():
    with pytest.raises(
        ValueError, match="weights must be one of \\('auto', 'imagenet'\\), got 'none'"
    ):
        imagenet_classifier(weights="none")


def test_unknown_architecture_is_rejected():
    with pytest.raises(ValueError, match="arch must be one of .*, got 'vgg16'"):
        imagenet_classifier(arch="vgg16")
    with pytest.raises(ValueError, match="arch must be one of .*, got None"):
        resolve_weights(arch=None)


def test_cached_weights_are_checked_and_used_offline(
    fake_url, offline_empty_cache, monkeypatch
):
    """A file in torchvision's cache whose hash matches its name is loaded by both builders."""
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    path = place(offline_empty_cache, fake_url, fake_resnet18_weights())
    assert cached_weights_path("resnet18") == path
    reference = fake_resnet18_state()

    resolved = resolve_weights("auto")
    assert resolved.pretrained and resolved.path == path
    assert resolved.source == "imagenet (torchvision cache)"

    built = histopathology_resnet18(weights="imagenet")
    assert built.weights_source == "imagenet (torchvision cache)"
    torch.testing.assert_close(built.model[0][1].weight, reference["conv1.weight"])
    torch.testing.assert_close(
        built.model[0][8][1].bn2.running_var, reference["layer4.1.bn2.running_var"]
    )

    classifier = imagenet_classifier()
    assert isinstance(classifier, ImageNetClassifier) and not classifier.model.training
    assert classifier.weights_source == "imagenet (torchvision cache)"
    assert (
        len(classifier.categories) == 1000
        and classifier.categories == imagenet_categories()
    )
    torch.testing.assert_close(classifier.model.fc.weight, reference["fc.weight"])


def test_the_hash_is_checked_on_every_load_not_only_after_a_download(
    fake_url, offline_empty_cache
):
    path = place(offline_empty_cache, fake_url, fake_resnet18_weights())
    assert resolve_weights("imagenet").pretrained
    damaged = bytearray(path.read_bytes())
    # one flipped byte in a tensor: still loadable, but not the file
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(
        WeightsFileError,
        match=f"{path} has sha256 [0-9a-f]{{16}}..., not the {fake_url[9:17]}",
    ):
        resolve_weights("imagenet")
    fallback = histopathology_resnet18("auto")
    assert fallback.weights_source.startswith(
        f"random initialisation (cached weights unusable: $TORCH_HOME/hub/checkpoints/{path.name} has sha256"
    )
    assert path.read_bytes() == bytes(damaged)  # left as it is


def test_torchvisions_own_file_name_with_other_content_is_refused(offline_empty_cache):
    path = place(offline_empty_cache, REAL_RESNET18_NAME, fake_resnet18_weights())
    with pytest.raises(
        WeightsFileError, match=f"{REAL_RESNET18_NAME} has sha256 .*not the f37072fd"
    ):
        histopathology_resnet18("imagenet")
    assert imagenet_classifier() is None
    assert path.read_bytes() == fake_resnet18_weights()


def test_a_malicious_pickle_in_the_cache_is_never_executed(
    offline_empty_cache, tmp_path, monkeypatch
):
    marker = tmp_path / "pwned"
    payload = malicious_pickle(marker)
    # The payload works: an unchecked torch.load(weights_only=False), as torchvision did, runs it.
    torch.load(place(tmp_path / "elsewhere", "copy.pth", payload), weights_only=False)
    assert marker.is_dir()
    marker.rmdir()

    # At torchvision's real path: refused by the hash check before anything is unpickled.
    place(offline_empty_cache, REAL_RESNET18_NAME, payload)
    with pytest.raises(WeightsFileError, match="has sha256"):
        imagenet_classifier(weights="imagenet")
    assert "has sha256" in histopathology_resnet18().weights_source
    assert not marker.exists()

    # Even with a hash that matches its name (a compromised publisher): the safe unpickler refuses.
    name = hashed_name(payload)
    monkeypatch.setitem(
        pretrained.WEIGHTS_URLS, "resnet18", f"http://127.0.0.1:9/{name}"
    )
    place(offline_empty_cache, name, payload)
    with pytest.raises(
        WeightsFileError, match="cannot be loaded with weights_only=True .*posix.mkdir"
    ):
        resolve_weights("imagenet")
    assert (
        "cannot be loaded with weights_only=True"
        in histopathology_resnet18().weights_source
    )
    assert not marker.exists()
    with pytest.raises(WeightsFileError) as caught:
        resolve_weights("imagenet")
    # torch's dangerous advice is not repeated
    assert "weights_only=False" not in str(caught.value)


def test_a_state_dict_of_another_network_is_refused(offline_empty_cache, monkeypatch):
    payload = unfit_state()
    name = hashed_name(payload)
    monkeypatch.setitem(
        pretrained.WEIGHTS_URLS, "resnet18", f"http://127.0.0.1:9/{name}"
    )
    place(offline_empty_cache, name, payload)
    with pytest.raises(
        WeightsFileError, match=f"{name} does not fit torchvision's resnet18: missing"
    ):
        resolve_weights("imagenet")


def test_weights_saved_without_batchnorm_step_counters_are_accepted(
    offline_empty_cache, monkeypatch
):
    state = {
        k: v
        for k, v in fake_resnet18_state().items()
        if not k.endswith("num_batches_tracked")
    }
    payload = saved(state)
    monkeypatch.setitem(
        pretrained.WEIGHTS_URLS,
        "resnet18",
        f"http://127.0.0.1:9/{hashed_name(payload)}",
    )
    place(offline_empty_cache, hashed_name(payload), payload)
    model = histopathology_resnet18("imagenet").model
    torch.testing.assert_close(model[0][2].running_mean, state["bn1.running_mean"])
    assert int(model[0][2].num_batches_tracked) == 0


def test_a_folder_in_place_of_the_file_is_reported_and_kept(offline_empty_cache):
    (offline_empty_cache / REAL_RESNET18_NAME).mkdir(parents=True)
    with pytest.raises(WeightsFileError, match=f"{REAL_RESNET18_NAME} is a folder"):
        resolve_weights("imagenet")
    assert "is a folder" in resolve_weights("auto").source
    assert (offline_empty_cache / REAL_RESNET18_NAME).is_dir()


def test_a_typo_in_nbhelpers_offline_is_an_error_even_with_cached_weights(
    fake_url, offline_empty_cache, monkeypatch
):
    place(offline_empty_cache, fake_url, fake_resnet18_weights())
    monkeypatch.setenv("NBHELPERS_OFFLINE", "ture")
    with pytest.raises(ValueError, match="NBHELPERS_OFFLINE='ture'"):
        histopathology_resnet18()


def test_torch_home_naming_a_file_is_an_error(tmp_path, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("x")
    monkeypatch.setenv("TORCH_HOME", str(afile))
    with pytest.raises(ValueError, match=f"TORCH_HOME='{afile}': {afile} is a file"):
        resolve_weights("auto")
    # needs no cache
    assert histopathology_resnet18("none").weights_source.startswith("random")


def test_weights_are_downloaded_into_the_cache_then_loaded_from_it(
    served, offline_empty_cache
):
    name = hashed_name(fake_resnet18_weights())
    (served / name).write_bytes(fake_resnet18_weights())
    built = histopathology_resnet18("imagenet", deadline=60)
    assert built.weights_source == "imagenet (downloaded into torchvision's cache)"
    assert (offline_empty_cache / name).read_bytes() == fake_resnet18_weights()
    torch.testing.assert_close(
        built.model[0][1].weight, fake_resnet18_state()["conv1.weight"]
    )
    (served / name).unlink()  # the second time, no server file is needed
    assert imagenet_classifier().weights_source == "imagenet (torchvision cache)"


def test_a_download_with_the_wrong_content_leaves_nothing(served, offline_empty_cache):
    name = hashed_name(fake_resnet18_weights())
    (served / name).write_bytes(b"<html>please log in</html>")
    source = resolve_weights("auto").source
    assert source.startswith(
        "random initialisation (no pretrained weights: download failed: sha256 mismatch"
    )
    assert name in source
    # not even empty folders
    assert not offline_empty_cache.exists() or not list(offline_empty_cache.iterdir())
    with pytest.raises(WeightsUnavailableError, match="sha256 mismatch"):
        imagenet_classifier("imagenet")


def test_a_failed_download_is_tried_again_on_the_next_call(served, offline_empty_cache):
    name = hashed_name(fake_resnet18_weights())
    assert "HTTP 404" in resolve_weights("auto").source  # not served yet
    (served / name).write_bytes(fake_resnet18_weights())
    assert (
        resolve_weights("auto").source
        == "imagenet (downloaded into torchvision's cache)"
    )


def test_a_bad_cached_file_is_not_downloaded_over(served, offline_empty_cache):
    name = hashed_name(fake_resnet18_weights())
    (served / name).write_bytes(fake_resnet18_weights())
    truncated = fake_resnet18_weights()[:5000]
    path = place(offline_empty_cache, name, truncated)
    assert "has sha256" in resolve_weights("auto").source
    assert path.read_bytes() == truncated
    path.unlink()  # what the message tells the reader to do
    assert resolve_weights("auto").pretrained


@pytest.mark.parametrize("deadline", [0, -1, float("nan"), "60", True])
def test_a_bad_deadline_is_named(deadline):
    with pytest.raises(
        ValueError, match=f"deadline must be a number of seconds > 0, got {deadline!r}"
    ):
        resolve_weights("auto", deadline=deadline)


def test_imagenet_constants_match_torchvision():
    from torchvision.models import ResNet18_Weights

    transform = ResNet18_Weights.DEFAULT.transforms()
    assert (
        tuple(transform.mean) == IMAGENET_MEAN and tuple(transform.std) == IMAGENET_STD
    )
    categories = imagenet_categories("alexnet")
    assert len(categories) == 1000 and categories[0] == "tench"


def test_the_published_urls_carry_their_hash_prefix():
    assert pretrained.WEIGHTS_URLS["resnet18"].endswith("/resnet18-f37072fd.pth")
    assert pretrained._hash_prefix(pretrained.WEIGHTS_URLS["alexnet"]) == "7be5be79"


# --- the input normalisation of the backbone ----------------------------------------------------


def test_imagenet_statistics_come_from_the_weights_enum():
    preset = ResNet18_Weights.DEFAULT.transforms()
    assert IMAGENET_MEAN == tuple(preset.mean) and IMAGENET_STD == tuple(preset.std)
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406)  # torchvision's published values


def test_pretrained_backbone_normalises_with_the_enums_statistics(
    fake_url, offline_empty_cache
):
    """With (fake) ImageNet weights the model equals a manual normalisation followed by the
    same network without the normalisation layer."""
    place(offline_empty_cache, fake_url, fake_resnet18_weights())
    model = histopathology_resnet18("imagenet").model.eval()
    first = model[0][0]
    assert isinstance(first, Normalize)
    preset = ResNet18_Weights.DEFAULT.transforms()
    mean = torch.tensor(preset.mean).view(1, 3, 1, 1)
    std = torch.tensor(preset.std).view(1, 3, 1, 1)
    x = torch.rand(2, 3, 49, 49)
    torch.testing.assert_close(first(x), (x - mean) / std)
    rest = nn.Sequential(nn.Sequential(*list(model[0])[1:]), model[1])
    with torch.no_grad():
        torch.testing.assert_close(model(x), rest((x - mean) / std))
    # buffers, not parameters: nothing trains, the count is the network's
    assert not list(first.parameters()) and "0.0.mean" in model.state_dict()


def test_random_backbone_normalisation_is_the_identity_bit_for_bit():
    model = histopathology_resnet18("none").model
    first = model[0][0]
    assert isinstance(first, Normalize)
    assert first.mean.flatten().tolist() == [0.0] * 3
    assert first.std.flatten().tolist() == [1.0] * 3
    x = torch.rand(2, 3, 49, 49).contiguous(memory_format=torch.channels_last)
    y = first(x)
    assert torch.equal(y, x) and y.stride() == x.stride()


def test_input_gradients_are_with_respect_to_unit_pixels(fake_url, offline_empty_cache):
    place(offline_empty_cache, fake_url, fake_resnet18_weights())
    normalize = histopathology_resnet18("imagenet").model[0][0]
    x = torch.rand(1, 3, 5, 5, requires_grad=True)
    normalize(x).sum().backward()
    expected = (1 / torch.tensor(IMAGENET_STD)).view(1, 3, 1, 1).expand(1, 3, 5, 5)
    torch.testing.assert_close(x.grad, expected)


@pytest.mark.parametrize(
    "mean, std, message",
    [
        ((0.5, 0.5), (0.2, 0.2, 0.2), "one entry per channel"),
        ((0.5,), (0.0,), "std > 0"),
        ("abc", (1.0,), "mean must be a sequence"),
        ((), (), "non-empty"),
        ((float("nan"),), (1.0,), "finite"),
    ],
)
def test_normalize_rejects_bad_statistics(mean, std, message):
    with pytest.raises(ValueError, match=message):
        Normalize(mean, std)


def test_batchnorm_statistics_are_copies_by_layer_name():
    backbone = histopathology_resnet18("none").model[0]
    stats = batchnorm_statistics(backbone)
    assert len(stats) == 20 and "2" in stats  # bn1 sits at index 2, after Normalize
    mean, var = stats["2"]
    assert mean.shape == var.shape == (64,)
    backbone(torch.rand(4, 3, 49, 49))  # train mode: the running statistics move
    assert not torch.equal(backbone[2].running_mean, mean)
    assert torch.equal(mean, torch.zeros(64)) and torch.equal(var, torch.ones(64))
