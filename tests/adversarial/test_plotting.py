"""Hostile inputs against nbhelpers.plotting: bad arguments to every figure, and the plotting
environments of a kernel (a backend that draws only to files, a stale font cache)."""

from __future__ import annotations

import sys
import types

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from harness import Case, Workspace, run_case  # noqa: E402

from nbhelpers import plotting  # noqa: E402
from nbhelpers.models import CharCNN, mnist_cnn  # noqa: E402


def _untrained_trainer() -> object:
    from nbhelpers.train import Trainer

    return Trainer(nn.Linear(3, 2), None, None, device="cpu", verbose=False)


class _FakeShell:
    """What IPython's get_ipython() returns inside a kernel, recording line magics."""

    def __init__(self) -> None:
        self.kernel = object()
        self.magics: list[tuple[str, str]] = []

    def run_line_magic(self, name: str, line: str) -> None:
        self.magics.append((name, line))


def _kernel_with_agg(ws: Workspace) -> _FakeShell:
    shell = _FakeShell()
    ws.env.setenv("MPLBACKEND", "Agg")
    ws.env.setitem(
        sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell)
    )
    plotting._show_figures_inline_in_kernel()
    return shell


def _switched_to_inline(shell: _FakeShell, _ws: Workspace) -> None:
    assert shell.magics == [("matplotlib", "inline")], shell.magics


def _stale_font_cache(ws: Workspace) -> set[str]:
    from matplotlib import font_manager

    manager = font_manager.fontManager
    stale = [
        f
        for f in manager.ttflist
        if not f.name.startswith("STIX") and "Bold" not in f.fname
    ]
    ws.env.setattr(manager, "ttflist", stale)  # restored after the case
    manager._findfont_cached.cache_clear()
    plotting._register_missing_bundled_fonts()
    names = {f.name for f in manager.ttflist}
    manager._findfont_cached.cache_clear()
    return names


def _has_stix(names: set[str], _ws: Workspace) -> None:
    assert "STIXGeneral" in names, sorted(names)[:10]


def _tight_embed_limit(ws: Workspace) -> object:
    ws.env.setitem(matplotlib.rcParams, "animation.embed_limit", 0.02)
    return plotting.animate_convolution(torch.rand(6, 6), torch.ones(3, 3))


CASES = [
    # ---- images and grids
    Case(
        "show-images-none",
        "arguments",
        "show_images",
        "an empty list of images",
        "ValueError saying that at least one image is needed",
        act=lambda ws: plotting.show_images([]),
        raises=ValueError,
        names="at least one image",
    ),
    Case(
        "show-images-titles-short",
        "arguments",
        "show_images",
        "three images and two titles",
        "ValueError naming both counts",
        act=lambda ws: plotting.show_images([torch.rand(4, 4)] * 3, ["a", "b"]),
        raises=ValueError,
        names="3 images but 2 titles",
    ),
    Case(
        "show-images-ncols-zero",
        "arguments",
        "show_images",
        "ncols=0",
        "ValueError naming ncols",
        act=lambda ws: plotting.show_images([torch.rand(4, 4)], ncols=0),
        raises=ValueError,
        names="ncols must be >= 1, got 0",
    ),
    Case(
        "image-4d",
        "arguments",
        "to_numpy_image",
        "a (1, 3, 8, 8) batch where one image is expected",
        "ValueError naming the shape",
        act=lambda ws: plotting.to_numpy_image(torch.rand(1, 3, 8, 8)),
        raises=ValueError,
        names=r"\(1, 3, 8, 8\)",
    ),
    Case(
        "annotated-none",
        "arguments",
        "plot_annotated_matrices",
        "an empty mapping",
        "ValueError saying that a matrix is needed",
        act=lambda ws: plotting.plot_annotated_matrices({}),
        raises=ValueError,
        names="at least one matrix",
    ),
    Case(
        "annotated-batch",
        "arguments",
        "plot_annotated_matrices",
        "a (2, 1, 4, 4) batch of two matrices",
        "ValueError naming the title and the shape",
        act=lambda ws: plotting.plot_annotated_matrices({"X": torch.rand(2, 1, 4, 4)}),
        raises=ValueError,
        names=r"'X'.*\(2, 1, 4, 4\)",
    ),
    Case(
        "patch-grid-box",
        "arguments",
        "plot_patch_grid",
        "box=(64, 32), end before first",
        "ValueError naming the box",
        act=lambda ws: plotting.plot_patch_grid(
            [np.zeros((96, 96, 3), np.uint8)], [0], box=(64, 32)
        ),
        raises=ValueError,
        names=r"\(64, 32\)",
    ),
    Case(
        "augmentation-ragged",
        "arguments",
        "plot_augmentation_epochs",
        "three views in epoch 0, two in epoch 1",
        "ValueError naming the views per epoch",
        act=lambda ws: plotting.plot_augmentation_epochs(
            [[torch.rand(3, 8, 8)] * 3, [torch.rand(3, 8, 8)] * 2],
            [torch.rand(3, 8, 8)] * 2,
            [0, 1, 0],
            1,
        ),
        raises=ValueError,
        names=r"\[3, 2\]",
    ),
    # ---- evaluation figures
    Case(
        "confusion-negative",
        "arguments",
        "plot_confusion_matrix",
        "a count of -3",
        "ValueError naming the count and its cell",
        act=lambda ws: plotting.plot_confusion_matrix(
            np.array([[1, -3], [0, 2]]), ["a", "b"]
        ),
        raises=ValueError,
        names="-3 in row 0, column 1",
    ),
    Case(
        "confusion-shape",
        "arguments",
        "plot_confusion_matrix",
        "a 3 x 3 matrix with two class names",
        "ValueError naming the expected and the actual shape",
        act=lambda ws: plotting.plot_confusion_matrix(np.zeros((3, 3)), ["a", "b"]),
        raises=ValueError,
        names=r"\(2, 2\).*\(3, 3\)",
    ),
    Case(
        "precision-recall-lengths",
        "arguments",
        "plot_precision_recall",
        "two precision values, one recall value",
        "ValueError naming both shapes",
        act=lambda ws: plotting.plot_precision_recall([0.5, 1.0], [1.0]),
        raises=ValueError,
        names=r"\(2,\) and \(1,\)",
    ),
    Case(
        "guided-alpha",
        "arguments",
        "plot_guided_backprop",
        "overlay_alpha=1.5",
        "ValueError naming the value",
        act=lambda ws: plotting.plot_guided_backprop(
            [torch.rand(3, 8, 8)], [torch.rand(8, 8)], overlay_alpha=1.5
        ),
        raises=ValueError,
        names="1.5",
    ),
    Case(
        "guided-map-shape",
        "arguments",
        "plot_guided_backprop",
        "a 4 x 4 map for an 8 x 8 image",
        "ValueError naming both shapes",
        act=lambda ws: plotting.plot_guided_backprop(
            [torch.rand(3, 8, 8)], [torch.rand(4, 4)]
        ),
        raises=ValueError,
        names=r"\(4, 4\).*\(8, 8\)",
    ),
    # ---- training figures
    Case(
        "history-untrained",
        "arguments",
        "plot_training_history",
        "a Trainer that never ran",
        "ValueError saying to call run() first",
        act=lambda ws: plotting.plot_training_history(_untrained_trainer()),
        raises=ValueError,
        names=r"trainer 0 .*run\(\)",
    ),
    Case(
        "schedule-lengths",
        "arguments",
        "plot_schedule",
        "two learning rates, one momentum",
        "ValueError naming both counts",
        act=lambda ws: plotting.plot_schedule([0.1, 0.2], [0.9]),
        raises=ValueError,
        names="2 learning rates but 1 momentum",
    ),
    Case(
        "feature-maps-channel",
        "arguments",
        "plot_feature_maps",
        "channel 40 of a 32-channel layer",
        "ValueError naming the layer and the channel",
        act=lambda ws: plotting.plot_feature_maps(
            torch.rand(1, 28, 28), [[("Conv2d", torch.rand(32, 28, 28))]], channels=[40]
        ),
        raises=ValueError,
        names="'Conv2d' has 32 channels; cannot show channel 40",
    ),
    Case(
        "prediction-bars-labels",
        "arguments",
        "plot_prediction_bars",
        "ten probabilities, one class label",
        "ValueError naming both counts",
        act=lambda ws: plotting.plot_prediction_bars(
            torch.full((10,), 0.1), classes=["a"]
        ),
        raises=ValueError,
        names="10 probabilities but 1 class labels",
    ),
    Case(
        "length-histogram-negative",
        "arguments",
        "plot_length_histogram",
        "a length of -4",
        "ValueError naming the length",
        act=lambda ws: plotting.plot_length_histogram([3, -4]),
        raises=ValueError,
        names="-4",
    ),
    # ---- diagrams and animations
    Case(
        "animation-3d-input",
        "arguments",
        "animate_convolution",
        "a (3, 6, 6) input",
        "ValueError naming the shapes",
        act=lambda ws: plotting.animate_convolution(
            torch.rand(3, 6, 6), torch.ones(3, 3)
        ),
        raises=ValueError,
        names=r"\(3, 6, 6\)",
    ),
    Case(
        "animation-stride-zero",
        "arguments",
        "animate_convolution",
        "stride=0",
        "ValueError naming the stride",
        act=lambda ws: plotting.animate_convolution(
            torch.rand(6, 6), torch.ones(3, 3), stride=0
        ),
        raises=ValueError,
        names="stride=0",
    ),
    Case(
        "animation-too-large",
        "arguments",
        "animate_convolution",
        "a 20 x 20 input, too many numbers to read",
        "ValueError naming the shape",
        act=lambda ws: plotting.animate_convolution(
            torch.rand(20, 20), torch.ones(3, 3)
        ),
        raises=ValueError,
        names=r"\(20, 20\)",
    ),
    Case(
        "animation-embed-limit",
        "environment",
        "animate_convolution",
        "animation.embed_limit set to 0.02 MB, too small for 16 frames",
        "ValueError naming the frames and the limit, not a silently shortened animation",
        act=_tight_embed_limit,
        raises=ValueError,
        names="of 16 frames fit into animation.embed_limit = 0.02 MB",
    ),
    Case(
        "connectivity-outside",
        "arguments",
        "plot_local_connectivity",
        "output pixel (4, 0) of a 4 x 4 output",
        "ValueError naming the pixel and the output size",
        act=lambda ws: plotting.plot_local_connectivity(n=6, k=3, outputs=[(4, 0)]),
        raises=ValueError,
        names=r"\(4, 0\) is outside the 4x4 output",
    ),
    Case(
        "receptive-field-stride-zero",
        "arguments",
        "receptive_fields",
        "a pooling layer with stride 0",
        "ValueError naming the layer",
        act=lambda ws: plotting.receptive_fields([("conv", 3, 1), ("pool", 2, 0)]),
        raises=ValueError,
        names="'pool'.*2 and 0",
    ),
    Case(
        "gap-batch",
        "arguments",
        "plot_global_average_pooling",
        "a batch of two stacks of feature maps",
        "ValueError naming the shape",
        act=lambda ws: plotting.plot_global_average_pooling(torch.rand(2, 3, 4, 4)),
        raises=ValueError,
        names=r"\(2, 3, 4, 4\)",
    ),
    Case(
        "architecture-not-sequential",
        "arguments",
        "plot_architecture",
        "a CharCNN, whose children do not run in order",
        "ValueError naming the class",
        act=lambda ws: plotting.plot_architecture(CharCNN(), (23,)),
        raises=ValueError,
        names="CharCNN",
    ),
    Case(
        "architecture-input-shape",
        "arguments",
        "plot_architecture",
        "input_shape (1, 28), neither (C, H, W) nor (N,)",
        "ValueError naming the shape",
        act=lambda ws: plotting.plot_architecture(mnist_cnn(), (1, 28)),
        raises=ValueError,
        names=r"\(1, 28\)",
    ),
    Case(
        "char-convolution-positions",
        "arguments",
        "plot_char_convolution",
        "20 response positions for 23 tokens and context 3 (21 expected)",
        "ValueError naming the expected and the actual shape",
        act=lambda ws: plotting.plot_char_convolution(
            ".ana" + "." * 19, torch.randn(23, 10), torch.rand(4, 20), 3
        ),
        raises=ValueError,
        names=r"\(D, 21\).*\(4, 20\)",
    ),
    Case(
        "text-colour-grey-scalar",
        "arguments",
        "text_colour_on",
        "a two-component colour",
        "ValueError naming the colour",
        act=lambda ws: plotting.text_colour_on((0.5, 0.5)),
        raises=ValueError,
        names=r"\(0.5, 0.5\)",
    ),
    # ---- the plotting environment of a kernel
    Case(
        "kernel-with-agg",
        "environment",
        "import nbhelpers.plotting in a kernel",
        "MPLBACKEND=Agg in a Jupyter kernel (figures would go nowhere)",
        "switched to the inline backend",
        act=_kernel_with_agg,
        expect=_switched_to_inline,
    ),
    Case(
        "stale-font-cache",
        "environment",
        "import nbhelpers.plotting",
        "a font cache that lacks matplotlib's STIX and bold fonts",
        "the bundled fonts are registered again (no findfont warnings)",
        act=_stale_font_cache,
        expect=_has_stix,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_plotting_case(case: Case, workspace: Workspace) -> None:
    try:
        run_case(case, workspace)
    finally:
        plt.close("all")
