"""Freezing Strassen CNNs: the float64 chain the freezer rounds equals the torch model (batch
norm folding, groups, strides, the flatten permutation), the frozen integers track it, the
trained digits CNN keeps its predictions, and what cannot be frozen is refused."""

import functools

import numpy as np
import pytest
import torch
from torch import nn

from strassen_hw.frozen import Format, FrozenConvLayer, dumps, from_json
from strassen_hw.reference import forward
from strassen_hw.train.conv import StrassenConv2d
from strassen_hw.train.freeze import float_logits, freeze
from strassen_hw.train.layers import StrassenLinear, set_phase
from train_quick import digits


def _odd_model(pool):
    """Two channels in, groups 2, stride 2 with p = 2, batch norm with non-trivial running
    statistics, pooling, then a second convolution and a linear classifier."""
    torch.manual_seed(3)
    conv1 = StrassenConv2d(2, 4, 3, r=4, p=2, groups=2, stride=(1, 2), padding=1,
                           batch_norm=True)
    conv2 = StrassenConv2d(4, 3, (3, 1), r=3, p=1, padding=(1, 0), batch_norm=True)
    model = nn.Sequential(conv1, nn.ReLU(), pool, conv2, nn.ReLU(), nn.Flatten(),
                          StrassenLinear(3 * 3 * 2, 5, 4))
    with torch.no_grad():
        for bn in (conv1.bn, conv2.bn):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
        for module in model.modules():
            if hasattr(module, "a_tilde"):
                module.a_tilde.uniform_(0.5, 2.0)
    return set_phase(model, "ternary_fixed").eval().double()


def _torch_logits(model, x_int, shape):
    with torch.no_grad():
        x = torch.as_tensor(x_int, dtype=torch.float64) / 16
        # pixel order (rows, then channels of a pixel) -> torch's (N, C, H, W)
        x = x.reshape(len(x), shape[1], shape[2], shape[0]).permute(0, 3, 1, 2)
        return model(x).numpy()


@pytest.mark.parametrize("pool", [nn.MaxPool2d(2), nn.AvgPool2d(2)])
def test_float_chain_equals_torch(pool):
    model = _odd_model(pool)
    shape = (2, 7, 10)
    x = np.random.default_rng(0).integers(0, 16, (20, 2 * 7 * 10))
    got = float_logits(model, x, 1 / 16, input_shape=shape)
    want = _torch_logits(model, x, shape)
    assert np.abs(got - want).max() < 1e-9 * max(1.0, np.abs(want).max())


def test_frozen_odd_model_tracks_the_float_model():
    model = _odd_model(nn.MaxPool2d(2))
    shape = (2, 7, 10)
    x = np.random.default_rng(1).integers(0, 16, (300, 2 * 7 * 10))
    net, report = freeze(model, x, input_format=Format(5, False), input_scale=1 / 16,
                         input_shape=shape, a_width=16, act_width=12, guard_bits=8)
    assert [type(layer).__name__ for layer in net.layers] == \
        ["FrozenConvLayer", "FrozenConvLayer", "FrozenLayer"]
    conv1 = net.layers[0]
    assert conv1.geometry.groups == 2 and conv1.geometry.pool == "max"
    # groups: hidden 0, 1 read only channel 0, hidden 2, 3 only channel 1 (pixel order)
    channel = np.arange(conv1.patch.n_in) % 2
    assert not conv1.patch.w_b[:2, channel == 1].any()
    assert not conv1.patch.w_b[2:, channel == 0].any()
    want = _torch_logits(model, x, shape)
    got = forward(net, x) * report.output_step
    spread = np.abs(want - want.mean(1, keepdims=True)).mean()
    assert np.abs(got - want).mean() < 0.02 * spread
    assert (got.argmax(1) == want.argmax(1)).mean() > 0.95
    assert from_json(net.to_json()) is not None and dumps(from_json(net.to_json())) == dumps(net)


@functools.lru_cache(maxsize=None)
def _quick_cnn():
    from strassen_hw.train.recipe import TrainConfig, train
    config = TrainConfig(model="cnn", r=(8, 16, 10), p=(2, 2), batch_norm=True,
                         teacher_epochs=4, phase_epochs=(4, 4, 2), seed=0)
    return train(config, digits(), progress=False)


def test_digits_cnn_freezes_with_its_predictions():
    data, result = digits(), _quick_cnn()
    net, report = freeze(result.student, data.x_train, name="cnn",
                         input_format=data.input_format, input_scale=data.input_scale)
    assert [type(layer) for layer in net.layers[:2]] == [FrozenConvLayer] * 2
    # multiplications per image: r per window, 4×4 then 2×2 windows, then the classifier
    assert sum(layer.multiplications() if isinstance(layer, FrozenConvLayer) else layer.r
               for layer in net.layers) == 8 * 16 + 16 * 4 + 10
    float_pred = float_logits(result.student, data.x_test, data.input_scale).argmax(1)
    with torch.no_grad():
        torch_pred = result.student.eval()(
            torch.as_tensor(data.x_test, dtype=torch.float32) / 16).argmax(1).numpy()
    assert (float_pred == torch_pred).mean() > 0.99
    frozen_pred = forward(net, data.x_test).argmax(1)
    assert (frozen_pred == float_pred).mean() > 0.97


@pytest.mark.parametrize("model, message", [
    (lambda: nn.Sequential(nn.Unflatten(1, (1, 4, 4)), StrassenConv2d(1, 2, 3, 2),
                           nn.BatchNorm2d(2)), "cannot freeze a separate BatchNorm2d"),
    (lambda: nn.Sequential(nn.Unflatten(1, (1, 4, 4)), StrassenConv2d(1, 2, 1, 2),
                           nn.AvgPool2d(2), nn.ReLU()), "a ReLU must follow"),
    (lambda: nn.Sequential(nn.Unflatten(1, (1, 4, 4)), StrassenConv2d(1, 2, 1, 2),
                           nn.MaxPool2d(2, padding=1)), "pooling needs kernel = stride"),
    (lambda: nn.Sequential(nn.Unflatten(1, (1, 4, 4)), StrassenConv2d(1, 2, 1, 2),
                           nn.AvgPool2d(3)), "not a power of two"),
    (lambda: nn.Sequential(nn.Unflatten(1, (2, 2, 4)), StrassenConv2d(2, 2, 1, 2)),
     "only a first nn.Unflatten"),
    (lambda: nn.Sequential(StrassenConv2d(1, 2, 1, 2)), "needs images"),
    (lambda: nn.Sequential(nn.Unflatten(1, (1, 4, 4)), StrassenConv2d(1, 2, 1, 2),
                           StrassenLinear(32, 2, 2)), "put nn.Flatten"),
])
def test_refusals(model, message):
    with pytest.raises(ValueError, match=message):
        freeze(model(), np.zeros((2, 16), dtype=np.int64), input_format=Format(4, False),
               input_scale=1 / 16)


@pytest.mark.slow
def test_cli_trains_and_freezes_a_cnn(tmp_path, capsys):
    from strassen_hw.cli import main
    from strassen_hw.frozen import load
    ckpt, net_path = tmp_path / "cnn.pt", tmp_path / "cnn.json"
    assert main(["train", "--model", "cnn", "--products", "4,8,10", "--p", "2,1",
                 "--teacher-epochs", "1", "--epochs", "1,1,1", "--device", "cpu", "-o",
                 str(ckpt)]) == 0
    assert "teacher CNN (p = 2,1, batch norm)" in capsys.readouterr().out
    assert main(["freeze", str(ckpt), "-o", str(net_path), "--name", "cnn"]) == 0
    assert "quantization loss" in capsys.readouterr().out
    net = load(net_path)
    assert [layer.r for layer in net.layers] == [4, 8, 10]
    assert [layer.geometry.p for layer in net.layers[:2]] == [2, 1]
