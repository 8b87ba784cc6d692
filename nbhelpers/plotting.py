"""Every matplotlib figure the chapters reuse. The only module of nbhelpers that imports matplotlib.

Functions take tensors (any device, with or without grad) and return the ``Figure`` they drew.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

INPUT_CMAPS = ("Reds", "Greens", "Blues")
OUTPUT_CMAPS = ("spring", "summer", "autumn", "winter")


def to_numpy_image(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) or (H, W) tensor to a NumPy array matplotlib can show: (H, W, C) or (H, W)."""
    x = x.detach().cpu().float()
    if x.dim() == 3:
        x = x.permute(1, 2, 0)
        if x.shape[-1] == 1:
            x = x[..., 0]
    elif x.dim() != 2:
        raise ValueError(f"expected a (C, H, W) or (H, W) image, got shape {tuple(x.shape)}")
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
    """A grid of images, each (C, H, W) or (H, W), with optional titles and colour maps."""
    n = len(images)
    if n == 0:
        raise ValueError("show_images needs at least one image")
    ncols = ncols or n
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
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
    fig, ax = plt.subplots(c_in + 1, c_out + 1, figsize=(2.4 * (c_out + 1), 2.4 * (c_in + 1)))
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
        ax[0, k + 1].set_title(r"$\bar{\mathrm{X}}$" + f"(k={k}) = Σ_c + u[{k}]", fontsize=9)
    for a in ax.flat:
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    return fig


def plot_output_maps(S: torch.Tensor, title: str | None = None) -> Figure:
    """The channels of one output, (1, C, H, W) or (C, H, W), side by side in the chapter's colours."""
    maps = S[0] if S.dim() == 4 else S
    fig = show_images(list(maps), [f"k={k}" for k in range(len(maps))], OUTPUT_CMAPS[: len(maps)])
    if title:
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
    return fig


def plot_annotated_matrices(matrices: Mapping[str, torch.Tensor], fmt: str = "{:g}") -> Figure:
    """Small 2D matrices drawn as heat maps with each entry written in its cell."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(2.2 * len(matrices), 2.4), squeeze=False)
    for ax, (title, matrix) in zip(axes.flat, matrices.items()):
        values = matrix.detach().cpu().float().reshape(matrix.shape[-2], matrix.shape[-1]).numpy()
        ax.imshow(values, cmap="viridis", vmin=0)
        for (i, j), value in np.ndenumerate(values):
            ax.text(j, i, fmt.format(value), ha="center", va="center", color="white", fontsize=11)
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
        raise ValueError(f"need as many maps as images (at least one), got {len(images)} and {len(maps)}")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"need {len(images)} titles, got {len(titles)}")
    if not 0.0 <= overlay_alpha <= 1.0:
        raise ValueError(f"overlay_alpha must be in [0, 1], got {overlay_alpha}")
    fig, axes = plt.subplots(len(images), 3, figsize=(3 * size, size * len(images) + 0.3), squeeze=False)
    for row, (image, grad_map) in enumerate(zip(images, maps)):
        picture, heat = to_numpy_image(image), to_numpy_image(grad_map)
        if heat.ndim != 2 or heat.shape != picture.shape[:2]:
            raise ValueError(f"map {row} has shape {heat.shape}, expected (H, W) = {picture.shape[:2]}")
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


def plot_training_history(trainer: object, *more_trainers: object, boundary_label: str = "fine-tuning") -> Figure:
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
            raise ValueError(f"trainer {index} has no training steps to plot; call run() first")
        frame = frame.assign(step=frame["step"] + offset)
        frames.append(frame)
        offset += len(frame)
        if index < len(trainers) - 1:
            boundaries.append(offset)
    history = pd.concat(frames, ignore_index=True)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    panels = (("loss", "loss_avg", "val_loss", "loss"), ("accu", "accu_avg", "val_accu", "accuracy"))
    for ax, (raw, smooth, valid, label) in zip(axes, panels):
        ax.plot(history["step"], history[raw], alpha=0.3, color="C0", linewidth=0.8)
        ax.plot(history["step"], history[smooth], color="C0", label="train")
        ends = history.dropna(subset=[valid])
        if not ends.empty:
            ax.plot(ends["step"], ends[valid], "o-", color="C1", markersize=3, label="valid")
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
            raise ValueError(f"expected an (H, W) or (H, W, C) array, got shape {image.shape}")
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
    from matplotlib.patches import Rectangle

    n = len(images)
    if n == 0 or len(labels) != n:
        raise ValueError(f"need as many labels as images (at least one), got {n} and {len(labels)}")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    if box is not None and not 0 <= box[0] < box[1]:
        raise ValueError(f"box must be (first, end) with 0 <= first < end, got {box}")
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.25) * nrows), squeeze=False)
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
                Rectangle((first - 0.5, first - 0.5), end - first, end - first, fill=False, color=box_color, linewidth=1)
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
        raise ValueError(f"need one validation view per epoch (at least one), got {epochs} and {len(valid_views)}")
    instances = len(train_views[0])
    if instances == 0 or any(len(row) != instances for row in train_views) or len(train_labels) != instances:
        raise ValueError("every epoch needs the same number of training views, one label per instance")
    fig, axes = plt.subplots(epochs, instances + 1, figsize=(size * (instances + 1), size * epochs + 0.3), squeeze=False)
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
                ax.set_title("valid" if column == instances else f"instance {column}", fontsize=9)
        axes[epoch, 0].set_ylabel(f"epoch {epoch}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(
    matrix: torch.Tensor | np.ndarray, class_names: Sequence[str], title: str | None = None
) -> Figure:
    """A (K, K) confusion matrix (rows: true class, columns: predicted class) with counts and row shares.

    Each cell shows its count and, below, the share of its row (for a binary task: the
    true-negative and false-positive rates in the first row, the miss rate and recall in the
    second). Colours follow the row shares.
    """
    counts = np.asarray(matrix.detach().cpu() if isinstance(matrix, torch.Tensor) else matrix)
    k = len(class_names)
    if counts.shape != (k, k):
        raise ValueError(f"expected a ({k}, {k}) matrix for {k} class names, got shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError("a confusion matrix holds counts >= 0")
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape, float), where=totals > 0)
    fig, ax = plt.subplots(figsize=(1.4 * k + 1.6, 1.4 * k + 1.0))
    ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for (i, j), count in np.ndenumerate(counts):
        colour = "white" if shares[i, j] > 0.5 else "black"
        ax.text(j, i, f"{int(count):,}\n{shares[i, j]:.1%}", ha="center", va="center", color=colour, fontsize=10)
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
        raise ValueError(f"precision and recall must be 1-D of equal length, got {precision.shape} and {recall.shape}")
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    label = "model" if average_precision is None else f"model (AP = {average_precision:.3f})"
    ax.step(recall, precision, where="post", color="C0", label=label)
    if positive_share is not None:
        ax.axhline(positive_share, color="gray", linestyle="dashed", label=f"chance ({positive_share:.2f})")
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


def plot_schedule(lr: Sequence[float], momentum: Sequence[float] | None = None) -> Figure:
    """The learning rate (top) and, if given, the momentum or Adam's beta1 (bottom) per step.

    Args:
        lr: one value per optimizer step (e.g. ``SchedulerStatsRecorder.lr``).
        momentum: one value per step (``SchedulerStatsRecorder.momentum``), same length as lr.
    """
    if len(lr) == 0:
        raise ValueError("plot_schedule needs at least one learning-rate value")
    if momentum is not None and len(momentum) != len(lr):
        raise ValueError(f"got {len(lr)} learning rates but {len(momentum)} momentum values")
    series = [("learning rate", lr)] + ([(r"momentum ($\beta_1$)", momentum)] if momentum is not None else [])
    fig, axes = plt.subplots(len(series), 1, figsize=(8, 1.5 * len(series) + 0.4), sharex=True, squeeze=False)
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
        raise ValueError("plot_feature_maps needs at least one block, each with at least one layer")
    if not 1 <= len(channels) <= 8:
        raise ValueError(f"show between 1 and 8 channels, got {len(channels)}")
    for block in blocks:
        for name, output in block:
            if output.dim() not in (1, 3):
                raise ValueError(f"layer {name!r}: expected a (C, H, W) or (N,) output, got {tuple(output.shape)}")
            if output.dim() == 3 and max(channels) >= output.shape[0]:
                raise ValueError(f"layer {name!r} has {output.shape[0]} channels; cannot show channel {max(channels)}")
    rows = len(channels)
    ratios, kinds = [1.0], ["input"]
    for block in blocks:
        ratios.append(0.2)
        kinds.append("gap")
        for name, output in block:
            ratios.append(1.0 if output.dim() == 3 else 0.6)
            kinds.append((name, output))
    fig = plt.figure(figsize=(12, 5), constrained_layout=True)
    grid = fig.add_gridspec(rows, len(ratios), width_ratios=ratios)
    from matplotlib.colors import LinearSegmentedColormap

    diverging = LinearSegmentedColormap.from_list("red_white_blue", ["red", "white", "blue"])

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
        axis.imshow(block, cmap=diverging, vmin=-limit, vmax=limit, aspect="auto")
        axis.set_title(name, fontsize=9)
        axis.set_xticks([])
        if column == last and block.shape[1] == 1:
            axis.set_yticks(range(block.shape[0]))
            if logit_labels is not None:
                axis.set_yticklabels(list(logit_labels))
            for i, value in enumerate(block[:, 0]):
                axis.text(0, i, f"{value:.1f}", ha="center", va="center", fontsize=8)
        else:
            axis.set_yticks([])
    return fig


def plot_prediction_bars(
    probabilities: torch.Tensor, classes: Sequence[str] | None = None, title: str | None = None
) -> Figure:
    """A bar per class with its predicted probability.

    Args:
        probabilities: (K,) values in [0, 1] (e.g. a softmax).
        classes: K labels for the x axis; default 0..K-1.
    """
    values = probabilities.detach().cpu().float().reshape(-1).numpy()
    if values.size == 0:
        raise ValueError("plot_prediction_bars needs at least one probability")
    labels = list(classes) if classes is not None else [str(k) for k in range(values.size)]
    if len(labels) != values.size:
        raise ValueError(f"got {values.size} probabilities but {len(labels)} class labels")
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
        ax.axvline(cutoff + 0.5, color="black", linestyle="dashed", label=f"cut-off {cutoff}")
        ax.legend()
    ax.set_xlabel("length")
    ax.set_ylabel("count")
    ax.grid(axis="y", linestyle="dotted")
    fig.tight_layout()
    return fig
