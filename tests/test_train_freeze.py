"""Freezing: hand-worked fields, exactness where nothing needs rounding, and the stated error
bounds on a trained model, checked on the test split.

The trained model is a committed checkpoint (``tests/data/quick_digits_student.pt``, the
``train_quick.QUICK`` student), not a fresh training run: CPU float results differ between
machines, and the error-bound checks below are about one particular model."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from strassen_hw.frozen import Format, dumps, from_json
from strassen_hw.reference import forward, layer_forward
from strassen_hw.train.freeze import freeze
from strassen_hw.train.recipe import digits_mlp
from strassen_hw.train.layers import StrassenLinear, set_phase, strassenize
from train_quick import digits

CHECKPOINT = Path(__file__).parent / "data" / "quick_digits_student.pt"


def _hand_model():
    layer = StrassenLinear(3, 2, 2).double()
    with torch.no_grad():
        layer.w_b.copy_(torch.tensor([[2.0, 0.0, -2.0], [0.0, 2.0, 2.0]]))   # α_b = 2
        layer.w_c.copy_(torch.tensor([[1.0, -1.0], [1.0, 0.0]]))             # α_c = 1
        layer.a_tilde.copy_(torch.tensor([0.5, -0.25]))
        layer.bias.copy_(torch.tensor([1.0, -1.0]))
    return set_phase(nn.Sequential(layer), "ternary_fixed")


def test_hand_worked_freeze_is_exact():
    model = _hand_model()
    x = np.array([[a, b, c] for a in range(0, 16, 3) for b in range(0, 16, 5)
                  for c in range(0, 16, 4)])
    net, report = freeze(model, x, input_format=Format(4, False), input_scale=1 / 16,
                         a_width=4)
    (layer,) = net.layers
    assert layer.w_b.tolist() == [[1, 0, -1], [0, 1, 1]]
    assert layer.w_c.tolist() == [[1, -1], [1, 0]]
    # a_eff = α_b·α_c·ã/16 = (1/16, -1/32); 4 signed bits hold up to 7: F = floor(log2 112) = 6
    assert layer.a_tilde.tolist() == [4, -2] and layer.a_frac_bits == 6
    # logits peak below 4: a finer step than the products' 2^-6 is not possible, so no shifts
    assert (layer.product_shift, layer.shift, layer.relu) == (0, 0, False)
    assert layer.bias.tolist() == [64, -64]                 # bias / 2^-6
    # exact range: v0 = 4·u0 + 2·u1 + 64 in [4, 184], v1 = 4·u0 - 64 in [-124, -4]: 9 bits
    assert layer.output == Format(9, True)
    assert report.output_step == 2.0 ** -6
    # nothing was rounded: the integers are the float logits times 64, exactly
    with torch.no_grad():
        expected = model(torch.as_tensor(x, dtype=torch.float64) / 16) * 64
    assert forward(net, x).tolist() == expected.numpy().astype(np.int64).tolist()
    assert np.array_equal(expected.numpy(), np.round(expected.numpy()))


def test_freeze_refuses_other_modules():
    with pytest.raises(ValueError, match="cannot freeze Linear"):
        freeze(nn.Sequential(nn.Linear(3, 2)), np.zeros((1, 3), dtype=np.int64),
               input_format=Format(4, False), input_scale=1 / 16)


@pytest.fixture(scope="module")
def frozen():
    student = strassenize(digits_mlp(32), (12, 8))
    student.load_state_dict(torch.load(CHECKPOINT, weights_only=True))
    set_phase(student, "ternary_fixed")
    data = digits()
    net, report = freeze(student, data.x_train, name="digits",
                         input_format=data.input_format, input_scale=data.input_scale)
    return student, net, report


def test_round_trip_keeps_the_predictions_on_the_test_split(frozen):
    model, net, report = frozen
    data = digits()
    with torch.no_grad():
        float_pred = model(torch.as_tensor(data.x_test, dtype=torch.float32) / 16).argmax(1)
    frozen_pred = forward(net, data.x_test).argmax(1)
    assert (frozen_pred == float_pred.numpy()).mean() >= 0.99
    float_acc = (float_pred.numpy() == data.y_test).mean()
    assert abs((frozen_pred == data.y_test).mean() - float_acc) <= 0.01
    # the file round trip is lossless
    again = from_json(json.loads(dumps(net)))
    assert np.array_equal(forward(again, data.x_test), forward(net, data.x_test))


def test_hidden_layer_within_the_documented_rounding(frozen):
    """|frozen · step - float| <= the ã, product, bias and output roundings the docs state."""
    model, net, report = frozen
    layer, info = net.layers[0], report.layers[0]
    x = digits().x_test
    with torch.no_grad():
        first = copy.deepcopy(model[0]).double()
        h = torch.relu(first(torch.as_tensor(x, dtype=torch.float64) / 16)).numpy()
    step = info["step"]
    assert step == 2.0 ** (layer.product_shift + layer.shift - layer.a_frac_bits)
    got = layer_forward(layer, x) * step
    u = np.abs(x @ layer.w_b.T)                           # exact integers
    frac, ps = layer.a_frac_bits, layer.product_shift
    per_product = u * 2.0 ** -(frac + 1) + (2.0 ** (ps - frac - 1) if ps else 0)
    bound = per_product @ np.abs(layer.w_c.T) + 2.0 ** (ps - frac - 1) + step / 2 + 1e-9
    top = layer.output.max * step
    err = np.abs(got - np.clip(h, 0, top))
    assert (err <= bound).all()
    assert layer.output == Format(8, False) and layer.relu
    # the bound is not vacuous: a few output steps on average (this checkpoint: 3.3), a small
    # fraction of the output's range, and the errors seen reach a good part of it
    assert bound.mean() < 4 * step and bound.mean() < top / 50
    assert err.max() > step / 2


def test_a_width_choice_is_reported(frozen):
    _, net, report = frozen
    assert report.a_width == net.layers[0].a_width == net.layers[1].a_width
    assert report.candidates[-1]["a_width"] == report.a_width
    assert report.candidates[-1]["logit_error"] <= 0.02
    assert [c["a_width"] for c in report.candidates] == list(range(2, report.a_width + 1))
    # a narrower ã than the chosen one would have failed the criterion
    assert report.candidates[0]["logit_error"] > 0.02
