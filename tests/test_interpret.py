"""nbhelpers.interpret: guided backpropagation against Captum and a hand computation, plus its
side-effect guarantees (modes, BatchNorm statistics, hooks, parameter gradients) and display helpers."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
from captum.attr import GuidedBackprop
from torchvision.models import resnet18

from nbhelpers.interpret import (
    channel_max,
    guided_backprop,
    normalize01,
    plain_gradient,
    predict_proba,
    standardize_and_clip,
    tumour_heat_map,
)

# Both sides run the same float32 operations, so they agree to rounding; the tolerance only
# allows a different summation order. A wrong rule (plain gradient, missing mask) is off by O(1)
# relative to the gradient's scale.
RTOL, ATOL = 1e-4, 1e-6


def small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 16),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(16, 5),
    )


class ReusedInplaceReLU(nn.Module):
    """One in-place ReLU module called twice per forward, like torchvision's BasicBlock."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn(self.conv1(x)))
        y = self.relu(self.conv2(y) + y)
        return self.fc(y.mean(dim=(2, 3)))


class Exploding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 4), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.features(x)
        raise RuntimeError("boom in forward")


def _warmed_up(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Give BatchNorm non-trivial running statistics, then leave the model in train mode."""
    model.train()
    with torch.no_grad():
        model(x)
    return model


def _captum(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    model.eval()
    with warnings.catch_warnings():
        # Captum announces its backward hooks
        warnings.simplefilter("ignore", UserWarning)
        result = GuidedBackprop(model).attribute(
            x.clone().requires_grad_(True), target=target
        )
    return result.detach()


def _plain_gradient(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    model.eval()
    x = x.clone().requires_grad_(True)
    return torch.autograd.grad(model(x).gather(1, target[:, None]).sum(), x)[0]


CASES = {
    "small_cnn": (small_cnn, (4, 3, 8, 8)),
    "reused_inplace_relu": (ReusedInplaceReLU, (3, 3, 8, 8)),
    "resnet18": (lambda: resnet18(weights=None), (2, 3, 64, 64)),
}


@pytest.fixture(params=list(CASES))
def case(request):
    build, shape = CASES[request.param]
    torch.manual_seed(0)
    x = torch.randn(shape)
    return _warmed_up(build(), x), x


def test_matches_captum_and_differs_from_the_plain_gradient(case):
    model, x = case
    ours = guided_backprop(model, x)
    with torch.no_grad():
        target = model.eval()(x).argmax(dim=1)
    reference = _captum(model, x, target)
    assert ours.shape == x.shape and ours.dtype == x.dtype
    assert reference.abs().max() > 0
    torch.testing.assert_close(ours, reference, rtol=RTOL, atol=ATOL)
    plain = _plain_gradient(model, x, target)
    assert (ours - plain).abs().max() > 0.1 * plain.abs().max()


def test_batch_targets_match_captum_per_sample():
    torch.manual_seed(1)
    model, x = small_cnn().eval(), torch.randn(4, 3, 8, 8)
    target = torch.tensor([0, 4, 2, 2])
    ours = guided_backprop(model, x, target=target)
    torch.testing.assert_close(ours, _captum(model, x, target), rtol=RTOL, atol=ATOL)
    for b in range(4):  # each sample depends only on its own input and target
        single = guided_backprop(model, x[b : b + 1], target=int(target[b]))
        torch.testing.assert_close(ours[b : b + 1], single, rtol=RTOL, atol=ATOL)
    same = guided_backprop(model, x, target=3)
    torch.testing.assert_close(same, guided_backprop(model, x, target=[3, 3, 3, 3]))


def test_hand_computed_rule_on_a_two_layer_network():
    """f(x) = w2 . relu(W1 x): guided gradient = W1^T (clamp(w2, 0) * [W1 x > 0])."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 1))
    x = torch.randn(1, 6)
    hidden = model[0](x)
    expected = (model[2].weight.clamp(min=0) * (hidden > 0)) @ model[0].weight
    torch.testing.assert_close(guided_backprop(model, x, target=0), expected.detach())


def test_restores_modes_and_leaves_batchnorm_and_gradients_alone():
    torch.manual_seed(3)
    x = torch.randn(4, 3, 8, 8)
    model = _warmed_up(small_cnn(), x)
    model[9].eval()  # a submodule switched to eval inside a training model must stay so
    # BatchNorm in train mode: a forward outside eval mode would move its stats
    assert model[4].training
    modes = [m.training for m in model.modules()]
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    guided_backprop(model, x)
    assert [m.training for m in model.modules()] == modes
    for name, buffer in model.named_buffers():
        assert torch.equal(buffer, buffers[name]), name
    assert all(p.grad is None for p in model.parameters())


def test_does_not_touch_the_input_or_need_its_grad():
    model, x = small_cnn().eval(), torch.randn(2, 3, 8, 8)
    original = x.clone()
    with torch.no_grad():  # also works when the caller disabled gradients
        g = guided_backprop(model, x)
    assert torch.equal(x, original) and not x.requires_grad and x.grad is None
    assert not g.requires_grad and g.abs().max() > 0


def test_removes_every_hook_on_success_and_on_error():
    model = resnet18(weights=None)
    guided_backprop(model, torch.randn(1, 3, 32, 32))
    assert all(not m._forward_hooks for m in model.modules())

    exploding = Exploding().train()
    with pytest.raises(RuntimeError, match="boom in forward"):
        guided_backprop(exploding, torch.randn(2, 4))
    assert all(not m._forward_hooks for m in exploding.modules())
    assert all(m.training for m in exploding.modules())


def test_refuses_inference_mode_but_accepts_its_tensors():
    model = small_cnn().eval()
    with torch.inference_mode():
        x = torch.randn(1, 3, 8, 8)
        with pytest.raises(RuntimeError, match="inference_mode"):
            guided_backprop(model, x)
    assert x.is_inference()
    assert guided_backprop(model, x).shape == x.shape


@pytest.mark.parametrize(
    "target, message",
    [
        (5, "outside"),
        (-1, "outside"),
        (torch.tensor([0, 1, 2]), "class indices"),
        (torch.tensor([0.0, 1.0]), "class indices"),
        (True, "target"),
    ],
)
def test_rejects_bad_targets(target, message):
    model = small_cnn().eval()
    with pytest.raises(ValueError, match=message):
        guided_backprop(model, torch.randn(2, 3, 8, 8), target=target)
    assert all(not m._forward_hooks for m in model.modules())


def test_rejects_bad_inputs_and_models_without_relu():
    with pytest.raises(ValueError, match="floating"):
        guided_backprop(small_cnn(), torch.zeros(1, 3, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="floating"):
        guided_backprop(small_cnn(), torch.zeros(8))
    with pytest.raises(ValueError, match="no nn.ReLU"):
        guided_backprop(nn.Sequential(nn.Linear(4, 2), nn.SELU()), torch.randn(1, 4))
    with pytest.raises(ValueError, match="logits"):
        guided_backprop(
            nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU()), torch.randn(1, 3, 8, 8)
        )


def test_other_activations_are_gated_when_asked_and_equal_a_tensor_hook_gate():
    torch.manual_seed(7)
    model = nn.Sequential(
        nn.Linear(6, 8), nn.SELU(), nn.Linear(8, 8), nn.SELU(), nn.Linear(8, 3)
    )
    x = torch.randn(4, 6)

    def gate(module, inputs, output):
        active = output > 0
        output.register_hook(lambda grad: grad.clamp(min=0) * active)

    handles = [m.register_forward_hook(gate) for m in model if isinstance(m, nn.SELU)]
    try:
        expected = plain_gradient(model, x, 2)
    finally:
        for handle in handles:
            handle.remove()
    guided = guided_backprop(model, x, 2, activations=(nn.SELU,))
    torch.testing.assert_close(guided, expected)
    assert not torch.allclose(guided, plain_gradient(model, x, 2))
    with pytest.raises(ValueError, match="no nn.ReLU module"):
        guided_backprop(model, x, 2)
    with pytest.raises(ValueError, match="activations must be a non-empty tuple"):
        guided_backprop(model, x, 2, activations=nn.SELU)


def test_plain_gradient_is_autograd_in_eval_mode():
    torch.manual_seed(5)
    model = small_cnn()
    model.train()
    x = torch.randn(2, 3, 8, 8)
    gradient = plain_gradient(model, x, target=[1, 4])
    x_leaf = x.clone().requires_grad_(True)
    model.eval()
    logits = model(x_leaf)
    (expected,) = torch.autograd.grad(logits[0, 1] + logits[1, 4], x_leaf)
    torch.testing.assert_close(gradient, expected)
    assert all(p.grad is None for p in model.parameters())


def test_predict_proba_is_a_softmax_in_eval_mode():
    torch.manual_seed(4)
    x = torch.randn(3, 3, 8, 8)
    model = _warmed_up(small_cnn(), x)
    probs = predict_proba(model, x)
    assert probs.shape == (3, 5) and not probs.requires_grad
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(3))
    assert model.training
    torch.testing.assert_close(probs, torch.softmax(model.eval()(x), dim=1).detach())


def test_display_helpers():
    g = torch.randn(2, 3, 5, 7)
    assert channel_max(g).shape == (2, 5, 7)
    assert torch.equal(channel_max(g[0]), g[0].max(dim=0).values)
    with pytest.raises(ValueError, match="C, H, W"):
        channel_max(torch.zeros(5, 7))

    scaled = standardize_and_clip(g[0])
    assert scaled.shape == (3, 5, 7) and scaled.min() >= 0 and scaled.max() <= 1
    z = (g[0] - g[0].mean()) / g[0].std()
    torch.testing.assert_close(standardize_and_clip(g[0], -10, 10), z * 0.1 + 0.5)
    assert torch.equal(
        standardize_and_clip(torch.full((4,), 3.0)), torch.full((4,), 0.5)
    )
    with pytest.raises(ValueError, match="min_val"):
        standardize_and_clip(g, min_val=2.0, max_val=1.0)

    unit = normalize01(g)
    assert unit.min() == 0 and unit.max() == 1
    assert torch.equal(normalize01(torch.full((2, 2), 7.0)), torch.zeros(2, 2))


def test_plot_guided_backprop_draws_rows_and_checks_shapes():
    from nbhelpers.plotting import plot_guided_backprop

    images = normalize01(torch.rand(2, 3, 6, 6))
    maps = standardize_and_clip(channel_max(torch.randn(2, 3, 6, 6)))
    fig = plot_guided_backprop(
        images, maps, titles=["p(1 | x) = 0.90", "p(1 | x) = 0.80"]
    )
    assert len(fig.axes) == 6 and fig.axes[0].get_title() == "p(1 | x) = 0.90"
    assert len(fig.axes[2].images) == 2  # overlay: image and map
    with pytest.raises(ValueError, match="expected"):
        plot_guided_backprop(images, torch.zeros(2, 5, 5))
    with pytest.raises(ValueError, match="titles"):
        plot_guided_backprop(images, maps, titles=["one"])
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["reused_inplace_relu", "resnet18"])
def test_matches_captum_on_the_accelerator(name, device):
    build, shape = CASES[name]
    torch.manual_seed(0)
    x = torch.randn(shape, device=device)
    model = _warmed_up(build().to(device), x)
    ours = guided_backprop(model, x, target=1)
    assert ours.device == x.device
    # Same device and kernels on both sides; a little slack for non-deterministic GPU reductions.
    torch.testing.assert_close(ours, _captum(model, x, 1), rtol=1e-3, atol=1e-5)


class _FunctionalReLU(torch.nn.Module):
    """Declares an nn.ReLU it never calls: the forward uses F.relu."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.relu = torch.nn.ReLU()  # declared, unused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.relu(self.linear(x))


def test_a_model_that_calls_f_relu_is_refused_not_silently_unguided():
    model = _FunctionalReLU()
    with pytest.raises(ValueError, match="none of the 1 gated modules .* ran"):
        guided_backprop(model, torch.randn(2, 4))
    # the hooks were removed: the module behaves as before
    assert not model.relu._forward_hooks


# ---- the patch classifier slid over a slide ----------------------------------------------------


def _window_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(4, 2),
    )


def test_heat_map_is_the_model_on_every_window_in_eval_mode():
    model = _window_model()
    slide = torch.rand(3, 90, 110)
    heat = tumour_heat_map(model, slide, window=49, stride=16, batch_size=3)
    assert heat.shape == ((90 - 49) // 16 + 1, (110 - 49) // 16 + 1) == (3, 4)
    assert model.training and all(m.training for m in model.modules())  # restored
    model.eval()
    with torch.no_grad():
        for i, j in [(0, 0), (2, 3), (1, 2)]:
            window = slide[:, 16 * i : 16 * i + 49, 16 * j : 16 * j + 49]
            p = torch.softmax(model(window.unsqueeze(0)), dim=1)[0, 1]
            torch.testing.assert_close(heat[i, j], p)


def test_heat_map_does_not_depend_on_the_batch_size():
    model, slide = _window_model(), torch.rand(3, 81, 81)
    one = tumour_heat_map(model, slide, stride=8, batch_size=1)
    many = tumour_heat_map(model, slide, stride=8, batch_size=256)
    torch.testing.assert_close(one, many)
    assert ((one >= 0) & (one <= 1)).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"slide": torch.rand(3, 40, 60)}, "H >= 49"),
        ({"slide": torch.rand(1, 3, 60, 60)}, r"\(3, H >= 49"),
        ({"slide": torch.zeros(3, 60, 60, dtype=torch.uint8)}, "floating"),
        ({"stride": 0}, "stride"),
        ({"window": 1.5}, "window"),
        ({"batch_size": 0}, "batch_size"),
        ({"model": "resnet"}, "nn.Module"),
    ],
)
def test_heat_map_rejects_bad_input(kwargs, message):
    arguments = {"model": _window_model(), "slide": torch.rand(3, 60, 60), **kwargs}
    with pytest.raises(ValueError, match=message):
        tumour_heat_map(**arguments)
