"""Version-3 graphs: hand-worked add and pool arithmetic, branches, the file round trip, and one
line for each kind of bad graph."""

import json

import numpy as np
import pytest

from strassen_hw.frozen import (Add, Conv, ConvGeometry, Flatten, Format, FrozenConvLayer,
                                FrozenError, FrozenLayer, FrozenNetwork, Linear, Pool, dumps,
                                from_json, load, random_network, save)
from strassen_hw.reference import forward, node_forward

I8, U8 = Format(8, True), Format(8, False)


def _identity_layer(n, output=I8, relu=False):
    """W_b = W_c = I, ã = 1: y = saturate(x)."""
    eye = np.eye(n, dtype=np.int64)
    return FrozenLayer(w_b=eye, a_tilde=np.ones(n, np.int64), w_c=eye,
                       bias=np.zeros(n, np.int64), a_width=2, bias_width=2, output=output,
                       relu=relu)


def _scale_layer(n, a):
    eye = np.eye(n, dtype=np.int64)
    return FrozenLayer(w_b=eye, a_tilde=np.full(n, a, np.int64), w_c=eye,
                       bias=np.zeros(n, np.int64), a_width=8, bias_width=2,
                       output=Format(16, True))


def _add(name, inputs, align, shift=0, rounding="floor", relu=False, output=Format(16, True)):
    return Add(name, inputs, align, shift, rounding, relu, output)


def test_diamond_add_by_hand():
    # a = 3x (16 bits), b = x (8 bits); out = round_half_up((a + 2b) / 2), relu, 8 bits
    net = FrozenNetwork("diamond", I8, nodes=[
        Linear("a", ["input"], _scale_layer(2, 3)),
        Linear("b", ["input"], _identity_layer(2)),
        _add("sum", ["a", "b"], [0, 1], shift=1, rounding="half_up", relu=True, output=I8),
    ], input_shape=(2,))
    x = np.array([[5, -7], [127, -128], [1, 0]])
    # (3x + 2x) / 2 = 2.5x: 12.5 → 13, -17.5 → -17 → relu 0; 317.5 → saturates to 127
    assert forward(net, x).tolist() == [[13, 0], [127, 0], [3, 0]]
    assert not net.is_chain and net.n_out == 2


def test_add_of_a_node_with_itself_and_extreme_formats():
    net = FrozenNetwork("twice", Format(32, True), nodes=[
        Linear("a", ["input"], _identity_layer(1, output=Format(32, True))),
        _add("s", ["a", "a", "input"], [32, 32, 0], shift=0, output=Format(32, True)),
    ], input_shape=(1,))
    lo, hi = -(1 << 31), (1 << 31) - 1
    # 2^33·x + x overflows nothing in the reference (exact) and saturates to 32 bits
    assert forward(net, np.array([[hi], [lo], [0], [1]])).tolist() == [[hi], [lo], [0], [hi]]
    net = FrozenNetwork("floor", I8, nodes=[
        Linear("a", ["input"], _identity_layer(1)),
        _add("s", ["a", "input"], [0, 0], shift=2, output=I8)], input_shape=(1,))
    # (x + x) / 4, floor: -5·2 = -10 → -3 (floor(-2.5)), 5·2 = 10 → 2
    assert forward(net, np.array([[-5], [5], [-1]])).tolist() == [[-3], [2], [-1]]


def test_pool_and_flatten_by_hand():
    image = np.arange(4 * 4 * 2).reshape(1, -1) - 16       # 4×4 pixels, 2 channels
    nodes = [Pool("mx", ["input"], "max", 2), Pool("av", ["mx"], "avg", 2),
             Flatten("f", ["av"])]
    net = FrozenNetwork("pools", I8, nodes=nodes, input_shape=(4, 4, 2))
    img = image.reshape(4, 4, 2)
    mx = np.array([[img[2 * i:2 * i + 2, 2 * j:2 * j + 2, c].max() for c in range(2)]
                   for i in range(2) for j in range(2)])          # 2×2×2
    assert node_forward(net, image)["mx"].tolist() == [mx.reshape(-1).tolist()]
    assert forward(net, image).tolist() == [[mx[:, 0].sum() // 4, mx[:, 1].sum() // 4]]
    glob = FrozenNetwork("gap", I8, nodes=[Pool("g", ["input"], "global", shift=3,
                                                 output=Format(6, True))],
                         input_shape=(2, 2, 2))
    x = np.array([[10, -1, 20, -2, 30, -3, 40, -4]])
    # channel 0: 100 / 8 = 12.5 → 12, saturated to 6 bits (31); channel 1: -10 / 8 → -2
    assert forward(glob, x).tolist() == [[12, -2]]
    assert forward(glob, np.full((1, 8), 127)).tolist() == [[31, 31]]


def _conv(h=4, w=4, c=1, co=2, pool="none", q=1):
    g = ConvGeometry(in_channels=c, out_channels=co, height=h, width=w, kernel=(3, 3),
                     stride=(1, 1), padding=(1, 1), p=1, groups=1, pool=pool, pool_size=q)
    rng = np.random.default_rng(1)
    patch = FrozenLayer(w_b=rng.integers(-1, 2, (3, 9 * c)), a_tilde=rng.integers(-8, 8, 3),
                        w_c=rng.integers(-1, 2, (co, 3)), bias=np.zeros(co, np.int64),
                        a_width=5, bias_width=2, output=I8, shift=2, relu=True)
    return FrozenConvLayer(g, patch)


def test_residual_block_matches_its_pieces():
    conv = _conv(co=1)
    net = FrozenNetwork("res", I8, nodes=[
        Conv("c", ["input"], conv), _add("s", ["c", "input"], [0, 0], output=I8),
        Pool("g", ["s"], "global", shift=4, output=Format(12, True)),
        Linear("fc", ["g"], _scale_layer(1, 3))], input_shape=(4, 4, 1))
    x = np.random.default_rng(2).integers(-128, 128, (5, 16))
    values = node_forward(net, x)
    single = FrozenNetwork("one", I8, [conv])
    np.testing.assert_array_equal(values["c"], forward(single, x))
    s = np.clip(values["c"] + x, -128, 127)
    np.testing.assert_array_equal(values["s"], s)
    np.testing.assert_array_equal(forward(net, x), 3 * (s.sum(axis=1, keepdims=True) >> 4))


def test_version_3_round_trip(tmp_path):
    net = FrozenNetwork("rt", I8, nodes=[
        Conv("c", ["input"], _conv()), Pool("m", ["c"], "max", 2), Flatten("f", ["m"]),
        Linear("a", ["f"], _scale_layer(8, 2)), Linear("b", ["f"], _identity_layer(8)),
        _add("s", ["a", "b", "b"], [0, 1, 1], 1, "half_up", True, U8)], input_shape=(4, 4, 1))
    save(net, tmp_path / "g.json")
    text = (tmp_path / "g.json").read_text()
    assert json.loads(text)["version"] == 3
    again = load(tmp_path / "g.json")
    assert dumps(again) == text
    x = np.random.default_rng(0).integers(-128, 128, (7, 16))
    np.testing.assert_array_equal(forward(again, x), forward(net, x))


def test_chains_keep_their_version_and_bytes():
    net = random_network([(6, 4, 3), (3, 2, 2)])
    doc = net.to_json()
    assert doc["version"] == 1 and "nodes" not in doc
    assert [n.name for n in net.nodes] == ["layer0", "layer1"]
    # the same chain given as nodes is the same file
    again = FrozenNetwork(net.name, net.input, nodes=net.nodes, input_shape=(6,))
    assert again.is_chain and dumps(again) == dumps(net)
    # named otherwise, it is a version-3 graph
    renamed = FrozenNetwork(net.name, net.input, input_shape=(6,), nodes=[
        Linear("first", ["input"], net.layers[0]), Linear("second", ["first"], net.layers[1])])
    assert renamed.to_json()["version"] == 3
    with pytest.raises(FrozenError, match="not a chain"):
        renamed.layers


def _doc(nodes, shape=(2,)):
    return {"format": "strassen-hw-frozen", "version": 3, "name": "bad",
            "input": {"width": 8, "signed": True}, "input_shape": list(shape), "nodes": nodes}


def _lin(name, inputs, n=2):
    return {"name": name, "kind": "linear", "inputs": inputs,
            "layer": json.loads(json.dumps(_identity_layer(n).to_json()))}


@pytest.mark.parametrize("nodes, shape, message", [
    ([_lin("a", ["nope"])], (2,), "node 'a': reads 'nope', which is no node"),
    ([_lin("a", ["b"]), _lin("b", ["a"])], (2,), "which is a later node"),
    ([_lin("a", ["input"]), _lin("b", ["input"])], (2,), "node 'a': nothing reads it"),
    ([_lin("a", ["input"]), _lin("a", ["a"])], (2,), "node 'a': the name is taken"),
    ([_lin("input", ["input"])], (2,), "the name is taken"),
    ([_lin("a", ["input"], 3)], (2,), "'w_b' has 3 columns but its input 'input' gives 2"),
    ([{"name": "p", "kind": "pool", "inputs": ["input"], "mode": "max", "size": 4}],
     (3, 3, 1), "'size' = 4 is larger than the 3×3 image"),
    ([{"name": "f", "kind": "flatten", "inputs": ["input"]},
      {"name": "c", "kind": "conv", "inputs": ["f"], **_conv().to_json()}], (4, 4, 1),
     "node 'c': reads the vector 'f'"),
    ([_lin("a", ["input"]), {"name": "s", "kind": "add", "inputs": ["a", "input"],
                             "align": [0, 0], "shift": 0, "rounding": "floor", "relu": False,
                             "output": {"width": 8, "signed": True}}], (2, 1, 1),
     "an add needs one shape"),
    ([{"name": "s", "kind": "add", "inputs": ["input"], "align": [0], "shift": 0,
       "rounding": "floor", "relu": False, "output": {"width": 8, "signed": True}}], (2,),
     "an add takes 2 or more"),
    ([{"name": "s", "kind": "mul", "inputs": ["input"]}], (2,), "'kind' is 'mul'"),
    ([{"name": "f", "kind": "flatten", "inputs": ["input"], "extra": 1}], (2,),
     "unknown field 'extra'"),
    ([{"name": "f", "kind": "flatten", "inputs": ["input"]}], (4096, 4096, 4096),
     "at most 16,777,216"),
    ([{"name": "g", "kind": "pool", "inputs": ["input"], "mode": "global", "shift": 0,
       "output": {"width": 8, "signed": True}}], (4,), "pools the vector 'input'"),
])
def test_bad_graphs_get_one_line(nodes, shape, message):
    with pytest.raises(FrozenError, match=message) as info:
        from_json(_doc(nodes, shape))
    assert "\n" not in str(info.value)


def test_a_bad_graph_file_writes_nothing_and_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_doc([_lin("a", ["input"]), _lin("b", ["input"])])))
    with pytest.raises(FrozenError, match=r"bad\.json: node 'a': nothing reads it"):
        load(path)
