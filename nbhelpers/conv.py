"""Convolution and pooling written from scratch, checked against PyTorch in the tests.

``convolve`` is the readable loop of chapter 01; ``conv2d`` is the same arithmetic without Python
loops: every k x k window of the input is exposed as a strided *view* (``as_strided``, no copy),
copied once into "im2col" columns, and one matrix product contracts columns with kernels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

IntPair = int | tuple[int, int]


def conv_output_size(w: int, k: int, p: int = 0, s: int = 1) -> int:
    """Output width of a convolution or pooling: floor((w + 2p - k) / s) + 1.

    Args:
        w: input width (or height); k: kernel size; p: zero padding on each side; s: stride.

    Raises:
        ValueError: a size is not positive, padding is negative, or the kernel does not fit.
    """
    for name, value in (("w", w), ("k", k), ("s", s)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(p, int) or p < 0:
        raise ValueError(f"p must be a non-negative int, got {p!r}")
    if k > w + 2 * p:
        raise ValueError(f"kernel size k={k} exceeds the padded input width w + 2p = {w + 2 * p}")
    return (w + 2 * p - k) // s + 1


def convolve(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Single-channel 2D convolution (cross-correlation, as in deep learning), one output at a time.

    The teaching version: a double loop over output positions. Slow (seconds for a 128 x 128
    image) and not differentiable; use ``conv2d`` for real work.

    Args:
        X: (H, W) input.
        K: (h, w) kernel with h <= H and w <= W.

    Returns:
        (H - h + 1, W - w + 1) float32 tensor on X's device.
    """
    if X.dim() != 2 or K.dim() != 2:
        raise ValueError(f"convolve expects 2D X and K, got shapes {tuple(X.shape)} and {tuple(K.shape)}")
    h, w = K.shape
    H, W = X.shape
    if h > H or w > W:
        raise ValueError(f"kernel {tuple(K.shape)} is larger than the input {tuple(X.shape)}")
    # The loop runs on NumPy copies: on a GPU, thousands of one-element kernel launches would be
    # far slower still. Only the result goes back to X's device.
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
        X: (1, C_in, H, W) input; K: (C_out, C_in, h, w) kernels; bias: (C_out,).

    Returns:
        ``components[(c, k)]``: X[0, c] convolved with K[k, c], each (H - h + 1, W - w + 1);
        ``out_maps[k]``: sum over c of ``components[(c, k)]`` plus ``bias[k]``.
    """
    if X.dim() != 4 or X.shape[0] != 1:
        raise ValueError(f"X must be (1, C_in, H, W), got {tuple(X.shape)}")
    if K.dim() != 4 or K.shape[1] != X.shape[1]:
        raise ValueError(f"K must be (C_out, {X.shape[1]}, h, w), got {tuple(K.shape)}")
    if bias.shape != (K.shape[0],):
        raise ValueError(f"bias must be ({K.shape[0]},), got {tuple(bias.shape)}")
    c_out, c_in = K.shape[:2]
    components = {(c, k): convolve(X[0, c], K[k, c]) for k in range(c_out) for c in range(c_in)}
    bias = bias.detach().float()
    out_maps = [sum(components[(c, k)] for c in range(c_in)) + bias[k] for k in range(c_out)]
    return components, out_maps


def _pair(value: IntPair, name: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return pair  # type: ignore[return-value]


def _windows(X: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
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
    return X.as_strided((B, C, H_out, W_out, kh, kw), (sB, sC, sH * sh, sW * sw, sH, sW))


def _check_images(X: torch.Tensor, name: str = "X") -> None:
    if X.dim() != 4:
        raise ValueError(f"{name} must be (B, C, H, W), got shape {tuple(X.shape)}")


def conv2d(
    X: torch.Tensor,
    K: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
) -> torch.Tensor:
    """Multi-channel 2D convolution with zero padding, equal to ``torch.nn.functional.conv2d``.

    Args:
        X: (B, C_in, H, W) input.
        K: (C_out, C_in, kh, kw) kernels.
        bias: optional (C_out,).
        stride, padding: an int or an (vertical, horizontal) pair.

    Returns:
        (B, C_out, H_out, W_out) with H_out = conv_output_size(H, kh, padding, stride), float32
        unless the inputs are float64; differentiable with respect to X, K and bias.
    """
    _check_images(X)
    if K.dim() != 4 or K.shape[1] != X.shape[1]:
        raise ValueError(f"K must be (C_out, {X.shape[1]}, kh, kw) for X {tuple(X.shape)}, got {tuple(K.shape)}")
    if bias is not None and bias.shape != (K.shape[0],):
        raise ValueError(f"bias must be ({K.shape[0]},), got {tuple(bias.shape)}")
    sh, sw = _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    dtype = torch.float64 if torch.float64 in (X.dtype, K.dtype) else torch.float32
    X, K = X.to(dtype), K.to(dtype)
    if ph or pw:
        X = F.pad(X, (pw, pw, ph, ph))
    C_out, C_in, kh, kw = K.shape
    windows = _windows(X, (kh, kw), (sh, sw))  # (B, C_in, H_out, W_out, kh, kw), a view
    B, _, H_out, W_out = windows.shape[:4]
    # One copy into "im2col" layout with output positions innermost, so that a single batched
    # matmul yields (B, C_out, H_out * W_out), already in channels-first order.
    columns = windows.permute(0, 1, 4, 5, 2, 3).reshape(B, C_in * kh * kw, H_out * W_out)
    out = (K.reshape(C_out, C_in * kh * kw) @ columns).reshape(B, C_out, H_out, W_out)
    if bias is not None:
        out = out + bias.to(dtype).reshape(1, C_out, 1, 1)
    return out


def max_pool2d(X: torch.Tensor, k: IntPair, s: IntPair | None = None) -> torch.Tensor:
    """Max pooling without padding, equal to ``F.max_pool2d(X, k, s)``.

    Args:
        X: (B, C, H, W); k: window size; s: stride (defaults to k, as in PyTorch).

    Returns:
        (B, C, H_out, W_out), each channel pooled on its own.
    """
    _check_images(X)
    kernel = _pair(k, "k", 1)
    stride = _pair(kernel if s is None else s, "s", 1)
    return _windows(X, kernel, stride).amax(dim=(-2, -1))


def avg_pool2d(X: torch.Tensor, k: IntPair, s: IntPair | None = None) -> torch.Tensor:
    """Average pooling without padding, equal to ``F.avg_pool2d(X, k, s)``.

    Args:
        X: (B, C, H, W) floating point; k: window size; s: stride (defaults to k).

    Returns:
        (B, C, H_out, W_out).
    """
    _check_images(X)
    if not X.is_floating_point():
        raise ValueError(f"avg_pool2d needs a floating point input, got {X.dtype}")
    kernel = _pair(k, "k", 1)
    stride = _pair(kernel if s is None else s, "s", 1)
    return _windows(X, kernel, stride).mean(dim=(-2, -1))


def conv_as_matrix(K: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """The single-channel convolution with kernel K as the dense matrix it secretly is.

    Args:
        K: (h, w) kernel; H, W: input size.

    Returns:
        A (H_out * W_out, H * W) matrix M with ``M @ X.flatten() == convolve(X, K).flatten()``. Row r holds
        K's entries at the columns of the pixels under the window of output r and zeros elsewhere:
        a sparse, banded matrix whose bands all repeat the same k * k numbers.
    """
    if K.dim() != 2:
        raise ValueError(f"K must be a 2D kernel, got shape {tuple(K.shape)}")
    h, w = K.shape
    H_out, W_out = conv_output_size(H, h), conv_output_size(W, w)
    M = torch.zeros(H_out, W_out, H, W, dtype=torch.float32, device=K.device)
    for i in range(H_out):
        for j in range(W_out):
            M[i, j, i : i + h, j : j + w] = K
    return M.reshape(H_out * W_out, H * W)
