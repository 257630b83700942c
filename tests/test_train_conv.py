"""StrassenConv2d: the float layer against torch's convolution, ternary weights, phases,
operation counts by hand, strassenize on a CNN, and short training runs."""

import itertools
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from strassen_hw.train.conv import StrassenConv2d, conv2d_counts
from strassen_hw.train.recipe import (TrainConfig, build_models, load_checkpoint,
                                   save_checkpoint, train)
from strassen_hw.train.layers import (PHASES, StrassenLinear, count_operations, set_phase,
                                      strassenize)
from strassen_hw.train.models import digits_cnn
from train_quick import digits


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny models: one thread is much faster than two on a busy 2-core machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _represent(conv, p):
    """A StrassenConv2d whose W_b, ã, W_c compute the dense ``conv`` exactly: one hidden channel
    per output channel o and patch position (a, b), r = c_out·p²; its W_b row is the filter of
    o moved to where output (a, b) of the patch reads the window."""
    weight = conv.weight.detach()
    c_out, _, kh, kw = weight.shape
    (sh, sw), groups = conv.stride, conv.groups
    layer = StrassenConv2d(conv.in_channels, c_out, (kh, kw), c_out * p * p, p=p, groups=groups,
                           stride=conv.stride, padding=conv.padding).double()
    with torch.no_grad():
        layer.w_b.zero_()
        layer.w_c.zero_()
        layer.a_tilde.fill_(1.0)
        for o, a, b in itertools.product(range(c_out), range(p), range(p)):
            j = (o * p + a) * p + b
            layer.w_b[j, :, sh * a:sh * a + kh, sw * b:sw * b + kw] = weight[o]
            layer.w_c[j, o, a, b] = 1.0
        layer.bias.copy_(conv.bias)
    return layer


CASES = [  # (c_in, c_out, kernel, p, stride, padding, groups, (H, W))
    (1, 2, 3, 1, 1, 1, 1, (5, 7)),
    (1, 2, 3, 2, 1, 1, 1, (5, 7)),        # 5×7 outputs: partial last patch row and column
    (1, 3, 3, 2, 1, 0, 1, (3, 5)),        # 1×3 outputs from a 3×5 image
    (2, 2, 1, 2, 1, 0, 1, (3, 5)),        # kernel 1
    (2, 4, 3, 2, 2, 1, 1, (7, 6)),        # stride 2: window 2·(p-1)+3 = 5, stride 4
    (3, 2, 1, 3, 2, 0, 1, (7, 7)),        # 1×1 projection with stride 2, p = 3
    (4, 6, 3, 2, 1, 1, 2, (5, 5)),        # groups
    (4, 4, 3, 1, 2, 0, 4, (6, 5)),        # depthwise, stride 2
    (2, 3, (3, 1), 2, (1, 2), (1, 0), 1, (5, 6)),   # rectangular kernel, stride, padding
]


@pytest.mark.parametrize("c_in, c_out, kernel, p, stride, padding, groups, hw", CASES)
def test_float_layer_can_be_any_dense_convolution(c_in, c_out, kernel, p, stride, padding,
                                                  groups, hw):
    gen = torch.Generator().manual_seed(7)
    torch.manual_seed(7)
    conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups).double()
    x = torch.randn(2, c_in, *hw, generator=gen, dtype=torch.float64)
    expected = F.conv2d(x, conv.weight, conv.bias, stride, padding, groups=groups)
    out = _represent(conv, p)(x)
    assert out.shape == expected.shape
    # float64 training model against torch's own convolution (sums in another order), not
    # hardware: equal to rounding error
    assert torch.allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_output_size_and_patches_follow_nn_conv2d():
    for (h, w), k, s, pad, p in itertools.product([(3, 5), (8, 8), (9, 4)], (1, 3), (1, 2),
                                                  (0, 1), (1, 2, 3)):
        layer = StrassenConv2d(1, 2, k, 3, p=p, stride=s, padding=pad)
        shape = nn.Conv2d(1, 2, k, s, pad)(torch.zeros(1, 1, h, w)).shape[-2:]
        assert layer.output_size((h, w)) == tuple(shape)
        assert layer.patches((h, w)) == tuple(math.ceil(n / p) for n in shape)
        assert layer(torch.zeros(1, 1, h, w)).shape[-2:] == shape


def test_quantized_forward_is_the_float_layer_with_alpha_times_ternary():
    gen = torch.Generator().manual_seed(3)
    layer = StrassenConv2d(3, 4, 3, 6, p=2, groups=3, padding=1).double()
    with torch.no_grad():
        for param in (layer.w_b, layer.w_c, layer.a_tilde, layer.bias):
            param.copy_(torch.randn(param.shape, generator=gen, dtype=torch.float64))
    x = torch.randn(2, 3, 5, 6, generator=gen, dtype=torch.float64)
    set_phase(layer, "quantized")
    t_b, alpha_b, t_c, alpha_c = layer.ternary_weights()
    for t in (t_b, t_c):
        assert set(torch.unique(t).tolist()) == {-1.0, 0.0, 1.0}
    plain = StrassenConv2d(3, 4, 3, 6, p=2, groups=3, padding=1).double()
    plain.load_state_dict(layer.state_dict())
    with torch.no_grad():
        plain.w_b.copy_(alpha_b * t_b)
        plain.w_c.copy_(alpha_c * t_c)
    assert not plain.quantized
    assert torch.equal(layer(x), plain(x))
    assert not torch.allclose(layer(x), set_phase(layer, "full_precision")(x))


def _cnn(batch_norm=False):
    torch.manual_seed(0)
    return strassenize(digits_cnn(), [4, 8, 6], p=2, batch_norm=batch_norm)


@pytest.mark.parametrize("phase", PHASES)
def test_phases_on_a_model_mixing_conv_and_linear(phase):
    model = _cnn(batch_norm=True)
    set_phase(model, phase)
    layers = [model[1], model[4], model[8]]
    assert [type(m) for m in layers] == [StrassenConv2d, StrassenConv2d, StrassenLinear]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(torch.rand(16, 64, generator=torch.Generator().manual_seed(1))).pow(2).sum().backward()
    optimizer.step()
    after = model.state_dict()
    for name in ("1", "4", "8"):
        layer = model.get_submodule(name)
        assert layer.quantized is (phase != "full_precision")
        for shadow in ("w_b", "w_c"):
            moved = not torch.equal(before[f"{name}.{shadow}"], after[f"{name}.{shadow}"])
            assert moved is (phase != "ternary_fixed"), (name, shadow)
        assert not torch.equal(before[f"{name}.a_tilde"], after[f"{name}.a_tilde"])
    assert not torch.equal(before["1.bn.weight"], after["1.bn.weight"])   # BN always trains


def _hand_layer():
    layer = StrassenConv2d(1, 2, 3, 2, p=2, padding=1)
    with torch.no_grad():
        layer.w_b.zero_()
        layer.w_b[0, 0, 0, :3] = 1.0              # hidden 0: 3 terms
        layer.w_b[1, 0] = torch.tensor([1.0, -1.0]).repeat(8).view(4, 4)   # hidden 1: 16
        layer.w_c.zero_()
        layer.w_c[:, 0] = 1.0                     # output 0: both hidden values, 4 positions
        layer.w_c[0, 1, 0, 0] = 1.0               # output 1: one term at (0, 0) and (1, 1),
        layer.w_c[1, 1, 1, 1] = -1.0              # none at (0, 1) and (1, 0)
    return layer


def test_counts_by_hand():
    layer = _hand_layer()
    # 5×4 image, padding 1: 5×4 outputs in ⌈5/2⌉·⌈4/2⌉ = 6 patches of 2×2; r = 2 products each
    assert layer.multiplications((5, 4)) == 12
    # per patch: W_b 2 + 15 additions; W_c with the bias: output 0 sums 2 terms + bias at each
    # of 4 positions (2 each: 8), output 1 has 1 term + bias twice (1 each) and the bias alone
    # twice (0): 10; so 27 per patch
    assert layer.additions((5, 4)) == 27 * 6
    # every entry non-zero: W_b 2·(16 - 1), W_c 2·4 outputs · (2 - 1 + 1) = 46 per patch
    assert layer.additions((5, 4), worst_case=True) == 46 * 6
    # the dense 3×3 convolution: 2·5·4 outputs of 9 products, 9 additions with the bias
    assert conv2d_counts(nn.Conv2d(1, 2, 3, padding=1), (5, 4)) == (360, 360)
    # groups 2, no padding, no bias: 2·3·2 outputs of 2·9 products, 17 additions each
    assert conv2d_counts(nn.Conv2d(4, 2, 3, groups=2, bias=False), (5, 4)) == (216, 204)


def test_linear_counts_by_hand_and_model_totals():
    linear = StrassenLinear(3, 2, 2)
    with torch.no_grad():
        linear.w_b.copy_(torch.tensor([[2.0, 0.0, -2.0], [0.0, 2.0, 2.0]]))
        linear.w_c.copy_(torch.tensor([[1.0, -1.0], [1.0, 0.0]]))
    # W_b rows: 2 terms, 2 terms -> 2; W_c rows + bias: 2 + 1, 1 + 1 -> 3
    assert (linear.multiplications(), linear.additions()) == (2, 5)
    assert linear.additions(worst_case=True) == 2 * 2 + 2 * 2
    dense = count_operations(digits_cnn(), (64,))
    # 8 channels · 64 pixels · 9, 16 · 16 · (8 · 9), 64 · 10
    assert dense["multiplications"] == dense["additions"] == 4608 + 18432 + 640
    model = _cnn()
    counts = count_operations(model, (64,))
    # p = 2: 8×8 -> 16 patches of r = 4, 4×4 -> 4 patches of r = 8, then r = 6
    assert [row["multiplications"] for row in counts["layers"]] == [64, 32, 6]
    assert counts["additions"] == (model[1].additions((8, 8)) + model[4].additions((4, 4))
                                   + model[8].additions())


def test_strassenize_cnn_r_as_int_ratio_list_and_rule():
    model = strassenize(digits_cnn(), 0.5, p=[2, 1])
    assert [(m.r, getattr(m, "p", None)) for m in (model[1], model[4], model[8])] == \
        [(4, 2), (8, 1), (5, None)]
    assert model[4].window == (3, 3) and model[1].window == (4, 4)
    model = strassenize(digits_cnn(), lambda m: 16 if isinstance(m, nn.Conv2d) else None,
                        p=lambda conv: 2, groups=lambda conv: conv.in_channels)
    assert isinstance(model[8], nn.Linear)                  # None keeps a layer dense
    assert (model[1].groups, model[4].groups, model[4].w_b.shape) == (1, 8, (16, 1, 4, 4))
    model = strassenize(digits_cnn(), 3)
    assert [m.r for m in (model[1], model[4], model[8])] == [3, 3, 3]
    assert model(torch.rand(2, 64)).shape == (2, 10)
    model = strassenize(nn.Sequential(nn.Conv2d(2, 4, 3, padding="same", bias=False)), 2)
    assert model[0].padding == (1, 1) and model[0].bias is None


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match=r"^groups=3 must divide both c_in=6 and r=4; "):
        StrassenConv2d(6, 2, 3, 4, groups=3)
    with pytest.raises(TypeError, match=r"^p must be a positive integer, not 0$"):
        StrassenConv2d(1, 2, 3, 4, p=0)
    with pytest.raises(TypeError, match=r"^padding must be a non-negative integer or a pair"):
        StrassenConv2d(1, 2, 3, 4, padding=-1)
    with pytest.raises(ValueError, match=r"^a 2×2 input with padding \(0, 0\) is smaller"):
        StrassenConv2d(1, 2, 3, 4)(torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match="only zero padding without dilation"):
        strassenize(nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2)), 4)
    with pytest.raises(ValueError, match="padding='same' needs an odd kernel and stride 1"):
        strassenize(nn.Sequential(nn.Conv2d(1, 2, 2, padding="same")), 4)
    with pytest.raises(ValueError, match="p lists 1 value"):
        strassenize(digits_cnn(), 4, p=[2])
    with pytest.raises(ValueError, match="model must be one of mlp, cnn, not 'vgg'"):
        TrainConfig(model="vgg")


def test_a_few_steps_reduce_the_loss_in_every_phase():
    data = digits()
    x = torch.as_tensor(data.x_train[:128], dtype=torch.float32) / 16
    y = torch.as_tensor(data.y_train[:128])
    model = _cnn(batch_norm=True)
    for phase in PHASES:
        set_phase(model, phase)
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], 3e-3)
        losses = []
        for _ in range(10):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert losses[-1] < losses[0], phase


def test_fit_trains_the_cnn_with_distillation_and_round_trips(tmp_path):
    config = TrainConfig(model="cnn", r=(8, 16, 10), p=(2, 2), teacher_epochs=4,
                         phase_epochs=(3, 2, 1), seed=1)
    assert TrainConfig().key() == TrainConfig(model="mlp", p=()).key()
    assert config.key() != TrainConfig(**{**config.to_json(), "p": (1, 2)}).key()
    result = train(config, digits(), progress=False)
    assert [row["stage"] for row in result.history] == (
        ["teacher"] * 4 + ["full_precision"] * 3 + ["quantized"] * 2 + ["ternary_fixed"])
    assert result.history[3]["test_accuracy"] > 0.5              # chance is 0.1
    assert result.history[-1]["test_accuracy"] > 0.5
    assert isinstance(result.student[1], StrassenConv2d) and result.student[1].quantized
    save_checkpoint(tmp_path / "cnn.pt", result)
    loaded = load_checkpoint(tmp_path / "cnn.pt")
    assert loaded.config == config
    x = torch.as_tensor(digits().x_test, dtype=torch.float32) / 16
    assert torch.equal(loaded.student(x), result.student.eval()(x))
    assert build_models(config)[1][4].p == 2


@pytest.mark.slow
def test_digits_cnn_benchmark_runs_and_plots(tmp_path):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import digits_cnn as bench
    rows = bench.main(["--seeds", "0", "--r", "4,8,10", "--r", "2,4,10", "--epochs", "1,1,1,1",
                       "--out", str(tmp_path / "cnn.png")])
    assert [(row["r"], row["multiplications"]) for row in rows] == [([4, 8, 10], 106),
                                                                    ([2, 4, 10], 58)]
    assert rows[0]["dense_multiplications"] == 23680 and rows[0]["batch_norm"]
    assert (tmp_path / "cnn.png").stat().st_size > 10_000
    assert (tmp_path / "cnn.json").is_file()
