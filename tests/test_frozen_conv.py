"""Frozen convolution layers (format version 2): hand-worked cases, the reference against
torch's own convolutions (float64 on small integers, so exact), round trips, v1 files
unchanged and every bad conv file refused in one line."""

import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from strassen_hw import frozen
from strassen_hw.frozen import (ConvGeometry, Format, FrozenConvLayer, FrozenError, FrozenLayer,
                                FrozenNetwork)
from strassen_hw.reference import forward

IMAGE = np.arange(1, 16).reshape(3, 5)       # 1..15: a 3×5 one-channel image


def _patch(w_b, w_c, a=None, bias=None, out=Format(8, True), **fields):
    w_b, w_c = np.asarray(w_b), np.asarray(w_c)
    return FrozenLayer(w_b=w_b, w_c=w_c, a_tilde=np.ones(len(w_b), int) if a is None else a,
                       bias=np.zeros(len(w_c), int) if bias is None else bias, a_width=8,
                       bias_width=8, output=out, **fields)


def _one(geometry, patch, input_format=Format(8, True)):
    return FrozenNetwork("conv", input_format, [FrozenConvLayer(ConvGeometry(**geometry), patch)])


def _box(kernel, p):
    """W_b rows: hidden (a, b) sums the kernel×kernel sub-window at offset (a, b) of the
    (p-1+kernel)² window (one channel, stride 1); W_c: output (a, b) = hidden (a, b)."""
    side = p - 1 + kernel
    rows = []
    for a in range(p):
        for b in range(p):
            row = np.zeros((side, side), int)
            row[a:a + kernel, b:b + kernel] = 1
            rows.append(row.reshape(-1))
    return np.array(rows), np.eye(p * p, dtype=int)


# --- hand-worked ------------------------------------------------------------------------------

def test_kernel_1_is_per_pixel_affine():
    # y = 3·x + 1 on every pixel, pixel order = row-major
    net = _one(dict(in_channels=1, out_channels=1, height=3, width=5, kernel=1),
               _patch([[1]], [[1]], a=[3], bias=[1], out=Format(8, True)))
    assert forward(net, IMAGE.reshape(1, -1)).tolist() == [[3 * v + 1 for v in range(1, 16)]]


# 3×3 box sums of IMAGE with zero padding, by hand
BOX = [[16, 27, 33, 39, 28],
       [39, 63, 72, 81, 57],
       [36, 57, 63, 69, 48]]


@pytest.mark.parametrize("p", [1, 2])
def test_box_filter_with_padding(p):
    # p = 2: 2×3 patches of 2×2 over the 3×5 output; the last patch row is partial (row 3
    # dropped) and so is the last patch column (column 5 dropped)
    w_b, w_c = _box(3, p)
    net = _one(dict(in_channels=1, out_channels=1, height=3, width=5, kernel=3, padding=1,
                    p=p), _patch(w_b, w_c))
    assert net.layers[0].geometry.patches == ((3, 5) if p == 1 else (2, 3))
    assert forward(net, IMAGE.reshape(1, -1)).tolist() == [sum(BOX, [])]


def test_stride_2():
    # kernel 1, stride 2: pixels (0,0) (0,2) (0,4) (2,0) (2,2) (2,4)
    net = _one(dict(in_channels=1, out_channels=1, height=3, width=5, kernel=1, stride=2),
               _patch([[1]], [[1]]))
    assert forward(net, IMAGE.reshape(1, -1)).tolist() == [[1, 3, 5, 11, 13, 15]]
    # kernel 3, stride 2, no padding, p = 2: a 5×5 window (rows 3, 4 are past the image);
    # output 1×2 = box sums at (0,0) and (0,2) of the unpadded image
    rows = []
    for a in range(2):
        for b in range(2):
            row = np.zeros((5, 5), int)
            row[2 * a:2 * a + 3, 2 * b:2 * b + 3] = 1
            rows.append(row.reshape(-1))
    net = _one(dict(in_channels=1, out_channels=1, height=3, width=5, kernel=3, stride=2, p=2),
               _patch(rows, np.eye(4, dtype=int)))
    assert net.layers[0].geometry.conv_hw == (1, 2)
    assert forward(net, IMAGE.reshape(1, -1)).tolist() == [[63, 81]]


@pytest.mark.parametrize("pool, expected", [("max", [63, 81]), ("avg", [36, 56])])
def test_pooling(pool, expected):
    # 2×2 pooling of BOX, the odd last row and column dropped: max(16,27,39,63) = 63,
    # max(33,39,72,81) = 81; (16+27+39+63) >> 2 = 145 >> 2 = 36, (33+39+72+81) >> 2 = 56
    w_b, w_c = _box(3, 1)
    net = _one(dict(in_channels=1, out_channels=1, height=3, width=5, kernel=3, padding=1,
                    pool=pool, pool_size=2), _patch(w_b, w_c))
    assert forward(net, IMAGE.reshape(1, -1)).tolist() == [expected]


def test_groups_and_pixel_order():
    # two channels, two groups, kernel 1: hidden 0 reads channel 0, hidden 1 channel 1;
    # outputs: channel 0 = h0 - h1, channel 1 = h1 (times ã = 2, 5); ReLU clamps
    net = _one(dict(in_channels=2, out_channels=2, height=1, width=3, kernel=1, groups=2),
               _patch([[1, 0], [0, 1]], [[1, -1], [0, 1]], a=[2, 5], relu=True))
    # pixels (c0, c1): (1, 0), (4, 1), (0, 3)
    x = [[1, 0, 4, 1, 0, 3]]
    assert forward(net, x).tolist() == [[2, 0, 3, 5, 0, 15]]


def test_conv_then_linear_chain():
    geometry = ConvGeometry(in_channels=1, out_channels=1, height=3, width=5, kernel=1,
                            stride=2)
    conv = FrozenConvLayer(geometry, _patch([[1]], [[1]]))
    dense = FrozenLayer(w_b=[[1, 1, 1, 1, 1, 1]], a_tilde=[1], w_c=[[1]], bias=[0], a_width=2,
                        bias_width=2, output=Format(8, True))
    net = FrozenNetwork("chain", Format(8, True), [conv, dense])
    assert forward(net, IMAGE.reshape(1, -1)).tolist() == [[1 + 3 + 5 + 11 + 13 + 15]]


# --- against torch ----------------------------------------------------------------------------

def _random_conv(rng, c_in, c_out, hw, kernel, p, stride, padding, groups, pool, q,
                 out=Format(6, True)):
    g = ConvGeometry(in_channels=c_in, out_channels=c_out, height=hw[0], width=hw[1],
                     kernel=kernel, stride=stride, padding=padding, p=p, groups=groups,
                     pool=pool, pool_size=q)
    r = groups * int(rng.integers(1, 4))
    w_b = rng.integers(-1, 2, (r, g.n_window))
    channel = np.arange(g.n_window) % c_in
    w_b[(np.arange(r)[:, None] // (r // groups)) != channel[None, :] // (c_in // groups)] = 0
    patch = FrozenLayer(w_b=w_b, w_c=rng.integers(-1, 2, (g.n_patch, r)),
                        a_tilde=rng.integers(-8, 8, r), bias=rng.integers(-16, 16, g.n_patch),
                        a_width=4, bias_width=5, output=out, product_shift=1,
                        product_rounding="half_up", shift=2, rounding="floor",
                        relu=bool(rng.integers(2)))
    return FrozenConvLayer(g, patch)


def _shift(t, s, half_up):
    return torch.floor((t + (2 ** (s - 1) if half_up and s else 0)) / 2 ** s)


def _torch_conv(layer, x):
    """The layer in float64 torch (exact for these small integers), independently: W_b as a
    conv2d weight with stride s·p, W_c as a conv_transpose2d weight with stride p, generous
    zero padding past the image, then cropped to nn.Conv2d's output size."""
    g, t = layer.geometry, layer.patch
    (kh, kw), (sh, sw) = g.window, g.stride
    r, p, co = t.r, g.p, g.out_channels
    img = torch.tensor(x, dtype=torch.float64).reshape(-1, g.height, g.width, g.in_channels)
    img = img.permute(0, 3, 1, 2)
    w_b = torch.tensor(t.w_b, dtype=torch.float64).reshape(r, kh, kw, -1).permute(0, 3, 1, 2)
    w_c = torch.tensor(t.w_c, dtype=torch.float64).reshape(p, p, co, r).permute(3, 2, 0, 1)
    pad_h, pad_w = g.padding
    big = F.pad(img, (pad_w, pad_w + kw * p, pad_h, pad_h + kh * p))
    u = F.conv2d(big, w_b, stride=(sh * p, sw * p))
    prod = _shift(u * torch.tensor(t.a_tilde, dtype=torch.float64).view(1, -1, 1, 1),
                  t.product_shift, t.product_rounding == "half_up")
    v = F.conv_transpose2d(prod, w_c, stride=p)
    bias = torch.tensor(t.bias, dtype=torch.float64).reshape(p, p, co).permute(2, 0, 1)
    v = v + bias.repeat(1, v.shape[2] // p, v.shape[3] // p)
    y = _shift(v, t.shift, t.rounding == "half_up")
    if t.relu:
        y = y.clamp(min=0)
    y = y.clamp(t.output.min, t.output.max)
    dense = F.conv2d(F.pad(img, (pad_w, pad_w, pad_h, pad_h)),
                     torch.zeros(1, g.in_channels, *g.kernel, dtype=torch.float64),
                     stride=g.stride)
    y = y[:, :, :dense.shape[2], :dense.shape[3]]
    q = g.pool_size
    if g.pool == "max":
        y = F.max_pool2d(y, q)
    elif g.pool == "avg":
        y = torch.floor(F.avg_pool2d(y, q))         # exact: q·q is a power of two
    return y.permute(0, 2, 3, 1).reshape(len(x), -1).to(torch.int64).numpy()


CASES = [  # c_in, c_out, (H, W), kernel, p, stride, padding, groups, pool, q
    (1, 1, (3, 5), 1, 1, 1, 0, 1, "none", 1),
    (1, 2, (3, 5), 3, 1, 1, 1, 1, "none", 1),
    (1, 2, (3, 5), 3, 2, 1, 1, 1, "max", 2),
    (1, 1, (3, 5), 3, 2, 1, 0, 1, "none", 1),
    (2, 3, (3, 5), 1, 2, 2, 0, 2, "none", 1),
    (4, 2, (5, 3), 3, 2, 2, 1, 2, "avg", 2),
    (2, 2, (7, 6), (3, 1), 3, (1, 2), (1, 0), 1, "max", 2),
    (3, 4, (8, 8), 3, 2, 1, 1, 3, "avg", 4),
    # extremes: a 1×1 image padded by 2 with p = 3; one column; padding wider than the
    # kernel; stride 3 with a 4×2 kernel; p = 4 past a 3×3 image, 3×3 pooling
    (1, 1, (1, 1), 1, 3, 1, 2, 1, "none", 1),
    (2, 2, (4, 1), 1, 2, (2, 1), 0, 2, "none", 1),
    (1, 1, (2, 2), 1, 1, 1, 3, 1, "max", 2),
    (1, 3, (9, 5), (4, 2), 2, 3, (2, 1), 1, "avg", 2),
    (2, 1, (3, 3), 3, 4, 2, 2, 1, "max", 3),
]


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_reference_equals_torch(case):
    rng = np.random.default_rng(len(str(case)))
    layer = _random_conv(rng, *case)
    net = FrozenNetwork("conv", Format(4, True), [layer])
    x = rng.integers(-8, 8, (5, layer.n_in))
    x[0] = -8                                    # an extreme image
    assert np.array_equal(forward(net, x), _torch_conv(layer, x))


def test_wide_values_take_python_integers():
    # 32-bit inputs and ã: values past int64; the reference must still be exact
    g = ConvGeometry(in_channels=1, out_channels=1, height=2, width=2, kernel=2, padding=1)
    patch = FrozenLayer(w_b=[[1, 1, 1, 1]], a_tilde=[-(1 << 31)], w_c=[[1]], bias=[0],
                        a_width=32, bias_width=2, output=Format(32, True), shift=40)
    net = FrozenNetwork("wide", Format(32, True), [FrozenConvLayer(g, patch)])
    x = np.full((1, 4), -(1 << 31))
    # corner window sums one pixel, the middle one all four
    want = [((-(1 << 31)) * k * -(1 << 31)) >> 40 for k in (1, 2, 1, 2, 4, 2, 1, 2, 1)]
    assert forward(net, x).tolist() == [[min(v, (1 << 31) - 1) for v in want]]


# --- the file ---------------------------------------------------------------------------------

def _conv_doc():
    w_b, w_c = _box(3, 2)
    net = _one(dict(in_channels=1, out_channels=1, height=3, width=5, kernel=3, padding=1,
                    p=2, pool="max", pool_size=2), _patch(w_b, w_c))
    return net.to_json()


def _write(tmp_path, doc):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(doc))
    return path


def test_round_trip_version_2(tmp_path):
    rng = np.random.default_rng(5)
    layers = [_random_conv(rng, 2, 4, (6, 5), 3, 2, 1, 1, 2, "max", 2, out=Format(6, False))]
    layers.append(_random_conv(rng, 4, 3, (3, 2), 1, 1, 1, 0, 1, "none", 1))
    net = FrozenNetwork("twoconv", Format(4, True), layers)
    frozen.save(net, tmp_path / "a.json")
    assert json.loads((tmp_path / "a.json").read_text())["version"] == 2
    again = frozen.load(tmp_path / "a.json")
    x = rng.integers(-8, 8, (4, net.n_in))
    assert np.array_equal(forward(net, x), forward(again, x))
    frozen.save(again, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_version_1_unchanged(tmp_path):
    net = frozen.random_network([(5, 4, 3)], seed=1)
    text = frozen.dumps(net)
    assert json.loads(text)["version"] == 1
    doc = json.loads(text)
    doc["version"] = 2                             # a linear network may say version 2 too
    again = frozen.load(_write(tmp_path, doc))
    assert frozen.dumps(again) == text


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(version=1), r"layer 0: a convolution layer \('conv'\) needs version 2"),
    (lambda d: d["layers"][0]["conv"].update(kernel=0),
     "layer 0 conv: 'kernel' must be a pair"),
    (lambda d: d["layers"][0]["conv"].update(kernel=[3, 0]),
     r"layer 0 conv: 'kernel' = 0 is outside 1..64"),
    (lambda d: d["layers"][0]["conv"].update(padding=[0, 0], height=2),
     "layer 0 conv: the 2×5 image with padding .* is smaller than the kernel"),
    (lambda d: d["layers"][0]["conv"].update(pool="mean"),
     "layer 0 conv: 'pool' is 'mean'; use one of none, max, avg"),
    (lambda d: d["layers"][0]["conv"].update(pool="avg", pool_size=3),
     "layer 0 conv: 'pool_size' = 3 must be 2..3|is not a power of two"),
    (lambda d: d["layers"][0]["conv"].update(pool_size=1),
     r"layer 0 conv: 'pool_size' = 1 must be 2\.\.3"),
    (lambda d: d["layers"][0]["conv"].update(height=1, width=4),
     "layer 0 conv: 'pool' needs a convolution output of at least 2×2, not 1×4"),
    (lambda d: d["layers"][0]["conv"].update(pool="none"),
     "layer 0 conv: 'pool_size' = 2 without pooling"),
    (lambda d: d["layers"][0]["conv"].update(groups=2),
     "layer 0 conv: 'groups' = 2 does not divide 'in_channels' = 1"),
    (lambda d: d["layers"][0]["conv"].update(p=1),
     "layer 0: 'patch' 'w_b' has 16 columns but a 3×3 window of 1 channel.s. has 9 values"),
    (lambda d: d["layers"][0]["conv"].update(out_channels=2),
     "layer 0: 'patch' 'w_c' has 4 rows but a 2×2 patch of 2 channel.s. has 8 values"),
    (lambda d: d["layers"][0]["conv"].pop("groups"), "layer 0 conv: missing field 'groups'"),
    (lambda d: d["layers"][0]["conv"].update(dilation=1), "layer 0 conv: unknown field"),
    (lambda d: d["layers"][0].update(relu=True), "layer 0: unknown field 'relu'"),
    (lambda d: d["layers"][0]["patch"]["w_b"][0].__setitem__(0, 2),
     r"layer 0 patch: 'w_b'\[0\]\[0\] = 2 is not ternary"),
    (lambda d: d["layers"][0].update(patch=[]), "layer 0 patch: must be an object"),
    (lambda d: d["layers"][0].update(conv=3), "layer 0 conv: must be an object"),
    (lambda d: d["layers"][0]["conv"].update(height=True),
     "layer 0 conv: 'height' must be an integer, not True"),
])
def test_bad_conv_files_refused_in_one_line(tmp_path, edit, message):
    doc = _conv_doc()
    edit(doc)
    with pytest.raises(FrozenError, match=message) as info:
        frozen.load(_write(tmp_path, doc))
    assert "\n" not in str(info.value)


def test_groups_structure_and_chaining_refused():
    g = ConvGeometry(in_channels=2, out_channels=1, height=2, width=2, kernel=1, groups=2)
    with pytest.raises(FrozenError, match=r"'w_b'\[0\]\[1\] = 1 is outside group 0 of 2"):
        FrozenConvLayer(g, _patch([[1, 1], [0, 1]], [[1, 1]]))
    with pytest.raises(FrozenError, match="'groups' = 2 does not divide r = 1"):
        FrozenConvLayer(g, _patch([[1, 0]], [[1]]))
    first = FrozenConvLayer(ConvGeometry(in_channels=1, out_channels=2, height=2, width=2,
                                         kernel=1), _patch([[1]], [[1], [1]]))
    second = FrozenConvLayer(ConvGeometry(in_channels=2, out_channels=1, height=1, width=4,
                                          kernel=1), _patch([[1, 1]], [[1]]))
    with pytest.raises(FrozenError, match="layer 1: takes 1×4×2 .* images but the layer before "
                                          "gives 2×2×2"):
        FrozenNetwork("bad", Format(4, True), [first, second])
    dense = FrozenLayer(w_b=[[1, 1, 1]], a_tilde=[1], w_c=[[1]], bias=[0], a_width=2,
                        bias_width=2, output=Format(8, True))
    with pytest.raises(FrozenError, match="layer 1: 'w_b' has 3 columns but the layer input "
                                          "has 8 values"):
        FrozenNetwork("bad", Format(4, True), [first, dense])


def test_reference_checks_conv_inputs():
    net = _one(dict(in_channels=1, out_channels=1, height=3, width=5, kernel=1),
               _patch([[1]], [[1]]))
    with pytest.raises(FrozenError, match=r"inputs have shape \(1, 14\); the network takes "
                                          r"\(N, 15\)"):
        forward(net, np.zeros((1, 14), int))
    with pytest.raises(FrozenError, match="outside the network input range"):
        forward(net, np.full((1, 15), 200))


def test_cli_reference(tmp_path):
    from strassen_hw.cli import main
    path = _write(tmp_path, _conv_doc())
    np.save(tmp_path / "x.npy", IMAGE.reshape(1, -1))
    assert main(["reference", str(path), "--inputs", str(tmp_path / "x.npy"), "-o",
                 str(tmp_path / "y.npy")]) == 0
    assert np.load(tmp_path / "y.npy").tolist() == [[63, 81]]
