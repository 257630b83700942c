"""The generated hardware in Amaranth's simulator, compared with the reference bit for bit."""

import numpy as np
import pytest
from stream_bench import run_streams

from strassen_hw.frozen import Format, FrozenLayer, FrozenNetwork, random_network
from strassen_hw.hw import StrassenNetwork
from strassen_hw.hw.layer import LayerPlan
from strassen_hw.reference import forward

INT8 = Format(8, True)


def _run(dut, inputs, *, stall=0.0, seed=0):
    """:func:`stream_bench.run_streams` with a cycle limit from the latency and the stalls."""
    limit = int((len(inputs) + dut.latency + 10) / max(1e-9, (1 - stall) ** 2)) + 50
    return run_streams(dut, inputs, stall=stall, seed=seed, limit=limit)


def _inputs(net, count=24, seed=0):
    """All-min, all-max, the vectors that drive every W_b row of the first layer to its own
    minimum and maximum (the overflow corners), then random vectors."""
    fmt, w_b = net.input, net.layers[0].w_b
    corners = [np.full(net.n_in, fmt.min), np.full(net.n_in, fmt.max)]
    for row in w_b:
        corners.append(np.where(row > 0, fmt.max, fmt.min))
        corners.append(np.where(row > 0, fmt.min, fmt.max))
    rng = np.random.default_rng(seed)
    return np.concatenate([np.array(corners), rng.integers(fmt.min, fmt.max + 1,
                                                           (count, net.n_in))])


def _check(net, *, stall=0.0, seed=0, count=24):
    x = _inputs(net, count, seed)
    expected = forward(net, x)
    got = _run(StrassenNetwork(net), x, stall=stall, seed=seed)
    assert got.shape == expected.shape
    bad = np.argwhere(got != expected)
    assert len(bad) == 0, f"vector {bad[0][0]} output {bad[0][1]}: " \
                          f"{got[tuple(bad[0])]} != {expected[tuple(bad[0])]}"


def _layer(w_b, a_tilde, w_c, bias=None, *, out=INT8, **kw):
    w_b, w_c = np.array(w_b), np.array(w_c)
    bias = np.zeros(w_c.shape[0], dtype=np.int64) if bias is None else np.array(bias)
    return FrozenLayer(w_b=w_b, a_tilde=np.array(a_tilde), w_c=w_c, bias=bias,
                       a_width=kw.pop("a_width", 8), bias_width=kw.pop("bias_width", 8),
                       output=out, **kw)


def _net(*layers, fmt=INT8):
    return FrozenNetwork(name="dut", input=fmt, layers=layers)


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 2), (37, 19, 23)])
def test_random_shapes_match_reference(shape):
    _check(random_network([shape], seed=sum(shape)))


def test_two_chained_layers():
    _check(random_network([(9, 7, 6), (6, 5, 4)], seed=4))


def test_back_pressure_loses_and_repeats_nothing():
    _check(random_network([(6, 5, 4), (4, 3, 3)], seed=5), stall=0.45, seed=1, count=60)


def test_zero_row_in_w_b_and_zero_column_in_w_c_and_zero_a():
    rng = np.random.default_rng(6)
    w_b = rng.integers(-1, 2, (6, 5))
    w_b[2] = 0
    w_c = rng.integers(-1, 2, (4, 6))
    w_c[:, 4] = 0
    a = np.array([37, -91, 55, 0, 101, -77])
    _check(_net(_layer(w_b, a, w_c, [3, -5, 0, 100], shift=4, rounding="half_up")))


@pytest.mark.parametrize("product_shift", [0, 1, 3])
@pytest.mark.parametrize("product_rounding", ["floor", "half_up"])
def test_trivial_a_folding(product_shift, product_rounding):
    """ã in {0, ±1, ±2^k} folds to wires; rounding the product must still match."""
    rng = np.random.default_rng(7)
    a = np.array([1, -1, 2, -2, 4, -8, 64, -64, -128, 0, 3, -5])
    w_b = rng.integers(-1, 2, (len(a), 7))
    w_c = rng.integers(-1, 2, (5, len(a)))
    layer = _layer(w_b, a, w_c, [7, -9, 0, 1, -1], product_shift=product_shift,
                   product_rounding=product_rounding, shift=3, rounding="floor")
    net = _net(layer)
    _check(net)
    plan = LayerPlan(layer, net.input)
    assert plan.multipliers == 2          # only 3 and -5 need a real multiplier


def test_only_negative_rows():
    """Rows of W_b / W_c with only -1 entries (no subtractor, sign folded elsewhere)."""
    w_b = np.array([[-1, -1, 0], [0, -1, -1], [1, 0, 1]])
    w_c = np.array([[-1, -1, 0], [0, 0, -1], [1, -1, 1]])
    _check(_net(_layer(w_b, [5, -3, 2], w_c, [0, 4, -2], shift=1)))


@pytest.mark.parametrize("rounding", ["floor", "half_up"])
@pytest.mark.parametrize("relu", [False, True])
def test_requantization(rounding, relu):
    rng = np.random.default_rng(8)
    layer = _layer(rng.integers(-1, 2, (6, 8)), rng.integers(-128, 128, 6),
                   rng.integers(-1, 2, (5, 6)), rng.integers(-128, 128, 5),
                   shift=5, rounding=rounding, relu=relu, product_shift=2,
                   product_rounding=rounding, out=Format(6, True))
    _check(_net(layer))


def test_unsigned_input_and_output():
    rng = np.random.default_rng(9)
    layer = _layer(rng.integers(-1, 2, (5, 6)), rng.integers(-128, 128, 5),
                   rng.integers(-1, 2, (4, 5)), rng.integers(-128, 128, 4),
                   shift=6, relu=True, out=Format(4, False))
    _check(_net(layer, fmt=Format(5, False)))


def test_saturation_both_ways():
    """No shift: outputs far outside int8 clamp to -128 and 127."""
    w_b = np.ones((3, 4), dtype=np.int64)
    layer = _layer(w_b, [100, -100, 77], [[1, 1, 0], [0, 1, 1], [1, 0, -1]], [0, 0, 0])
    _check(_net(layer))


def test_wide_values_near_the_limit():
    """int16 inputs, 16-bit ã: wide products and sums, still exact."""
    rng = np.random.default_rng(10)
    layer = _layer(rng.choice([-1, 1], (4, 9)), [32767, -32768, 12345, -3],
                   rng.choice([-1, 1], (3, 4)), [1, -1, 0], a_width=16,
                   shift=20, rounding="half_up", out=Format(12, True))
    _check(_net(layer, fmt=Format(16, True)))


@pytest.mark.parametrize("levels", [1, 3])
def test_pipeline_depths(levels):
    net = random_network([(11, 9, 7)], seed=11)
    x = _inputs(net, 10)
    dut = StrassenNetwork(net, levels_per_stage=levels)
    assert (_run(dut, x, stall=0.3) == forward(net, x)).all()


def test_without_sharing():
    net = random_network([(11, 9, 7)], seed=12)
    x = _inputs(net, 10)
    assert (_run(StrassenNetwork(net, share=False), x, stall=0.2) == forward(net, x)).all()


def test_requant_plans_are_decided_before_elaboration():
    from strassen_hw.hw.requantize import RequantPlan, requant_plans
    layer = _layer([[1, 1], [1, -1]], [3, 5], [[1, 1], [-1, 0], [0, 0]], [2, -3, 7],
                   shift=2, rounding="half_up", relu=True, out=Format(3, True))
    plans = requant_plans(layer, input_format=INT8)
    # v0 = 3(x0+x1) + 5(x0-x1) over int8: 3*[-256,254] + 5*[-255,255]
    assert plans[0] == RequantPlan(-768 - 1275, 762 + 1275, 2 + 2, 2, True, Format(3, True))
    assert (plans[1].lo, plans[1].hi) == (-762, 768) and plans[2].lo == plans[2].hi == 0
    assert plans[2].add == 7 + 2 and plans[2].rectified == (2, 2)
    assert plans[0].saturates == (False, True)
    assert LayerPlan(layer, INT8).requant == plans
