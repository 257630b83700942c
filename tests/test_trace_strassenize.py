"""strassenize on the traced graph: it refuses, before any training, what freeze would refuse
(with freeze's one line), replaces nn.Linear and nn.Conv2d inside blocks and shortcuts with r
and p per layer, and moves a batch norm that follows a layer after its W_b, where it folds."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from strassen_hw.frozen import Format
from strassen_hw.reference import forward
from strassen_hw.train.conv import StrassenConv2d
from strassen_hw.train.freeze import float_logits, freeze
from strassen_hw.train.layers import StrassenLinear, set_phase, strassenize
from strassen_hw.train.resnet import BasicBlock


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class _Float(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(64, 8)
        self.b = nn.Linear(64, 8)
        self.fc = nn.Linear(8, 3)
        self.bn = nn.BatchNorm1d(8)
        self.lstm = nn.LSTM(8, 8)


def _model(body):
    return type("Model", (_Float,), {"forward": body})()


REFUSED = [
    (lambda s, x: s.fc(torch.cat([s.a(x), s.b(x)], 1)[:, :8]), "no concatenation"),
    (lambda s, x: s.fc(torch.sigmoid(s.a(x))), "only ReLU activations"),
    (lambda s, x: s.fc(s.lstm(s.a(x))[0]), "cannot freeze LSTM"),
    (lambda s, x: s.fc(s.a(x) if x.sum() > 0 else s.b(x)), "a data-dependent branch"),
    (lambda s, x: s.fc(s.bn(F.relu(s.a(x)))), "folds only into the layer right before it"),
    (lambda s, x: s.fc(s.a(x).view(x.size(0), 2, 4)[:, 0]), "reinterprets the pixel order"),
]


@pytest.mark.parametrize("body, hint", REFUSED, ids=[h[:24] for _, h in REFUSED])
def test_refuses_before_training_what_freeze_refuses(body, hint):
    float_model = _model(body)
    with pytest.raises(ValueError) as early:
        strassenize(float_model, 4)
    assert hint in str(early.value) and "\n" not in str(early.value)
    # nothing was replaced: the refusal comes before any change
    assert not any(isinstance(m, StrassenLinear) for m in float_model.modules())
    # and freeze refuses a Strassen model of that forward with the same line
    strassen_model = _model(body)
    for name in ("a", "b", "fc"):
        old = getattr(strassen_model, name)
        setattr(strassen_model, name, StrassenLinear(old.in_features, 4, old.out_features))
    with pytest.raises(ValueError) as late:
        freeze(set_phase(strassen_model, "ternary_fixed"), np.zeros((4, 64), dtype=np.int64),
               input_format=Format(5, False), input_scale=1 / 16)
    assert str(late.value) == str(early.value)


def test_batch_norm_after_a_linear_moves_after_w_b_and_folds():
    model = nn.Sequential(nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))
    strassenize(model, 6)
    assert isinstance(model[0], StrassenLinear) and isinstance(model[0].bn, nn.BatchNorm1d)
    assert model[0].bn.num_features == 6 and isinstance(model[1], nn.Identity)
    assert model[3].bn is None                      # nothing follows the classifier
    torch.manual_seed(0)
    model.train()
    for _ in range(5):                              # running statistics that are not trivial
        model(torch.rand(32, 64))
    set_phase(model, "ternary_fixed").eval().double()
    x = np.random.default_rng(0).integers(0, 17, (300, 64))
    with torch.no_grad():
        want = model(torch.as_tensor(x, dtype=torch.float64) / 16).numpy()
    assert np.abs(float_logits(model, x, 1 / 16) - want).max() < 1e-9
    net, report = freeze(model, x, input_format=Format(5, False), input_scale=1 / 16,
                         a_width=16, act_width=12, guard_bits=8)
    got = forward(net, x) * report.output_step
    spread = np.abs(want - want.mean(1, keepdims=True)).mean()
    assert np.abs(got - want).mean() < 0.02 * spread


def _resnet():
    return nn.Sequential(nn.Conv2d(1, 4, 3, 1, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                         BasicBlock(4, 4, 1), BasicBlock(4, 8, 2), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(),
                         nn.Linear(8, 10))


def test_layers_inside_blocks_and_shortcuts_with_r_and_p_per_layer():
    model = strassenize(_resnet(), 0.5, p=lambda conv: 2 if conv.kernel_size == (3, 3) else 1)
    convs = [m for m in model.modules() if isinstance(m, StrassenConv2d)]
    assert len(convs) == 6                     # stem, 2 × 2 in the blocks, 1 projection
    assert [c.r for c in convs] == [2, 2, 2, 4, 4, 4]          # round(0.5 · c_out)
    assert [c.p for c in convs] == [2, 2, 2, 2, 2, 1]
    shortcut = model[4].shortcut[0]
    assert isinstance(shortcut, StrassenConv2d) and shortcut.kernel_size == (1, 1)
    assert shortcut.stride == (2, 2) and shortcut.p == 1
    # every batch norm moved after a W_b; none is left where it cannot fold
    assert all(c.bn is not None for c in convs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()
                   if not any(m is c.bn for c in convs))
    assert isinstance(model[-1], StrassenLinear) and model[-1].r == 5
    rule = strassenize(_resnet(), lambda m: None if isinstance(m, nn.Linear) else m.out_channels)
    assert isinstance(rule[-1], nn.Linear)                     # None keeps it dense
    # the strassenized residual model trains, then freezes into its graph
    model = strassenize(_resnet(), lambda m: m.out_features if isinstance(m, nn.Linear)
                        else m.out_channels)
    torch.manual_seed(0)
    model.train()
    for _ in range(3):
        model(torch.rand(16, 1, 8, 8))
    set_phase(model, "ternary_fixed").eval().double()
    x = np.random.default_rng(1).integers(0, 17, (300, 64))
    with torch.no_grad():
        want = model(torch.as_tensor(x, dtype=torch.float64).reshape(-1, 1, 8, 8) / 16).numpy()
    assert np.abs(float_logits(model, x, 1 / 16, input_shape=(1, 8, 8)) - want).max() < 1e-9
    net, report = freeze(model, x, input_format=Format(5, False), input_scale=1 / 16,
                         input_shape=(1, 8, 8), a_width=16, act_width=12, guard_bits=8)
    assert [n.KIND for n in net.nodes].count("add") == 2
    got = forward(net, x) * report.output_step
    spread = np.abs(want - want.mean(1, keepdims=True)).mean()
    assert np.abs(got - want).mean() < 0.02 * spread


def test_shape_checks_with_input_shape():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)
            self.fc = nn.Linear(16, 2)

        def forward(self, x):
            return self.fc(torch.flatten(self.conv(F.max_pool2d(self.conv(x), 2)), 1))
    strassenize(Twice(), 2)                          # shapes unknown: not checked
    with pytest.raises(ValueError, match="is called with 1×8×8 and 1×4×4 inputs"):
        strassenize(Twice(), 2, input_shape=(1, 8, 8))
