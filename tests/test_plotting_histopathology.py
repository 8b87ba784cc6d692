"""The figures of chapters 05 and 06 in nbhelpers.plotting: each returns a Figure and checks its input."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from nbhelpers import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_patch_grid_titles_and_centre_box():
    patches = [np.full((96, 96, 3), 40 * k, np.uint8) for k in range(7)]
    fig = plotting.plot_patch_grid(patches, [0, 1, 0, 1, 1, 0, 1], ncols=5)
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 10  # 2 rows of 5; the last 3 empty
    assert [ax.get_title() for ax in axes[:7]] == [
        f"label {k}" for k in (0, 1, 0, 1, 1, 0, 1)
    ]
    boxes = [p for p in axes[0].patches if isinstance(p, Rectangle)]
    assert (
        len(boxes) == 1
        and boxes[0].get_xy() == (31.5, 31.5)
        and boxes[0].get_width() == 32
    )
    tensor_fig = plotting.plot_patch_grid(
        [torch.rand(3, 96, 96)], [1], box=None, title_prefix="predicted"
    )
    assert (
        tensor_fig.axes[0].get_title() == "predicted 1"
        and not tensor_fig.axes[0].patches
    )


def test_patch_grid_rejects_bad_input():
    with pytest.raises(ValueError, match="labels"):
        plotting.plot_patch_grid([np.zeros((96, 96, 3), np.uint8)], [0, 1])
    with pytest.raises(ValueError, match="box"):
        plotting.plot_patch_grid([np.zeros((96, 96, 3), np.uint8)], [0], box=(64, 32))
    with pytest.raises(ValueError, match="ncols"):
        plotting.plot_patch_grid([np.zeros((96, 96, 3), np.uint8)], [0], ncols=0)


def test_augmentation_epochs_grid():
    views = [[torch.rand(3, 49, 49) for _ in range(3)] for _ in range(2)]
    fig = plotting.plot_augmentation_epochs(
        views, [torch.rand(3, 49, 49)] * 2, [1, 0, 1], 0
    )
    assert isinstance(fig, Figure) and len(fig.axes) == 8
    assert [ax.get_title() for ax in fig.axes[:4]] == [
        "instance 0",
        "instance 1",
        "instance 2",
        "valid",
    ]
    assert (
        fig.axes[4].get_ylabel() == "epoch 1" and fig.axes[3].get_xlabel() == "label 0"
    )
    with pytest.raises(ValueError, match="validation view"):
        plotting.plot_augmentation_epochs(views, [torch.rand(3, 49, 49)], [1, 0, 1], 0)
    with pytest.raises(ValueError, match="same number"):
        plotting.plot_augmentation_epochs(
            [views[0], views[1][:2]], [torch.rand(3, 49, 49)] * 2, [1, 0, 1], 0
        )


def test_confusion_matrix_counts_and_shares():
    fig = plotting.plot_confusion_matrix(
        torch.tensor([[30, 10], [5, 15]]), ["no tumour", "tumour"], title="valid"
    )
    assert isinstance(fig, Figure)
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == sorted(["30\n75.0%", "10\n25.0%", "5\n25.0%", "15\n75.0%"])
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        plotting.plot_confusion_matrix(np.zeros((3, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="counts"):
        plotting.plot_confusion_matrix(np.array([[1, -1], [0, 0]]), ["a", "b"])


def test_precision_recall_curve():
    fig = plotting.plot_precision_recall(
        [0.4, 0.6, 1.0],
        [1.0, 0.5, 0.0],
        average_precision=0.7,
        positive_share=0.4,
        operating_point=(0.5, 0.6),
    )
    assert isinstance(fig, Figure)
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert labels == ["model (AP = 0.700)", "chance (0.40)", "threshold 0.5"]
    assert isinstance(
        plotting.plot_precision_recall(np.array([1.0]), np.array([0.0])), Figure
    )
    with pytest.raises(ValueError, match="equal length"):
        plotting.plot_precision_recall([0.5, 1.0], [1.0])


def test_tumour_map_three_panels_in_the_slides_coordinates():
    slide = np.full((100, 100, 3), 200, np.uint8)
    tumour = np.zeros((100, 100), bool)
    tumour[40:60, 40:60] = True
    truth = np.zeros((4, 4), bool)
    truth[1:3, 1:3] = True
    probabilities = torch.rand(4, 4)
    fig = plotting.plot_tumour_map(slide, tumour, truth, probabilities, stride=16)
    assert isinstance(fig, Figure)
    panels, colorbar = fig.axes[:3], fig.axes[3:]
    assert len(colorbar) == 1
    assert [len(ax.images) for ax in panels] == [1, 1, 1]
    assert len(panels[0].collections) >= 1  # the tumour outline
    # cells are stride squares centred on the windows' centres: 24 - 8 .. 24 - 8 + 4 * 16
    assert panels[2].images[0].get_extent() == [16.0, 80.0, 80.0, 16.0]
    for ax in panels:
        assert ax.get_xlim() == (-0.5, 99.5) and ax.get_ylim() == (99.5, -0.5)


def test_tumour_map_rejects_maps_that_do_not_fit_the_slide():
    slide = np.zeros((100, 100, 3), np.uint8)
    tumour = np.zeros((100, 100), bool)
    with pytest.raises(ValueError, match="4 x 4 windows"):
        plotting.plot_tumour_map(slide, tumour, np.zeros((3, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="tumour mask"):
        plotting.plot_tumour_map(slide, tumour[:50], np.zeros((4, 4)), np.zeros((4, 4)))
