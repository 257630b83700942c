"""The TWN and dense counterparts of a network's own graph (``report --baselines`` without
``--data``): worked by hand, exact where the arithmetic allows, and for convolutions too."""

import numpy as np
import pytest

from strassen_hw.cli import main
from strassen_hw.counterparts import counterpart, counterpart_layer
from strassen_hw.frozen import Format, FrozenLayer, FrozenNetwork, random_network, save
from strassen_hw.reference import forward

from test_hw_graph_network import resnet

I8 = Format(8, True)


def _layer(w_b, a, w_c, bias, product_shift=0, shift=0, a_width=8):
    return FrozenLayer(w_b=np.array(w_b), a_tilde=np.array(a), w_c=np.array(w_c),
                       bias=np.array(bias), a_width=a_width, bias_width=6,
                       output=Format(12, True), product_shift=product_shift, shift=shift)


def test_a_small_layer_by_hand():
    # diag(ã)·W_b = [[3, 0, -3], [0, -5, -5]]; E = W_c·that = [[3, -5, -8], [0, 5, 5]]
    layer = _layer([[1, 0, -1], [0, 1, 1]], [3, -5], [[1, 1], [0, -1]], [1, -2])
    dense = counterpart_layer(layer, "dense")
    assert dense.kind == "dense"
    assert dense.a_tilde.tolist() == [3, -5, -8, 0, 5, 5]          # E fits 8 bits: as it is
    assert dense.bias.tolist() == [1, -2] and dense.shift == 0
    twn = counterpart_layer(layer, "twn")
    # row 0: |E| = 3, 5, 8, mean 16/3, threshold 3.73: keeps 5 and 8, alpha (5 + 8)/2 = 6.5 → 7
    # row 1: |E| = 0, 5, 5, mean 10/3, threshold 2.33: keeps both 5s, alpha 5
    assert twn.kind == "twn"
    assert twn.w_b.tolist() == [[0, -1, -1], [0, 1, 1]]
    assert twn.a_tilde.tolist() == [7, 5]
    assert counterpart_layer(twn, "dense") is twn                  # not a Strassen layer


def test_weights_wider_than_8_bits_move_into_the_shifts():
    # E = [[190, 10], [10, 190]]: 9 signed bits, one too many for int8
    w_b, a, w_c = [[1, 1], [1, -1]], [100, 90], [[1, 1], [1, -1]]
    dense = counterpart_layer(_layer(w_b, a, w_c, [3, -3], product_shift=2), "dense")
    assert dense.a_tilde.tolist() == [95, 5, 5, 95] and dense.product_shift == 1
    assert dense.bias.tolist() == [3, -3] and dense.shift == 0
    # no product shift to take it: the final shift does, and the bias is halved (half away)
    dense = counterpart_layer(_layer(w_b, a, w_c, [3, -3], shift=3), "dense")
    assert dense.a_tilde.tolist() == [95, 5, 5, 95] and dense.product_shift == 0
    assert dense.bias.tolist() == [2, -2] and dense.shift == 2


def test_dense_counterpart_of_a_narrow_network_is_the_same_function():
    rng = np.random.default_rng(0)
    layer = _layer(rng.integers(-1, 2, (5, 6)), rng.integers(-3, 4, 5), rng.integers(-1, 2, (4, 5)),
                   rng.integers(-8, 8, 4), shift=2)
    net = FrozenNetwork("narrow", I8, [layer])
    x = rng.integers(-128, 128, (300, 6))
    dense = counterpart(net, "dense")
    assert dense.name == "narrow_dense" and dense.layers[0].kind == "dense"
    assert np.array_equal(forward(dense, x), forward(net, x))


def test_counterparts_of_a_residual_graph_keep_every_node():
    net = resnet()
    for kind, r_of in (("twn", lambda n_in, n_out: n_out), ("dense", lambda n_in, n_out: n_in * n_out)):
        other = counterpart(net, kind)
        assert [n.name for n in other.nodes] == [n.name for n in net.nodes]
        assert [n.inputs for n in other.nodes] == [n.inputs for n in net.nodes]
        for node, old in zip(other.nodes, net.nodes):
            assert net.shape_of(old.name) == other.shape_of(node.name)
            layer = getattr(node, "layer", None)
            if layer is None:
                continue
            layer = getattr(layer, "patch", layer)
            n_out, n_in = layer.w_c.shape[0], layer.w_b.shape[1]
            assert layer.kind == kind and len(layer.a_tilde) == r_of(n_in, n_out)


def test_report_baselines_need_digits_for_digits_data(tmp_path, capsys):
    path = tmp_path / "net.json"
    save(random_network([(4, 3, 2)], seed=3), path)
    assert main(["report", str(path), "--baselines", "--data", "digits"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "does not read the digits" in err
    assert main(["report", str(path), "--data", "digits"]) == 2
    assert "--data: applies with --baselines only" in capsys.readouterr().err


@pytest.mark.slow
def test_report_baselines_of_the_given_network(tmp_path, capsys):
    path = tmp_path / "net.json"
    save(random_network([(6, 3, 4)], seed=3), path)
    assert main(["report", str(path), "--baselines", "--device", "asic", "--json",
                 str(tmp_path / "cost.json")]) == 0
    import json
    rows = json.loads((tmp_path / "cost.json").read_text())
    assert [row["variant"] for row in rows] == ["strassen", "twn_structural",
                                                "dense_int8_structural"]
    # the dense counterpart of a 6→4 layer has at most 24 multipliers, the TWN one 4
    assert rows[1]["multipliers"] <= 4 and rows[2]["multipliers"] <= 24
    assert all(row["gates"] > 0 for row in rows)
