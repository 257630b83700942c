"""StrassenLinear, the three training phases and strassenize."""

import pytest
import torch
from torch import nn

from strassen_hw.train.layers import PHASES, StrassenLinear, set_phase, strassenize


def _layer():
    layer = StrassenLinear(3, 2, 2).double()
    with torch.no_grad():
        layer.w_b.copy_(torch.tensor([[2.0, 0.0, -2.0], [0.0, 2.0, 2.0]]))
        layer.w_c.copy_(torch.tensor([[1.0, -1.0], [1.0, 0.0]]))
        layer.a_tilde.copy_(torch.tensor([0.5, -0.25]))
        layer.bias.copy_(torch.tensor([1.0, -1.0]))
    return layer


def test_forward_by_hand_full_precision_and_quantized():
    layer = _layer()
    x = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    # W_b x = (2 - 6, 4 + 6) = (-4, 10); ã ⊙ = (-2, -2.5); W_c · = (-2 + 2.5, -2) + bias
    assert layer(x).tolist() == [[1.5, -3.0]]
    set_phase(layer, "quantized")
    # TWN: W_b -> 2·sign (α_b = 2), W_c = 1·sign with Δ = 0.525 (α_c = 1): same values here
    assert layer(x).tolist() == [[1.5, -3.0]]
    with torch.no_grad():
        layer.w_b[0, 0] = 3.0     # mean|W_b| = 11/6, Δ = 1.283: all four kept, α_b = 2.25
    # W_b x = 2.25·(-2, 5) = (-4.5, 11.25); ã ⊙ = (-2.25, -2.8125); W_c · + bias
    assert layer(x).tolist() == [[1.5625, -3.25]]


def test_constructor_checks_sizes():
    with pytest.raises(TypeError, match=r"^r must be a positive integer, not -3$"):
        StrassenLinear(4, -3, 2)
    with pytest.raises(TypeError, match=r"^in_features must be a positive integer, not 2.5$"):
        StrassenLinear(2.5, 3, 2)


def _step(model):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.1)
    x = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    model(x).pow(2).sum().backward()
    optimizer.step()


@pytest.mark.parametrize("phase", PHASES)
def test_phases_switch_what_trains(phase):
    layer = _layer()
    set_phase(layer, phase)
    quantized = phase != "full_precision"
    shadows_train = phase != "ternary_fixed"
    assert layer.quant_b.enabled is quantized and layer.quant_c.enabled is quantized
    assert layer.w_b.requires_grad is shadows_train and layer.w_c.requires_grad is shadows_train
    assert layer.a_tilde.requires_grad and layer.bias.requires_grad
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    _step(layer)
    after = layer.state_dict()
    assert not torch.equal(before["a_tilde"], after["a_tilde"])
    assert not torch.equal(before["bias"], after["bias"])
    assert torch.equal(before["w_b"], after["w_b"]) is not shadows_train
    assert torch.equal(before["w_c"], after["w_c"]) is not shadows_train


def test_unknown_phase():
    with pytest.raises(ValueError, match="phase must be one of full_precision, quantized, "
                                         "ternary_fixed, not 'fp'"):
        set_phase(_layer(), "fp")


def _mlp():
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Sequential(nn.Linear(32, 10)))


def test_strassenize_int_list_and_rule():
    model = strassenize(_mlp(), 5)
    layers = [m for m in model.modules() if isinstance(m, StrassenLinear)]
    assert [(m.in_features, m.r, m.out_features) for m in layers] == [(64, 5, 32), (32, 5, 10)]
    assert isinstance(model[1], nn.ReLU)
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    model = strassenize(_mlp(), [7, 3])
    assert (model[0].r, model[2][0].r) == (7, 3)
    model = strassenize(_mlp(), lambda lin: lin.out_features // 2)    # r = c·out_features
    assert (model[0].r, model[2][0].r) == (16, 5)
    assert model(torch.rand(2, 64)).shape == (2, 10)


def test_strassenize_keeps_bias_choice_and_checks_length():
    model = strassenize(nn.Sequential(nn.Linear(4, 3, bias=False)), 2)
    assert model[0].bias is None
    with pytest.raises(ValueError, match="r lists 1 value"):
        strassenize(_mlp(), [4])
