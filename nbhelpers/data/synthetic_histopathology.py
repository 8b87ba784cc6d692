"""Synthetic H&E-stained lymph-node patches in the Kaggle "Histopathologic Cancer Detection" layout.

The embedded default behind ``synthetic_patches`` when no real patches are at hand. Each patch
is 96x96 RGB, rendered in optical density with the haematoxylin and eosin stain vectors of
Ruifrok and Johnston (2001) and the Beer-Lambert law, so the colours are those of H&E: pink
eosin stroma with white gaps, purple-blue haematoxylin nuclei.

What a patch may contain:

- normal tissue everywhere: scattered small round nuclei and elongated fibroblast nuclei;
- in half of the patches a lymphocyte sheet: crowded, small, round nuclei, darker still than
  tumour nuclei (a decoy: darkness alone does not give the label, size and shape do);
- tumour-like tissue: crowded, enlarged, dark (hyperchromatic), pleomorphic nuclei (ellipses of
  random size, elongation and angle) on purplish cytoplasm.

The label is 1 if and only if a tumour nucleus covers at least one pixel of the centre 32x32
square (rows and columns 32..63), as in the Kaggle set. About 40% of patches are positive. Many
negatives hold tumour tissue outside the centre, some of it just outside, so that a model has to
look at the centre: this is why the chapters crop the centre.

``synthetic_slide`` renders a larger square of the same tissue with a few tumour regions and
returns its pixel mask of tumour nuclei; ``window_labels`` applies the patch label rule to every
window a classifier would see when slid over it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from nbhelpers import checks, storage
from nbhelpers.data.patches import CROP, PATCH_SIZE

CENTRE = (32, 64)  # the labelled square: rows and columns CENTRE[0] .. CENTRE[1] - 1
# Where the labelled square sits in the CROP x CROP centre crop a classifier sees: it starts at
# row and column 8 (the crop starts at 24 in a 96x96 patch) and is 32 wide.
CENTRE_IN_CROP = CENTRE[0] - int(round((PATCH_SIZE - CROP) / 2.0))
POSITIVE_FRACTION = 0.4
GENERATOR_VERSION = 1
MARKER = "synthetic.json"
GENERATOR_NAME = "nbhelpers synthetic histopathology"
LABELS_FILE = "train_labels.csv"
# guards against a typo that would generate for hours; Kaggle has 220,025
MAX_PATCHES = 1_000_000

# Optical-density vectors (R, G, B) of haematoxylin and eosin (Ruifrok & Johnston, 2001).
_HAEMATOXYLIN = np.array([0.650, 0.704, 0.286], np.float32)
_EOSIN = np.array([0.072, 0.990, 0.105], np.float32)
# How negatives are built: the share holding tumour tissue outside the centre, the share of
# those whose tumour lies just outside (inside the 49x49 crop), and the gap in pixels kept
# between any tumour nucleus of a negative and the centre square.
_NEGATIVE_TUMOUR_SHARE = 0.6
_NEAR_SHARE = 0.6
_GAP = 2
_LYMPHOCYTE_SHARE = 0.5


@dataclass(frozen=True)
class SyntheticPatch:
    """One rendered patch. image: (96, 96, 3) uint8 RGB; tumour: (96, 96) bool; label: 0 or 1."""

    image: np.ndarray
    tumour: np.ndarray
    label: int


def synthetic_patch(seed: int, index: int) -> SyntheticPatch:
    """Patch ``index`` of the synthetic set with ``seed``: a pure function of (seed, index).

    Raises:
        ValueError: ``seed`` or ``index`` is not an int >= 0.
    """
    for label, value in (("seed", seed), ("index", index)):
        if not checks.is_int(value) or value < 0:
            raise ValueError(f"{label} must be an int >= 0, got {value!r}")
    rng = np.random.default_rng([GENERATOR_VERSION, seed, index])
    wants_positive = bool(rng.random() < POSITIVE_FRACTION)
    return _render(rng, wants_positive)


@dataclass(frozen=True)
class SyntheticSlide:
    """A rendered slide. image: (size, size, 3) uint8 RGB; tumour: (size, size) bool, the
    pixels of tumour nuclei (the truth the patch labels are made from)."""

    image: np.ndarray
    tumour: np.ndarray


def synthetic_slide(seed: int = 0, size: int = 384, regions: int = 3) -> SyntheticSlide:
    """A ``size`` x ``size`` square of synthetic tissue with ``regions`` tumour regions.

    The tissue is the patches' (normal and fibroblast nuclei, lymphocyte sheets, tumour
    nuclei on purplish cytoplasm), at the same scale, rendered on the larger square; each
    tumour region is a blob about 60 to 110 pixels across placed anywhere on the slide. A
    pure function of (seed, size, regions).

    Raises:
        ValueError: ``size`` not in 96..2048, ``seed`` < 0 or ``regions`` < 1 (not ints).
    """
    checks.slide_arguments(size, seed, regions)
    rng = np.random.default_rng([GENERATOR_VERSION, seed, size, regions, 2])
    scale = size / PATCH_SIZE
    eosin, cytoplasm = _background(rng, size)
    nuclei = np.zeros((2 * size, 2 * size), np.float32)
    tumour = np.zeros((size, size), np.uint8)
    count = rng.poisson(rng.uniform(12, 45) * scale**2)
    points = rng.uniform(-3, size + 3, (count, 2))
    _draw_nuclei(nuclei, None, rng, points, (1.8, 3.0), (0.6, 1.0), (0.6, 1.0))
    points = rng.uniform(-3, size + 3, (rng.poisson(rng.uniform(3, 12) * scale**2), 2))
    _draw_nuclei(nuclei, None, rng, points, (3.5, 6.0), (0.25, 0.4), (0.6, 1.0))
    for _ in range(max(1, round(scale))):  # lymphocyte sheets, the dark decoys
        region = _blob(rng, rng.uniform(0, size, 2), rng.uniform(15, 35), size)
        points = _jittered_grid(rng, rng.uniform(4.5, 6.0), region)
        _draw_nuclei(nuclei, None, rng, points, (1.8, 2.5), (0.85, 1.0), (1.2, 1.8))
    for _ in range(regions):
        region = _blob(
            rng, rng.uniform(0.1 * size, 0.9 * size, 2), rng.uniform(30, 50), size
        )
        soft = cv2.GaussianBlur(region.astype(np.float32), (0, 0), 2.0)
        cytoplasm = cytoplasm + 0.12 * soft
        eosin = eosin * (1 - 0.35 * soft)
        points = _jittered_grid(rng, rng.uniform(7.0, 9.0), region)
        tumour_nuclei = ((3.1, 5.2), (0.5, 0.95), (0.95, 1.55))
        _draw_nuclei(nuclei, tumour, rng, points, *tumour_nuclei)
    image = _stain(rng, eosin, cytoplasm, nuclei)
    return SyntheticSlide(image=image, tumour=tumour.astype(bool))


def window_labels(
    tumour: np.ndarray, window: int = CROP, stride: int = 16
) -> np.ndarray:
    """The patch label rule applied to every ``window`` x ``window`` window of a slide.

    Windows start at rows and columns 0, stride, 2 * stride, ... as long as they fit; a
    window is labelled 1 when a tumour pixel lies in its centre square, which sits in the
    window as the labelled 32x32 square sits in the patch's centre crop (from
    ``CENTRE_IN_CROP``, 32 wide). tumour: (H, W) bool. Returns (rows, cols) bool,
    rows = (H - window) // stride + 1.

    Raises:
        ValueError: ``tumour`` is not a 2-d array at least ``window`` high and wide, or
            ``window`` < 40 or ``stride`` < 1.
    """
    checks.integer(window, "window", minimum=CENTRE_IN_CROP + 32)
    checks.integer(stride, "stride")
    tumour = np.asarray(tumour, dtype=bool)
    if tumour.ndim != 2 or min(tumour.shape) < window:
        raise ValueError(
            f"tumour must be (H >= {window}, W >= {window}), got {tumour.shape}"
        )
    side = CENTRE[1] - CENTRE[0]
    rows, cols = ((n - window) // stride + 1 for n in tumour.shape)
    labels = np.zeros((rows, cols), bool)
    for i in range(rows):
        for j in range(cols):
            top, left = i * stride + CENTRE_IN_CROP, j * stride + CENTRE_IN_CROP
            labels[i, j] = tumour[top : top + side, left : left + side].any()
    return labels


def synthetic_id(seed: int, index: int) -> str:
    """A Kaggle-like 40-hex-digit id, fixed by (seed, index)."""
    return hashlib.sha1(f"nbhelpers-synthetic-{seed}-{index}".encode()).hexdigest()


def synthetic_folder_name(n: int, seed: int) -> str:
    """The folder name of a synthetic set: ``histopathology-synthetic-v<version>-n<n>-seed<seed>``."""
    return f"histopathology-synthetic-v{GENERATOR_VERSION}-n{n}-seed{seed}"


def check_synthetic_arguments(n: object, seed: object, n_test: object = 0) -> None:
    """Raise ValueError naming the value unless 1 <= n <= MAX_PATCHES, seed >= 0 and n_test >= 0 (ints)."""
    if not checks.is_int(n) or not 1 <= n <= MAX_PATCHES:
        raise ValueError(f"n must be an int in 1..{MAX_PATCHES:,}, got {n!r}")
    if not checks.is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if not checks.is_int(n_test) or not 0 <= n_test <= MAX_PATCHES:
        raise ValueError(f"n_test must be an int in 0..{MAX_PATCHES:,}, got {n_test!r}")


def make_synthetic_histopathology(
    root: str | Path, n: int, seed: int = 0, n_test: int = 16
) -> Path:
    """Write ``n`` labelled (and ``n_test`` unlabelled) synthetic patches in the Kaggle layout.

    Layout: ``root/train/<id>.tif`` (96x96 RGB, uncompressed TIFF as in the Kaggle set),
    ``root/train_labels.csv`` (``id,label``), ``root/test/<id>.tif`` and ``root/synthetic.json``
    (n, n_test, seed, version). The same (n, seed, n_test) gives byte-identical files. The set is
    written into a temporary folder beside ``root`` and renamed into place
    (``storage.atomic_directory``, permissions from the umask), so ``root`` either does not exist
    or is complete; when another process completed ``root`` meanwhile, its copy is kept.

    Returns:
        ``root`` (absolute).

    Raises:
        ValueError: ``n``, ``seed`` or ``n_test`` out of range (see ``check_synthetic_arguments``).
        FileExistsError: ``root`` already exists.
        FileNotFoundError, PermissionError: the parent folder is missing or not writable.
    """
    check_synthetic_arguments(n, seed, n_test)
    root = Path(root).expanduser().resolve()
    if os.path.lexists(root):
        raise FileExistsError(f"{root} already exists; not overwriting it")
    with storage.atomic_directory(root) as temporary:
        _write_split(
            temporary / "train", seed, range(n), with_labels_to=temporary / LABELS_FILE
        )
        _write_split(temporary / "test", seed, range(n, n + n_test))
        meta = {
            "generator": GENERATOR_NAME,
            "version": GENERATOR_VERSION,
            "n": n,
            "n_test": n_test,
            "seed": seed,
        }
        (temporary / MARKER).write_text(json.dumps(meta, indent=1) + "\n")
    return root


def check_synthetic_folder(root: Path, n: int, seed: int) -> None:
    """Check that ``root`` holds the complete synthetic set (n, seed) of this generator version.

    Raises:
        ValueError: the marker is missing, unreadable, not this generator's, or for another
            (n, seed), or the patch or label counts disagree with it; the message names the
            folder and says to delete it so that it is generated again.
    """
    marker = root / MARKER
    remedy = "delete the folder to have it generated again"
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(
            f"{root} is not a complete synthetic set: {MARKER} unreadable ({error}); {remedy}"
        ) from None
    if not isinstance(meta, dict) or meta.get("generator") != GENERATOR_NAME:
        raise ValueError(
            f"{root} is not a complete synthetic set: {MARKER} is not this generator's; {remedy}"
        )
    found = {key: meta.get(key) for key in ("version", "n", "seed")}
    wanted = {"version": GENERATOR_VERSION, "n": n, "seed": seed}
    if found != wanted:
        raise ValueError(
            f"{root} holds a synthetic set with {found}; expected {wanted}; {remedy}"
        )
    try:
        with (root / LABELS_FILE).open("rb") as handle:
            rows = sum(1 for line in handle if line.strip()) - 1
        patches = sum(
            1 for entry in os.scandir(root / "train") if entry.name.endswith(".tif")
        )
    except OSError as error:
        raise ValueError(
            f"{root} is not a complete synthetic set ({error}); {remedy}"
        ) from None
    if rows != n or patches != n:
        raise ValueError(
            f"{root} is not a complete synthetic set: {rows} labels and {patches} patches, expected {n}; {remedy}"
        )


def _write_split(
    folder: Path, seed: int, indices: range, with_labels_to: Path | None = None
) -> None:
    folder.mkdir()
    rows = ["id,label"]
    for index in indices:
        patch = synthetic_patch(seed, index)
        patch_id = synthetic_id(seed, index)
        bgr = np.ascontiguousarray(patch.image[:, :, ::-1])  # OpenCV writes BGR
        # 1: none
        ok, encoded = cv2.imencode(".tif", bgr, [cv2.IMWRITE_TIFF_COMPRESSION, 1])
        if not ok:
            raise RuntimeError(f"OpenCV could not encode synthetic patch {index}")
        (folder / f"{patch_id}.tif").write_bytes(encoded.tobytes())
        rows.append(f"{patch_id},{patch.label}")
    if with_labels_to is not None:
        with_labels_to.write_text("\n".join(rows) + "\n")


# ---- rendering ---------------------------------------------------------------------------------


def _background(
    rng: np.random.Generator, size: int = PATCH_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """(size, size) eosin and cytoplasm densities, smooth at the scale of the patches."""
    scale = size / PATCH_SIZE
    eosin = rng.uniform(0.35, 0.7) * (
        1
        + 0.25 * _smooth_noise(rng, round(8 * scale), size)
        + 0.12 * _smooth_noise(rng, round(24 * scale), size)
    )
    if rng.random() < 0.5:  # white gaps between tissue
        gaps = _smooth_noise(rng, round(5 * scale), size) > rng.uniform(0.8, 1.6)
        eosin = np.where(gaps, eosin * 0.1, eosin)
    cytoplasm = rng.uniform(0.04, 0.12) * (
        1 + 0.3 * _smooth_noise(rng, round(12 * scale), size)
    )
    return eosin, cytoplasm


def _render(rng: np.random.Generator, wants_positive: bool) -> SyntheticPatch:
    size = PATCH_SIZE
    eosin, cytoplasm = _background(rng, size)
    # Nuclei are drawn at twice the resolution with 1/4-pixel precision, then area-averaged:
    # cheap antialiasing.
    nuclei = np.zeros((2 * size, 2 * size), np.float32)
    tumour = np.zeros((size, size), np.uint8)

    points = rng.uniform(-3, size + 3, (rng.poisson(rng.uniform(12, 45)), 2))
    _draw_nuclei(nuclei, None, rng, points, (1.8, 3.0), (0.6, 1.0), (0.6, 1.0))
    # fibroblasts
    points = rng.uniform(-3, size + 3, (rng.poisson(rng.uniform(3, 12)), 2))
    _draw_nuclei(nuclei, None, rng, points, (3.5, 6.0), (0.25, 0.4), (0.6, 1.0))
    if rng.random() < _LYMPHOCYTE_SHARE:
        region = _blob(rng, rng.uniform(0, size, 2), rng.uniform(15, 35))
        points = _jittered_grid(rng, rng.uniform(4.5, 6.0), region)
        _draw_nuclei(nuclei, None, rng, points, (1.8, 2.5), (0.85, 1.0), (1.2, 1.8))

    if wants_positive or rng.random() < _NEGATIVE_TUMOUR_SHARE:
        region, forbidden = _tumour_region(rng, wants_positive)
        soft = cv2.GaussianBlur(region.astype(np.float32), (0, 0), 2.0)
        cytoplasm = cytoplasm + 0.12 * soft
        eosin = eosin * (1 - 0.35 * soft)
        points = _jittered_grid(rng, rng.uniform(7.0, 9.0), region)
        _draw_nuclei(
            nuclei,
            tumour,
            rng,
            points,
            (3.1, 5.2),
            (0.5, 0.95),
            (0.95, 1.55),
            forbidden,
        )
    label = int(tumour[CENTRE[0] : CENTRE[1], CENTRE[0] : CENTRE[1]].any())
    image = _stain(rng, eosin, cytoplasm, nuclei)
    return SyntheticPatch(image=image, tumour=tumour.astype(bool), label=label)


def _stain(
    rng: np.random.Generator,
    eosin: np.ndarray,
    cytoplasm: np.ndarray,
    nuclei: np.ndarray,
) -> np.ndarray:
    """(size, size, 3) uint8 RGB from the stain densities (nuclei at twice the size)."""
    size = eosin.shape[0]
    haematoxylin = cytoplasm + cv2.resize(
        nuclei, (size, size), interpolation=cv2.INTER_AREA
    )
    chromatin = cv2.GaussianBlur(
        rng.standard_normal((size, size)).astype(np.float32), (0, 0), 0.7
    )
    haematoxylin = haematoxylin * (1 + 0.2 * chromatin)
    focus = rng.uniform(0.5, 1.1)
    haematoxylin = cv2.GaussianBlur(haematoxylin.astype(np.float32), (0, 0), focus)
    eosin = cv2.GaussianBlur(np.clip(eosin, 0, None).astype(np.float32), (0, 0), focus)
    stain_h = _HAEMATOXYLIN * rng.uniform(0.85, 1.15, 3).astype(np.float32)
    stain_e = _EOSIN * rng.uniform(0.85, 1.15, 3).astype(np.float32)
    density = haematoxylin[..., None] * stain_h + eosin[..., None] * stain_e + 0.03
    rgb = 255.0 * np.exp(-density) + rng.normal(0.0, 2.5, density.shape)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _tumour_region(
    rng: np.random.Generator, positive: bool
) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """A blob of tumour tissue, and for negatives the box no tumour nucleus may touch."""
    low, high = CENTRE
    radius = rng.uniform(14, 28)
    if positive:
        # on or near the centre square, covering at least a few nuclei's worth of it
        while True:
            region = _blob(rng, rng.uniform(low - 9, high + 9, 2), radius)
            if region[low:high, low:high].sum() >= 40:
                return region, None
    near = rng.random() < _NEAR_SHARE
    while True:
        centre = rng.uniform(-10, PATCH_SIZE + 10, 2)
        distance = np.abs(
            centre - PATCH_SIZE / 2
        ).max()  # chessboard distance to the middle
        if (near and distance > 22) or distance > 40:
            break
    return _blob(rng, centre, radius), (
        low - _GAP,
        low - _GAP,
        high + _GAP,
        high + _GAP,
    )


def _smooth_noise(
    rng: np.random.Generator, cells: int, size: int = PATCH_SIZE
) -> np.ndarray:
    """(size, size) float32 noise, smooth at the scale of size / cells pixels, about N(0, 1)."""
    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


def _blob(
    rng: np.random.Generator, centre: np.ndarray, radius: float, size: int = PATCH_SIZE
) -> np.ndarray:
    """(size, size) uint8 mask: a union of 3 to 6 discs scattered around ``centre``."""
    mask = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(3, 7))):
        x, y = centre + rng.normal(0.0, radius / 2.5, 2)
        cv2.circle(
            mask,
            (int(round(x)), int(round(y))),
            int(radius * rng.uniform(0.45, 0.8)),
            1,
            -1,
        )
    return mask


def _jittered_grid(
    rng: np.random.Generator, spacing: float, region: np.ndarray
) -> np.ndarray:
    """(K, 2) points (x, y) on a randomly shifted and jittered grid, kept where ``region`` is set."""
    size = region.shape[0]  # square
    count = int(size / spacing) + 2
    gx, gy = np.meshgrid(np.arange(count) * spacing, np.arange(count) * spacing)
    points = (
        np.stack([gx.ravel(), gy.ravel()], axis=1)
        + rng.uniform(0, spacing, 2)
        - spacing / 2
    )
    points = points + rng.normal(0.0, spacing * 0.25, points.shape)
    inside = ((points >= 0) & (points < size)).all(axis=1)
    points = points[inside]
    xi, yi = np.floor(points).astype(int).T
    return points[region[yi, xi] > 0]


def _draw_nuclei(
    nuclei: np.ndarray,
    tumour: np.ndarray | None,
    rng: np.random.Generator,
    points: np.ndarray,
    semi_axis: tuple[float, float],
    aspect: tuple[float, float],
    darkness: tuple[float, float],
    forbidden: tuple[float, ...] | None = None,
) -> None:
    """Draw one filled ellipse per point into ``nuclei`` (2x resolution) and ``tumour`` (1x).

    Ellipses whose bounding square would reach into ``forbidden`` (x0, y0, x1, y1) are skipped.
    """
    for x, y in points:
        a = rng.uniform(*semi_axis)
        b = a * rng.uniform(*aspect)
        angle = rng.uniform(0.0, 180.0)
        value = rng.uniform(*darkness)
        if forbidden is not None:
            x0, y0, x1, y1 = forbidden
            if (
                x + a + 1 >= x0
                and x - a - 1 < x1
                and y + a + 1 >= y0
                and y - a - 1 < y1
            ):
                continue
        # shift=2: coordinates in quarter pixels; pixel i at 1x is pixels 2i, 2i+1 at 2x
        centre2, axes2 = (
            (round(x * 8 + 2), round(y * 8 + 2)),
            (round(a * 8), round(b * 8)),
        )
        cv2.ellipse(
            nuclei, centre2, axes2, angle, 0, 360, float(value), -1, cv2.LINE_8, 2
        )
        if tumour is not None:
            centre1, axes1 = (round(x * 4), round(y * 4)), (round(a * 4), round(b * 4))
            cv2.ellipse(tumour, centre1, axes1, angle, 0, 360, 1, -1, cv2.LINE_8, 2)
