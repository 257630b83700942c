"""The reference against hand-worked examples and float64 arithmetic (exact at these sizes)."""

import numpy as np
import pytest

from strassen_hw.frozen import Format, FrozenError, FrozenLayer, FrozenNetwork, random_network
from strassen_hw.reference import forward, round_shift


def _net(shift=0, rounding="floor", relu=False, out=Format(8, True), product_shift=0,
         product_rounding="floor"):
    layer = FrozenLayer(w_b=[[1, -1, 0], [0, 1, 1]], a_tilde=[3, -5], w_c=[[1, 1], [0, -1]],
                        bias=[1, -2], a_width=4, bias_width=3, output=out, shift=shift,
                        rounding=rounding, relu=relu, product_shift=product_shift,
                        product_rounding=product_rounding)
    return FrozenNetwork("hand", Format(4, True), [layer])


def test_hand_worked_layer():
    # x = (2, -3, 4): u = (2+3, -3+4) = (5, 1); p = (15, -5); v = (15-5+1, 5-2) = (11, 3)
    assert forward(_net(), [2, -3, 4]).tolist() == [[11, 3]]
    # shift 2, floor: 11 >> 2 = 2, 3 >> 2 = 0; half_up: (11+2)>>2 = 3, (3+2)>>2 = 1
    assert forward(_net(shift=2), [2, -3, 4]).tolist() == [[2, 0]]
    assert forward(_net(shift=2, rounding="half_up"), [2, -3, 4]).tolist() == [[3, 1]]
    # x = (-8, 7, -8): u = (-15, -1); p = (-45, 5); v = (-45+5+1, -5-2) = (-39, -7)
    assert forward(_net(), [-8, 7, -8]).tolist() == [[-39, -7]]
    assert forward(_net(relu=True), [-8, 7, -8]).tolist() == [[0, 0]]
    # saturation to 5 signed bits: -39 -> -16
    assert forward(_net(out=Format(5, True)), [-8, 7, -8]).tolist() == [[-16, -7]]
    # unsigned output saturates at 0 and 2**w - 1
    assert forward(_net(out=Format(3, False)), [2, -3, 4]).tolist() == [[7, 3]]
    # product shift 1 (floor): p = (7, -3); v = (7-3+1, 3-2) = (5, 1)
    assert forward(_net(product_shift=1), [2, -3, 4]).tolist() == [[5, 1]]
    # half_up on products: p = (8, -2); v = (8-2+1, 2-2) = (7, 0)
    assert forward(_net(product_shift=1, product_rounding="half_up"), [2, -3, 4]).tolist() \
        == [[7, 0]]


def test_round_shift_by_hand():
    v = np.array([-6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 5, 6])
    assert round_shift(v, 2, "floor").tolist() == [-2, -2, -1, -1, -1, -1, 0, 0, 0, 0, 1, 1]
    # ties (-6/4 = -1.5, -2/4 = -0.5, 2/4 = 0.5, 6/4 = 1.5) go toward +infinity
    assert round_shift(v, 2, "half_up").tolist() == [-1, -1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 2]
    assert round_shift(v, 0, "half_up").tolist() == v.tolist()


@pytest.mark.parametrize("seed", range(5))
def test_against_float64(seed):
    rng = np.random.default_rng(seed)
    net = random_network([(13, 7, 5), (5, 3, 4)], seed=seed)
    x = rng.integers(-128, 128, (50, 13))
    y = x.astype(np.float64)
    for layer in net.layers:
        v = ((y @ layer.w_b.T.astype(np.float64)) * layer.a_tilde) @ layer.w_c.T + layer.bias
        v = np.floor(v / 2.0 ** layer.shift + (0.5 if layer.rounding == "half_up" else 0.0))
        if layer.relu:
            v = np.maximum(v, 0)
        y = np.clip(v, layer.output.min, layer.output.max)
    assert np.array_equal(forward(net, x), y.astype(np.int64))


def test_extreme_values_are_exact():
    # Values near 2**61 would lose bits in float64; the reference stays exact in int64.
    layer = FrozenLayer(w_b=np.ones((1, 1024), dtype=np.int64), a_tilde=[-(1 << 31)], w_c=[[1]],
                        bias=[0], a_width=32, bias_width=8, output=Format(32, True), shift=30)
    net = FrozenNetwork("big", Format(20, True), [layer])
    x = np.full((1, 1024), -(1 << 19))
    exact = (1024 * -(1 << 19) * -(1 << 31)) >> 30   # Python integers: exact
    assert forward(net, x).tolist() == [[min(exact, (1 << 31) - 1)]]
    x[0, 0] += 1
    shifted = FrozenNetwork("big", Format(20, True), [FrozenLayer(
        **{**layer.__dict__, "shift": 40})])
    assert forward(shifted, x).tolist() == [[((1024 * -(1 << 19) + 1) * -(1 << 31)) >> 40]]


def test_bad_inputs():
    net = _net()
    with pytest.raises(FrozenError, match=r"inputs have shape \(1, 2\)"):
        forward(net, [[1, 2]])
    with pytest.raises(FrozenError, match=r"input \[0\]\[2\] = 8 is outside .* -8..7"):
        forward(net, [[1, 2, 8]])
    with pytest.raises(FrozenError, match=r"input \[0\]\[0\] = 1.5 is not an integer"):
        forward(net, [[1.5, 2, 3]])
