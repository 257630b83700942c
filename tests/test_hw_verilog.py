"""The generated Verilog under Verilator: both tree back-ends against the reference, exactly.

The Amaranth-simulator tests (test_hw_layer.py) cover the Amaranth trees; these cover the
Verilog text of the trees (:mod:`strassen_hw.hw.tree`, the default of
``generate_verilog``) on the corner cases of the generator."""

import numpy as np
import pytest

from strassen_hw.frozen import Format, FrozenLayer, FrozenNetwork
from strassen_hw.hw import generate_verilog
from strassen_hw.reference import forward

sim = pytest.importorskip("strassen_hw.sim")

pytestmark = [pytest.mark.verilator, pytest.mark.slow]


def _corner_network():
    """Unsigned 5-bit input; layer 0 has trivial ã (0, ±1, ±2^k), rows of only -1, a zero row
    of W_b and a zero column of W_c, product rounding; layer 1 has half_up, ReLU and an
    unsigned output."""
    rng = np.random.default_rng(3)
    a0 = np.array([1, -1, 2, -8, 64, -128, 0, 3, -5, 77, 5, -100])
    w_b = rng.integers(-1, 2, (12, 9))
    w_b[0] = [-1, -1, 0, -1, 0, 0, 0, 0, -1]
    w_b[10] = 0
    w_c = rng.integers(-1, 2, (7, 12))
    w_c[:, 9] = 0
    w_c[1] = [0, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0, -1]
    first = FrozenLayer(w_b=w_b, a_tilde=a0, w_c=w_c, bias=rng.integers(-128, 128, 7),
                        a_width=8, bias_width=8, output=Format(7, True), product_shift=2,
                        product_rounding="half_up", shift=5, rounding="floor", relu=False)
    second = FrozenLayer(w_b=rng.integers(-1, 2, (6, 7)), a_tilde=rng.integers(-128, 128, 6),
                         w_c=rng.integers(-1, 2, (4, 6)), bias=rng.integers(-128, 128, 4),
                         a_width=8, bias_width=8, output=Format(4, False), shift=6,
                         rounding="half_up", relu=True)
    return FrozenNetwork(name="corners", input=Format(5, False), layers=[first, second])


def _inputs(net, count=300):
    fmt = net.input
    corners = [np.full(net.n_in, fmt.min), np.full(net.n_in, fmt.max)]
    for row in net.layers[0].w_b:
        corners += [np.where(row > 0, fmt.max, fmt.min), np.where(row > 0, fmt.min, fmt.max)]
    rng = np.random.default_rng(0)
    return np.concatenate([corners, rng.integers(fmt.min, fmt.max + 1, (count, net.n_in))])


@pytest.mark.parametrize("trees", ["verilog", "amaranth"])
def test_verilog_matches_reference(trees):
    net = _corner_network()
    x = _inputs(net)
    got = sim.simulate(net, x, seed=1, stalls=True,
                       verilog=generate_verilog(net, trees=trees))
    expected = forward(net, x)
    bad = np.argwhere(got != expected)
    assert got.shape == expected.shape and len(bad) == 0, f"first mismatch {bad[:1]}"
