"""Patches decoded and augmented per second by chapter 05's input pipelines.

What each variant produces: shuffled (B, 3, 49, 49) float32 training batches, randomly flipped and
rotated and centre-cropped, from the patch files of the recipe's training set.

(a) the lecture notebook's pipeline, the reference of every ratio: ``HistopathologicDataset`` with
    ``train_transform()`` (OpenCV decoding and torchvision's per-image transforms, one patch at a
    time) in a DataLoader without worker processes;
(b) the same dataset in ``patch_loader`` with 0, 1 and 2 worker processes (``cv2.setNumThreads(0)``
    per worker, persistent workers, prefetching); timed on the second pass, after the workers
    have started;
(c) ``decode_patches`` once into a uint8 tensor on the device, then ``DeviceBatches`` with
    ``BatchAugment``: per epoch only a gather and one batched resampling. The decoding is shown
    separately; its cost is paid once, not every epoch.

On CUDA, (c) runs on the GPU, and the end-to-end recipe (30 epochs over 32,000 patches, batch
256, bf16 autocast, channels-last) is timed too. Goal on one H100/H200: <= 120 s end to end;
anchor: 6,266 s for the original notebook on its author's machine. On the CPU, torch uses one
thread (as the chapters do).

    python -m benchmarks.histopathology_pipeline [--patches N] [--end-to-end auto|yes|no]
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import time
from collections.abc import Callable, Iterable

import torch
from torch.utils.data import DataLoader

from nbhelpers.data import (
    DeviceBatches,
    HistopathologicDataset,
    find_kaggle_patches,
    load_histopathology_labels,
    synthetic_patches,
    train_transform,
)
from nbhelpers.data.pipeline import BatchAugment, decode_patches, patch_loader
from nbhelpers.device import get_device, profile

BATCH_SIZE = 32
GOAL_SECONDS = 120.0
ANCHOR_SECONDS = 6266.0
QUICK_PATCHES = 1_024
FULL_PATCHES = 8_192
REFERENCE = "(a) lecture notebook: per-item Dataset + transforms, main process"


def _drain(batches: Iterable, sync: Callable[[], None]) -> int:
    """Consume every batch; return the number of patches."""
    count = 0
    for x, _ in batches:
        count += len(x)
    sync()
    return count


def _rate(run: Callable[[], int], passes: int = 2) -> float:
    """Patches per second of the best of ``passes`` passes (the first pass pays any start-up)."""
    best = 0.0
    for _ in range(passes):
        start = time.perf_counter()
        count = run()
        best = max(best, count / (time.perf_counter() - start))
    return best


def measure(
    patches: int | None = None, end_to_end: bool | None = None
) -> list[dict[str, object]]:
    """One row per pipeline: patches per second and the ratio to the lecture notebook's pipeline, measured now.

    Args:
        patches: training patches per pass; None: 1,024 in the quick profile, 8,192 in the full one.
        end_to_end: also time the whole full recipe (30 epochs over 32,000 patches); None means
            "on CUDA only" (it takes minutes even there and hours on a CPU).
    """
    device = get_device()
    patches = patches or (QUICK_PATCHES if profile() == "quick" else FULL_PATCHES)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        folder = find_kaggle_patches(min_labelled=patches) or synthetic_patches(patches)
        root = folder.root
        labels = load_histopathology_labels(root).iloc[:patches]
        dataset = HistopathologicDataset(labels, root, transform=train_transform())
        rows: list[tuple[str, float, str]] = []

        seed_loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True)
        rows.append(
            (
                REFERENCE,
                _rate(lambda: _drain(seed_loader, sync)),
                "decodes and transforms every patch every epoch",
            )
        )
        for workers in (0, 1, 2):
            loader = patch_loader(
                dataset, BATCH_SIZE, shuffle=True, num_workers=workers
            )
            note = (
                "best of 2 passes"
                if workers == 0
                else "best of 2 passes (the 2nd reuses the started workers)"
            )
            rows.append(
                (
                    f"(b) patch_loader, {workers} worker(s)",
                    _rate(functools.partial(_drain, loader, sync)),
                    note,
                )
            )
            del loader  # stops persistent workers

        start = time.perf_counter()
        cache = decode_patches(dataset.paths).to(device)
        sync()
        decode_rate = len(dataset) / (time.perf_counter() - start)
        rows.append(
            (
                "(c) decode_patches once (uint8 cache)",
                decode_rate,
                "paid once, not per epoch",
            )
        )
        labels_tensor = torch.tensor(dataset.labels)
        batches = DeviceBatches(
            cache,
            labels_tensor,
            BATCH_SIZE,
            shuffle=True,
            seed=0,
            transform=BatchAugment(),
        )
        rows.append(
            (
                f"(c) cache + BatchAugment on {device.type}, per epoch",
                _rate(lambda: _drain(batches, sync), 3),
                "best of 3 passes",
            )
        )
        big = DeviceBatches(
            cache, labels_tensor, 256, shuffle=True, seed=0, transform=BatchAugment()
        )
        rows.append(
            (
                f"(c) cache + BatchAugment on {device.type}, batch 256",
                _rate(lambda: _drain(big, sync), 3),
                "best of 3 passes",
            )
        )
    finally:
        torch.set_num_threads(threads)

    reference = rows[0][1]
    result = [
        {
            "pipeline": name,
            "patches/s": rate,
            "x (a)": rate / reference,
            "note": note,
            "device": device.type,
        }
        for name, rate, note in rows
    ]
    if end_to_end if end_to_end is not None else device.type == "cuda":
        result.append(end_to_end_row(device))
    return result


def end_to_end_row(device: torch.device) -> dict[str, object]:
    """The full recipe (32,000 + 8,000 patches, 10 + 20 epochs) with the fast GPU settings, timed."""
    from nbhelpers.recipes.histopathology import HistopathologyRecipe

    recipe = HistopathologyRecipe.for_profile(
        "full",
        batch_size=256,
        eval_batch_size=1024,
        precision="bf16",
        channels_last=True,
        download=False,
    )
    # generating the synthetic set is not timed
    synthetic_patches(recipe.synthetic_size)
    start = time.perf_counter()
    data = recipe.prepare(num_workers=8 if device.type == "cuda" else 0)
    decoded = time.perf_counter() - start
    frozen, finetune = recipe.train(data, device, verbose=False)
    trained = time.perf_counter() - start - decoded
    seconds = {"data": decoded, "train": trained, "total": decoded + trained}
    accuracy = finetune.valid_log["accuracy"][-1]
    note = (
        f"data {seconds['data']:.1f} s, training {seconds['train']:.1f} s; "
        f"valid accuracy {accuracy:.4f}; data {data.source}; "
        f"goal <= {GOAL_SECONDS:.0f} s, anchor {ANCHOR_SECONDS:,.0f} s"
    )
    epochs = recipe.epochs_frozen + recipe.epochs_finetune
    return {
        "pipeline": "end-to-end full recipe (batch 256, bf16, channels_last)",
        "patches/s": epochs * recipe.train_size / seconds["total"],
        "x (a)": float("nan"),
        "note": note,
        "device": device.type,
        "seconds": seconds["total"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--patches",
        type=int,
        default=None,
        help="patches per pass (default: by profile)",
    )
    parser.add_argument(
        "--end-to-end",
        choices=("auto", "yes", "no"),
        default="auto",
        help="time the full recipe: yes, no, or auto (on CUDA only; the default)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the rows as one JSON line"
    )
    args = parser.parse_args()
    rows = measure(
        args.patches, {"auto": None, "yes": True, "no": False}[args.end_to_end]
    )
    if args.json:
        print(json.dumps(rows))
        return 0
    device = get_device()
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else (platform.processor() or platform.machine())
    )
    print(
        f"device: {device.type} ({name}), torch {torch.__version__}, profile {profile()}, batch {BATCH_SIZE}"
    )
    print(f"{'pipeline':<58}{'patches/s':>11}{'x (a)':>8}  note")
    for row in rows:
        print(
            f"{row['pipeline']:<58}{row['patches/s']:>11,.0f}{row['x (a)']:>8.2f}  {row['note']}"
        )
    for row in rows:
        if "seconds" in row:
            verdict = "met" if row["seconds"] <= GOAL_SECONDS else "MISSED"
            print(
                f"end to end: {row['seconds']:.1f} s (goal <= {GOAL_SECONDS:.0f} s: {verdict})"
            )
    if device.type != "cuda":
        print(
            "No CUDA device: the end-to-end goal (<= 120 s on one H100/H200) is not measured here."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
