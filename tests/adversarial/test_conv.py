"""Hostile arguments against nbhelpers.conv: every public function names the bad argument and its value.

Wrong types (a float or bool where an int is needed, an integer tensor where floating point is
needed, not a tensor) raise TypeError; wrong values (zero or negative sizes and strides, negative
padding, empty kernels, wrong ranks and channel counts, tensors on different devices) raise
ValueError. The "meta" device stands in for a second device on a machine without an accelerator.
"""

from __future__ import annotations

import pytest
import torch
from harness import Case, Workspace, run_case

from nbhelpers.conv import (
    avg_pool2d,
    conv2d,
    conv_as_matrix,
    conv_components,
    conv_output_size,
    convolve,
    max_pool2d,
)


def _x(*shape: int, **kwargs) -> torch.Tensor:
    return torch.ones(*shape, **kwargs)


def _conv(X_shape=(1, 2, 6, 6), K_shape=(3, 2, 3, 3), **kwargs) -> torch.Tensor:
    return conv2d(_x(*X_shape), _x(*K_shape), **kwargs)


def _case(id: str, target: str, tried: str, act, raises, names: str) -> Case:
    """An argument case: the outcome is always "<raises> naming the argument and its value"."""
    return Case(
        id,
        "arguments",
        target,
        tried,
        f"{raises.__name__} naming the argument and its value",
        act=act,
        raises=raises,
        names=names,
    )


CASES = [
    # ---- conv2d ----------------------------------------------------------------------------------
    _case(
        "conv2d-zero-height-kernel",
        "conv2d",
        "K of shape (3, 2, 0, 3): F.conv2d raises, the old code returned zeros",
        lambda ws: _conv(K_shape=(3, 2, 0, 3)),
        ValueError,
        r"kernels K has a zero-size dimension: shape \(3, 2, 0, 3\)",
    ),
    _case(
        "conv2d-no-output-channels",
        "conv2d",
        "K of shape (0, 2, 3, 3)",
        lambda ws: _conv(K_shape=(0, 2, 3, 3)),
        ValueError,
        r"kernels K has a zero-size dimension: shape \(0, 2, 3, 3\)",
    ),
    _case(
        "conv2d-fractional-stride",
        "conv2d",
        "stride=1.5 (the old error: 'float' object is not iterable)",
        lambda ws: _conv(stride=1.5),
        TypeError,
        "stride must be an int >= 1, got 1.5",
    ),
    _case(
        "conv2d-float-stride-in-pair",
        "conv2d",
        "stride=(1, 2.0)",
        lambda ws: _conv(stride=(1, 2.0)),
        TypeError,
        r"stride\[1\] must be an int >= 1, got 2.0",
    ),
    _case(
        "conv2d-zero-stride",
        "conv2d",
        "stride=0",
        lambda ws: _conv(stride=0),
        ValueError,
        "stride must be an int >= 1, got 0",
    ),
    _case(
        "conv2d-negative-stride",
        "conv2d",
        "stride=(-1, 1)",
        lambda ws: _conv(stride=(-1, 1)),
        ValueError,
        r"stride\[0\] must be an int >= 1, got -1",
    ),
    _case(
        "conv2d-bool-stride",
        "conv2d",
        "stride=True",
        lambda ws: _conv(stride=True),
        TypeError,
        r"stride must be an int >= 1, got True \(a bool\)",
    ),
    _case(
        "conv2d-nan-padding",
        "conv2d",
        "padding=nan",
        lambda ws: _conv(padding=float("nan")),
        TypeError,
        "padding must be an int >= 0, got nan",
    ),
    _case(
        "conv2d-negative-padding",
        "conv2d",
        "padding=-1",
        lambda ws: _conv(padding=-1),
        ValueError,
        "padding must be an int >= 0, got -1",
    ),
    _case(
        "conv2d-three-paddings",
        "conv2d",
        "padding=(1, 1, 1)",
        lambda ws: _conv(padding=(1, 1, 1)),
        ValueError,
        r"padding must be an int or a pair of ints, got \(1, 1, 1\) \(3 values\)",
    ),
    _case(
        "conv2d-channel-mismatch",
        "conv2d",
        "X with 3 channels, K for 2",
        lambda ws: _conv(X_shape=(1, 3, 6, 6)),
        ValueError,
        r"K must be \(C_out, 3, kh, kw\) for X \(1, 3, 6, 6\), got \(3, 2, 3, 3\)",
    ),
    _case(
        "conv2d-unbatched-input",
        "conv2d",
        "X of shape (2, 6, 6) (no batch dimension)",
        lambda ws: _conv(X_shape=(2, 6, 6)),
        ValueError,
        r"X must be \(B, C, H, W\), got shape \(2, 6, 6\)",
    ),
    _case(
        "conv2d-kernel-larger-than-padded-input",
        "conv2d",
        "a 5x5 kernel on a 2x2 input with padding 1",
        lambda ws: _conv(X_shape=(1, 2, 2, 2), K_shape=(1, 2, 5, 5), padding=1),
        ValueError,
        r"kernel \(5, 5\) is larger than the padded input \(4, 4\)",
    ),
    _case(
        "conv2d-integer-input",
        "conv2d",
        "an int64 image",
        lambda ws: conv2d(_x(1, 2, 6, 6, dtype=torch.int64), _x(3, 2, 3, 3)),
        TypeError,
        "X must be a floating point tensor, got dtype torch.int64",
    ),
    _case(
        "conv2d-bias-shape",
        "conv2d",
        "bias of shape (2,) for 3 output channels",
        lambda ws: conv2d(_x(1, 2, 6, 6), _x(3, 2, 3, 3), _x(2)),
        ValueError,
        r"bias must be \(3,\), got \(2,\)",
    ),
    _case(
        "conv2d-mixed-devices",
        "conv2d",
        "X on the CPU, K on another device",
        lambda ws: conv2d(_x(1, 2, 6, 6), _x(3, 2, 3, 3, device="meta")),
        ValueError,
        "X on cpu, K on meta",
    ),
    _case(
        "conv2d-numpy-input",
        "conv2d",
        "a NumPy array instead of a tensor",
        lambda ws: conv2d(_x(1, 2, 6, 6).numpy(), _x(3, 2, 3, 3)),
        TypeError,
        r"X must be a \(B, C, H, W\) tensor, got ndarray",
    ),
    # ---- convolve --------------------------------------------------------------------------------
    _case(
        "convolve-empty-kernel",
        "convolve",
        "K of shape (0, 3)",
        lambda ws: convolve(_x(5, 5), _x(0, 3)),
        ValueError,
        r"kernel K has a zero-size dimension: shape \(0, 3\)",
    ),
    _case(
        "convolve-batched-input",
        "convolve",
        "X of shape (1, 5, 5)",
        lambda ws: convolve(_x(1, 5, 5), _x(3, 3)),
        ValueError,
        r"X must be 2D \(H, W\), got shape \(1, 5, 5\)",
    ),
    _case(
        "convolve-complex-kernel",
        "convolve",
        "a complex64 kernel",
        lambda ws: convolve(_x(5, 5), _x(3, 3, dtype=torch.complex64)),
        TypeError,
        "K must hold real numbers, got dtype torch.complex64",
    ),
    # ---- conv_output_size ------------------------------------------------------------------------
    _case(
        "output-size-float-width",
        "conv_output_size",
        "w=28.0",
        lambda ws: conv_output_size(28.0, 3),
        TypeError,
        "w must be an int >= 1, got 28.0",
    ),
    _case(
        "output-size-infinite-kernel",
        "conv_output_size",
        "k=inf",
        lambda ws: conv_output_size(28, float("inf")),
        TypeError,
        "k must be an int >= 1, got inf",
    ),
    _case(
        "output-size-bool-stride",
        "conv_output_size",
        "s=False",
        lambda ws: conv_output_size(28, 3, 0, False),
        TypeError,
        "s must be an int >= 1, got False",
    ),
    _case(
        "output-size-kernel-too-large",
        "conv_output_size",
        "w=3, k=7, p=1",
        lambda ws: conv_output_size(3, 7, 1),
        ValueError,
        "kernel size k=7 exceeds the padded input width w \\+ 2p = 5",
    ),
    _case(
        "output-size-dilated-kernel-too-large",
        "conv_output_size",
        "w=4, k=3, d=2 (the dilated kernel spans 5 pixels)",
        lambda ws: conv_output_size(4, 3, 0, 1, 2),
        ValueError,
        "k=3 with dilation d=2 spans d\\(k - 1\\) \\+ 1 = 5 .*w \\+ 2p = 4",
    ),
    _case(
        "output-size-zero-dilation",
        "conv_output_size",
        "d=0",
        lambda ws: conv_output_size(28, 3, 0, 1, 0),
        ValueError,
        "d must be an int >= 1, got 0",
    ),
    # ---- pooling ---------------------------------------------------------------------------------
    _case(
        "max-pool-zero-window",
        "max_pool2d",
        "k=0",
        lambda ws: max_pool2d(_x(1, 1, 4, 4), 0),
        ValueError,
        "k must be an int >= 1, got 0",
    ),
    _case(
        "max-pool-fractional-stride",
        "max_pool2d",
        "s=1.5",
        lambda ws: max_pool2d(_x(1, 1, 4, 4), 2, 1.5),
        TypeError,
        "s must be an int >= 1, got 1.5",
    ),
    _case(
        "max-pool-no-channels",
        "max_pool2d",
        "X of shape (1, 0, 4, 4)",
        lambda ws: max_pool2d(_x(1, 0, 4, 4), 2),
        ValueError,
        r"X has a zero-size dimension: shape \(1, 0, 4, 4\)",
    ),
    _case(
        "avg-pool-integer-input",
        "avg_pool2d",
        "an int64 image",
        lambda ws: avg_pool2d(_x(1, 1, 4, 4, dtype=torch.int64), 2),
        TypeError,
        "X must be a floating point tensor, got dtype torch.int64",
    ),
    _case(
        "avg-pool-window-too-large",
        "avg_pool2d",
        "a 5x5 window on a 4x4 input",
        lambda ws: avg_pool2d(_x(1, 1, 4, 4), 5),
        ValueError,
        r"kernel \(5, 5\) is larger than the \(padded\) input \(4, 4\)",
    ),
    # ---- conv_as_matrix, conv_components ---------------------------------------------------------
    _case(
        "as-matrix-empty-kernel",
        "conv_as_matrix",
        "K of shape (3, 0)",
        lambda ws: conv_as_matrix(_x(3, 0), 6, 6),
        ValueError,
        r"kernel K has a zero-size dimension: shape \(3, 0\)",
    ),
    _case(
        "as-matrix-float-size",
        "conv_as_matrix",
        "H=6.0",
        lambda ws: conv_as_matrix(_x(3, 3), 6.0, 6),
        TypeError,
        "H must be an int >= 1, got 6.0",
    ),
    _case(
        "components-batch-of-two",
        "conv_components",
        "X with a batch of 2",
        lambda ws: conv_components(_x(2, 3, 6, 6), _x(4, 3, 3, 3), _x(4)),
        ValueError,
        r"X must be \(1, C_in, H, W\), got shape \(2, 3, 6, 6\)",
    ),
    _case(
        "components-bias-on-other-device",
        "conv_components",
        "the bias on another device",
        lambda ws: conv_components(
            _x(1, 3, 6, 6), _x(4, 3, 3, 3), _x(4, device="meta")
        ),
        ValueError,
        "X on cpu, K on cpu, bias on meta",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_conv_case(case: Case, workspace: Workspace) -> None:
    run_case(case, workspace)
