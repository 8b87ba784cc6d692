"""Ratios of nbhelpers' convolutions to torch.nn.functional.conv2d on the chapter 01 demo.

The demo: a (1, 3, 128, 128) image, a (4, 3, 5, 5) kernel and a bias, on one CPU thread.
Goal: conv2d <= 3x F.conv2d. Anchors measured on the 2-core development machine: the seed's loop
(12 single-channel convolutions) about 2,100x; an as_strided + tensordot formulation about 2x.

    python benchmarks/conv_speed.py
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_of  # noqa: E402

from nbhelpers.conv import conv2d, conv_components  # noqa: E402

GOAL = 3.0


def main() -> int:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    X = torch.rand(1, 3, 128, 128)
    K = torch.randn(4, 3, 5, 5)
    u = torch.randn(4)
    with torch.no_grad():
        torch.testing.assert_close(conv2d(X, K, u), F.conv2d(X, K, u), rtol=1e-4, atol=1e-4)
        reference = best_of(lambda: F.conv2d(X, K, u), repeats=7, number=50)
        vectorized = best_of(lambda: conv2d(X, K, u), repeats=7, number=50)
        start = time.perf_counter()
        conv_components(X, K, u)  # the teaching loop, once: it takes seconds
        loop = time.perf_counter() - start

    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread")
    print("demo: X (1, 3, 128, 128), K (4, 3, 5, 5), bias (4,)")
    print(f"{'method':<36}{'ms/call':>12}{'x F.conv2d':>14}")
    print(f"{'F.conv2d (reference)':<36}{reference * 1e3:>12.3f}{1.0:>14.2f}")
    print(f"{'nbhelpers.conv.conv2d':<36}{vectorized * 1e3:>12.3f}{vectorized / reference:>14.2f}")
    print(f"{'nbhelpers.conv.convolve (loop)':<36}{loop * 1e3:>12.1f}{loop / reference:>14,.0f}")
    verdict = "met" if vectorized / reference <= GOAL else "MISSED"
    print(f"goal conv2d <= {GOAL:.0f}x F.conv2d: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
