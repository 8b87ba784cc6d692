"""nbhelpers.conv against PyTorch: hypothesis draws shapes, strides and paddings."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from nbhelpers.conv import (
    avg_pool2d,
    conv2d,
    conv_as_matrix,
    conv_components,
    conv_output_size,
    convolve,
    max_pool2d,
)


@st.composite
def conv_cases(draw):
    batch = draw(st.integers(1, 3))
    c_in = draw(st.integers(1, 4))
    c_out = draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H = draw(st.integers(max(1, kh - 2 * ph), 14))
    W = draw(st.integers(max(1, kw - 2 * pw), 14))
    with_bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return batch, c_in, c_out, (kh, kw), (ph, pw), (sh, sw), (H, W), with_bias, seed


@settings(max_examples=150, deadline=None)
@given(conv_cases())
def test_conv2d_equals_torch(case):
    batch, c_in, c_out, kernel, padding, stride, (H, W), with_bias, seed = case
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(batch, c_in, H, W, generator=g)
    K = torch.randn(c_out, c_in, *kernel, generator=g)
    b = torch.randn(c_out, generator=g) if with_bias else None
    ours = conv2d(X, K, b, stride=stride, padding=padding)
    theirs = F.conv2d(X, K, b, stride=stride, padding=padding)
    assert ours.dtype == torch.float32
    assert ours.shape == theirs.shape
    assert ours.shape[2] == conv_output_size(H, kernel[0], padding[0], stride[0])
    assert ours.shape[3] == conv_output_size(W, kernel[1], padding[1], stride[1])
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_conv2d_on_device(device):
    X = torch.randn(2, 3, 16, 16, device=device)
    K = torch.randn(4, 3, 3, 3, device=device)
    b = torch.randn(4, device=device)
    out = conv2d(X, K, b, stride=2, padding=1)
    assert out.device.type == device.type and out.dtype == torch.float32
    torch.testing.assert_close(
        out, F.conv2d(X, K, b, stride=2, padding=1), rtol=1e-4, atol=1e-4
    )


def test_conv2d_gradcheck_float64():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(2, 2, 7, 6, dtype=torch.float64, generator=g, requires_grad=True)
    K = torch.randn(3, 2, 3, 2, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda X, K, b: conv2d(X, K, b, stride=(2, 1), padding=(1, 2)), (X, K, b)
    )


def test_conv2d_gradients_match_torch():
    X = torch.randn(2, 3, 9, 9, requires_grad=True)
    K = torch.randn(4, 3, 3, 3, requires_grad=True)
    conv2d(X, K, stride=2, padding=1).square().sum().backward()
    ours = X.grad.clone(), K.grad.clone()
    X.grad = K.grad = None
    F.conv2d(X, K, stride=2, padding=1).square().sum().backward()
    torch.testing.assert_close(ours[0], X.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours[1], K.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "X_shape, K_shape, kwargs, message",
    [
        ((3, 8, 8), (1, 3, 3, 3), {}, "B, C, H, W"),
        ((1, 3, 8, 8), (1, 2, 3, 3), {}, "K must be"),
        ((1, 3, 4, 4), (1, 3, 5, 5), {}, "larger than"),
        ((1, 3, 8, 8), (1, 3, 3, 3), {"stride": 0}, "stride"),
        ((1, 3, 8, 8), (1, 3, 3, 3), {"padding": -1}, "padding"),
    ],
)
def test_conv2d_rejects_bad_input(X_shape, K_shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        conv2d(torch.zeros(X_shape), torch.zeros(K_shape), **kwargs)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 1000))
def test_convolve_equals_single_channel_conv2d(kh, kw, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(10, 9, generator=g, dtype=torch.float64)
    K = torch.randn(kh, kw, generator=g, dtype=torch.float64)
    S = convolve(X, K)
    assert S.dtype == torch.float32 and S.device == X.device
    torch.testing.assert_close(
        S, F.conv2d(X[None, None], K[None, None])[0, 0].float(), rtol=1e-5, atol=1e-5
    )


def test_convolve_rejects_bad_shapes():
    with pytest.raises(ValueError, match="2D"):
        convolve(torch.zeros(1, 4, 4), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="larger"):
        convolve(torch.zeros(2, 2), torch.zeros(3, 3))


def test_conv_components_sum_to_the_layer():
    torch.manual_seed(0)
    X = torch.rand(1, 3, 12, 12)
    layer = torch.nn.Conv2d(3, 4, kernel_size=5)
    components, out_maps = conv_components(X, layer.weight, layer.bias)
    assert set(components) == {(c, k) for c in range(3) for k in range(4)}
    assert all(part.shape == (8, 8) for part in components.values())
    torch.testing.assert_close(
        torch.stack(out_maps)[None], layer(X).detach(), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    "w, k, p, s, expected",
    [
        (128, 5, 0, 1, 124),
        (128, 3, 0, 2, 63),
        (128, 3, 0, 3, 42),
        (128, 3, 1, 1, 128),
        (7, 3, 1, 2, 4),
        (4, 2, 0, 2, 2),
    ],
)
def test_conv_output_size(w, k, p, s, expected):
    assert conv_output_size(w, k, p, s) == expected


@settings(max_examples=80, deadline=None)
@given(
    w=st.integers(1, 20),
    k=st.integers(1, 5),
    p=st.integers(0, 3),
    s=st.integers(1, 4),
    d=st.integers(1, 4),
)
def test_conv_output_size_with_dilation_equals_the_width_nn_conv2d_produces(
    w, k, p, s, d
):
    span = d * (k - 1) + 1
    layer = torch.nn.Conv2d(1, 1, kernel_size=k, padding=p, stride=s, dilation=d)
    if span > w + 2 * p:  # PyTorch refuses too, at run time
        with pytest.raises(ValueError, match=f"k={k}"):
            conv_output_size(w, k, p, s, d)
        with pytest.raises(RuntimeError):
            layer(torch.zeros(1, 1, w, w))
        return
    with torch.no_grad():
        width = layer(torch.zeros(1, 1, w, w)).shape[-1]
    assert conv_output_size(w, k, p, s, d) == width


def test_conv_output_size_without_dilation_is_the_dilation_one_rule():
    for w, k, p, s in [(128, 5, 0, 1), (127, 3, 1, 2), (9, 4, 2, 3)]:
        assert conv_output_size(w, k, p, s) == conv_output_size(w, k, p, s, 1)


@pytest.mark.parametrize(
    "args, error, message",
    [
        ((9, 3, 0, 1, 0), ValueError, "d must be an int >= 1, got 0"),
        ((9, 3, 0, 1, 2.0), TypeError, "d must be an int >= 1, got 2.0"),
        ((9, 3, 0, 1, True), TypeError, "d must be an int >= 1, got True"),
        ((4, 3, 0, 1, 2), ValueError, "dilation d=2 spans d\\(k - 1\\) \\+ 1 = 5"),
    ],
)
def test_conv_output_size_names_a_bad_dilation(args, error, message):
    with pytest.raises(error, match=message):
        conv_output_size(*args)


@pytest.mark.parametrize("args", [(0, 3), (5, 0), (5, 3, -1), (5, 3, 0, 0), (3, 7, 1)])
def test_conv_output_size_rejects_bad_sizes(args):
    with pytest.raises(ValueError):
        conv_output_size(*args)


@st.composite
def pool_cases(draw):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = draw(st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    H, W = draw(st.integers(k[0], 13)), draw(st.integers(k[1], 13))
    return (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 3)),
        H,
        W,
        k,
        s,
        draw(st.integers(0, 9999)),
    )


@settings(max_examples=120, deadline=None)
@given(pool_cases())
def test_pooling_equals_torch(case):
    B, C, H, W, k, s, seed = case
    X = torch.randn(B, C, H, W, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(max_pool2d(X, k, s), F.max_pool2d(X, k, s))
    torch.testing.assert_close(
        avg_pool2d(X, k, s), F.avg_pool2d(X, k, s), rtol=1e-5, atol=1e-6
    )


def test_max_pool_example_from_the_chapter():
    x = torch.tensor(
        [[1, 1, 2, 4], [4, 5, 6, 9], [3, 1, 0, 3], [4, 0, 1, 8]], dtype=torch.float32
    )
    assert max_pool2d(x[None, None], 2, 2)[0, 0].tolist() == [[5, 9], [4, 8]]


def test_global_pooling_is_a_kernel_as_large_as_the_input():
    X = torch.randn(2, 5, 7, 9)
    torch.testing.assert_close(avg_pool2d(X, (7, 9))[..., 0, 0], X.mean(dim=(2, 3)))
    torch.testing.assert_close(max_pool2d(X, (7, 9))[..., 0, 0], X.amax(dim=(2, 3)))


def test_pooling_rejects_bad_input():
    with pytest.raises(ValueError, match="B, C, H, W"):
        max_pool2d(torch.zeros(4, 4), 2)
    with pytest.raises(TypeError, match="floating"):
        avg_pool2d(torch.zeros(1, 1, 4, 4, dtype=torch.int64), 2)
    with pytest.raises(ValueError, match="larger"):
        max_pool2d(torch.zeros(1, 1, 3, 3), 4)


def test_conv_as_matrix_reproduces_convolve():
    X = torch.randn(6, 7)
    K = torch.randn(3, 2)
    M = conv_as_matrix(K, 6, 7)
    assert M.shape == (4 * 6, 6 * 7)
    assert (M != 0).sum(dim=1).max() <= K.numel()
    torch.testing.assert_close(
        M @ X.flatten(), convolve(X, K).flatten(), rtol=1e-5, atol=1e-5
    )


def test_conv2d_refuses_a_zero_size_kernel_where_it_used_to_return_zeros():
    X = torch.randn(1, 2, 5, 5)
    for K in (torch.zeros(3, 2, 0, 3), torch.zeros(0, 2, 3, 3)):
        with pytest.raises(RuntimeError):
            F.conv2d(X, K)
        with pytest.raises(
            ValueError,
            match=r"kernels K has a zero-size dimension: shape \(\d, 2, \d, 3\)",
        ):
            conv2d(X, K)


@pytest.mark.parametrize("stride", [1.5, 2.0, float("nan"), True, "2"])
def test_conv2d_refuses_a_stride_that_is_not_an_int_naming_it(stride):
    with pytest.raises(TypeError, match=f"stride must be an int >= 1, got {stride!r}"):
        conv2d(torch.randn(1, 1, 5, 5), torch.randn(1, 1, 3, 3), stride=stride)


def test_conv2d_names_the_bad_entry_of_a_pair():
    with pytest.raises(ValueError, match=r"padding\[1\] must be an int >= 0, got -2"):
        conv2d(torch.randn(1, 1, 5, 5), torch.randn(1, 1, 3, 3), padding=(1, -2))
    with pytest.raises(
        ValueError, match=r"stride must be an int or a pair of ints, got \(1, 1, 1\)"
    ):
        conv2d(torch.randn(1, 1, 5, 5), torch.randn(1, 1, 3, 3), stride=(1, 1, 1))


def test_conv2d_refuses_integer_tensors_rather_than_silently_converting_them():
    X, K = (
        torch.ones(1, 1, 4, 4, dtype=torch.int64),
        torch.ones(1, 1, 2, 2, dtype=torch.int64),
    )
    with pytest.raises(
        TypeError, match="X must be a floating point tensor, got dtype torch.int64"
    ):
        conv2d(X, K)
    with pytest.raises(TypeError, match="bias must be a floating point tensor"):
        conv2d(X.float(), K.float(), torch.zeros(1, dtype=torch.int64))


def test_conv2d_refuses_tensors_on_different_devices():
    with pytest.raises(ValueError, match="X on cpu, K on meta"):
        conv2d(torch.randn(1, 1, 4, 4), torch.randn(1, 1, 2, 2, device="meta"))


def test_conv2d_of_an_empty_batch_is_an_empty_batch_like_torch():
    X, K = torch.randn(0, 2, 6, 6), torch.randn(3, 2, 3, 3)
    assert (
        conv2d(X, K, stride=2, padding=1).shape
        == F.conv2d(X, K, stride=2, padding=1).shape
        == (0, 3, 3, 3)
    )


def test_sizes_accept_numpy_integers():
    assert conv_output_size(np.int64(7), np.int32(3), np.int64(1), np.int64(2)) == 4
    X, K = torch.randn(1, 1, 7, 7), torch.randn(1, 1, 3, 3)
    torch.testing.assert_close(
        conv2d(X, K, stride=np.int64(2)), F.conv2d(X, K, stride=2)
    )


@pytest.mark.parametrize(
    "args, error, message",
    [
        ((5.0, 3), TypeError, "w must be an int >= 1, got 5.0"),
        ((5, float("inf")), TypeError, "k must be an int >= 1, got inf"),
        ((5, 3, True), TypeError, "p must be an int >= 0, got True"),
        ((5, 3, 0, 1.5), TypeError, "s must be an int >= 1, got 1.5"),
        ((5, 3, -1), ValueError, "p must be an int >= 0, got -1"),
    ],
)
def test_conv_output_size_names_the_bad_argument(args, error, message):
    with pytest.raises(error, match=message):
        conv_output_size(*args)


def test_convolve_refuses_empty_kernels_bools_and_mixed_devices():
    with pytest.raises(
        ValueError, match=r"kernel K has a zero-size dimension: shape \(0, 3\)"
    ):
        convolve(torch.randn(4, 4), torch.zeros(0, 3))
    with pytest.raises(
        TypeError, match="K must hold real numbers, got dtype torch.bool"
    ):
        convolve(torch.randn(4, 4), torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="X on cpu, K on meta"):
        convolve(torch.randn(4, 4), torch.ones(2, 2, device="meta"))
    with pytest.raises(TypeError, match="X must be a 2D \\(H, W\\) tensor, got list"):
        convolve([[1.0]], torch.ones(1, 1))


def test_convolve_accepts_integer_images():
    X = torch.arange(16, dtype=torch.uint8).reshape(4, 4)
    K = torch.ones(2, 2)
    torch.testing.assert_close(
        convolve(X, K), F.conv2d(X.float()[None, None], K[None, None])[0, 0]
    )


def test_pooling_names_bad_windows_and_strides():
    X = torch.randn(1, 1, 6, 6)
    with pytest.raises(ValueError, match="k must be an int >= 1, got 0"):
        max_pool2d(X, 0)
    with pytest.raises(TypeError, match="s must be an int >= 1, got 1.5"):
        avg_pool2d(X, 2, 1.5)
    with pytest.raises(
        ValueError, match=r"X has a zero-size dimension: shape \(1, 0, 6, 6\)"
    ):
        max_pool2d(torch.randn(1, 0, 6, 6), 2)


def test_conv_as_matrix_names_bad_sizes_and_keeps_float64():
    with pytest.raises(TypeError, match="H must be an int >= 1, got 6.0"):
        conv_as_matrix(torch.randn(3, 3), 6.0, 6)
    with pytest.raises(ValueError, match=r"kernel K has a zero-size dimension"):
        conv_as_matrix(torch.zeros(3, 0), 6, 6)
    with pytest.raises(ValueError, match=r"larger than the input"):
        conv_as_matrix(torch.randn(3, 3), 2, 6)
    assert (
        conv_as_matrix(torch.randn(2, 2, dtype=torch.float64), 3, 3).dtype
        == torch.float64
    )


def test_conv_components_names_bad_bias_and_batch():
    X, K = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3)
    with pytest.raises(ValueError, match=r"bias must be \(3,\), got \(2,\)"):
        conv_components(X, K, torch.zeros(2))
    with pytest.raises(
        ValueError, match=r"X must be \(1, C_in, H, W\), got shape \(2, 2, 5, 5\)"
    ):
        conv_components(torch.randn(2, 2, 5, 5), K, torch.zeros(3))
