"""The explanatory diagrams and animations of nbhelpers.plotting, the readable-text rules, and the
set-up that makes a Jupyter kernel show figures whatever the caller's plotting environment."""

from __future__ import annotations

import base64
import re
import sys
import types

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from nbhelpers import plotting  # noqa: E402
from nbhelpers.models import LENET5_STAGES, CharCNN, mnist_cnn  # noqa: E402

# The text column of the rendered book at a 1280-pixel-wide window: 752 CSS pixels (Chromium).
COLUMN_PIXELS = 750
SMALLEST_READABLE_PIXELS = 9.5


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def texts_of(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def smallest_text_pixels(fig: Figure) -> float:
    """Height in screen pixels of the smallest visible text once the figure fits the column."""
    width_pixels = fig.get_figwidth() * fig.dpi
    scale = min(1.0, COLUMN_PIXELS / width_pixels)
    sizes = [
        t.get_fontsize() for t in fig.findobj(Text) if t.get_text() and t.get_visible()
    ]
    return min(sizes) * fig.dpi / 72 * scale


# --- readable text on coloured cells -------------------------------------------------------


def test_text_colour_is_white_on_dark_cells_and_black_on_light_ones():
    assert plotting.text_colour_on((0.0, 0.0, 0.0)) == "white"
    assert plotting.text_colour_on((0.1, 0.1, 0.5, 1.0)) == "white"
    assert plotting.text_colour_on((1.0, 1.0, 1.0)) == "black"
    assert plotting.text_colour_on((1.0, 1.0, 0.0, 1.0)) == "black"  # yellow is light


def test_text_colour_refuses_a_colour_without_three_channels():
    with pytest.raises(ValueError, match=r"\(0.5, 0.5\)"):
        plotting.text_colour_on((0.5, 0.5))


def test_annotated_matrix_writes_white_on_the_dark_end_of_viridis_and_black_on_the_light_end():
    fig = plotting.plot_annotated_matrices({"X": torch.tensor([[0.0, 9.0]])})
    colours = {t.get_text(): t.get_color() for t in fig.axes[0].texts}
    assert colours == {"0": "white", "9": "black"}


def test_annotated_matrix_with_negative_entries_puts_the_most_negative_at_the_dark_end():
    fig = plotting.plot_annotated_matrices({"G": torch.tensor([[-4.0, 0.0, 4.0]])})
    image = fig.axes[0].images[0]
    assert image.norm.vmin == -4.0
    colours = {t.get_text(): t.get_color() for t in fig.axes[0].texts}
    assert colours["-4"] == "white" and colours["4"] == "black"


def test_annotated_matrices_take_a_size_per_matrix_within_the_page():
    wide = plotting.plot_annotated_matrices(
        {"a": torch.ones(9, 9), "b": torch.ones(9, 9)}, size=3.5
    )
    assert wide.get_size_inches()[0] == pytest.approx(7.0)
    many = plotting.plot_annotated_matrices(
        {str(i): torch.ones(2, 2) for i in range(4)}, size=3.5
    )
    assert many.get_size_inches()[0] <= plotting.PAGE_WIDTH + 1e-9


def test_kernel_recovery_draws_the_loss_on_a_log_axis_and_both_kernels_on_one_scale():
    true = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    learned = true - 0.004  # the zeros become -0.004: written "0.00", not "-0.00"
    fig = plotting.plot_kernel_recovery([12.0, 0.5, 1e-3], learned[None, None], true)
    loss_axes, learned_axes, true_axes = fig.axes
    assert loss_axes.get_yscale() == "log"
    assert list(loss_axes.lines[0].get_ydata()) == [12.0, 0.5, 1e-3]
    assert [t.get_text() for t in learned_axes.texts][:3] == ["-1.00", "0.00", "1.00"]
    assert learned_axes.images[0].get_array()[0, 1] == pytest.approx(-0.004)
    assert [t.get_text() for t in true_axes.texts][3] == "-2.00"
    assert learned_axes.images[0].get_clim() == true_axes.images[0].get_clim()


@pytest.mark.parametrize(
    "losses, learned, message",
    [
        ([1.0], torch.zeros(2, 3, 3), "learned kernel must be"),
        ([1.0], torch.zeros(2, 2), "the kernels differ in shape"),
        ([], torch.zeros(3, 3), "at least one value"),
        ([1.0, 0.0], torch.zeros(3, 3), "all > 0"),
    ],
)
def test_kernel_recovery_names_the_bad_input(losses, learned, message):
    with pytest.raises(ValueError, match=message):
        plotting.plot_kernel_recovery(losses, learned, torch.zeros(3, 3))


def test_confusion_matrix_text_follows_the_cell_brightness():
    fig = plotting.plot_confusion_matrix(np.array([[99, 1], [50, 50]]), ["a", "b"])
    colours = {t.get_text().split("\n")[0]: t.get_color() for t in fig.axes[0].texts}
    assert colours["99"] == "white" and colours["1"] == "black"


# --- figures fit the text column --------------------------------------------------------


def figures_of_the_book() -> dict[str, Figure]:
    torch.manual_seed(0)
    X = torch.rand(1, 3, 32, 32)
    components = {(c, k): torch.rand(28, 28) for c in range(3) for k in range(4)}
    model = mnist_cnn()
    digit = torch.rand(1, 1, 28, 28)
    outputs, x = [], digit
    for layer in model.eval():
        x = layer(x)
        outputs.append((type(layer).__name__, x[0].detach()))
    return {
        "show_images, 8 in a row": plotting.show_images(
            [torch.rand(28, 28)] * 8, ["label 8"] * 8
        ),
        "conv_components": plotting.plot_conv_components(
            X, components, [torch.rand(28, 28)] * 4
        ),
        "feature_maps": plotting.plot_feature_maps(
            digit[0], [outputs[0:3], outputs[3:6], outputs[6:]]
        ),
        "local_connectivity": plotting.plot_local_connectivity(),
        "receptive_field": plotting.plot_receptive_field(
            [("conv", 3, 1), ("pool", 2, 2), ("conv", 3, 1)]
        ),
        "global_average_pooling": plotting.plot_global_average_pooling(
            torch.rand(8, 20, 20)
        ),
        "architecture": plotting.plot_architecture(model, (1, 28, 28)),
        "layer_stacks": plotting.plot_layer_stacks(
            {"LeNet-5": LENET5_STAGES, "this chapter": BOOK_STAGES}
        ),
        "kernels": plotting.plot_kernels(torch.randn(32, 1, 3, 3), title="kernels"),
        "lr_range_test": plotting.plot_lr_range_test(
            [1e-4, 1e-3, 1e-2], [2.3, 1.0, 9.0], [2.3, 1.5, 4.0], {"max_lr": 3e-3}
        ),
        "char_convolution": plotting.plot_char_convolution(
            ".maria" + "." * 17, torch.randn(23, 10), torch.rand(64, 21), context=3
        ),
    }


def test_every_label_stays_readable_when_the_figure_fits_the_text_column():
    too_small = {
        name: round(pixels, 1)
        for name, fig in figures_of_the_book().items()
        if (pixels := smallest_text_pixels(fig)) < SMALLEST_READABLE_PIXELS
    }
    assert not too_small, (
        f"text smaller than {SMALLEST_READABLE_PIXELS} px at page width: {too_small}"
    )


def test_a_long_row_of_images_is_shrunk_to_the_page_width():
    fig = plotting.show_images([torch.rand(8, 8)] * 10, size=2.2)
    assert fig.get_figwidth() == pytest.approx(plotting.PAGE_WIDTH)


# --- animations ---------------------------------------------------------------------------


def frames_of(animation: plotting.Animation) -> list[bytes]:
    found = re.findall(
        r'frames\[\d+\] = "data:image/png;base64,([^"]+)"',
        animation.html.replace("\\\n", ""),
    )
    return [base64.b64decode(frame) for frame in found]


def test_convolution_animation_has_one_frame_per_output_value_and_plays_without_a_cdn():
    animation = plotting.animate_convolution(
        torch.arange(25.0).reshape(5, 5), torch.ones(3, 3)
    )
    assert animation.frames == 9
    frames = frames_of(animation)
    assert len(frames) == 9 and all(frame.startswith(b"\x89PNG") for frame in frames)
    assert animation._repr_html_() == animation.html
    assert "maxcdn" not in animation.html and "<script" in animation.html
    assert 'class="animation"' in animation.html
    # the figure is closed: a notebook shows no extra still image
    assert plt.get_fignums() == []


def test_strided_padded_animation_has_one_frame_per_output_value_and_shows_the_sums():
    X = torch.arange(25.0).reshape(5, 5)
    animation = plotting.animate_convolution(X, torch.ones(3, 3), stride=2, padding=1)
    assert animation.frames == 9  # (5 + 2 - 3) // 2 + 1 = 3 per axis
    expected = torch.nn.functional.conv2d(
        X[None, None], torch.ones(1, 1, 3, 3), stride=2, padding=1
    )
    assert expected.numel() == 9


def test_animation_frames_stay_small_enough_for_a_light_page():
    animation = plotting.animate_convolution(
        torch.rand(6, 6).round(decimals=1), torch.ones(3, 3)
    )
    assert len(animation.html) < 1_000_000


def test_animation_that_exceeds_the_embed_limit_is_refused_not_cut_short():
    with matplotlib.rc_context(
        {"animation.embed_limit": 0.02}
    ):  # 20 kB: only a frame or two fit
        with pytest.raises(
            ValueError, match=r"of 16 frames fit into animation.embed_limit = 0.02 MB"
        ):
            plotting.animate_convolution(torch.rand(6, 6), torch.ones(3, 3))
    assert plt.get_fignums() == []


@pytest.mark.parametrize(
    ("X", "K", "kwargs", "message"),
    [
        (torch.rand(3, 4, 4), torch.ones(3, 3), {}, r"\(3, 4, 4\)"),
        (torch.rand(6, 6), torch.ones(2, 3), {}, r"\(2, 3\)"),
        (torch.rand(13, 13), torch.ones(3, 3), {}, r"\(13, 13\)"),
        (torch.rand(6, 6), torch.ones(3, 3), {"stride": 0}, "stride=0"),
        (torch.rand(6, 6), torch.ones(3, 3), {"padding": -1}, "padding=-1"),
        (
            torch.rand(2, 2),
            torch.ones(3, 3),
            {},
            r"kernel 3x3 is larger than the padded input \(2, 2\)",
        ),
    ],
)
def test_convolution_animation_names_the_bad_input(X, K, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plotting.animate_convolution(X, K, **kwargs)


# --- local connectivity -------------------------------------------------------------------


def test_local_connectivity_connects_a_dense_output_to_every_input_and_a_conv_output_to_its_window():
    fig = plotting.plot_local_connectivity(n=6, k=3, outputs=[(0, 0), (2, 3)])
    dense, conv = fig.axes
    assert len(dense.lines) == 36
    assert len(conv.lines) == 2 * 9
    assert "576 weights" in dense.get_title() and "same 9 weights" in conv.get_title()


def test_local_connectivity_refuses_an_output_pixel_outside_the_output():
    with pytest.raises(ValueError, match=r"\(4, 0\) is outside the 4x4 output"):
        plotting.plot_local_connectivity(n=6, k=3, outputs=[(4, 0)])
    with pytest.raises(ValueError, match="k=7"):
        plotting.plot_local_connectivity(n=6, k=7)


# --- receptive field ----------------------------------------------------------------------


def test_receptive_fields_of_the_chapter_stack():
    stack = [("conv", 3, 1), ("conv", 3, 1), ("pool", 2, 2), ("conv", 3, 1)]
    assert plotting.receptive_fields(stack) == [1, 3, 5, 6, 10]


layer_specs = st.lists(
    st.tuples(st.integers(1, 4), st.integers(1, 3)), min_size=1, max_size=4
)


@settings(max_examples=40, deadline=None)
@given(layer_specs)
def test_receptive_field_equals_the_input_span_that_a_gradient_reaches(specs):
    """Backpropagate from one top unit through 1D layers of positive weights: the input pixels
    with a nonzero gradient are exactly the receptive field."""
    width = plotting.receptive_fields([("l", k, s) for k, s in specs])[-1] + 40
    layers = []
    for kernel, stride in specs:
        conv = nn.Conv1d(1, 1, kernel_size=kernel, stride=stride, bias=False)
        nn.init.constant_(conv.weight, 1.0)
        layers.append(conv)
    x = torch.ones(1, 1, width, requires_grad=True)
    out = nn.Sequential(*layers)(x)
    out[0, 0, out.shape[-1] // 2].backward()
    reached = torch.nonzero(x.grad[0, 0]).flatten()
    span = int(reached.max() - reached.min() + 1)
    assert span == plotting.receptive_fields([("l", k, s) for k, s in specs])[-1]


def test_receptive_field_figure_labels_every_row_with_its_field():
    fig = plotting.plot_receptive_field(
        [("conv 3x3", 3, 1), ("pool", 2, 2), ("conv 3x3", 3, 1)]
    )
    labels = [t for t in texts_of(fig) if t.startswith("receptive field")]
    assert labels == [
        "receptive field 1",
        "receptive field 3",
        "receptive field 4",
        "receptive field 8",
    ]


def test_receptive_field_refuses_a_zero_stride_and_an_empty_stack():
    with pytest.raises(ValueError, match="'pool'"):
        plotting.receptive_fields([("pool", 2, 0)])
    with pytest.raises(ValueError, match="at least one layer"):
        plotting.plot_receptive_field([])


# --- global average pooling ---------------------------------------------------------------


def test_global_average_pooling_writes_each_channel_mean_in_its_cell():
    features = torch.arange(3.0).view(3, 1, 1).expand(3, 4, 5) + 0.25
    fig = plotting.plot_global_average_pooling(features[None])
    cells = [t.get_text() for t in fig.axes[0].texts]
    assert cells == ["0.250", "1.250", "2.250"]
    assert "(3, 4, 5)" in fig._suptitle.get_text()


def test_global_average_pooling_refuses_a_batch_of_two():
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 4\)"):
        plotting.plot_global_average_pooling(torch.rand(2, 3, 4, 4))


# --- architecture -------------------------------------------------------------------------

BOOK_STAGES = [
    ("input", (1, 28, 28)),
    ("Conv2d 3x3, pad 1", (32, 28, 28)),
    ("MaxPool2d 2x2", (32, 14, 14)),
    ("Flatten", (800,)),
    ("Linear", (10,)),
]


def test_layer_stacks_draw_each_stage_with_its_shape_one_row_per_network():
    fig = plotting.plot_layer_stacks(
        {"LeNet-5": LENET5_STAGES, "this chapter": BOOK_STAGES}
    )
    texts = texts_of(fig)
    assert "LeNet-5" in texts and "this chapter" in texts
    for shape in ["1@32x32", "6@28x28", "16@5x5", "120", "84", "32@14x14", "800"]:
        assert shape in texts
    assert "C1\nconv 5x5" in texts and "Conv2d\n3x3, pad 1" in texts
    assert texts.count("10") == 2  # both outputs
    # one shape label per stage, one bar per vector stage, stacks of squares for maps
    stages = len(LENET5_STAGES) + len(BOOK_STAGES)
    shapes = [t for t in texts if "@" in t or t.replace(",", "").isdigit()]
    assert len(shapes) == stages
    bars = [p for p in fig.axes[0].patches if p.get_width() == pytest.approx(0.16)]
    assert len(bars) == 3 + 2
    assert len(fig.axes[0].patches) > stages


def test_layer_stacks_draw_the_sides_of_all_networks_on_one_scale():
    fig = plotting.plot_layer_stacks(
        {"a": [("input", (1, 32, 32))], "b": [("input", (1, 16, 16))]}
    )
    first, second = fig.axes[0].patches
    assert first.get_width() > second.get_width()


@pytest.mark.parametrize(
    "networks, message",
    [
        ({}, "at least one network"),
        ({"a": []}, "at least one network"),
        ({"a": [("x", (3, 4))]}, r"a, stage 'x'.*\(3, 4\)"),
        ({"a": [("x", (0,))]}, r"positive sizes, got \(0,\)"),
    ],
)
def test_layer_stacks_name_the_bad_stage(networks, message):
    with pytest.raises(ValueError, match=message):
        plotting.plot_layer_stacks(networks)


def test_lenet5_stages_follow_from_its_layers():
    # C1, C3, C5: 5x5 unpadded convolutions; S2, S4: 2x2 subsampling (LeCun et al., 1998)
    shapes = [shape for _, shape in LENET5_STAGES]
    assert shapes[0] == (1, 32, 32)
    sides = [s[1] for s in shapes if len(s) == 3]
    assert sides == [32, 28, 14, 10, 5]
    assert [s[0] for s in shapes[1:]] == [6, 6, 16, 16, 120, 84, 10]


# --- first-layer kernels and the learning-rate range test ---------------------------------


def test_kernels_are_one_image_each_on_a_symmetric_scale():
    weight = torch.randn(10, 1, 3, 3)
    weight[3, 0, 1, 1] = 5.0  # the largest magnitude sets the scale
    fig = plotting.plot_kernels(weight, ncols=4, title="first layer")
    images = [image for ax in fig.axes for image in ax.get_images()]
    assert len(images) == 10
    assert all(image.get_clim() == pytest.approx((-5.0, 5.0)) for image in images)
    assert images[0].get_array().shape == (3, 3)
    assert len(fig.axes) == 3 * 4 + 1  # the grid and the colour bar
    middle = images[0].get_cmap()(0.5)
    assert middle[:3] == pytest.approx((1.0, 1.0, 1.0), abs=0.01)  # zero is white
    assert "first layer" in texts_of(fig)


@pytest.mark.parametrize(
    "weight, kwargs, message",
    [
        (torch.randn(8, 3, 3, 3), {}, r"\(out_channels, 1, k, k\), got \(8, 3, 3, 3\)"),
        (torch.randn(8, 3, 3), {}, r"got \(8, 3, 3\)"),
        ([[1.0]], {}, "got"),
        (torch.randn(8, 1, 3, 3), {"ncols": 0}, "ncols must be an int >= 1, got 0"),
    ],
)
def test_kernels_name_the_bad_input(weight, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plotting.plot_kernels(weight, **kwargs)


def test_lr_range_test_plots_loss_against_a_log_rate_axis_with_the_marks():
    lrs = [1e-5 * 10 ** (i / 4) for i in range(17)]
    losses = [2.3 - 0.1 * i for i in range(12)] + [2.0, 3.0, 6.0, 9.0, 20.0]
    fig = plotting.plot_lr_range_test(
        lrs, losses, losses, {"max_lr": 3e-3, "diverged": 0.05}
    )
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert len(ax.lines) == 2 + 2  # raw, smoothed, one line per mark
    assert list(ax.lines[0].get_xdata()) == pytest.approx(lrs)
    assert list(ax.lines[2].get_xdata()) == [3e-3, 3e-3]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["loss per step", "smoothed", "max_lr", "diverged"]
    assert ax.get_ylim()[1] == pytest.approx(4 * min(losses))  # the blow-up is cut
    fig = plotting.plot_lr_range_test(lrs[:2], [1.0, 2.0])
    assert len(fig.axes[0].lines) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (([1e-3], [1.0]), "at least 2 rates"),
        (([1e-3, 1e-2], [1.0]), "2 rates and 1 losses"),
        (([1e-3, 1e-2], [1.0, 2.0], [1.0]), "2 rates but 1 smoothed"),
        (([0.0, 1e-2], [1.0, 2.0]), "must be > 0"),
        (([1e-3, 1e-2], [1.0, 2.0], None, {"max_lr": 0.0}), "must be > 0"),
    ],
)
def test_lr_range_test_plot_names_the_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        plotting.plot_lr_range_test(*args)


def test_architecture_of_the_mnist_network_shows_each_shape_change_and_the_activations_between():
    model = mnist_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fig = plotting.plot_architecture(model.train(), (1, 28, 28))
    texts = texts_of(fig)
    for shape in [
        "1@28x28",
        "32@28x28",
        "32@14x14",
        "32@10x10",
        "32@5x5",
        "800",
        "256",
        "10",
    ]:
        assert shape in texts
    assert "Conv2d\n3x3, pad 1" in texts and "MaxPool2d\n2x2" in texts
    assert texts.count("SELU") == 2 and "SELU\nDropout" in texts
    assert model.training  # the mode is restored
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_architecture_refuses_a_model_that_is_not_sequential_and_a_bad_input_shape():
    with pytest.raises(ValueError, match="CharCNN"):
        plotting.plot_architecture(CharCNN(), (23,))
    with pytest.raises(ValueError, match=r"\(1, 28\)"):
        plotting.plot_architecture(mnist_cnn(), (1, 28))


# --- character convolution ----------------------------------------------------------------


def test_char_convolution_marks_each_detectors_maximum_and_writes_the_pooled_values():
    tokens = ".ana" + "." * 19
    responses = torch.zeros(4, 21)
    responses[0, 5] = 2.0
    responses[1, 0] = 1.5
    fig = plotting.plot_char_convolution(
        tokens, torch.randn(23, 10), responses, context=3, window=5
    )
    pooled_axis = fig.axes[-1]
    assert [t.get_text() for t in pooled_axis.texts] == ["2.00", "1.50", "0.00", "0.00"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list(tokens)


@pytest.mark.parametrize(
    ("embedded", "responses", "kwargs", "message"),
    [
        (
            torch.randn(22, 10),
            torch.rand(4, 21),
            {},
            r"T = 23 tokens, got shape \(22, 10\)",
        ),
        (
            torch.randn(23, 10),
            torch.rand(4, 20),
            {},
            r"\(D, 21\) for context 3, got shape \(4, 20\)",
        ),
        (torch.randn(23, 10), torch.rand(4, 21), {"window": 21}, r"\[0, 21\), got 21"),
        (torch.randn(23, 10), torch.rand(4, 21), {"detectors": [4]}, r"\[4\]"),
    ],
)
def test_char_convolution_names_the_bad_input(embedded, responses, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plotting.plot_char_convolution(
            ".ana" + "." * 19, embedded, responses, context=3, **kwargs
        )


# --- the plotting environment of a kernel -------------------------------------------------


class FakeShell:
    def __init__(self) -> None:
        self.kernel = object()
        self.magics: list[tuple[str, str]] = []

    def run_line_magic(self, name: str, line: str) -> None:
        self.magics.append((name, line))


@pytest.fixture
def fake_kernel(monkeypatch):
    shell = FakeShell()
    monkeypatch.setitem(
        sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell)
    )
    return shell


def test_a_kernel_whose_backend_draws_only_to_files_is_switched_to_inline(fake_kernel):
    assert matplotlib.get_backend().lower() == "agg"  # as with MPLBACKEND=Agg
    plotting._show_figures_inline_in_kernel()
    assert fake_kernel.magics == [("matplotlib", "inline")]


def test_a_kernel_with_an_interactive_backend_is_left_alone(fake_kernel, monkeypatch):
    monkeypatch.setattr(
        matplotlib, "get_backend", lambda: "module://ipympl.backend_nbagg"
    )
    plotting._show_figures_inline_in_kernel()
    assert fake_kernel.magics == []


def test_outside_a_kernel_the_backend_is_left_alone(monkeypatch):
    shell = FakeShell()
    shell.kernel = None  # a terminal IPython: no kernel
    monkeypatch.setitem(
        sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell)
    )
    plotting._show_figures_inline_in_kernel()
    assert shell.magics == []


def draw_bold_mathtext(caplog) -> list[str]:
    """Draw a figure with bold text and mathtext; return the findfont complaints it logged."""
    caplog.clear()
    fig, ax = plt.subplots()
    ax.set_title(r"$\bar{X}$, $\beta_1$", fontweight="bold")
    with caplog.at_level("WARNING", logger="matplotlib.font_manager"):
        fig.canvas.draw()
    return [r.getMessage() for r in caplog.records if "findfont" in r.getMessage()]


@pytest.fixture
def stale_font_cache(monkeypatch):
    """The font manager as a stale cache leaves it: matplotlib's STIX and bold fonts missing."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    stale = [
        f
        for f in manager.ttflist
        if not f.name.startswith("STIX") and "Bold" not in f.fname
    ]
    monkeypatch.setattr(manager, "ttflist", stale)
    manager._findfont_cached.cache_clear()
    yield manager
    manager._findfont_cached.cache_clear()


def test_a_stale_font_cache_makes_matplotlib_complain(stale_font_cache, caplog):
    assert draw_bold_mathtext(caplog)  # the failure the repair exists for


def test_fonts_missing_from_a_stale_cache_are_registered_again(
    stale_font_cache, caplog
):
    plotting._register_missing_bundled_fonts()
    assert "STIXGeneral" in {f.name for f in stale_font_cache.ttflist}
    assert draw_bold_mathtext(caplog) == []
