"""Ratios of nbhelpers' convolutions to torch.nn.functional.conv2d on the chapter 01 demo.

The demo: a (1, 3, 128, 128) image, a (4, 3, 5, 5) kernel and a bias, on one CPU thread.
Goal: conv2d <= 3x F.conv2d. Anchors measured on the 2-core development machine: the lecture notebook's loop
(12 single-channel convolutions) about 2,100x; an as_strided + tensordot formulation about 2x.

    python -m benchmarks.conv_speed
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

from benchmarks._timing import best_of
from nbhelpers.conv import conv2d, conv_components

GOAL = 3.0
ANCHORS = {
    "nbhelpers.conv.conv2d": "about 2x (as_strided + tensordot)",
    "nbhelpers.conv.convolve (loop)": "about 2,100x (the lecture notebook's loop)",
}


def measure() -> list[dict[str, object]]:
    """One row per method: milliseconds per call and the ratio to F.conv2d, measured now."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        X = torch.rand(1, 3, 128, 128)
        K = torch.randn(4, 3, 5, 5)
        u = torch.randn(4)
        with torch.no_grad():
            torch.testing.assert_close(
                conv2d(X, K, u), F.conv2d(X, K, u), rtol=1e-4, atol=1e-4
            )
            reference = best_of(lambda: F.conv2d(X, K, u), repeats=7, number=50)
            vectorized = best_of(lambda: conv2d(X, K, u), repeats=7, number=50)
            start = time.perf_counter()
            conv_components(X, K, u)  # the teaching loop, once: it takes a while
            loop = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    rows = [
        ("F.conv2d (reference)", reference),
        ("nbhelpers.conv.conv2d", vectorized),
        ("nbhelpers.conv.convolve (loop)", loop),
    ]
    return [
        {
            "method": name,
            "ms per call": seconds * 1e3,
            "x F.conv2d": seconds / reference,
            "anchor": ANCHORS.get(name, ""),
        }
        for name, seconds in rows
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--json", action="store_true", help="print the rows as one JSON line"
    )
    args = parser.parse_args()
    rows = measure()
    if args.json:
        print(json.dumps(rows))
        return 0
    print(
        f"torch {torch.__version__}, CPU, 1 thread; X (1, 3, 128, 128), K (4, 3, 5, 5), bias (4,)"
    )
    print(f"{'method':<34}{'ms/call':>11}{'x F.conv2d':>12}  anchor")
    for row in rows:
        print(
            f"{row['method']:<34}{row['ms per call']:>11.3f}{row['x F.conv2d']:>12,.2f}  {row['anchor']}"
        )
    ratio = rows[1]["x F.conv2d"]
    print(
        f"goal conv2d <= {GOAL:.0f}x F.conv2d: {'met' if ratio <= GOAL else 'MISSED'} ({ratio:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
