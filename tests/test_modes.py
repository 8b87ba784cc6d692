import pytest
import torch.nn as nn

from nbhelpers.train import eval_context


def _mixed_model() -> nn.Sequential:
    model = nn.Sequential(
        nn.Linear(3, 4),
        nn.BatchNorm1d(4),
        nn.Dropout(0.5),
        nn.Sequential(nn.Dropout(0.2)),
    )
    model.train()
    model[1].eval()  # a frozen BatchNorm inside a training model
    return model


def test_eval_context_sets_eval_and_restores_each_submodule():
    model = _mixed_model()
    before = [m.training for m in model.modules()]
    with eval_context(model) as inside:
        assert inside is model
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == before


def test_eval_context_restores_on_error():
    model = _mixed_model()
    before = [m.training for m in model.modules()]
    with pytest.raises(RuntimeError, match="boom"):
        with eval_context(model):
            raise RuntimeError("boom")
    assert [m.training for m in model.modules()] == before


def test_eval_context_keeps_a_model_in_eval_mode():
    model = _mixed_model().eval()
    with eval_context(model):
        pass
    assert not any(m.training for m in model.modules())
