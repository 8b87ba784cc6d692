"""Every matplotlib figure the chapters reuse. The only module of nbhelpers that imports matplotlib.

Functions take tensors (any device, with or without grad) and return the ``Figure`` they drew;
the ``animate_*`` functions return an ``Animation``, self-contained HTML that plays in a notebook
and in the static HTML book without a kernel.

Importing this module changes nothing global. ``setup_notebook()``, which a chapter's preamble
(``nbhelpers.chapter.start_chapter``) calls, makes sure that the chapters' figures are shown
whatever the caller's plotting environment: a non-interactive backend inherited from the
environment (``MPLBACKEND=Agg``, common on servers and in containers, or a ``matplotlibrc``) is
replaced by the inline backend, and fonts that ship with matplotlib but are missing from a stale
font cache are registered again, so that figures draw without a screen of ``findfont`` warnings.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

# Backends that draw to files only: in a kernel they would swallow every figure.
_FILE_ONLY_BACKENDS = frozenset({"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"})


def _show_figures_inline_in_kernel() -> None:
    """Inside a Jupyter kernel whose backend only draws to files, switch to the inline backend."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or getattr(shell, "kernel", None) is None:
        return  # a script or a test: leave the backend alone
    if matplotlib.get_backend().lower() in _FILE_ONLY_BACKENDS:
        shell.run_line_magic("matplotlib", "inline")


def _register_missing_bundled_fonts() -> None:
    """Add the fonts matplotlib ships with when the font cache does not list them (a stale cache)."""
    from matplotlib import font_manager

    known = {Path(font.fname).name for font in font_manager.fontManager.ttflist}
    bundled = Path(matplotlib.get_data_path(), "fonts", "ttf")
    for path in sorted(bundled.glob("*.ttf")):
        if path.name not in known:
            font_manager.fontManager.addfont(str(path))


def setup_notebook() -> None:
    """Inside a Jupyter kernel: the inline backend; everywhere: matplotlib's own fonts known."""
    _show_figures_inline_in_kernel()
    _register_missing_bundled_fonts()


# Widest figure, in inches, that the book's text column shows without shrinking it much: wider
# figures are scaled down by the browser, and their labels with them.
PAGE_WIDTH = 8.5

INPUT_CMAPS = ("Reds", "Greens", "Blues")
OUTPUT_CMAPS = ("spring", "summer", "autumn", "winter")


def text_colour_on(background: Sequence[float]) -> str:
    """ "black" or "white", whichever contrasts more with an RGB(A) background in [0, 1].

    Uses the relative luminance of sRGB colours (as WCAG does): black on light cells, white on
    dark ones, so that numbers written into heat-map cells stay readable on every colour.
    """
    if len(background) < 3:
        raise ValueError(f"expected an RGB or RGBA colour, got {tuple(background)}")
    linear = [
        c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
        for c in background[:3]
    ]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return (
        "black" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "white"
    )


def _annotate_cells(
    ax, values: np.ndarray, image, fmt: str = "{:g}", fontsize: float = 10
) -> None:
    """Write each value of a 2D array into its cell of ``image`` (an AxesImage), readable colour."""
    for (i, j), value in np.ndenumerate(values):
        if np.ma.is_masked(value):
            continue
        colour = text_colour_on(image.cmap(image.norm(value)))
        ax.text(
            j,
            i,
            fmt.format(value),
            ha="center",
            va="center",
            color=colour,
            fontsize=fontsize,
        )


def to_numpy_image(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) or (H, W) tensor to a NumPy array matplotlib can show: (H, W, C) or (H, W)."""
    x = x.detach().cpu().float()
    if x.dim() == 3:
        x = x.permute(1, 2, 0)
        if x.shape[-1] == 1:
            x = x[..., 0]
    elif x.dim() != 2:
        raise ValueError(
            f"expected a (C, H, W) or (H, W) image, got shape {tuple(x.shape)}"
        )
    return x.numpy()


def show_images(
    images: Sequence[torch.Tensor],
    titles: Sequence[str] | None = None,
    cmaps: Sequence[str | None] | None = None,
    ncols: int | None = None,
    size: float = 2.2,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Figure:
    """A grid of images, each (C, H, W) or (H, W), with optional titles and colour maps.

    ``size`` is the side of one image in inches; a row wider than ``PAGE_WIDTH`` is shrunk to fit
    the text column, so that the titles stay legible.
    """
    n = len(images)
    if n == 0:
        raise ValueError("show_images needs at least one image")
    for name, values in (("titles", titles), ("cmaps", cmaps)):
        if values is not None and len(values) != n:
            raise ValueError(f"got {n} images but {len(values)} {name}")
    if ncols is not None and ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    ncols = ncols or n
    size = min(size, PAGE_WIDTH / ncols)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False
    )
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= n:
            continue
        cmap = cmaps[index] if cmaps else None
        ax.imshow(to_numpy_image(images[index]), cmap=cmap, vmin=vmin, vmax=vmax)
        if titles:
            ax.set_title(titles[index], fontsize=9)
    fig.tight_layout()
    return fig


def plot_conv_components(
    X: torch.Tensor,
    components: Mapping[tuple[int, int], torch.Tensor],
    out_maps: Sequence[torch.Tensor],
) -> Figure:
    """The grid of a multi-channel convolution layer.

    Column 0 holds the input (top) and its channels; entry (c + 1, k + 1) the convolution of
    input channel c with kernel K[k, c]; the top row the output maps (column sums plus bias).

    Args:
        X: (1, C_in, H, W) input; components: ``(c, k) -> (H', W')`` maps; out_maps: C_out maps.
    """
    c_in, c_out = X.shape[1], len(out_maps)
    side = min(2.0, PAGE_WIDTH / (c_out + 1))
    fig, ax = plt.subplots(
        c_in + 1, c_out + 1, figsize=(side * (c_out + 1), side * (c_in + 1))
    )
    ax[0, 0].imshow(to_numpy_image(X[0]))
    ax[0, 0].set_title("X (input)", fontsize=9)
    for c in range(c_in):
        ax[c + 1, 0].imshow(to_numpy_image(X[0, c]), cmap=INPUT_CMAPS[c % 3])
        ax[c + 1, 0].set_title(f"X(c={c})", fontsize=9)
        for k in range(c_out):
            ax[c + 1, k + 1].imshow(to_numpy_image(components[(c, k)]))
            ax[c + 1, k + 1].set_title(f"X(c={c}) ⊛ K(c={c}, k={k})", fontsize=8)
    for k in range(c_out):
        ax[0, k + 1].imshow(to_numpy_image(out_maps[k]), cmap=OUTPUT_CMAPS[k % 4])
        ax[0, k + 1].set_title(
            r"$\bar{\mathrm{X}}$" + f"(k={k}) = Σ_c + u[{k}]", fontsize=9
        )
    for a in ax.flat:
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    return fig


def plot_output_maps(S: torch.Tensor, title: str | None = None) -> Figure:
    """The channels of one output, (1, C, H, W) or (C, H, W), side by side in the chapter's colours."""
    maps = S[0] if S.dim() == 4 else S
    fig = show_images(
        list(maps), [f"k={k}" for k in range(len(maps))], OUTPUT_CMAPS[: len(maps)]
    )
    if title:
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
    return fig


def plot_annotated_matrices(
    matrices: Mapping[str, torch.Tensor],
    fmt: str = "{:g}",
    size: float = 2.2,
    fontsize: float = 11,
) -> Figure:
    """Small 2D matrices drawn as heat maps with each entry written in its cell.

    Args:
        matrices: title -> matrix, each (H, W) or with leading dimensions of size 1, e.g. (1, 1, H, W).
        size: the width of one matrix in inches (larger matrices need more room).
        fontsize: of the numbers in the cells.
    """
    if not matrices:
        raise ValueError("plot_annotated_matrices needs at least one matrix")
    for title, matrix in matrices.items():
        if matrix.dim() < 2 or any(size != 1 for size in matrix.shape[:-2]):
            raise ValueError(
                f"matrix {title!r} must be (H, W) or (1, ..., 1, H, W), got shape {tuple(matrix.shape)}"
            )
    size = min(size, PAGE_WIDTH / len(matrices))
    fig, axes = plt.subplots(
        1, len(matrices), figsize=(size * len(matrices), size + 0.2), squeeze=False
    )
    for ax, (title, matrix) in zip(axes.flat, matrices.items()):
        values = (
            matrix.detach()
            .cpu()
            .float()
            .reshape(matrix.shape[-2], matrix.shape[-1])
            .numpy()
        )
        # the colour scale starts at 0, or lower for a matrix with negative entries
        image = ax.imshow(values, cmap="viridis", vmin=min(0.0, values.min()))
        _annotate_cells(ax, values, image, fmt, fontsize=fontsize)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_kernel_recovery(
    losses: Sequence[float], learned: torch.Tensor, true: torch.Tensor
) -> Figure:
    """Gradient descent recovering a kernel: the loss per step, the learned and the true kernel.

    Args:
        losses: the loss of each step, every one > 0 (drawn on a log scale).
        learned, true: (k, k) kernels, or with leading dimensions of size 1; drawn on one
            colour scale, each entry written in its cell.
    """
    kernels = {"learned kernel": learned, "true kernel": true}
    values = {}
    for title, kernel in kernels.items():
        if kernel.dim() < 2 or any(size != 1 for size in kernel.shape[:-2]):
            raise ValueError(
                f"{title} must be (k, k) or (1, ..., 1, k, k), got {tuple(kernel.shape)}"
            )
        values[title] = kernel.detach().cpu().float().reshape(kernel.shape[-2:]).numpy()
    if values["learned kernel"].shape != values["true kernel"].shape:
        raise ValueError(
            f"the kernels differ in shape: learned {tuple(learned.shape)}, "
            f"true {tuple(true.shape)}"
        )
    steps = np.asarray(losses, dtype=float)
    if steps.size == 0 or not (steps > 0).all():
        raise ValueError("losses must hold at least one value, all > 0 (log scale)")
    fig, axes = plt.subplots(
        1, 3, figsize=(PAGE_WIDTH, 2.6), gridspec_kw={"width_ratios": [1.5, 1, 1]}
    )
    axes[0].semilogy(np.arange(1, steps.size + 1), steps, color="C0")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("loss (log scale)")
    axes[0].grid(linestyle="dashed", alpha=0.3)
    low = min(float(v.min()) for v in values.values())
    high = max(float(v.max()) for v in values.values())
    for ax, (title, kernel) in zip(axes[1:], values.items()):
        image = ax.imshow(kernel, cmap="coolwarm", vmin=low, vmax=high)
        # entries that round to zero are written "0.00", never "-0.00"
        written = np.where(np.abs(kernel) < 0.005, 0.0, kernel)
        _annotate_cells(ax, written, image, "{:.2f}", fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_weight_matrix(M: torch.Tensor, title: str) -> Figure:
    """A (rows, columns) weight matrix as an image: zero entries white, others coloured by value."""
    values = M.detach().cpu().float().numpy()
    shown = np.ma.masked_where(values == 0, values)
    limit = float(np.abs(values).max()) or 1.0
    fig, ax = plt.subplots(figsize=(7, 7 * values.shape[0] / values.shape[1] + 0.8))
    ax.imshow(shown, cmap="coolwarm", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("input pixel (flattened)")
    ax.set_ylabel("output pixel")
    fig.tight_layout()
    return fig


def plot_guided_backprop(
    images: Sequence[torch.Tensor] | torch.Tensor,
    maps: Sequence[torch.Tensor] | torch.Tensor,
    titles: Sequence[str] | None = None,
    overlay_alpha: float = 0.75,
    cmap: str = "viridis",
    size: float = 1.8,
) -> Figure:
    """One row per image: the image, its guided-backprop map, and the map over the image.

    Args:
        images: B images, each (C, H, W) with C in {1, 3} or (H, W), already scaled for display
            (e.g. ``normalize01``); a (B, C, H, W) tensor works too.
        maps: B display-ready maps, each (H, W) (e.g. ``standardize_and_clip(channel_max(g))``).
        titles: B titles for the image column, e.g. "p(1 | x) = 0.93".
        overlay_alpha: opacity of the map in the overlay column, in [0, 1].
    """
    images, maps = list(images), list(maps)
    if not images or len(images) != len(maps):
        raise ValueError(
            f"need as many maps as images (at least one), got {len(images)} and {len(maps)}"
        )
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"need {len(images)} titles, got {len(titles)}")
    if not 0.0 <= overlay_alpha <= 1.0:
        raise ValueError(f"overlay_alpha must be in [0, 1], got {overlay_alpha}")
    fig, axes = plt.subplots(
        len(images), 3, figsize=(3 * size, size * len(images) + 0.3), squeeze=False
    )
    for row, (image, grad_map) in enumerate(zip(images, maps)):
        picture, heat = to_numpy_image(image), to_numpy_image(grad_map)
        if heat.ndim != 2 or heat.shape != picture.shape[:2]:
            raise ValueError(
                f"map {row} has shape {heat.shape}, expected (H, W) = {picture.shape[:2]}"
            )
        grey = "gray" if picture.ndim == 2 else None
        axes[row, 0].imshow(picture, cmap=grey)
        axes[row, 1].imshow(heat, cmap=cmap)
        axes[row, 2].imshow(picture, cmap=grey)
        axes[row, 2].imshow(heat, cmap=cmap, alpha=overlay_alpha)
        axes[row, 0].set_title(titles[row] if titles else "input", fontsize=8)
        axes[row, 1].set_title("Guided backprop", fontsize=8)
        axes[row, 2].set_title("Overlay", fontsize=8)
        for ax in axes[row]:
            ax.axis("off")
    fig.tight_layout()
    return fig


def plot_training_history(
    trainer: object, *more_trainers: object, boundary_label: str = "fine-tuning"
) -> Figure:
    """Loss and accuracy per training step, raw (faint) and smoothed (solid), with validation
    points at the epoch ends.

    Several trainers (e.g. a frozen phase, then fine-tuning) are drawn one after the other on a
    common step axis, with a dotted vertical line labelled ``boundary_label`` where each next one
    starts. Each trainer may have its own number of steps per epoch.

    Args:
        trainer, more_trainers: objects with a ``history`` DataFrame (``nbhelpers.train.Trainer``).
    """
    import pandas as pd

    trainers = (trainer, *more_trainers)
    frames, boundaries, offset = [], [], 0
    for index, each in enumerate(trainers):
        frame = each.history  # type: ignore[attr-defined]
        if frame.empty:
            raise ValueError(
                f"trainer {index} has no training steps to plot; call run() first"
            )
        frame = frame.assign(step=frame["step"] + offset)
        frames.append(frame)
        offset += len(frame)
        if index < len(trainers) - 1:
            boundaries.append(offset)
    history = pd.concat(frames, ignore_index=True)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    panels = (
        ("loss", "loss_avg", "valid_loss", "loss"),
        ("accuracy", "accuracy_avg", "valid_accuracy", "accuracy"),
    )
    for ax, (raw, smooth, valid, label) in zip(axes, panels):
        ax.plot(history["step"], history[raw], alpha=0.3, color="C0", linewidth=0.8)
        ax.plot(history["step"], history[smooth], color="C0", label="train")
        ends = history.dropna(subset=[valid])
        if not ends.empty:
            ax.plot(
                ends["step"], ends[valid], "o-", color="C1", markersize=3, label="valid"
            )
        for position, boundary in enumerate(boundaries):
            legend_text = f"[{boundary_label}]" if position == 0 else None
            ax.axvline(boundary, color="black", linestyle="dotted", label=legend_text)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(linestyle="dashed", alpha=0.3)
    finite_loss = history["loss"][np.isfinite(history["loss"])]
    if not finite_loss.empty:
        axes[0].set_ylim(0, float(finite_loss.max()) * 1.05)
    axes[1].set_ylim(0, 1.02)
    axes[1].legend(framealpha=1.0)
    fig.tight_layout()
    return fig


def _as_display_image(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 ndarray (as OpenCV/read_patch give) or (C, H, W)/(H, W) tensor -> imshow array."""
    if isinstance(image, np.ndarray):
        if image.ndim not in (2, 3):
            raise ValueError(
                f"expected an (H, W) or (H, W, C) array, got shape {image.shape}"
            )
        return image
    return to_numpy_image(image)


def plot_patch_grid(
    images: Sequence[torch.Tensor | np.ndarray],
    labels: Sequence[int],
    ncols: int = 5,
    box: tuple[int, int] | None = (32, 64),
    size: float = 1.5,
    box_color: str = "yellow",
    title_prefix: str = "label",
) -> Figure:
    """Patches in a grid, each titled with its label, with the labelled region outlined.

    Args:
        images: N patches, each an (H, W, 3) uint8 RGB array or a (3, H, W) tensor in [0, 1].
        labels: N labels (0 or 1), written above each patch.
        ncols: patches per row.
        box: (first, end) pixel rows and columns of the square to outline, end exclusive; the
            Kaggle label describes rows and columns 32..63 of a 96x96 patch. None draws no box.
        size: inches per patch.
        title_prefix: the word before each label, e.g. "predicted".
    """
    n = len(images)
    if n == 0 or len(labels) != n:
        raise ValueError(
            f"need as many labels as images (at least one), got {n} and {len(labels)}"
        )
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    if box is not None and not 0 <= box[0] < box[1]:
        raise ValueError(f"box must be (first, end) with 0 <= first < end, got {box}")
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, (size + 0.25) * nrows), squeeze=False
    )
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= n:
            continue
        ax.imshow(_as_display_image(images[index]))
        ax.set_title(f"{title_prefix} {int(labels[index])}", fontsize=9)
        if box is not None:
            first, end = box
            # pixel i covers [i - 0.5, i + 0.5] in imshow's coordinates
            ax.add_patch(
                Rectangle(
                    (first - 0.5, first - 0.5),
                    end - first,
                    end - first,
                    fill=False,
                    color=box_color,
                    linewidth=1,
                )
            )
    fig.tight_layout()
    return fig


def plot_augmentation_epochs(
    train_views: Sequence[Sequence[torch.Tensor]],
    valid_views: Sequence[torch.Tensor],
    train_labels: Sequence[int],
    valid_label: int,
    size: float = 1.5,
) -> Figure:
    """What the network sees of the same patches over several epochs: one row per epoch.

    Args:
        train_views: E epochs x I instances of augmented (3, H, W) images of the same I patches.
        valid_views: E views of one validation patch through the fixed transform (all equal).
        train_labels: the I training patches' labels; valid_label: the validation patch's label.
    """
    epochs = len(train_views)
    if epochs == 0 or len(valid_views) != epochs:
        raise ValueError(
            f"need one validation view per epoch (at least one), got {epochs} and {len(valid_views)}"
        )
    instances = len(train_views[0])
    if (
        instances == 0
        or any(len(row) != instances for row in train_views)
        or len(train_labels) != instances
    ):
        raise ValueError(
            "every epoch needs the same number of training views, one label per instance; got views per "
            f"epoch {[len(row) for row in train_views]} and {len(train_labels)} labels"
        )
    fig, axes = plt.subplots(
        epochs,
        instances + 1,
        figsize=(size * (instances + 1), size * epochs + 0.3),
        squeeze=False,
    )
    for epoch in range(epochs):
        views = [*train_views[epoch], valid_views[epoch]]
        labels = [*train_labels, valid_label]
        for column, (view, label) in enumerate(zip(views, labels)):
            ax = axes[epoch, column]
            ax.imshow(to_numpy_image(view).clip(0.0, 1.0))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"label {int(label)}", fontsize=8)
            if epoch == 0:
                ax.set_title(
                    "valid" if column == instances else f"instance {column}", fontsize=9
                )
        axes[epoch, 0].set_ylabel(f"epoch {epoch}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_tumour_map(
    slide: np.ndarray,
    tumour: np.ndarray,
    truth: np.ndarray | torch.Tensor,
    probabilities: np.ndarray | torch.Tensor,
    window: int = 49,
    stride: int = 16,
    size: float = 3.2,
) -> Figure:
    """A slide, the truth per window and a classifier's p(tumour) per window, side by side.

    Args:
        slide: (H, W, 3) uint8 RGB; tumour: (H, W) bool, its tumour pixels (outlined in
            yellow on the slide).
        truth, probabilities: (rows, cols) maps, one value per ``window`` x ``window``
            window, the windows ``stride`` apart. Each cell is drawn as a ``stride`` square
            centred on its window's centre, in the slide's pixel coordinates.
        size: inches per panel.
    """
    truth, probabilities = (
        np.asarray(m.detach().cpu() if isinstance(m, torch.Tensor) else m, float)
        for m in (truth, probabilities)
    )
    tumour = np.asarray(tumour, bool)
    if slide.ndim != 3 or tumour.shape != slide.shape[:2]:
        raise ValueError(
            f"need an (H, W, 3) slide and an (H, W) tumour mask, got {slide.shape} "
            f"and {tumour.shape}"
        )
    rows, cols = ((n - window) // stride + 1 for n in slide.shape[:2])
    if truth.shape != (rows, cols) or probabilities.shape != (rows, cols):
        raise ValueError(
            f"a {slide.shape[:2]} slide has {rows} x {cols} windows of {window} at "
            f"stride {stride}; got maps {truth.shape} and {probabilities.shape}"
        )
    first = (window - 1) / 2 - stride / 2  # the first cell's left (top) edge
    extent = (first, first + cols * stride, first + rows * stride, first)
    fig, axes = plt.subplots(1, 3, figsize=(3 * size + 0.6, size + 0.3))
    axes[0].imshow(slide)
    axes[0].contour(tumour, levels=[0.5], colors="yellow", linewidths=0.6)
    axes[0].set_title("slide, tumour outlined", fontsize=9)
    axes[1].imshow(truth, cmap="magma", vmin=0, vmax=1, extent=extent)
    axes[1].set_title("truth: tumour in the centre square", fontsize=9)
    shown = axes[2].imshow(probabilities, cmap="magma", vmin=0, vmax=1, extent=extent)
    axes[2].set_title("predicted p(tumour)", fontsize=9)
    for ax in axes:
        ax.set_xlim(-0.5, slide.shape[1] - 0.5)
        ax.set_ylim(slide.shape[0] - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=axes[2], fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(
    matrix: torch.Tensor | np.ndarray,
    class_names: Sequence[str],
    title: str | None = None,
) -> Figure:
    """A (K, K) confusion matrix (rows: true class, columns: predicted class) with counts and row shares.

    Each cell shows its count and, below, the share of its row (for a binary task: the
    true-negative and false-positive rates in the first row, the miss rate and recall in the
    second). Colours follow the row shares.
    """
    counts = np.asarray(
        matrix.detach().cpu() if isinstance(matrix, torch.Tensor) else matrix
    )
    k = len(class_names)
    if counts.shape != (k, k):
        raise ValueError(
            f"expected a ({k}, {k}) matrix for {k} class names, got shape {counts.shape}"
        )
    if (counts < 0).any():
        i, j = np.argwhere(counts < 0)[0]
        raise ValueError(
            f"a confusion matrix holds counts >= 0, got {counts[i, j]} in row {i}, column {j}"
        )
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(
        counts, totals, out=np.zeros(counts.shape, float), where=totals > 0
    )
    fig, ax = plt.subplots(figsize=(1.4 * k + 1.6, 1.4 * k + 1.0))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for (i, j), count in np.ndenumerate(counts):
        colour = text_colour_on(image.cmap(image.norm(shares[i, j])))
        ax.text(
            j,
            i,
            f"{int(count):,}\n{shares[i, j]:.1%}",
            ha="center",
            va="center",
            color=colour,
            fontsize=10,
        )
    ax.set_xticks(range(k), class_names)
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_precision_recall(
    precision: Sequence[float] | np.ndarray,
    recall: Sequence[float] | np.ndarray,
    average_precision: float | None = None,
    positive_share: float | None = None,
    operating_point: tuple[float, float] | None = None,
    operating_label: str = "threshold 0.5",
) -> Figure:
    """A precision-recall curve (as from ``sklearn.metrics.precision_recall_curve``).

    Args:
        precision, recall: the curve's points, equal lengths.
        average_precision: shown in the legend when given.
        positive_share: the share of positives, drawn as the precision of a random classifier.
        operating_point: (recall, precision) of the classifier at its decision threshold, marked.
    """
    precision, recall = np.asarray(precision, float), np.asarray(recall, float)
    if precision.ndim != 1 or precision.shape != recall.shape or len(precision) == 0:
        raise ValueError(
            f"precision and recall must be 1-D of equal length, got {precision.shape} and {recall.shape}"
        )
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    label = (
        "model"
        if average_precision is None
        else f"model (AP = {average_precision:.3f})"
    )
    ax.step(recall, precision, where="post", color="C0", label=label)
    if positive_share is not None:
        ax.axhline(
            positive_share,
            color="gray",
            linestyle="dashed",
            label=f"chance ({positive_share:.2f})",
        )
    if operating_point is not None:
        ax.plot(*operating_point, "o", color="C1", label=operating_label)
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(linestyle="dashed", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def plot_schedule(
    lr: Sequence[float], momentum: Sequence[float] | None = None
) -> Figure:
    """The learning rate (top) and, if given, the momentum or Adam's beta1 (bottom) per step.

    Args:
        lr: one value per optimizer step (e.g. ``SchedulerStatsRecorder.lr``).
        momentum: one value per step (``SchedulerStatsRecorder.momentum``), same length as lr.
    """
    if len(lr) == 0:
        raise ValueError("plot_schedule needs at least one learning-rate value")
    if momentum is not None and len(momentum) != len(lr):
        raise ValueError(
            f"got {len(lr)} learning rates but {len(momentum)} momentum values"
        )
    series = [("learning rate", lr)] + (
        [(r"momentum ($\beta_1$)", momentum)] if momentum is not None else []
    )
    fig, axes = plt.subplots(
        len(series), 1, figsize=(8, 1.5 * len(series) + 0.4), sharex=True, squeeze=False
    )
    steps = np.arange(1, len(lr) + 1)
    for ax, (label, values) in zip(axes[:, 0], series):
        ax.plot(steps, np.asarray(values, dtype=float), color="black")
        ax.set_ylabel(label, fontsize=9)
        ax.grid(linestyle="dotted")
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    return fig


def _vector_as_column(values: np.ndarray) -> np.ndarray:
    """A 1D activation as a tall 2D block for display: width 1 up to 16 values, else 4 or 8 columns."""
    n = values.size
    width = 1 if n <= 16 else (4 if n <= 512 else 8)
    if n % width:
        width = 1
    return values.reshape(-1, width)


def plot_feature_maps(
    image: torch.Tensor,
    blocks: Sequence[Sequence[tuple[str, torch.Tensor]]],
    channels: Sequence[int] = range(5),
    logit_labels: Sequence[str] | None = None,
) -> Figure:
    """What one input looks like inside a network, block by block.

    The input sits in the first column. Each block adds one column per layer, separated from
    the previous block by a narrow gap: a layer with a (C, H, W) output shows the feature maps of
    ``channels`` stacked vertically (grey scale); a layer with a (N,) output is drawn as one
    tall column of cells in a red (negative) / white / blue (positive) scale, reshaped to 4 or 8
    cells per row when long. The last layer's values are written into its cells.

    Args:
        image: the input, (1, H, W) or (H, W).
        blocks: for each block, the (layer name, output) pairs of its layers, outputs without
            the batch dimension: (C, H, W) or (N,).
        channels: which channels of the (C, H, W) outputs to show (at most 8).
        logit_labels: tick labels for the last layer's cells (e.g. the class names).
    """
    channels = list(channels)
    if not blocks or any(len(block) == 0 for block in blocks):
        raise ValueError(
            "plot_feature_maps needs at least one block, each with at least one layer"
        )
    if not 1 <= len(channels) <= 8:
        raise ValueError(f"show between 1 and 8 channels, got {len(channels)}")
    for block in blocks:
        for name, output in block:
            if output.dim() not in (1, 3):
                raise ValueError(
                    f"layer {name!r}: expected a (C, H, W) or (N,) output, got {tuple(output.shape)}"
                )
            if output.dim() == 3 and max(channels) >= output.shape[0]:
                raise ValueError(
                    f"layer {name!r} has {output.shape[0]} channels; cannot show channel {max(channels)}"
                )
    rows = len(channels)
    ratios, kinds = [1.0], ["input"]
    for block in blocks:
        ratios.append(0.2)
        kinds.append("gap")
        for name, output in block:
            ratios.append(1.0 if output.dim() == 3 else 0.6)
            kinds.append((name, output))
    fig = plt.figure(figsize=(PAGE_WIDTH + 1.0, 4.6), constrained_layout=True)
    grid = fig.add_gridspec(rows, len(ratios), width_ratios=ratios)
    from matplotlib.colors import LinearSegmentedColormap

    diverging = LinearSegmentedColormap.from_list(
        "red_white_blue", ["red", "white", "blue"]
    )

    axis = fig.add_subplot(grid[rows // 2, 0])
    axis.imshow(to_numpy_image(image), cmap="Greys")
    axis.set_title("input", fontsize=9)
    axis.set_axis_off()
    last = len(kinds) - 1
    for column, kind in enumerate(kinds):
        if kind in ("input", "gap"):
            continue
        name, output = kind
        values = output.detach().cpu().float()
        if values.dim() == 3:
            for row, channel in enumerate(channels):
                axis = fig.add_subplot(grid[row, column])
                axis.imshow(values[channel].numpy(), cmap="Greys")
                axis.set_axis_off()
                if row == 0:
                    axis.set_title(name, fontsize=9)
            continue
        block = _vector_as_column(values.numpy())
        limit = float(np.abs(block).max()) or 1.0
        axis = fig.add_subplot(grid[:, column])
        cells = axis.imshow(
            block, cmap=diverging, vmin=-limit, vmax=limit, aspect="auto"
        )
        axis.set_title(name, fontsize=9)
        axis.set_xticks([])
        if column == last and block.shape[1] == 1:
            axis.set_yticks(range(block.shape[0]))
            if logit_labels is not None:
                axis.set_yticklabels(list(logit_labels))
            for i, value in enumerate(block[:, 0]):
                colour = text_colour_on(cells.cmap(cells.norm(value)))
                axis.text(
                    0,
                    i,
                    f"{value:.1f}",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color=colour,
                )
        else:
            axis.set_yticks([])
    return fig


def plot_prediction_bars(
    probabilities: torch.Tensor,
    classes: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """A bar per class with its predicted probability.

    Args:
        probabilities: (K,) values in [0, 1] (e.g. a softmax).
        classes: K labels for the x axis; default 0..K-1.
    """
    values = probabilities.detach().cpu().float().reshape(-1).numpy()
    if values.size == 0:
        raise ValueError("plot_prediction_bars needs at least one probability")
    labels = (
        list(classes) if classes is not None else [str(k) for k in range(values.size)]
    )
    if len(labels) != values.size:
        raise ValueError(
            f"got {values.size} probabilities but {len(labels)} class labels"
        )
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.bar(range(values.size), values, color="C0")
    ax.set_xticks(range(values.size))
    ax.set_xticklabels(labels)
    ax.set_xlabel("class")
    ax.set_ylabel("probability")
    ax.set_ylim(0, max(1e-6, float(values.max())) * 1.15)
    ax.grid(axis="y", linestyle="dotted")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_length_histogram(lengths: Sequence[int], cutoff: int | None = None) -> Figure:
    """How many strings (e.g. names) have each length, with an optional dashed line at ``cutoff``.

    Args:
        lengths: one non-negative length per string.
        cutoff: draw a vertical line after this length (e.g. the truncation length MAX_LEN).
    """
    values = np.asarray(list(lengths), dtype=int)
    if values.size == 0:
        raise ValueError("plot_length_histogram needs at least one length")
    if (values < 0).any():
        raise ValueError(f"lengths must be >= 0, got {int(values.min())}")
    counts = np.bincount(values)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(np.arange(counts.size), counts, color="C0")
    if cutoff is not None:
        ax.axvline(
            cutoff + 0.5, color="black", linestyle="dashed", label=f"cut-off {cutoff}"
        )
        ax.legend()
    ax.set_xlabel("length")
    ax.set_ylabel("count")
    ax.grid(axis="y", linestyle="dotted")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Explanatory diagrams (drawn from the geometry they explain) and animations.


@dataclass(frozen=True)
class Animation:
    """An animation as one self-contained HTML fragment: frames embedded as PNG, a JavaScript player.

    A notebook displays it (``_repr_html_``), and it plays in the static HTML book without a
    kernel. ``frames`` is the number of frames embedded.
    """

    html: str
    frames: int

    def _repr_html_(self) -> str:
        return self.html


# The player's buttons use Font Awesome classes; matplotlib links the stylesheet from a CDN, which
# an offline reader cannot reach. The book's theme ships Font Awesome, so the link is dropped.
_CDN_STYLESHEET = '<link rel="stylesheet"\nhref="https://maxcdn.bootstrapcdn.com/font-awesome/4.4.0/css/font-awesome.min.css">'


def _animation(fig: Figure, update, frames: int, interval_ms: int) -> Animation:
    """Render ``update(frame)`` for each frame of ``fig`` into an ``Animation``; closes ``fig``."""
    from matplotlib.animation import FuncAnimation

    try:
        movie = FuncAnimation(
            fig, update, frames=frames, interval=interval_ms, blit=False, repeat=True
        )
        html = movie.to_jshtml(default_mode="loop")
    finally:
        plt.close(fig)
    embedded = html.count('] = "data:image/')
    if embedded != frames:
        limit = matplotlib.rcParams["animation.embed_limit"]
        raise ValueError(
            f"only {embedded} of {frames} frames fit into animation.embed_limit = {limit} MB; "
            "use fewer or smaller frames"
        )
    return Animation(html=html.replace(_CDN_STYLESHEET, ""), frames=frames)


def _grid_axes(ax, rows: int, cols: int, title: str) -> None:
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=11)


def animate_convolution(
    X: torch.Tensor,
    K: torch.Tensor,
    stride: int = 1,
    padding: int = 0,
    interval_ms: int = 700,
    dpi: int = 80,
) -> Animation:
    """The kernel sliding over a small input, one output value per frame.

    Left: the input with its zero padding (grey cells) and the kernel's current window; middle:
    the kernel; right: the output map filling up, the newest value framed. Values are computed by
    ``nbhelpers.conv.conv2d``, so the numbers shown are the library's.

    Args:
        X: (H, W) input, at most 12 x 12 so that the numbers stay readable.
        K: (k, k) kernel, k <= H + 2 * padding.
        stride, padding: as in ``nn.Conv2d``.
        interval_ms: time between frames.
        dpi: resolution of the embedded frames (about 600 x 230 pixels at 80: the page stays light).
    """
    from nbhelpers.conv import conv2d

    X, K = X.detach().cpu().float(), K.detach().cpu().float()
    if X.dim() != 2 or K.dim() != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(
            f"expected an (H, W) input and a (k, k) kernel, got {tuple(X.shape)} and {tuple(K.shape)}"
        )
    if max(X.shape) > 12:
        raise ValueError(
            f"input {tuple(X.shape)} is too large to annotate; use at most 12 x 12"
        )
    if stride < 1 or padding < 0:
        raise ValueError(
            f"need stride >= 1 and padding >= 0, got stride={stride}, padding={padding}"
        )
    k = K.shape[0]
    padded = torch.nn.functional.pad(X, (padding, padding, padding, padding))
    if k > min(padded.shape):
        raise ValueError(
            f"kernel {k}x{k} is larger than the padded input {tuple(padded.shape)}"
        )
    S = conv2d(X[None, None], K[None, None], stride=stride, padding=padding)[
        0, 0
    ].numpy()
    out_h, out_w = S.shape
    P, Kn = padded.numpy(), K.numpy()
    frames = out_h * out_w

    fig, (ax_in, ax_k, ax_out) = plt.subplots(
        1,
        3,
        figsize=(7.5, 2.9),
        dpi=dpi,
        gridspec_kw={"width_ratios": [P.shape[1], k, out_w]},
    )
    pad_mask = np.ones_like(P, dtype=bool)
    pad_mask[padding : padding + X.shape[0], padding : padding + X.shape[1]] = False
    limit = float(np.abs(P).max()) or 1.0
    inner = ax_in.imshow(
        np.ma.masked_where(pad_mask, P), cmap="Blues", vmin=-limit, vmax=1.5 * limit
    )
    ax_in.imshow(
        np.ma.masked_where(~pad_mask, np.zeros_like(P)), cmap="Greys", vmin=-1, vmax=4
    )
    for (i, j), value in np.ndenumerate(P):
        colour = (
            "dimgray"
            if pad_mask[i, j]
            else text_colour_on(inner.cmap(inner.norm(value)))
        )
        ax_in.text(
            j, i, f"{value:g}", ha="center", va="center", fontsize=11, color=colour
        )
    size = f"{X.shape[0]}x{X.shape[1]}" + (f", padding {padding}" if padding else "")
    _grid_axes(ax_in, *P.shape, f"input {size}")
    window = Rectangle(
        (-0.5, -0.5), k, k, fill=False, edgecolor="crimson", linewidth=2.5
    )
    ax_in.add_patch(window)

    kernel_image = ax_k.imshow(
        Kn, cmap="Oranges", vmin=min(Kn.min(), 0), vmax=max(Kn.max(), 1e-9)
    )
    _annotate_cells(ax_k, Kn, kernel_image, fontsize=11)
    _grid_axes(ax_k, k, k, f"kernel {k}x{k}")

    out_limit = float(np.abs(S).max()) or 1.0
    shown = np.ma.masked_all(S.shape)
    out_image = ax_out.imshow(shown, cmap="Purples", vmin=-out_limit, vmax=out_limit)
    out_texts = {}
    for (i, j), value in np.ndenumerate(S):
        colour = text_colour_on(out_image.cmap(out_image.norm(value)))
        out_texts[(i, j)] = ax_out.text(
            j,
            i,
            f"{value:g}",
            ha="center",
            va="center",
            fontsize=11,
            color=colour,
            visible=False,
        )
    _grid_axes(ax_out, out_h, out_w, f"output {out_h}x{out_w}, stride {stride}")
    for ax, (rows, cols) in ((ax_in, P.shape), (ax_k, Kn.shape), (ax_out, S.shape)):
        _grid(ax, -0.5, -0.5, rows, cols, colour="none")
    newest = Rectangle(
        (-0.5, -0.5), 1, 1, fill=False, edgecolor="crimson", linewidth=2.5
    )
    ax_out.add_patch(newest)
    caption = fig.text(0.5, 0.03, "", ha="center", fontsize=11)
    fig.tight_layout(rect=(0, 0.1, 1, 1))

    def update(frame: int):
        i, j = divmod(frame, out_w)
        if frame == 0:
            shown.mask = True
            for text in out_texts.values():
                text.set_visible(False)
        shown[i, j] = S[i, j]
        out_image.set_data(shown)
        out_texts[(i, j)].set_visible(True)
        window.set_xy((j * stride - 0.5, i * stride - 0.5))
        newest.set_xy((j - 0.5, i - 0.5))
        caption.set_text(
            f"output[{i}, {j}] = sum of (rows {i * stride}-{i * stride + k - 1}, "
            f"columns {j * stride}-{j * stride + k - 1}) x kernel = {S[i, j]:g}"
        )
        return []

    return _animation(fig, update, frames, interval_ms)


def _grid(
    ax,
    x0: float,
    y0: float,
    rows: int,
    cols: int,
    colour: str = "white",
    cell: float = 1.0,
) -> None:
    """Draw a rows x cols grid of square cells with its top-left corner at (x0, y0), y pointing down."""
    for i in range(rows):
        for j in range(cols):
            ax.add_patch(
                Rectangle(
                    (x0 + j * cell, y0 + i * cell),
                    cell,
                    cell,
                    facecolor=colour,
                    edgecolor="grey",
                    lw=0.6,
                )
            )


def plot_local_connectivity(
    n: int = 6, k: int = 3, outputs: Sequence[tuple[int, int]] = ((0, 0), (2, 3))
) -> Figure:
    """A dense layer next to a convolution: which input pixels each output pixel is connected to.

    Left: one output pixel of a dense layer, connected to all n x n inputs. Right: a convolution
    with a k x k kernel (no padding, stride 1); each marked output pixel is connected to the
    k x k window under it, and every window uses the same k * k weights.

    Args:
        n: input height and width (3 <= n <= 12).
        k: kernel size, 1 <= k <= n.
        outputs: (row, column) of the output pixels to connect, each within the (n - k + 1)^2 output.
    """
    if not 3 <= n <= 12 or not 1 <= k <= n:
        raise ValueError(f"need 3 <= n <= 12 and 1 <= k <= n, got n={n}, k={k}")
    m = n - k + 1
    for i, j in outputs:
        if not (0 <= i < m and 0 <= j < m):
            raise ValueError(f"output pixel {(i, j)} is outside the {m}x{m} output")
    colours = ["crimson", "darkorange", "seagreen", "royalblue"]
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.4))
    gap = 3.0
    out_x, out_y = n + gap, (n - m) / 2
    for ax, dense in zip(axes, (True, False)):
        _grid(ax, 0, 0, n, n)
        _grid(ax, out_x, out_y, m, m)
        targets = [outputs[0]] if dense else list(outputs)
        for index, (i, j) in enumerate(targets):
            colour = colours[index % len(colours)]
            end = (out_x + j + 0.5, out_y + i + 0.5)
            ax.add_patch(
                Rectangle(
                    (out_x + j, out_y + i),
                    1,
                    1,
                    facecolor=colour,
                    edgecolor="black",
                    lw=0.8,
                )
            )
            sources = (
                [(a, b) for a in range(n) for b in range(n)]
                if dense
                else [(i + a, j + b) for a in range(k) for b in range(k)]
            )
            for a, b in sources:
                ax.plot(
                    [b + 0.5, end[0]],
                    [a + 0.5, end[1]],
                    color=colour,
                    lw=0.6,
                    alpha=0.7,
                )
            if not dense:
                ax.add_patch(
                    Rectangle((j, i), k, k, fill=False, edgecolor=colour, lw=2.0)
                )
        ax.set_xlim(-0.3, out_x + m + 0.3)
        ax.set_ylim(n + 0.3, -0.3)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.text(n / 2, n + 0.2, f"input {n}x{n}", ha="center", va="top", fontsize=10)
        ax.text(
            out_x + m / 2,
            out_y + m + 0.2,
            f"output {m}x{m}",
            ha="center",
            va="top",
            fontsize=10,
        )
    axes[0].set_title(
        f"dense: each output sees all {n * n} inputs\n{m * m * n * n:,} weights",
        fontsize=10,
    )
    axes[1].set_title(
        f"convolution: each output sees a {k}x{k} window\nthe same {k * k} weights everywhere",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def receptive_fields(layers: Sequence[tuple[str, int, int]]) -> list[int]:
    """Receptive field (in input pixels, along one axis) after each layer of a stack.

    Args:
        layers: (name, kernel size, stride) of each layer, input side first.

    Returns:
        A list of len(layers) + 1 sizes, 1 for the input itself and then one per layer.
    """
    sizes, jump = [1], 1
    for name, kernel, stride in layers:
        if kernel < 1 or stride < 1:
            raise ValueError(
                f"layer {name!r}: kernel and stride must be >= 1, got {kernel} and {stride}"
            )
        sizes.append(sizes[-1] + (kernel - 1) * jump)
        jump *= stride
    return sizes


def plot_receptive_field(
    layers: Sequence[tuple[str, int, int]], top_units: int = 3
) -> Figure:
    """How the receptive field of one unit grows through a stack of layers (one spatial axis).

    Each row is a layer (the input at the bottom); each dot a unit, placed above the centre of
    the input pixels it sees. The middle unit of the top layer is traced down: the units it
    depends on in every layer below are coloured and connected, and the width of its receptive
    field is written at the right of each row.

    Args:
        layers: (name, kernel size, stride) of each layer, input side first, without padding.
        top_units: how many units the top layer has; the input is made just wide enough.
    """
    if not layers:
        raise ValueError("plot_receptive_field needs at least one layer")
    if top_units < 1:
        raise ValueError(f"top_units must be >= 1, got {top_units}")
    sizes = receptive_fields(layers)
    jumps = [1]
    for _, _, stride in layers:
        jumps.append(jumps[-1] * stride)
    width = sizes[-1] + (top_units - 1) * jumps[-1]
    counts = [width]
    for _, kernel, stride in layers:
        counts.append((counts[-1] - kernel) // stride + 1)
    # the traced interval of unit indices, top to bottom
    top = counts[-1] // 2
    intervals = [(top, top)]
    for _, kernel, stride in reversed(layers):
        first, last = intervals[-1]
        intervals.append((first * stride, last * stride + kernel - 1))
    intervals.reverse()  # now input first

    def x_of(level: int, unit: int) -> float:
        return unit * jumps[level] + (sizes[level] - 1) / 2

    fig, ax = plt.subplots(figsize=(8.0, 0.75 * (len(layers) + 1) + 0.8))
    names = ["input"] + [name for name, _, _ in layers]
    for level, count in enumerate(counts):
        first, last = intervals[level]
        for unit in range(count):
            traced = first <= unit <= last
            ax.plot(
                x_of(level, unit),
                level,
                "o",
                ms=7 if traced else 5,
                color="crimson" if traced else "lightgrey",
            )
        if level > 0:
            kernel, stride = layers[level - 1][1], layers[level - 1][2]
            for unit in range(first, last + 1):
                for below in range(unit * stride, unit * stride + kernel):
                    ax.plot(
                        [x_of(level, unit), x_of(level - 1, below)],
                        [level, level - 1],
                        color="crimson",
                        lw=0.7,
                        alpha=0.6,
                    )
        ax.text(-1.0, level, names[level], ha="right", va="center", fontsize=10)
        ax.text(
            width,
            level,
            f"receptive field {sizes[level]}",
            ha="left",
            va="center",
            fontsize=10,
        )
    ax.set_xlim(-0.5 - 0.2 * width, width * 1.35)
    ax.set_ylim(-0.6, len(layers) + 0.6)
    ax.axis("off")
    ax.set_title("one unit of the top layer and the units it depends on", fontsize=10)
    fig.tight_layout()
    return fig


def plot_global_average_pooling(features: torch.Tensor, channels: int = 8) -> Figure:
    """Global average pooling: each feature map becomes one number, its mean.

    Top: the first ``channels`` maps, each on its own colour scale; bottom: the pooled vector,
    one cell per channel with the mean written in it, and an arrow from each map to its cell.

    Args:
        features: (C, H, W) or (1, C, H, W) feature maps.
        channels: how many channels to show (1 to 12).
    """
    from matplotlib.patches import ConnectionPatch

    maps = features.detach().cpu().float()
    if maps.dim() == 4 and maps.shape[0] == 1:
        maps = maps[0]
    if maps.dim() != 3:
        raise ValueError(
            f"expected (C, H, W) or (1, C, H, W) feature maps, got shape {tuple(features.shape)}"
        )
    if not 1 <= channels <= 12:
        raise ValueError(f"show between 1 and 12 channels, got {channels}")
    shown = maps[: min(channels, maps.shape[0])]
    means = shown.mean(dim=(1, 2)).numpy()
    count = len(shown)
    fig = plt.figure(figsize=(max(1.0 * count, 4.0), 2.8))
    grid = fig.add_gridspec(2, count, height_ratios=[1.0, 0.55], hspace=0.9)
    pooled_ax = fig.add_subplot(grid[1, :])
    limit = float(np.abs(means).max()) or 1.0
    pooled = pooled_ax.imshow(
        means[None, :], cmap="coolwarm", vmin=-limit, vmax=limit, aspect="auto"
    )
    _annotate_cells(
        pooled_ax, means[None, :].round(3), pooled, fmt="{:.3f}", fontsize=9
    )
    pooled_ax.set_xticks(range(count), [f"c={c}" for c in range(count)], fontsize=9)
    pooled_ax.set_yticks([])
    pooled_ax.set_xlabel(
        f"pooled: a ({maps.shape[0]},) vector, one mean per channel", fontsize=10
    )
    for c in range(count):
        ax = fig.add_subplot(grid[0, c])
        ax.imshow(shown[c].numpy(), cmap="viridis")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"c={c}", fontsize=9)
        arrow = ConnectionPatch(
            xyA=(0.5, 0.0),
            coordsA=ax.transAxes,
            xyB=(c, -0.5),
            coordsB=pooled_ax.transData,
            arrowstyle="-|>",
            color="grey",
            lw=0.8,
        )
        fig.add_artist(arrow)
    h, w = maps.shape[-2:]
    fig.suptitle(
        f"global average pooling: ({maps.shape[0]}, {h}, {w}) feature maps -> mean of each map",
        fontsize=10,
    )
    return fig


_LAYER_COLOURS = {
    "Conv": "#7fa7d9",
    "Pool": "#f2b880",
    "Linear": "#9ccf9c",
    "Flatten": "#d0d0d0",
}


def layer_label(layer: torch.nn.Module) -> str:
    """A layer's name for a diagram: "Conv2d 3x3, pad 1", "MaxPool2d 2x2", "Linear"."""
    kind = type(layer).__name__
    kernel = getattr(layer, "kernel_size", None)
    if kernel is not None:
        k = kernel if isinstance(kernel, int) else kernel[0]
        padding = getattr(layer, "padding", 0)
        p = padding if isinstance(padding, int) else padding[0]
        return f"{kind} {k}x{k}" + (f", pad {p}" if p else "")
    return kind


def plot_architecture(model: torch.nn.Sequential, input_shape: Sequence[int]) -> Figure:
    """A sequential network drawn as the shapes its layers produce, left to right.

    One input of ``input_shape`` is run through ``model`` (in eval mode, without gradients).
    Layers that change the shape are drawn: a stack of squares for (C, H, W) outputs (side
    growing with H), a bar for (N,) outputs (height growing with log N), labelled with the layer
    and its output shape. Layers that keep the shape (activations, dropout) are written under
    the arrow that leads to the next drawn layer.

    Args:
        model: an ``nn.Sequential`` whose children run in order.
        input_shape: (C, H, W) or (N,) of one example, without the batch dimension.
    """
    from nbhelpers.train import eval_context

    if not isinstance(model, torch.nn.Sequential):
        raise ValueError(
            f"plot_architecture draws an nn.Sequential, got {type(model).__name__}"
        )
    if len(input_shape) not in (1, 3) or any(int(d) < 1 for d in input_shape):
        raise ValueError(
            f"input_shape must be (C, H, W) or (N,) with positive sizes, got {tuple(input_shape)}"
        )
    parameter = next(model.parameters(), None)
    x = torch.zeros(
        1, *input_shape, device=parameter.device if parameter is not None else "cpu"
    )
    stages: list[dict] = [{"label": "input", "shape": tuple(input_shape), "then": []}]
    with eval_context(model), torch.no_grad():
        for layer in model:
            x = layer(x)
            shape = tuple(x.shape[1:])
            if shape == stages[-1]["shape"] and not isinstance(
                layer, (torch.nn.Conv2d, torch.nn.Linear)
            ):
                stages[-1]["then"].append(type(layer).__name__)
            else:
                stages.append(
                    {
                        "label": layer_label(layer),
                        "shape": shape,
                        "then": [],
                        "kind": type(layer).__name__,
                    }
                )
    largest_side = (
        max(s["shape"][1] for s in stages if len(s["shape"]) == 3)
        if any(len(s["shape"]) == 3 for s in stages)
        else 1
    )
    largest_vector = max(
        (s["shape"][0] for s in stages if len(s["shape"]) == 1), default=2
    )
    fig, ax = plt.subplots(figsize=(8.0, 3.0))
    spacing = 2.3
    for index, stage in enumerate(stages):
        x0 = index * spacing
        shape = stage["shape"]
        kind = stage.get("kind", "input")
        colour = next(
            (c for key, c in _LAYER_COLOURS.items() if key in kind), "#e6e6e6"
        )
        if len(shape) == 3:
            side = 0.45 + 0.75 * shape[1] / largest_side
            for depth in range(min(shape[0], 5)):
                offset = 0.07 * depth
                corner = (x0 - side / 2 - 0.14 + offset, -side / 2 - 0.14 + offset)
                _block(ax, corner, side, side, colour)
            text = f"{shape[0]}@{shape[1]}x{shape[2]}"
        else:
            height = 0.3 + 1.0 * np.log(shape[0] + 1) / np.log(largest_vector + 1)
            _block(ax, (x0 - 0.12, -height / 2), 0.24, height, colour)
            text = f"{shape[0]:,}"
        ax.text(
            x0,
            0.85,
            stage["label"].replace(" ", "\n", 1),
            ha="center",
            va="bottom",
            fontsize=9,
        )
        ax.text(x0, -0.85, text, ha="center", va="top", fontsize=9)
        if index + 1 < len(stages):
            ax.annotate(
                "",
                xy=(x0 + spacing - 0.72, 0),
                xytext=(x0 + 0.72, 0),
                arrowprops={"arrowstyle": "->", "color": "grey"},
            )
            if stage["then"]:
                ax.text(
                    x0 + spacing / 2,
                    0.08,
                    "\n".join(stage["then"]),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    color="dimgray",
                )
    ax.set_xlim(-1.0, (len(stages) - 1) * spacing + 1.0)
    ax.set_ylim(-1.3, 1.5)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    return fig


def _block(
    ax: Axes, corner: tuple[float, float], width: float, height: float, colour: str
) -> None:
    """One outlined block of a layer diagram, lower-left ``corner`` in data coordinates."""
    ax.add_patch(
        Rectangle(corner, width, height, facecolor=colour, edgecolor="black", lw=0.6)
    )


def _stage_colour(label: str) -> str:
    """The colour of a stage by what it does, for LeNet's names and PyTorch's alike."""
    lowered = label.lower()
    for words, colour in (
        (("conv",), _LAYER_COLOURS["Conv"]),
        (("pool", "subsample"), _LAYER_COLOURS["Pool"]),
        (("linear", "full", "rbf", "dense"), _LAYER_COLOURS["Linear"]),
        (("flatten",), _LAYER_COLOURS["Flatten"]),
    ):
        if any(word in lowered for word in words):
            return colour
    return "#e6e6e6"


def plot_layer_stacks(
    networks: Mapping[str, Sequence[tuple[str, Sequence[int]]]],
) -> Figure:
    """Networks drawn one above the other as their stages, stage k of each in column k.

    A (C, H, W) stage is a stack of squares (side growing with H, on one scale for all
    networks; more squares for more channels), a (N,) stage a bar (height growing with log
    N); each is labelled with its name above and its shape below ("6@28x28", "120").

    Args:
        networks: name -> its stages in order, each (label, shape): shape (C, H, W) or (N,)
            of one example, e.g. ``{"LeNet-5": LENET5_STAGES, "this book": ...}``.
    """
    if not networks or any(len(stages) == 0 for stages in networks.values()):
        raise ValueError("plot_layer_stacks needs at least one network with stages")
    for name, stages in networks.items():
        for label, shape in stages:
            if len(shape) not in (1, 3) or any(int(d) < 1 for d in shape):
                raise ValueError(
                    f"{name}, stage {label!r}: shape must be (C, H, W) or (N,) with "
                    f"positive sizes, got {tuple(shape)}"
                )
    shapes = [tuple(shape) for stages in networks.values() for _, shape in stages]
    largest_side = max((s[1] for s in shapes if len(s) == 3), default=1)
    largest_vector = max((s[0] for s in shapes if len(s) == 1), default=2)
    columns = max(len(stages) for stages in networks.values())
    spacing, row_height = 1.0, 2.3
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 1.9 * len(networks) + 0.3))
    for row, (name, stages) in enumerate(networks.items()):
        y = -row * row_height
        ax.text(
            -0.55, y + 1.05, name, ha="left", va="bottom", fontsize=10, weight="bold"
        )
        for index, (label, shape) in enumerate(stages):
            x0, colour = index * spacing, _stage_colour(label)
            if len(shape) == 3:
                side = 0.2 + 0.45 * shape[1] / largest_side
                depth = min(1 + int(np.log2(shape[0])), 6)
                for layer in range(depth):
                    offset = 0.045 * layer - 0.045 * (depth - 1) / 2
                    corner = (x0 - side / 2 + offset, y - side / 2 + offset)
                    _block(ax, corner, side, side, colour)
                text = f"{shape[0]}@{shape[1]}x{shape[2]}"
            else:
                height = 0.2 + 0.75 * np.log(shape[0] + 1) / np.log(largest_vector + 1)
                _block(ax, (x0 - 0.08, y - height / 2), 0.16, height, colour)
                text = f"{shape[0]:,}"
            cut = ": " if ": " in label else " "
            title = label.replace(cut, "\n", 1)
            ax.text(x0, y + 0.5, title, ha="center", va="bottom", fontsize=8)
            ax.text(x0, y - 0.52, text, ha="center", va="top", fontsize=9)
    ax.set_xlim(-0.6, (columns - 1) * spacing + 0.6)
    ax.set_ylim(-(len(networks) - 1) * row_height - 0.85, 1.45)
    ax.axis("off")
    fig.tight_layout()
    return fig


def plot_lr_range_test(
    lrs: Sequence[float],
    losses: Sequence[float],
    smoothed: Sequence[float] | None = None,
    marks: Mapping[str, float] | None = None,
) -> Figure:
    """The loss of each step of a learning-rate range test against its rate (log axis).

    The raw losses are faint, the smoothed ones (if given) solid; each of ``marks``
    (label -> rate, e.g. {"max_lr": 0.003}) is a dotted vertical line named in the legend.
    The loss axis stops at 4 times the smallest loss, so a final blow-up does not flatten
    the curve.

    Args:
        lrs, losses: one rate (> 0) and one loss per step (``LRRangeTest.lrs``, ``.losses``).
        smoothed: the smoothed losses (``LRRangeTest.smoothed``), same length.
        marks: rates to mark, each > 0.
    """
    lrs_array = np.asarray(lrs, dtype=float)
    if len(lrs_array) < 2 or len(losses) != len(lrs_array):
        raise ValueError(
            f"need at least 2 rates and one loss per rate, got {len(lrs_array)} rates "
            f"and {len(losses)} losses"
        )
    if smoothed is not None and len(smoothed) != len(lrs_array):
        raise ValueError(
            f"got {len(lrs_array)} rates but {len(smoothed)} smoothed losses"
        )
    if not np.all(lrs_array > 0) or any(
        not rate > 0 for rate in (marks or {}).values()
    ):
        raise ValueError("learning rates must be > 0 on a log axis")
    fig, ax = plt.subplots(figsize=(8, 3.2))
    faint = 0.35 if smoothed is not None else 1.0
    ax.plot(lrs_array, losses, color="C0", alpha=faint, lw=0.8, label="loss per step")
    if smoothed is not None:
        ax.plot(lrs_array, smoothed, color="C0", label="smoothed")
    for index, (label, rate) in enumerate((marks or {}).items()):
        ax.axvline(rate, color=f"C{index + 1}", linestyle="dotted", lw=1.5, label=label)
    finite = np.asarray(smoothed if smoothed is not None else losses, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size:
        ax.set_ylim(0, 4 * float(finite.min()) if finite.min() > 0 else None)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.grid(linestyle="dotted")
    ax.legend(fontsize=9, framealpha=1.0)
    fig.tight_layout()
    return fig


def plot_kernels(
    weight: torch.Tensor, ncols: int = 8, title: str | None = None
) -> Figure:
    """The kernels of a convolution with one input channel as a grid of small images.

    One colour scale for all kernels, symmetric around zero: white is 0, red negative, blue
    positive (as in ``plot_feature_maps``), with a colour bar.

    Args:
        weight: (out_channels, 1, k, k), e.g. ``model[0].weight`` of ``mnist_cnn()``.
        ncols: kernels per row (>= 1).
        title: above the grid.
    """
    from matplotlib.colors import LinearSegmentedColormap

    if (
        not isinstance(weight, torch.Tensor)
        or weight.dim() != 4
        or weight.shape[1] != 1
    ):
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else weight
        raise ValueError(f"weight must be (out_channels, 1, k, k), got {shape!r}")
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be an int >= 1, got {ncols!r}")
    kernels = weight.detach().cpu().float()[:, 0].numpy()
    limit = float(np.abs(kernels).max()) or 1.0
    diverging = LinearSegmentedColormap.from_list(
        "red_white_blue", ["red", "white", "blue"]
    )
    ncols = min(ncols, len(kernels))
    nrows = (len(kernels) + ncols - 1) // ncols
    size = min(0.8, (PAGE_WIDTH - 1.2) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols + 1.2, size * nrows + 0.5), squeeze=False
    )
    image = None
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(kernels):
            image = ax.imshow(kernels[index], cmap=diverging, vmin=-limit, vmax=limit)
    colourbar = fig.colorbar(image, ax=axes, shrink=0.8)
    colourbar.ax.tick_params(labelsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_char_convolution(
    tokens: str,
    embedded: torch.Tensor,
    responses: torch.Tensor,
    context: int,
    window: int = 0,
    detectors: Sequence[int] = range(4),
) -> Figure:
    """A 1D convolution over character embeddings, then max-pooling over time.

    Top: the embedded name, one column of ``E`` values per token, with the kernel's window of
    ``context`` characters at position ``window``. Middle: the responses of a few detectors
    (output channels) at every window position, aligned under the centre of their windows; the
    maximum of each row is framed. Right: max-pooling over time keeps that maximum, one number
    per detector, wherever in the name it occurred.

    Args:
        tokens: the T tokens of the name as a string (e.g. ".maria.....").
        embedded: (T, E) embeddings of the tokens.
        responses: (D, P) responses of D detectors at P = T - context + 1 positions (after ReLU).
        context: characters per window.
        window: the window position to highlight, 0 <= window < P.
        detectors: which rows of ``responses`` to show (1 to 8).
    """
    emb = embedded.detach().cpu().float().numpy()
    acts = responses.detach().cpu().float().numpy()
    detectors = list(detectors)
    if emb.ndim != 2 or emb.shape[0] != len(tokens):
        raise ValueError(
            f"embedded must be (T, E) with T = {len(tokens)} tokens, got shape {emb.shape}"
        )
    positions = len(tokens) - context + 1
    if acts.ndim != 2 or acts.shape[1] != positions:
        raise ValueError(
            f"responses must be (D, {positions}) for context {context}, got shape {acts.shape}"
        )
    if not 0 <= window < positions:
        raise ValueError(f"window must be in [0, {positions}), got {window}")
    if (
        not 1 <= len(detectors) <= 8
        or max(detectors) >= acts.shape[0]
        or min(detectors) < 0
    ):
        raise ValueError(
            f"detectors must be 1 to 8 rows of the {acts.shape[0]} detectors, got {detectors}"
        )
    rows = acts[detectors]
    pooled = rows.max(axis=1)
    fig = plt.figure(figsize=(8.0, 4.4))
    grid = fig.add_gridspec(
        2,
        2,
        width_ratios=[len(tokens), 2.2],
        height_ratios=[emb.shape[1], 2 * len(detectors)],
    )
    ax_emb = fig.add_subplot(grid[0, 0])
    limit = float(np.abs(emb).max()) or 1.0
    ax_emb.imshow(emb.T, cmap="coolwarm", vmin=-limit, vmax=limit, aspect="auto")
    ax_emb.set_xticks(range(len(tokens)), list(tokens), fontsize=10, family="monospace")
    ax_emb.xaxis.tick_top()
    ax_emb.set_yticks([])
    ax_emb.set_ylabel(f"embedding\n({emb.shape[1]} values)", fontsize=9)
    ax_emb.add_patch(
        Rectangle(
            (window - 0.5, -0.5),
            context,
            emb.shape[1],
            fill=False,
            edgecolor="black",
            lw=2.5,
        )
    )
    ax_emb.set_title(
        f"kernel window: {context} characters x {emb.shape[1]} values, stride 1 character",
        fontsize=10,
    )

    ax_act = fig.add_subplot(grid[1, 0], sharex=ax_emb)
    centre = (context - 1) / 2
    top = float(rows.max()) or 1.0
    act_image = ax_act.imshow(
        rows,
        cmap="Greens",
        vmin=0,
        vmax=top,
        aspect="auto",
        extent=(centre - 0.5, positions - 1 + centre + 0.5, len(detectors) - 0.5, -0.5),
    )
    ax_act.add_patch(
        Rectangle(
            (window + centre - 0.5, -0.5),
            1,
            len(detectors),
            fill=False,
            edgecolor="black",
            lw=2.5,
        )
    )
    for row, values in enumerate(rows):
        best = int(values.argmax())
        ax_act.add_patch(
            Rectangle(
                (best + centre - 0.5, row - 0.5),
                1,
                1,
                fill=False,
                edgecolor="crimson",
                lw=2,
            )
        )
    ax_act.set_yticks(
        range(len(detectors)), [f"detector {d}" for d in detectors], fontsize=9
    )
    ax_act.tick_params(axis="x", labelbottom=False)
    ax_act.set_xlabel("window position (under the centre of its window)", fontsize=9)
    ax_act.set_xlim(-0.5, len(tokens) - 0.5)

    ax_pool = fig.add_subplot(grid[1, 1])
    pool_image = ax_pool.imshow(
        pooled[:, None], cmap="Greens", vmin=0, vmax=top, aspect="auto"
    )
    _annotate_cells(
        ax_pool, pooled[:, None].round(2), pool_image, fmt="{:.2f}", fontsize=9
    )
    ax_pool.set_xticks([])
    ax_pool.set_yticks([])
    ax_pool.set_title("max over\npositions", fontsize=9)
    del act_image
    fig.tight_layout()
    return fig
