"""Convolution and pooling written from scratch, checked against PyTorch in the tests.

``convolve`` is the readable loop of chapter 01; ``conv2d`` is the same arithmetic without Python
loops: every k x k window of the input is exposed as a strided *view* (``as_strided``, no copy),
copied once into "im2col" columns, and one matrix product contracts columns with kernels.

Every public function checks its arguments before computing and raises ``TypeError`` (wrong type:
a float or bool where an int is needed, an integer tensor where floating point is needed, not a
tensor) or ``ValueError`` (wrong value: a zero or negative size or stride, negative padding, an
empty kernel, a wrong rank or channel count, tensors on different devices), naming the argument
and its value. Sizes accept Python and NumPy integers, never bools or floats (not even 2.0).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from nbhelpers import checks

IntPair = int | tuple[int, int]


# ---- the operations -----------------------------------------------------------------------------


def conv_output_size(w: int, k: int, p: int = 0, s: int = 1, d: int = 1) -> int:
    """Output width of a convolution or pooling: floor((w + 2p - d(k - 1) - 1) / s) + 1.

    With dilation d the kernel's k taps sit d pixels apart, so it spans d(k - 1) + 1
    pixels; d = 1 gives the familiar floor((w + 2p - k) / s) + 1.

    Args:
        w: input width (or height); k: kernel size; p: zero padding on each side;
        s: stride; d: dilation.

    Raises:
        TypeError: an argument is not an int (a float, even 2.0 or NaN, or a bool).
        ValueError: w, k, s or d below 1, p negative, or the (dilated) kernel larger
            than the padded input.
    """
    w, k, s = checks.index(w, "w", 1), checks.index(k, "k", 1), checks.index(s, "s", 1)
    d, p = checks.index(d, "d", 1), checks.index(p, "p", 0)
    span = d * (k - 1) + 1
    if span > w + 2 * p:
        spans = f" with dilation d={d} spans d(k - 1) + 1 = {span} and" if d > 1 else ""
        raise ValueError(
            f"kernel size k={k}{spans} exceeds the padded input width "
            f"w + 2p = {w + 2 * p}"
        )
    return (w + 2 * p - span) // s + 1


def convolve(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Single-channel 2D convolution (cross-correlation, as in deep learning), one
    output at a time.

    The teaching version: a double loop over output positions. Slow (seconds for a
    128 x 128 image) and not differentiable; use ``conv2d`` for real work.

    Args:
        X: (H, W) input, real numbers (integers are converted).
        K: (h, w) kernel with 1 <= h <= H and 1 <= w <= W, on X's device.

    Returns:
        (H - h + 1, W - w + 1) float32 tensor on X's device.
    """
    checks.convolve_arguments(X, K)
    h, w = K.shape
    H, W = X.shape
    # The loop runs on NumPy copies: on a GPU, thousands of one-element kernel launches
    # would be far slower still. Only the result goes back to X's device.
    x = X.detach().cpu().to(torch.float32).numpy()
    k = K.detach().cpu().to(torch.float32).numpy()
    S = np.zeros((H - h + 1, W - w + 1), dtype=np.float32)
    for i in range(S.shape[0]):
        for j in range(S.shape[1]):
            S[i, j] = (x[i : i + h, j : j + w] * k).sum()
    return torch.from_numpy(S).to(X.device)


def conv_components(
    X: torch.Tensor, K: torch.Tensor, bias: torch.Tensor
) -> tuple[dict[tuple[int, int], torch.Tensor], list[torch.Tensor]]:
    """Every single-channel convolution inside a multi-channel layer, and their sums.

    Args:
        X: (1, C_in, H, W) input; K: (C_out, C_in, h, w) kernels; bias: (C_out,); one device.

    Returns:
        ``components[(c, k)]``: X[0, c] convolved with K[k, c], each (H - h + 1, W - w + 1);
        ``out_maps[k]``: sum over c of ``components[(c, k)]`` plus ``bias[k]``.
    """
    checks.tensor(X, "X", 4, "(1, C_in, H, W)")
    checks.tensor(K, "K", 4, "(C_out, C_in, h, w)")
    checks.tensor(bias, "bias", 1, "(C_out,)")
    if X.shape[0] != 1:
        raise ValueError(f"X must be (1, C_in, H, W), got shape {tuple(X.shape)}")
    checks.non_empty(X, "X")
    checks.non_empty(K, "kernels K")
    if K.shape[1] != X.shape[1]:
        raise ValueError(
            f"K must be (C_out, {X.shape[1]}, h, w) for X {tuple(X.shape)}, got {tuple(K.shape)}"
        )
    if bias.shape != (K.shape[0],):
        raise ValueError(f"bias must be ({K.shape[0]},), got {tuple(bias.shape)}")
    checks.same_device(X=X, K=K, bias=bias)
    c_out, c_in = K.shape[:2]
    components = {
        (c, k): convolve(X[0, c], K[k, c]) for k in range(c_out) for c in range(c_in)
    }
    bias = bias.detach().float()
    out_maps = [
        sum(components[(c, k)] for c in range(c_in)) + bias[k] for k in range(c_out)
    ]
    return components, out_maps


def _windows(
    X: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int]
) -> torch.Tensor:
    """A view of X (B, C, H, W) as (B, C, H_out, W_out, kh, kw) sliding windows; no copy."""
    X = X.contiguous()
    B, C, H, W = X.shape
    kh, kw = kernel
    sh, sw = stride
    if kh > H or kw > W:
        raise ValueError(f"kernel {kernel} is larger than the (padded) input {(H, W)}")
    H_out = (H - kh) // sh + 1
    W_out = (W - kw) // sw + 1
    sB, sC, sH, sW = X.stride()
    return X.as_strided(
        (B, C, H_out, W_out, kh, kw), (sB, sC, sH * sh, sW * sw, sH, sW)
    )


def conv2d(
    X: torch.Tensor,
    K: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
) -> torch.Tensor:
    """Multi-channel 2D convolution with zero padding, equal to ``F.conv2d``.

    Args:
        X: (B, C_in, H, W) floating point input.
        K: (C_out, C_in, kh, kw) floating point kernels, no dimension of size 0.
        bias: optional (C_out,) floating point; X, K and bias on one device.
        stride: an int >= 1 or a (vertical, horizontal) pair of them.
        padding: an int >= 0 or a pair of them.

    Returns:
        (B, C_out, H_out, W_out) with H_out = conv_output_size(H, kh, padding, stride),
        float32 unless the inputs are float64; differentiable in X, K and bias.
    """
    (sh, sw), (ph, pw) = checks.conv2d_arguments(X, K, bias, stride, padding)
    C_out, C_in, kh, kw = K.shape
    dtype = torch.float64 if torch.float64 in (X.dtype, K.dtype) else torch.float32
    X, K = X.to(dtype), K.to(dtype)
    if ph or pw:
        X = F.pad(X, (pw, pw, ph, ph))
    windows = _windows(X, (kh, kw), (sh, sw))  # (B, C_in, H_out, W_out, kh, kw), a view
    B, _, H_out, W_out = windows.shape[:4]
    # One copy into "im2col" layout with output positions innermost, so that a single
    # batched matmul yields (B, C_out, H_out * W_out), already in channels-first order.
    columns = windows.permute(0, 1, 4, 5, 2, 3).reshape(
        B, C_in * kh * kw, H_out * W_out
    )
    out = (K.reshape(C_out, C_in * kh * kw) @ columns).reshape(B, C_out, H_out, W_out)
    if bias is not None:
        out = out + bias.to(dtype).reshape(1, C_out, 1, 1)
    return out


def _pool_arguments(
    X: object, k: object, s: object
) -> tuple[tuple[int, int], tuple[int, int]]:
    checks.images(X)
    kernel = checks.index_pair(k, "k", 1)
    stride = kernel if s is None else checks.index_pair(s, "s", 1)
    return kernel, stride


def max_pool2d(X: torch.Tensor, k: IntPair, s: IntPair | None = None) -> torch.Tensor:
    """Max pooling without padding, equal to ``F.max_pool2d(X, k, s)``.

    Args:
        X: (B, C, H, W) real numbers; k: window size, an int >= 1 or a pair; s: stride, likewise
            (defaults to k, as in PyTorch).

    Returns:
        (B, C, H_out, W_out), each channel pooled on its own.
    """
    kernel, stride = _pool_arguments(X, k, s)
    return _windows(X, kernel, stride).amax(dim=(-2, -1))


def avg_pool2d(X: torch.Tensor, k: IntPair, s: IntPair | None = None) -> torch.Tensor:
    """Average pooling without padding, equal to ``F.avg_pool2d(X, k, s)``.

    Args:
        X: (B, C, H, W) floating point; k: window size, an int >= 1 or a pair; s: stride,
            likewise (defaults to k).

    Returns:
        (B, C, H_out, W_out).
    """
    kernel, stride = _pool_arguments(X, k, s)
    checks.floating(X, "X")
    return _windows(X, kernel, stride).mean(dim=(-2, -1))


def conv_as_matrix(K: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """The single-channel convolution with kernel K as the dense matrix it secretly is.

    Args:
        K: (h, w) kernel, real numbers, no dimension of size 0; H, W: input size, ints >= 1.

    Returns:
        A (H_out * W_out, H * W) matrix M with ``M @ X.flatten() == convolve(X, K).flatten()``, float32
        (or K's floating dtype) on K's device. Row r holds K's entries at the columns of the pixels
        under the window of output r and zeros elsewhere: a sparse, banded matrix whose bands all
        repeat the same k * k numbers.
    """
    checks.tensor(K, "K", 2, "2D (h, w)")
    checks.non_empty(K, "kernel K")
    H, W = checks.index(H, "H", 1), checks.index(W, "W", 1)
    h, w = K.shape
    if h > H or w > W:
        raise ValueError(
            f"kernel {tuple(K.shape)} is larger than the input (H, W) = {(H, W)}"
        )
    H_out, W_out = conv_output_size(H, h), conv_output_size(W, w)
    dtype = K.dtype if K.is_floating_point() else torch.float32
    M = torch.zeros(H_out, W_out, H, W, dtype=dtype, device=K.device)
    for i in range(H_out):
        for j in range(W_out):
            M[i, j, i : i + h, j : j + w] = K
    return M.reshape(H_out * W_out, H * W)
