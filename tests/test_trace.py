"""Traced freezing (train/trace.py, train/freeze.py): what the forward pass computes is what is
frozen. Models that reorder or reuse modules, residual blocks with identity and projection
shortcuts, batch norms folded into dense and TWN layers, the functional forms, the add node's
exact alignment, and one line for every op that cannot be frozen."""

import re

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from strassen_hw.frozen import Format, dumps, from_json
from strassen_hw.reference import forward, layer_forward
from strassen_hw.train.conv import StrassenConv2d
from strassen_hw.train.freeze import float_logits, freeze
from strassen_hw.train.layers import StrassenLinear, TWNLinear, set_phase

FMT = Format(5, signed=False)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _ready(model, seed=0):
    """Non-trivial ã, biases and batch-norm statistics, the ternary phase, float64, eval."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
            if hasattr(m, "a_tilde"):
                m.a_tilde.uniform_(0.5, 2.0)
            if isinstance(m, TWNLinear):
                m.gain.uniform_(0.5, 2.0)
            if getattr(m, "bias", None) is not None and isinstance(m.bias, nn.Parameter) \
                    and not isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.bias.uniform_(-0.2, 0.2)
    return set_phase(model, "ternary_fixed").eval().double()


def _torch(model, x_int, shape=None):
    with torch.no_grad():
        x = torch.as_tensor(x_int, dtype=torch.float64) / 16
        if shape is not None:                       # pixel order -> (N, C, H, W)
            x = x.reshape(len(x), shape[1], shape[2], shape[0]).permute(0, 3, 1, 2)
        return model(x).numpy()


def _pixels(n, count, seed=0):
    return np.random.default_rng(seed).integers(0, 17, (count, n))


def _tracks(model, x, shape=None, **kw):
    """Freeze with wide formats; the float64 plan equals torch, and the integers track it."""
    want = _torch(model, x, shape)
    got = float_logits(model, x, 1 / 16, input_shape=shape)
    assert np.abs(got - want).max() < 1e-9 * max(1.0, np.abs(want).max())
    net, report = freeze(model, x, input_format=FMT, input_scale=1 / 16, input_shape=shape,
                         a_width=16, act_width=12, guard_bits=8, **kw)
    frozen = forward(net, x) * report.output_step
    spread = np.abs(want - want.mean(1, keepdims=True)).mean()
    assert np.abs(frozen - want).mean() < 0.02 * spread
    assert (frozen.argmax(1) == want.argmax(1)).mean() > 0.95
    assert dumps(from_json(net.to_json())) == dumps(net)
    return net, report


# --- models whose forward reorders or reuses modules -------------------------------------------

class Reordered(nn.Module):
    """Modules registered in another order than forward uses them."""

    def __init__(self):
        super().__init__()
        self.last = StrassenLinear(16, 6, 5)
        self.first = StrassenLinear(64, 12, 16)

    def forward(self, x):
        return self.last(F.relu(self.first(x)))


def test_reordered_modules_freeze_in_forward_order():
    model = _ready(Reordered())
    net, _ = _tracks(model, _pixels(64, 300))
    assert [layer.n_in for layer in net.layers] == [64, 16]        # a chain, forward's order
    assert net.layers[0].r == 12 and net.layers[1].r == 6


class Reused(nn.Module):
    """One module applied twice to the same shape: two frozen layers with the same weights."""

    def __init__(self):
        super().__init__()
        self.inp = StrassenLinear(64, 10, 12)
        self.mid = StrassenLinear(12, 8, 12)
        self.out = StrassenLinear(12, 6, 4)

    def forward(self, x):
        x = F.relu(self.inp(x))
        x = F.relu(self.mid(x))
        x = F.relu(self.mid(x))
        return self.out(x)


def test_reused_module_freezes_twice():
    model = _ready(Reused())
    net, _ = _tracks(model, _pixels(64, 300))
    assert len(net.layers) == 4
    assert np.array_equal(net.layers[1].w_b, net.layers[2].w_b)
    assert np.array_equal(net.layers[1].w_c, net.layers[2].w_c)


class ReusedOtherShape(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = StrassenConv2d(1, 1, 3, 2, padding=1)
        self.fc = StrassenLinear(16, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        y = self.conv(F.max_pool2d(y, 2))            # 8×8, then 4×4
        return self.fc(torch.flatten(y, 1))


def test_module_used_with_two_shapes_is_refused():
    with pytest.raises(ValueError) as e:
        freeze(_ready(ReusedOtherShape()), _pixels(64, 4), input_format=FMT, input_scale=1 / 16,
               input_shape=(1, 8, 8))
    message = str(e.value)
    assert "\n" not in message
    assert "module 'conv' is called with 1×8×8 and 1×4×4 inputs" in message
    assert "test_trace.py" in message and "y = self.conv(F.max_pool2d(y, 2))" in message


# --- residual blocks -------------------------------------------------------------------------

class Block(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.c1 = StrassenConv2d(c_in, c_out, 3, c_out, stride=stride, padding=1,
                                 batch_norm=True)
        self.c2 = StrassenConv2d(c_out, c_out, 3, c_out, padding=1, batch_norm=True)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = StrassenConv2d(c_in, c_out, 1, c_out, stride=stride,
                                           batch_norm=True)

    def forward(self, x):
        return F.relu(self.c2(F.relu(self.c1(x))) + self.shortcut(x))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = StrassenConv2d(1, 4, 3, 4, padding=1, batch_norm=True)
        self.identity = Block(4, 4, 1)
        self.projection = Block(4, 8, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = StrassenLinear(8, 6, 10)

    def forward(self, x):
        x = x.view(x.size(0), 1, 8, 8)
        x = self.projection(self.identity(F.relu(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def test_residual_blocks_with_identity_and_projection_shortcuts():
    model = _ready(Residual())
    net, report = _tracks(model, _pixels(64, 400))
    kinds = [(n.KIND, n.name, n.inputs) for n in net.nodes]
    assert kinds == [
        ("conv", "stem", ("input",)),
        ("conv", "identity_c1", ("stem",)), ("conv", "identity_c2", ("identity_c1",)),
        ("add", "add", ("identity_c2", "stem")),                  # the identity shortcut
        ("conv", "projection_c1", ("add",)), ("conv", "projection_c2", ("projection_c1",)),
        ("conv", "projection_shortcut", ("add",)),                 # 1×1 stride 2
        ("add", "add_1", ("projection_c2", "projection_shortcut")),
        ("pool", "pool", ("add_1",)), ("flatten", "flatten", ("pool",)),
        ("linear", "fc", ("flatten",))]
    shortcut = net.node("projection_shortcut").layer.geometry
    assert shortcut.kernel == (1, 1) and shortcut.stride == (2, 2)
    assert net.node("add").relu and net.node("add_1").relu
    assert net.node("pool").mode == "global" and net.shape_of("pool") == (8,)
    # the add aligns its inputs onto the finest step exactly: step · 2^align is one value
    steps = {e["name"]: e["step"] for e in report.nodes}
    for name in ("add", "add_1"):
        node = net.node(name)
        scaled = {steps[i] * 2.0 ** a for i, a in zip(node.inputs, node.align)}
        assert len(scaled) == 1
        assert steps[name] == scaled.pop() * 2.0 ** node.shift
    # the report says per node what calibration saw and what was chosen
    lines = report.summary()
    assert len(lines) == len(net.nodes) + 1
    assert any(line.startswith("add (add): align") for line in lines)


def test_add_node_sums_exactly():
    """An add of two layers whose steps differ: the frozen add equals the exact integer
    formula on the frozen inputs (worked here from the node's fields)."""
    class Sum(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = StrassenLinear(64, 8, 6)
            self.b = StrassenLinear(64, 4, 6)
            self.out = StrassenLinear(6, 4, 3)

        def forward(self, x):
            return self.out(F.relu(torch.add(F.relu(self.a(x)), self.b(x))))
    model = _ready(Sum())
    x = _pixels(64, 300)
    net, _ = _tracks(model, x)
    add = net.node("add")
    assert add.inputs == ("a", "b") and add.relu and max(add.align) > 0
    u = layer_forward(net.node("a").layer, x).astype(object)
    v = layer_forward(net.node("b").layer, x).astype(object)
    total = (u << add.align[0]) + (v << add.align[1])
    half = 1 << (add.shift - 1) if add.shift else 0
    want = np.minimum(np.maximum((total + half) >> add.shift, 0), add.output.max)
    cut = type(net)(net.name, net.input, nodes=net.nodes[:3], input_shape=net.input_shape)
    assert np.array_equal(forward(cut, x), want.astype(np.int64))


# --- batch norm folding and the dense and TWN layers -----------------------------------------

class Mixed(nn.Module):
    """A dense convolution with BatchNorm2d, a Strassen convolution, a TWN layer with
    BatchNorm1d and a dense classifier with BatchNorm1d."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.sconv = StrassenConv2d(4, 6, 3, 5, padding=1, batch_norm=True)
        self.twn = TWNLinear(6 * 4 * 4, 12)
        self.bn1 = nn.BatchNorm1d(12)
        self.fc = nn.Linear(12, 5)
        self.bn2 = nn.BatchNorm1d(5)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        x = F.relu(self.sconv(x)).flatten(1)
        return self.bn2(self.fc(F.relu(self.bn1(self.twn(x)))))


def test_batch_norms_fold_against_float_math():
    model = _ready(Mixed())
    shape = (1, 8, 8)
    x = _pixels(64, 300)
    net, _ = _tracks(model, x, shape)
    kinds = [getattr(n.layer, "patch", n.layer).kind for n in net.nodes if hasattr(n, "layer")]
    assert kinds == ["dense", "strassen", "twn", "dense"]
    # the folded dense convolution is the torch one: one product per weight and pixel
    conv = net.nodes[0].layer
    assert conv.patch.r == 9 * 4 and conv.geometry.pool == "max"


def test_functional_forms_and_vanishing_modules():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = StrassenConv2d(1, 4, 3, 4, padding=1)
            self.c2 = StrassenConv2d(4, 4, 3, 4, padding=1)
            self.drop = nn.Dropout(0.5)
            self.same = nn.Identity()
            self.fc = StrassenLinear(16, 6, 3)

        def forward(self, x):
            x = F.avg_pool2d(self.c1(x).relu(), 2)
            y = F.max_pool2d(F.relu(self.c2(x)), kernel_size=2)
            y = F.dropout(self.same(y), 0.3, training=self.training)
            y = F.relu(y)                                    # non-negative already: vanishes
            return self.fc(self.drop(y.reshape(y.size(0), -1)))
    model = _ready(Functional())
    net, _ = _tracks(model, _pixels(64, 300), (1, 8, 8))
    assert [layer.geometry.pool for layer in net.layers[:2]] == ["avg", "max"]
    assert net.layers[1].patch.relu


def test_pool_after_add_is_a_pool_node():
    class PoolAfterAdd(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = StrassenConv2d(1, 2, 3, 2, padding=1)
            self.c2 = StrassenConv2d(1, 2, 1, 2)
            self.fc = StrassenLinear(32, 6, 3)

        def forward(self, x):
            y = nn.functional.max_pool2d(self.c1(x) + self.c2(x), 2)
            return self.fc(torch.flatten(F.relu(y), 1))
    model = _ready(PoolAfterAdd())
    net, _ = _tracks(model, _pixels(64, 300), (1, 8, 8))
    assert [n.KIND for n in net.nodes] == ["conv", "conv", "add", "pool", "flatten", "linear"]
    assert net.node("add").relu                  # relu(max(x)) = max(relu(x)): folded


# --- what cannot be frozen: one line each ----------------------------------------------------

class _Base(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = StrassenLinear(64, 8, 8)
        self.b = StrassenLinear(64, 8, 8)
        self.fc = StrassenLinear(8, 4, 3)
        self.bn = nn.BatchNorm1d(8)
        self.act = nn.Sigmoid()
        self.lstm = nn.LSTM(8, 8)
        self.weight = nn.Parameter(torch.ones(8))


def _forward(body):
    return type("Model", (_Base,), {"forward": body})


REFUSED = [
    (lambda s, x: s.fc(torch.cat([s.a(x), s.b(x)], 1)[:, :8]),
     "cat", "a frozen graph has no concatenation"),
    (lambda s, x: s.fc(torch.sigmoid(s.a(x))), "torch.sigmoid", "only ReLU activations"),
    (lambda s, x: s.fc(s.act(s.a(x))), "Sigmoid", "only ReLU activations"),
    (lambda s, x: s.fc(F.gelu(s.a(x))), "F.gelu", "only ReLU activations"),
    (lambda s, x: s.fc(s.a(x).view(x.size(0), 2, 4)[:, 0]), "Tensor.view",
     "reinterprets the pixel order"),
    (lambda s, x: s.fc(s.a(x).permute(1, 0)), "Tensor.permute", "a reordering cannot be frozen"),
    (lambda s, x: s.fc(s.a(x) if x.sum() > 0 else s.b(x)), "trace",
     "a data-dependent branch"),
    (lambda s, x: s.fc(s.a(x) * 2), "mul", "tensors are multiplied only inside a layer"),
    (lambda s, x: s.fc(s.a(x) - s.b(x)), "sub", "adds but does not subtract"),
    (lambda s, x: s.fc(s.bn(s.a(x))), "BatchNorm1d",
     "cannot freeze a separate BatchNorm1d after the Strassen layer 'a'"),
    (lambda s, x: s.fc(s.bn(F.relu(s.a(x)))), "BatchNorm1d", "folds only into the layer"),
    (lambda s, x: (lambda y: s.fc(F.relu(y) + y))(s.a(x)), "ReLU",
     "nothing else may read the value before the ReLU"),
    (lambda s, x: s.fc(s.a(x) + 1.0), "add", "it adds the constant 1.0"),
    (lambda s, x: s.fc(s.a(x) * s.weight), "a parameter",
     "parameters and buffers are frozen only inside layers"),
    (lambda s, x: s.fc(s.lstm(s.a(x))[0]), "LSTM", "a frozen network holds"),
    (lambda s, x: s.fc(s.a(x).mean(1, keepdim=True).expand(-1, 8)), "Tensor.mean",
     "nn.AdaptiveAvgPool2d(1)"),
    (lambda s, x: (s.fc(s.a(x)), s.fc(s.b(x))), "the output", "one output"),
    (lambda s, x: s.fc(s.a(x) + s.b(x)[:, :4].repeat(1, 2)), "getitem", "express the model"),
    (lambda s, x: s.fc(s.a(x)) if s.fc(s.b(x)) is not None else None, "the output",
     "nothing reads it"),
]


@pytest.mark.parametrize("body, what, hint", REFUSED, ids=[r[1] + "-" + r[2][:20] for r in REFUSED])
def test_unsupported_ops_give_one_line(body, what, hint):
    model = _ready(_forward(body)())
    with pytest.raises(ValueError) as e:
        freeze(model, _pixels(64, 4), input_format=FMT, input_scale=1 / 16)
    message = str(e.value)
    assert "\n" not in message and hint in message and what in message
    if what not in ("the output",):
        # the source line of forward that made the node
        assert "test_trace.py:" in message


def test_pool_and_flatten_refusals():
    class Bad(nn.Module):
        def __init__(self, pool):
            super().__init__()
            self.c = StrassenConv2d(1, 2, 3, 2, padding=1)
            self.pool = pool
            self.fc = StrassenLinear(2, 2, 2)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(self.c(x)), 1))
    for pool, hint in ((nn.AdaptiveAvgPool2d(2), "only to 1 (a global average)"),
                       (nn.MaxPool2d(3, 2), "pooling needs kernel = stride"),
                       (nn.AvgPool2d(3), "not a power of two")):
        with pytest.raises(ValueError, match=re.escape(hint)) as e:
            freeze(_ready(Bad(pool)), _pixels(64, 4), input_format=FMT, input_scale=1 / 16,
                   input_shape=(1, 8, 8))
        assert "\n" not in str(e.value)


class _Branches(nn.Module):
    """Two linear branches added; ``tiny`` scales branch b's ã (its step follows)."""

    def __init__(self, tiny):
        super().__init__()
        self.tiny = tiny
        self.a = StrassenLinear(64, 8, 6)
        self.b = StrassenLinear(64, 8, 6)
        self.out = StrassenLinear(6, 4, 3)

    def forward(self, x):
        return self.out(F.relu(self.a(x) + self.b(x)))


def _scaled(tiny):
    model = _ready(_Branches(tiny))
    with torch.no_grad():
        model.b.a_tilde.mul_(tiny)
        model.b.bias.mul_(tiny)
    return model


def test_add_at_format_extremes():
    x = _pixels(64, 300)
    # branch b 2^-20 times smaller: its step is about 2^20 finer, the align shifts branch a
    # up by about 20 bits, and the sum is still exact (the formula on the frozen inputs)
    net, report = freeze(_scaled(2.0 ** -20), x, input_format=FMT, input_scale=1 / 16,
                         a_width=12)
    add = net.node("add")
    assert 18 <= add.align[0] <= 22 and add.align[1] == 0
    u = layer_forward(net.node("a").layer, x).astype(object)
    v = layer_forward(net.node("b").layer, x).astype(object)
    total = (u << add.align[0]) + (v << add.align[1])
    half = 1 << (add.shift - 1) if add.shift else 0
    want = np.minimum(np.maximum((total + half) >> add.shift, 0), add.output.max)
    cut = type(net)(net.name, net.input, nodes=net.nodes[:3], input_shape=net.input_shape)
    assert np.array_equal(forward(cut, x), want.astype(np.int64))
    # 2^-40: an align shift past 32 bits is refused in one line naming the node
    with pytest.raises(ValueError) as e:
        freeze(_scaled(2.0 ** -40), x, input_format=FMT, input_scale=1 / 16, a_width=12)
    assert "\n" not in str(e.value) and "node 'add'" in str(e.value)
    assert "needs an align shift of" in str(e.value) and "(> 32)" in str(e.value)


def test_add_of_a_global_pool_cannot_align():
    """A global pool over 7×7 pixels has a step of 2^k/49: no exact align shift exists."""
    class PoolPlusLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = StrassenConv2d(1, 4, 3, 4, padding=1)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = StrassenLinear(4, 4, 4)
            self.out = StrassenLinear(4, 3, 3)

        def forward(self, x):
            v = torch.flatten(self.pool(F.relu(self.conv(x))), 1)
            return self.out(F.relu(v + self.fc(v)))
    model = _ready(PoolPlusLayer())
    with pytest.raises(ValueError) as e:
        freeze(model, _pixels(49, 50), input_format=FMT, input_scale=1 / 16,
               input_shape=(1, 7, 7), a_width=10)
    assert "\n" not in str(e.value)
    assert "is not a power-of-two multiple" in str(e.value) and "put a layer on that branch" \
        in str(e.value)
