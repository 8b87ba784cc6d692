"""Hostile inputs against nbhelpers.models: the weights cache, the weights download, the environment, arguments.

Weights cases point resnet18's url (``pretrained.WEIGHTS_URLS``) at the workspace's fault server,
under a file name carrying the sha256 prefix of the fake weights (an untrained ResNet18's state
dict), unless they test torchvision's real file name. A download that fails may leave the empty
cache folders torchvision itself would create (``CACHE_DIRS``), never a file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from fake_weights import (
    REAL_RESNET18_NAME,
    fake_resnet18_weights,
    hashed_name,
    malicious_pickle,
    place,
    saved,
    unfit_state,
)
from harness import Case, Route, Workspace, run_case, within

from nbhelpers.interpret import guided_backprop
from nbhelpers.models import (
    CharCNN,
    WeightsFileError,
    WeightsUnavailableError,
    histopathology_head,
    histopathology_resnet18,
    imagenet_classifier,
    pretrained,
    resolve_weights,
    set_trainable,
)

CACHE_DIRS = ("torch/hub", "torch/hub/checkpoints")
DOWNLOADED = (*CACHE_DIRS, "torch/hub/checkpoints/resnet18-*.pth")
FAKE = fake_resnet18_weights()
FAKE_NAME = hashed_name(FAKE)


# ---- helpers ---------------------------------------------------------------------------------------


def _cache(ws: Workspace) -> Path:
    return ws.torch_home / "hub" / "checkpoints"


def _point(ws: Workspace, name: str) -> None:
    """resnet18's weights url -> the fault server's /models/<name>."""
    ws.env.setitem(
        pretrained.WEIGHTS_URLS, "resnet18", ws.server.url(f"/models/{name}")
    )


def _online(ws: Workspace, name: str = FAKE_NAME, route: Route | None = None) -> None:
    """Downloads allowed, resnet18's url on the fault server, answering ``route`` (if given)."""
    ws.env.delenv("NBHELPERS_OFFLINE")
    ws.env.setattr(pretrained, "DOWNLOAD_BACKOFF_S", 0.01)
    _point(ws, name)
    if route is not None:
        ws.server.routes[f"/models/{name}"] = route


def _cached(name: str, payload: bytes, *, point: bool = True):
    """A setup placing ``payload`` as ``name`` in the weights cache (and pointing the url at it)."""

    def setup(ws: Workspace) -> None:
        if point:
            _point(ws, name)
        place(_cache(ws), name, payload)

    return setup


def _then(*setups):
    def setup(ws: Workspace) -> None:
        for step in setups:
            step(ws)

    return setup


def _source(result: Any) -> str:
    return result.weights_source if hasattr(result, "weights_source") else result.source


def _random_because(*patterns: str, requests: int | None = None):
    """Expect random initialisation whose source sentence matches every pattern."""

    def check(result: Any, ws: Workspace) -> None:
        source = _source(result)
        assert source.startswith("random initialisation"), source
        for pattern in patterns:
            assert re.search(pattern, source), f"{pattern!r} not in {source!r}"
        if requests is not None:
            assert sum(ws.server.requests.values()) == requests, ws.server.requests

    return check


def _imagenet(expected_source: str):
    def check(result: Any, ws: Workspace) -> None:
        assert _source(result) == expected_source, _source(result)
        if hasattr(result, "state_dict"):
            assert result.pretrained

    return check


def _is_none(result: Any, ws: Workspace) -> None:
    assert result is None, result


def _marker(ws: Workspace) -> Path:
    """Where the malicious pickle would create a folder: inside the workspace, so the check sees it."""
    return ws.root / "pwned"


def _malicious_real_name(ws: Workspace) -> None:
    place(_cache(ws), REAL_RESNET18_NAME, malicious_pickle(_marker(ws)))


def _malicious_matching_hash(ws: Workspace) -> None:
    payload = malicious_pickle(_marker(ws))
    _point(ws, hashed_name(payload))
    place(_cache(ws), hashed_name(payload), payload)


def _malicious_served(ws: Workspace) -> None:
    payload = malicious_pickle(_marker(ws))
    _online(ws, hashed_name(payload), Route(body=payload))


def _folder_in_place(ws: Workspace) -> None:
    (_cache(ws) / REAL_RESNET18_NAME).mkdir(parents=True)


def _dangling_link(ws: Workspace, name: str = REAL_RESNET18_NAME) -> None:
    _cache(ws).mkdir(parents=True)
    os.symlink(ws.root / "gone.pth", _cache(ws) / name)


def _read_only_cache(ws: Workspace) -> None:
    _online(ws, route=Route(body=FAKE))
    _cache(ws).mkdir(parents=True)
    os.chmod(_cache(ws), 0o555)


def _read_only_file(ws: Workspace) -> None:
    _cached(FAKE_NAME, FAKE)(ws)
    os.chmod(_cache(ws) / FAKE_NAME, 0o444)


def _torch_home_is_a_file(ws: Workspace) -> None:
    (ws.root / "afile").write_bytes(b"not a folder")
    ws.env.setenv("TORCH_HOME", str(ws.root / "afile"))


def _tokens(**kwargs: Any) -> torch.Tensor:
    return torch.zeros(2, 23, dtype=torch.long, **kwargs)


def _offline_typo(ws: Workspace) -> None:
    ws.env.setenv("NBHELPERS_OFFLINE", "sometimes")


def _unreachable(ws: Workspace) -> None:
    ws.env.delenv("NBHELPERS_OFFLINE")
    # Port 9 (discard) on the loopback: nothing listens there, the connection is refused at once.
    ws.env.setitem(
        pretrained.WEIGHTS_URLS, "resnet18", f"http://127.0.0.1:9/models/{FAKE_NAME}"
    )


WEIGHTS_CASES = [
    # ---- the cache -------------------------------------------------------------------------------
    Case(
        "cache-wrong-hash-auto",
        "files",
        "histopathology_resnet18",
        "other weights saved under torchvision's real name resnet18-f37072fd.pth",
        "random initialisation; the source names the file and the hash mismatch; file kept",
        setup=_cached(REAL_RESNET18_NAME, FAKE, point=False),
        act=lambda ws: histopathology_resnet18("auto"),
        expect=_random_because(f"{REAL_RESNET18_NAME} has sha256 .*not the f37072fd"),
    ),
    Case(
        "cache-wrong-hash-imagenet",
        "files",
        "histopathology_resnet18",
        "other weights under torchvision's real name, ImageNet weights required",
        "WeightsFileError naming the file and the expected prefix",
        setup=_cached(REAL_RESNET18_NAME, FAKE, point=False),
        act=lambda ws: histopathology_resnet18("imagenet"),
        raises=WeightsFileError,
        names=f"{REAL_RESNET18_NAME} has sha256 .*not the f37072fd",
    ),
    Case(
        "cache-truncated",
        "files",
        "resolve_weights",
        "the first half of the weights file in the cache",
        "WeightsFileError naming the file, its size and 'truncated'",
        setup=_cached(FAKE_NAME, FAKE[: len(FAKE) // 2]),
        act=lambda ws: resolve_weights("imagenet"),
        raises=WeightsFileError,
        names=f"{FAKE_NAME} has sha256 .*truncated.*{len(FAKE) // 2:,} bytes",
    ),
    Case(
        "cache-random-bytes",
        "files",
        "resolve_weights",
        "64 KiB of random bytes under the weights' name",
        "random initialisation naming the file",
        setup=_cached(FAKE_NAME, os.urandom(1 << 16)),
        act=lambda ws: resolve_weights("auto"),
        expect=_random_because(f"cached weights unusable: .*{FAKE_NAME} has sha256"),
    ),
    Case(
        "cache-empty-file",
        "files",
        "imagenet_classifier",
        "an empty file under the weights' name",
        "WeightsFileError naming the file and its 0 bytes",
        setup=_cached(FAKE_NAME, b""),
        act=lambda ws: imagenet_classifier("imagenet"),
        raises=WeightsFileError,
        names=f"{FAKE_NAME} has sha256 .*0 bytes",
    ),
    Case(
        "cache-malicious-real-name",
        "files",
        "imagenet_classifier",
        "a pickle that creates a folder when unpickled, under torchvision's real name",
        "WeightsFileError (hash) before any unpickling; nothing created",
        setup=_malicious_real_name,
        act=lambda ws: imagenet_classifier("imagenet"),
        raises=WeightsFileError,
        names=f"{REAL_RESNET18_NAME} has sha256",
    ),
    Case(
        "cache-malicious-matching-hash-auto",
        "files",
        "histopathology_resnet18",
        "the same pickle under a name whose hash prefix it matches (a compromised publisher)",
        "random initialisation: weights_only=True refuses it; nothing created",
        setup=_malicious_matching_hash,
        act=lambda ws: histopathology_resnet18("auto"),
        expect=_random_because("cannot be loaded with weights_only=True .*posix.mkdir"),
    ),
    Case(
        "cache-malicious-matching-hash-imagenet",
        "files",
        "imagenet_classifier",
        "the same pickle with a matching hash, ImageNet weights required",
        "WeightsFileError naming the file and the refused global; nothing created",
        setup=_malicious_matching_hash,
        act=lambda ws: imagenet_classifier("imagenet"),
        raises=WeightsFileError,
        names=r"resnet18-[0-9a-f]{8}\.pth cannot be loaded with weights_only=True .*posix.mkdir",
    ),
    Case(
        "cache-not-a-state-dict",
        "files",
        "resolve_weights",
        "a torch.save'd list [1, 2, 3] with a matching hash",
        "WeightsFileError: does not hold a state dict",
        setup=_cached(hashed_name(saved([1, 2, 3])), saved([1, 2, 3])),
        act=lambda ws: resolve_weights("imagenet"),
        raises=WeightsFileError,
        names="does not hold a state dict .* but a list",
    ),
    Case(
        "cache-other-network",
        "files",
        "histopathology_resnet18",
        "the state dict of an nn.Linear(3, 2) with a matching hash",
        "WeightsFileError: does not fit resnet18, naming the keys",
        setup=_cached(hashed_name(unfit_state()), unfit_state()),
        act=lambda ws: histopathology_resnet18("imagenet"),
        raises=WeightsFileError,
        names="does not fit torchvision's resnet18: missing .*unexpected \\['bias', 'weight'\\]",
    ),
    Case(
        "cache-folder-in-place-auto",
        "files",
        "resolve_weights",
        "a folder where the weights file belongs",
        "random initialisation naming the folder; folder kept",
        setup=_folder_in_place,
        act=lambda ws: resolve_weights("auto"),
        expect=_random_because(f"{REAL_RESNET18_NAME} is a folder"),
    ),
    Case(
        "cache-folder-in-place-imagenet",
        "files",
        "histopathology_resnet18",
        "a folder where the weights file belongs, ImageNet weights required",
        "WeightsFileError naming the folder",
        setup=_folder_in_place,
        act=lambda ws: histopathology_resnet18("imagenet"),
        raises=WeightsFileError,
        names=f"{REAL_RESNET18_NAME} is a folder",
    ),
    Case(
        "cache-dangling-symlink",
        "files",
        "histopathology_resnet18",
        "a symbolic link to a missing file where the weights file belongs",
        "random initialisation naming the link and its target; link kept",
        setup=_dangling_link,
        act=lambda ws: histopathology_resnet18("auto"),
        expect=_random_because(
            f"{REAL_RESNET18_NAME} is a dangling symbolic link \\(to .*gone.pth\\)"
        ),
    ),
    Case(
        "cache-dangling-symlink-online",
        "files",
        "resolve_weights",
        "a dangling link in place of the file while the weights are downloadable",
        "random initialisation naming the link; nothing downloaded through it (no request)",
        setup=_then(
            lambda ws: _online(ws, route=Route(body=FAKE)),
            lambda ws: _dangling_link(ws, FAKE_NAME),
        ),
        act=lambda ws: resolve_weights("auto"),
        expect=_random_because(f"{FAKE_NAME} is a dangling symbolic link", requests=0),
    ),
    Case(
        "cache-bad-file-not-downloaded-over",
        "files",
        "resolve_weights",
        "a truncated weights file while the full one is downloadable",
        "random initialisation naming the file; no request, the bad file unchanged",
        setup=_then(
            lambda ws: _online(ws, route=Route(body=FAKE)),
            _cached(FAKE_NAME, FAKE[:4096]),
        ),
        act=lambda ws: resolve_weights("auto"),
        expect=_random_because(
            f"{FAKE_NAME} has sha256", "delete it to download again", requests=0
        ),
    ),
    Case(
        "cache-read-only-folder-auto",
        "files",
        "resolve_weights",
        "the weights cache folder is read-only (0555) and the weights must be downloaded",
        "random initialisation naming the folder; no request sent",
        setup=_read_only_cache,
        act=lambda ws: resolve_weights("auto"),
        expect=_random_because(
            "download failed: folder .*checkpoints is not writable", requests=0
        ),
    ),
    Case(
        "cache-read-only-folder-imagenet",
        "files",
        "histopathology_resnet18",
        "the weights cache folder is read-only, ImageNet weights required",
        "WeightsUnavailableError naming the folder",
        setup=_read_only_cache,
        act=lambda ws: histopathology_resnet18("imagenet"),
        raises=WeightsUnavailableError,
        names="folder .*hub/checkpoints is not writable",
    ),
    Case(
        "cache-read-only-file",
        "files",
        "histopathology_resnet18",
        "intact weights in a read-only (0444) file",
        "loaded: reading needs no write permission",
        setup=_read_only_file,
        act=lambda ws: histopathology_resnet18("imagenet"),
        expect=_imagenet("imagenet (torchvision cache)"),
    ),
    # ---- the download ----------------------------------------------------------------------------
    Case(
        "download-404-auto",
        "network",
        "resolve_weights",
        "the weights url answers 404",
        "random initialisation naming the status and the url; no file",
        setup=lambda ws: _online(ws),
        act=lambda ws: resolve_weights("auto"),
        expect=_random_because(f"download failed: HTTP 404 .*/models/{FAKE_NAME}"),
        may_create=CACHE_DIRS,
    ),
    Case(
        "download-404-imagenet",
        "network",
        "histopathology_resnet18",
        "the weights url answers 404, ImageNet weights required",
        "WeightsUnavailableError naming the url",
        setup=lambda ws: _online(ws),
        act=lambda ws: histopathology_resnet18("imagenet"),
        raises=WeightsUnavailableError,
        names=f"HTTP 404 .*http://127.0.0.1:[0-9]+/models/{FAKE_NAME}",
        may_create=CACHE_DIRS,
    ),
    Case(
        "download-html-page",
        "network",
        "imagenet_classifier",
        "HTTP 200 with a captive portal's HTML page instead of the weights",
        "None (auto); nothing cached",
        setup=lambda ws: _online(
            ws, route=Route(body=b"<html>log in to the wifi</html>")
        ),
        act=lambda ws: imagenet_classifier("auto"),
        expect=_is_none,
        may_create=CACHE_DIRS,
    ),
    Case(
        "download-html-page-imagenet",
        "network",
        "imagenet_classifier",
        "an HTML page instead of the weights, ImageNet weights required",
        "WeightsUnavailableError naming the url and the sha256 mismatch",
        setup=lambda ws: _online(
            ws, route=Route(body=b"<html>log in to the wifi</html>")
        ),
        act=lambda ws: imagenet_classifier("imagenet"),
        raises=WeightsUnavailableError,
        names=f"sha256 mismatch for http://127.0.0.1:[0-9]+/models/{FAKE_NAME}",
        may_create=CACHE_DIRS,
    ),
    Case(
        "download-truncated",
        "network",
        "resolve_weights",
        "the server announces the full length and sends half of the weights, every time",
        "random initialisation naming the truncated transfer; no partial file",
        setup=lambda ws: _online(
            ws, route=Route(body=FAKE[: len(FAKE) // 2], announce=len(FAKE))
        ),
        act=lambda ws: resolve_weights("auto"),
        expect=_random_because(
            "truncated body", requests=pretrained.DOWNLOAD_RETRIES + 1
        ),
        may_create=CACHE_DIRS,
    ),
    Case(
        "download-checksum-mismatch",
        "network",
        "histopathology_resnet18",
        "valid weights served under a name whose hash prefix they do not match",
        "WeightsUnavailableError naming the url, the expected prefix and the digest",
        setup=lambda ws: _online(ws, "resnet18-00000000.pth", Route(body=FAKE)),
        act=lambda ws: histopathology_resnet18("imagenet"),
        raises=WeightsUnavailableError,
        names="sha256 mismatch for .*resnet18-00000000.pth: expected a digest starting 00000000",
        may_create=CACHE_DIRS,
    ),
    Case(
        "download-past-deadline",
        "network",
        "resolve_weights",
        "the server waits 1 s before answering; the download may take 0.3 s",
        "random initialisation naming the deadline; no partial file",
        setup=lambda ws: _online(ws, route=Route(body=FAKE, delay=1.0)),
        act=lambda ws: resolve_weights("auto", deadline=0.3),
        expect=_random_because("took more than 0.3 s"),
        may_create=CACHE_DIRS,
    ),
    Case(
        "download-throttled-server",
        "throttled servers",
        "resolve_weights",
        "the weights server sends one byte every 2 s (each read meets no socket "
        "timeout); deadline 3 s",
        "random initialisation within the deadline, naming it; no partial file",
        setup=lambda ws: _online(
            ws, route=Route(body=FAKE, trickle=2.0, trickle_body_only=True)
        ),
        act=lambda ws: within(8.0, resolve_weights, "auto", deadline=3.0),
        expect=_random_because("took more than 3 s"),
        may_create=CACHE_DIRS,
    ),
    Case(
        "download-connection-reset",
        "network",
        "histopathology_resnet18",
        "the server closes every connection without answering",
        "random initialisation after the retries, naming the url",
        setup=lambda ws: _online(ws, route=Route(reset=True)),
        act=lambda ws: histopathology_resnet18("auto"),
        expect=_random_because(
            f"download failed: .*/models/{FAKE_NAME}", "gave up after 3 attempts"
        ),
        may_create=CACHE_DIRS,
    ),
    Case(
        "download-server-error",
        "network",
        "resolve_weights",
        "HTTP 503 on every attempt",
        "random initialisation naming the status",
        setup=lambda ws: _online(ws, route=Route(status=503, body=b"busy")),
        act=lambda ws: resolve_weights("auto"),
        expect=_random_because("HTTP 503", requests=pretrained.DOWNLOAD_RETRIES + 1),
        may_create=CACHE_DIRS,
    ),
    Case(
        "download-malicious-with-matching-hash",
        "network",
        "histopathology_resnet18",
        "the server sends a code-running pickle whose hash matches the name",
        "downloaded (it is what was published) but refused by weights_only=True; nothing executed",
        setup=_malicious_served,
        act=lambda ws: histopathology_resnet18("auto"),
        expect=_random_because("cannot be loaded with weights_only=True"),
        may_create=DOWNLOADED,
    ),
    Case(
        "download-succeeds",
        "network",
        "histopathology_resnet18",
        "intact weights served at the url, nothing cached yet",
        "downloaded into the cache and loaded",
        setup=lambda ws: _online(ws, route=Route(body=FAKE)),
        act=lambda ws: histopathology_resnet18("imagenet"),
        expect=_imagenet("imagenet (downloaded into torchvision's cache)"),
        may_create=DOWNLOADED,
    ),
    # ---- the environment -------------------------------------------------------------------------
    Case(
        "offline-auto",
        "environment",
        "histopathology_resnet18",
        "NBHELPERS_OFFLINE=1, empty cache, weights='auto'",
        "random initialisation saying offline and naming the missing file",
        act=lambda ws: histopathology_resnet18("auto"),
        expect=_random_because("offline, NBHELPERS_OFFLINE is set", REAL_RESNET18_NAME),
    ),
    Case(
        "offline-imagenet",
        "environment",
        "histopathology_resnet18",
        "NBHELPERS_OFFLINE=1, empty cache, weights='imagenet'",
        "WeightsUnavailableError naming the variable and the file",
        act=lambda ws: histopathology_resnet18("imagenet"),
        raises=WeightsUnavailableError,
        names=f"NBHELPERS_OFFLINE is set, and {REAL_RESNET18_NAME} is not in torchvision's cache",
    ),
    Case(
        "offline-none",
        "environment",
        "histopathology_resnet18",
        "NBHELPERS_OFFLINE=1, weights='none'",
        "random initialisation; the cache is not even looked at",
        act=lambda ws: histopathology_resnet18("none"),
        expect=_random_because("weights='none'"),
    ),
    Case(
        "offline-classifier",
        "environment",
        "imagenet_classifier",
        "NBHELPERS_OFFLINE=1, empty cache",
        "None",
        act=lambda ws: imagenet_classifier(),
        expect=_is_none,
    ),
    Case(
        "offline-with-cached-weights",
        "environment",
        "imagenet_classifier",
        "NBHELPERS_OFFLINE=1 with intact weights in the cache",
        "the classifier, from the cache",
        setup=_cached(FAKE_NAME, FAKE),
        act=lambda ws: imagenet_classifier("imagenet"),
        expect=_imagenet("imagenet (torchvision cache)"),
    ),
    Case(
        "offline-typo",
        "environment",
        "histopathology_resnet18",
        "NBHELPERS_OFFLINE=sometimes, intact weights cached",
        "ValueError naming the variable and its value",
        setup=_then(_cached(FAKE_NAME, FAKE), _offline_typo),
        act=lambda ws: histopathology_resnet18("auto"),
        raises=ValueError,
        names="NBHELPERS_OFFLINE='sometimes'",
    ),
    Case(
        "torch-home-is-a-file",
        "environment",
        "resolve_weights",
        "TORCH_HOME names a file",
        "ValueError naming TORCH_HOME and the file",
        setup=_torch_home_is_a_file,
        act=lambda ws: resolve_weights("auto"),
        raises=ValueError,
        names="TORCH_HOME='.*afile': .*afile is a file, not a folder",
    ),
    Case(
        "torch-home-is-a-file-none",
        "environment",
        "histopathology_resnet18",
        "TORCH_HOME names a file, weights='none'",
        "random initialisation: no cache needed",
        setup=_torch_home_is_a_file,
        act=lambda ws: histopathology_resnet18("none"),
        expect=_random_because("weights='none'"),
    ),
    Case(
        "no-network",
        "environment",
        "resolve_weights",
        "online, but nothing listens at the weights url (connection refused)",
        "random initialisation saying the network is unreachable",
        setup=_unreachable,
        act=lambda ws: resolve_weights("auto"),
        expect=_random_because(
            "download failed: network unreachable: cannot connect to http://127.0.0.1:9/"
        ),
        may_create=CACHE_DIRS,
    ),
]

ARGUMENT_CASES = [
    Case(
        "weights-unknown-mode",
        "arguments",
        "histopathology_resnet18",
        "weights='pretrained'",
        "ValueError naming the value and the modes",
        act=lambda ws: histopathology_resnet18("pretrained"),
        raises=ValueError,
        names="weights must be one of \\('auto', 'imagenet', 'none'\\), got 'pretrained'",
    ),
    Case(
        "weights-bool",
        "arguments",
        "histopathology_resnet18",
        "weights=True (as torchvision's old pretrained=True)",
        "TypeError naming True",
        act=lambda ws: histopathology_resnet18(True),
        raises=TypeError,
        names="weights must be one of .*, got True",
    ),
    Case(
        "weights-none-object",
        "arguments",
        "resolve_weights",
        "weights=None (torchvision's spelling of 'no weights')",
        "TypeError naming None",
        act=lambda ws: resolve_weights(None),
        raises=TypeError,
        names="weights must be one of .*, got None",
    ),
    Case(
        "classifier-without-weights",
        "arguments",
        "imagenet_classifier",
        "weights='none' for an ImageNet classifier",
        "ValueError: a classifier needs its weights",
        act=lambda ws: imagenet_classifier("none"),
        raises=ValueError,
        names="weights must be one of \\('auto', 'imagenet'\\), got 'none'",
    ),
    Case(
        "arch-unknown",
        "arguments",
        "imagenet_classifier",
        "arch='vgg16'",
        "ValueError naming the value and the architectures",
        act=lambda ws: imagenet_classifier(arch="vgg16"),
        raises=ValueError,
        names="arch must be one of \\('resnet18', 'alexnet'\\), got 'vgg16'",
    ),
    Case(
        "arch-capitalised",
        "arguments",
        "resolve_weights",
        "arch='ResNet18'",
        "ValueError naming the value",
        act=lambda ws: resolve_weights("auto", "ResNet18"),
        raises=ValueError,
        names="got 'ResNet18'",
    ),
    Case(
        "deadline-zero",
        "arguments",
        "histopathology_resnet18",
        "deadline=0",
        "ValueError naming the deadline",
        act=lambda ws: histopathology_resnet18("auto", deadline=0),
        raises=ValueError,
        names="deadline must be a number of seconds > 0, got 0",
    ),
    Case(
        "head-zero-features",
        "arguments",
        "histopathology_head",
        "in_features=0",
        "ValueError naming in_features",
        act=lambda ws: histopathology_head(in_features=0),
        raises=ValueError,
        names="in_features must be a positive int, got 0",
    ),
    Case(
        "set-trainable-string",
        "arguments",
        "set_trainable",
        "trainable='no' (a truthy string)",
        "ValueError naming the value",
        act=lambda ws: set_trainable(histopathology_head(), "no"),
        raises=ValueError,
        names="trainable must be True or False, got 'no'",
    ),
    Case(
        "charcnn-zero-vocabulary",
        "arguments",
        "CharCNN",
        "vocab_size=0",
        "ValueError naming vocab_size",
        act=lambda ws: CharCNN(vocab_size=0),
        raises=ValueError,
        names="vocab_size must be a positive int, got 0",
    ),
    Case(
        "charcnn-float-length",
        "arguments",
        "CharCNN",
        "max_len=22.0",
        "TypeError naming max_len",
        act=lambda ws: CharCNN(max_len=22.0),
        raises=TypeError,
        names="max_len must be a positive int, got 22.0",
    ),
    Case(
        "charcnn-bool-width",
        "arguments",
        "CharCNN",
        "embedding_dim=True",
        "TypeError naming embedding_dim",
        act=lambda ws: CharCNN(embedding_dim=True),
        raises=TypeError,
        names="embedding_dim must be a positive int, got True",
    ),
    Case(
        "charcnn-context-too-long",
        "arguments",
        "CharCNN",
        "context=30 with max_len=22 (23 tokens)",
        "ValueError naming context and the input length",
        act=lambda ws: CharCNN(context=30),
        raises=ValueError,
        names="context=30 is longer than the input of max_len \\+ 1 = 23 tokens",
    ),
    Case(
        "charcnn-float-tokens",
        "arguments",
        "CharCNN.forward",
        "float32 token ids",
        "TypeError naming the dtype",
        act=lambda ws: CharCNN()(torch.zeros(2, 23)),
        raises=TypeError,
        names="int64 token ids, got dtype torch.float32",
    ),
    Case(
        "charcnn-int32-tokens",
        "arguments",
        "CharCNN.forward",
        "int32 token ids",
        "TypeError naming the dtype",
        act=lambda ws: CharCNN()(_tokens().int()),
        raises=TypeError,
        names="got dtype torch.int32",
    ),
    Case(
        "charcnn-token-out-of-vocabulary",
        "arguments",
        "CharCNN.forward",
        "token id 31 with a vocabulary of 31",
        "ValueError naming the id and the range",
        act=lambda ws: CharCNN()(_tokens() + 31),
        raises=ValueError,
        names="token id 31 is outside the vocabulary \\[0, 31\\)",
    ),
    Case(
        "charcnn-negative-token",
        "arguments",
        "CharCNN.forward",
        "token id -1",
        "ValueError naming the id",
        act=lambda ws: CharCNN()(_tokens() - 1),
        raises=ValueError,
        names="token id -1",
    ),
    Case(
        "charcnn-short-sequence",
        "arguments",
        "CharCNN.forward",
        "token ids of shape (2, 22): the leading '.' forgotten",
        "ValueError naming both shapes",
        act=lambda ws: CharCNN()(torch.zeros(2, 22, dtype=torch.long)),
        raises=ValueError,
        names="\\(B, 23\\) \\(max_len \\+ 1\\), got \\(2, 22\\)",
    ),
    Case(
        "charcnn-unbatched",
        "arguments",
        "CharCNN.forward",
        "one name's 23 token ids without a batch dimension",
        "ValueError naming the shape",
        act=lambda ws: CharCNN()(torch.zeros(23, dtype=torch.long)),
        raises=ValueError,
        names="got \\(23,\\)",
    ),
    Case(
        "charcnn-list-input",
        "arguments",
        "CharCNN.forward",
        "a Python list of token ids",
        "TypeError naming the type",
        act=lambda ws: CharCNN()([[0] * 23]),
        raises=TypeError,
        names="tensor of token ids, got list",
    ),
    Case(
        "charcnn-other-device",
        "arguments",
        "CharCNN.forward",
        "token ids on another device (meta) than the model (cpu)",
        "ValueError naming both devices",
        act=lambda ws: CharCNN()(_tokens(device="meta")),
        raises=ValueError,
        names="token ids are on meta but the model is on cpu",
    ),
]


class _FunctionalReLU(torch.nn.Module):
    """Declares an ``nn.ReLU`` but calls ``F.relu``: the declared gate never runs."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)
        self.relu = torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.relu(self.linear(x))


ARGUMENT_CASES += [
    Case(
        "guided-backprop-functional-relu",
        "arguments",
        "guided_backprop",
        "a model with an unused nn.ReLU whose forward calls F.relu",
        "ValueError: no gate ran in the forward pass (not the plain gradient, silently)",
        act=lambda ws: guided_backprop(_FunctionalReLU(), torch.randn(2, 4)),
        raises=ValueError,
        names=r"none of the 1 gated modules .* ran",
    ),
]

CASES = WEIGHTS_CASES + ARGUMENT_CASES


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_models_case(case: Case, workspace: Workspace) -> None:
    run_case(case, workspace)
