"""The folded hardware in Amaranth's simulator, compared with the reference bit for bit, under
input stalls and output back-pressure; and its plan's figures against the hardware's timing."""

import json

import numpy as np
import pytest
from amaranth.sim import Simulator
from sim_nets import chain, odd, one

from strassen_hw.frozen import (Format, FrozenLayer, FrozenNetwork, random_network,
                                stage_ranges)
from strassen_hw.hw.folded import (FoldedLayer, FoldedNetwork, FoldedPlan, _plans,
                                   folded_report, generate_folded_verilog)
from strassen_hw.reference import forward


def _run(dut, inputs, *, stall=0.0, seed=0, limit=None):
    """Feed ``inputs`` (N, n_in) into ``dut.i`` and collect what leaves ``dut.o``, with the
    cycle of every output. A vector is offered after a random pause and held (valid and
    payload) until taken; ``o.ready`` drops on a ``stall`` fraction of cycles."""
    rng = np.random.default_rng(seed)
    got, when = [], []
    limit = limit or int((len(inputs) + 2) * (dut.cycles_per_vector + 4)
                         / max(1e-9, (1 - stall) ** 2)) + dut.latency + 50

    async def bench(ctx):
        sent, offered = 0, False
        for cycle in range(limit):
            if not offered and sent < len(inputs) and rng.random() >= stall:
                ctx.set(dut.i.payload, [int(v) for v in inputs[sent]])
                offered = True
            ready = rng.random() >= stall
            ctx.set(dut.i.valid, offered)
            ctx.set(dut.o.ready, ready)
            if offered and ctx.get(dut.i.ready):
                sent += 1
                offered = False
            if ready and ctx.get(dut.o.valid):
                payload = ctx.get(dut.o.payload)
                got.append([int(payload[k]) for k in range(len(payload))])
                when.append(cycle)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got, dtype=np.int64).reshape(len(got), -1), when


def _inputs(net, count=20, seed=0):
    """All-min, all-max, the vectors driving each W_b row of the first layer to its extremes,
    then random vectors."""
    fmt, w_b = net.input, net.layers[0].w_b
    corners = [np.full(net.n_in, fmt.min), np.full(net.n_in, fmt.max)]
    for row in w_b:
        corners += [np.where(row > 0, fmt.max, fmt.min), np.where(row > 0, fmt.min, fmt.max)]
    rng = np.random.default_rng(seed)
    return np.concatenate([np.array(corners), rng.integers(fmt.min, fmt.max + 1,
                                                           (count, net.n_in))])


def _check(net, fold, *, stall=0.3, seed=0, count=20):
    x = _inputs(net, count, seed)
    expected = forward(net, x)
    got, _ = _run(FoldedNetwork(net, fold), x, stall=stall, seed=seed)
    assert got.shape == expected.shape, f"{len(got)} outputs for {len(x)} inputs"
    bad = np.argwhere(got != expected)
    assert len(bad) == 0, f"vector {bad[0][0]} output {bad[0][1]}: " \
                          f"{got[tuple(bad[0])]} != {expected[tuple(bad[0])]}"


@pytest.mark.parametrize("fold", [2, 3, 4, 7, 64])
def test_random_layer_matches_reference(fold):
    """r = 9: F = 2, 4 and 7 do not divide it, F = 3 does, F = 64 is beyond r · n_in."""
    _check(random_network([(11, 9, 7)], seed=fold), fold)


@pytest.mark.parametrize("fold", [1, 5])
def test_two_layers_with_heavy_stalls(fold):
    _check(random_network([(9, 7, 6), (6, 5, 4)], seed=4), fold, stall=0.6, count=30)


@pytest.mark.parametrize("fold", [2, 5])
def test_corner_networks(fold):
    """sim_nets: 1x1x1 with unsigned input and ã = -128; two chained layers with a product
    shift; a zero W_b row, zero W_c column, ã = 0, saturation both ways."""
    for net in (one(), chain(), odd()):
        _check(net, fold, seed=fold, count=8)


@pytest.mark.parametrize("rounding", ["floor", "half_up"])
def test_requantization_and_unsigned_formats(rounding):
    rng = np.random.default_rng(8)
    layer = FrozenLayer(w_b=rng.integers(-1, 2, (6, 8)), a_tilde=rng.integers(-128, 128, 6),
                        w_c=rng.integers(-1, 2, (5, 6)), bias=rng.integers(-128, 128, 5),
                        a_width=8, bias_width=8, shift=5, rounding=rounding, relu=True,
                        product_shift=2, product_rounding=rounding, output=Format(4, False))
    _check(FrozenNetwork(name="dut", input=Format(5, False), layers=[layer]), 3)


def test_only_zero_products():
    """Every ã is 0: the layer outputs its requantized bias."""
    layer = FrozenLayer(w_b=[[1, -1], [1, 1]], a_tilde=[0, 0], w_c=[[1, 1], [-1, 0]],
                        bias=[100, -7], a_width=8, bias_width=8, output=Format(6, True),
                        shift=1)
    net = FrozenNetwork(name="dut", input=Format(8, True), layers=[layer])
    _check(net, 2)
    assert folded_report(net, 2)["total"]["multiplications_per_inference"] == 0


@pytest.mark.parametrize("fold", [2, 6])
def test_latency_and_rate_are_the_plans(fold):
    """Without stalls the first output comes exactly ``latency`` cycles after the first input
    is taken, and outputs then follow every ``cycles_per_vector`` cycles."""
    net = random_network([(10, 8, 6), (6, 5, 3)], seed=9)
    dut = FoldedNetwork(net, fold)
    x = _inputs(net, 12)[:14]
    got, when = _run(dut, x)
    assert (got == forward(net, x)).all()
    assert when[0] == dut.latency          # input offered and taken at cycle 0
    gaps = np.diff(when[-5:])
    assert (gaps == dut.cycles_per_vector).all(), (gaps, dut.cycles_per_vector)


def test_folding_spreads_work_over_cycles():
    """More folding: fewer multipliers and adders, more cycles per vector; each stage takes at
    most F steps; the multiplications counted are the non-zero products."""
    net = random_network([(64, 48, 128), (128, 30, 10)], seed=3, input_width=5)
    reports = [folded_report(net, fold) for fold in (2, 8, 32)]
    assert json.loads(json.dumps(reports)) == reports        # JSON-ready, plain ints
    figures = [report["total"] for report in reports]
    for a, b in zip(figures, figures[1:]):
        assert b["multipliers"] <= a["multipliers"] and b["adders"] < a["adders"]
        assert b["cycles_per_vector"] > a["cycles_per_vector"]
    for fold in (2, 8, 32, 100):
        for frozen, fmt in zip(net.layers, net.layer_inputs()):
            plan = FoldedPlan.make(frozen, fmt, fold)
            assert all(stage.steps <= fold for stage in plan.stages)
            real = np.sum((frozen.a_tilde != 0) & frozen.w_b.any(axis=1)
                          & frozen.w_c.any(axis=0))
            assert plan.multiplications == real
            assert plan.multipliers == -(-int(real) // fold)


def test_plan_ranges_are_the_exact_stage_ranges():
    """The u and p buffers and the finished W_c rows (bias + half + W_c p) hold exactly the
    ranges that :func:`strassen_hw.frozen.stage_ranges` computes independently."""
    net = random_network([(12, 10, 9)], seed=2)
    layer = net.layers[0]
    plan = FoldedPlan.make(layer, net.input, 4)
    ranges = stage_ranges(layer, net.input)
    active = list(plan.active)

    def pairs(lo, hi, offset=0):
        return list(zip((lo + offset).tolist(), (hi + offset).tolist()))

    assert list(plan.w_b.rows) == pairs(ranges["u"][0][active], ranges["u"][1][active])
    assert list(plan.products.outputs) == pairs(ranges["p"][0][active],
                                                ranges["p"][1][active])
    assert list(plan.w_c.rows) == pairs(*ranges["v"], 1 << (layer.shift - 1))
    for lane, (lo, hi) in enumerate(plan.w_c.final):
        mine = plan.w_c.rows[lane::plan.w_c.lanes]
        assert (lo, hi) == (min(r[0] for r in mine), max(r[1] for r in mine))


def test_bad_fold_is_refused():
    net = one()
    for fold in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=f"fold must be a positive integer, not {fold!r}"):
            folded_report(net, fold)


def test_verilog_is_deterministic_with_the_stream_ports():
    net = chain()
    text = generate_folded_verilog(net, 3)
    assert text == generate_folded_verilog(net, 3)
    head = text[text.index("module chain("):]
    head = head[:head.index(");")]
    for port in ("clk", "rst", "i__valid", "i__ready", "i__payload", "o__valid", "o__ready",
                 "o__payload"):
        assert port in head


def test_layer_alone_matches_reference():
    net = random_network([(7, 6, 5)], seed=1)
    layer = FoldedLayer(net.layers[0], net.input, 4)
    x = _inputs(net, 10)
    got, _ = _run(layer, x, stall=0.4)
    assert (got == forward(net, x)).all()


def test_three_layers_hand_over_in_rams():
    """Layers hand their vectors over in RAMs written a group (the W_c lanes) at a time:
    several groups per word at F = 4, several words at F = 40."""
    net = random_network([(8, 6, 7), (7, 5, 9), (9, 4, 3)], seed=12)
    buffers = [p.x_buffer for fold in (4, 40) for p in _plans(net, fold)[1:]]
    assert max(b.groups for b in buffers) > 1 and max(b.depth for b in buffers) > 1
    for fold in (4, 40):
        _check(net, fold, stall=0.4, seed=fold, count=12)


def test_a_layer_takes_and_gives_streams():
    net = random_network([(6, 5, 4)], seed=1)
    plan = FoldedPlan.make(net.layers[0], net.input, 2, group=1)
    with pytest.raises(ValueError, match="a FoldedLayer's plan must take and give streams"):
        FoldedLayer(net.layers[0], net.input, plan=plan)
