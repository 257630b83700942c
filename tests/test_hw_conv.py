"""Streaming convolutions (hw/conv.py) against the reference, bit for bit: odd geometries in
Amaranth's simulator with stalls on both streams, then Verilator on a chained conv network and
on the frozen digits CNN's 360 test images."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from stream_bench import run_streams as _run

from strassen_hw.frozen import Format, FrozenLayer, FrozenNetwork
from strassen_hw.hw import StrassenNetwork, generate_verilog, report
from strassen_hw.hw.conv import StreamingConv, conv_cycles
from strassen_hw.reference import forward
from test_frozen_conv import CASES, _random_conv


def _extremes(net, rng, count):
    fmt = net.input
    return np.concatenate([np.full((1, net.n_in), fmt.min), np.full((1, net.n_in), fmt.max),
                           rng.integers(fmt.min, fmt.max + 1, (count, net.n_in))])


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_conv_layer_in_amaranth_sim(case):
    rng = np.random.default_rng(len(str(case)))
    layer = _random_conv(rng, *case)
    net = FrozenNetwork("conv", Format(4, True), [layer])
    x = _extremes(net, rng, 3)
    got = _run(StrassenNetwork(net), x, stall=0.3, seed=len(case))
    assert got.shape == (len(x), net.n_out)
    assert np.array_equal(got, forward(net, x))


def _timing(layer, images=3):
    """Cycles of a StreamingConv in Amaranth's simulator, input always valid and output always
    ready: the cycle of each image's first input pixel and of its last output pixel."""
    dut = StreamingConv(layer, Format(4, True))
    n_in = layer.geometry.height * layer.geometry.width
    n_out = layer.out_shape[0] * layer.out_shape[1]
    first, last = [], []

    async def bench(ctx):
        sent = got = 0
        ctx.set(dut.o.ready, 1)
        for cycle in range(20_000):
            ctx.set(dut.i.valid, sent < images * n_in)
            if sent < images * n_in and ctx.get(dut.i.ready):
                if sent % n_in == 0:
                    first.append(cycle)
                sent += 1
            if ctx.get(dut.o.valid):
                got += 1
                if got % n_out == 0:
                    last.append(cycle)
                    if got == images * n_out:
                        return
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(first) == len(last) == images
    return first, last, dut.patch.latency


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_cycles_per_image_and_latency_as_measured(case):
    rng = np.random.default_rng(len(str(case)))
    layer = _random_conv(rng, *case)
    first, last, patch_latency = _timing(layer, images=6)
    assert len({b - a for a, b in zip(first[2:], first[3:])}) == 1     # the steady state
    assert conv_cycles(layer.geometry, patch_latency) == (first[5] - first[4],
                                                          last[0] - first[0])


def _chain(seed=11):
    """conv (1 channel, 3×5, kernel 3, p 2, padding 1, max pool) → conv (groups 2, kernel 1,
    stride 1, p 1) → linear: every domain change of the network."""
    rng = np.random.default_rng(seed)
    first = _random_conv(rng, 1, 4, (5, 7), 3, 2, 1, 1, 1, "max", 2, out=Format(5, False))
    second = _random_conv(rng, 4, 2, (2, 3), 1, 1, 1, 0, 2, "none", 1, out=Format(6, True))
    dense = FrozenLayer(w_b=rng.integers(-1, 2, (3, 12)), a_tilde=rng.integers(-8, 8, 3),
                        w_c=rng.integers(-1, 2, (2, 3)), bias=rng.integers(-4, 4, 2),
                        a_width=4, bias_width=3, output=Format(9, True))
    return FrozenNetwork("convchain", Format(4, True), [first, second, dense])


def test_chain_in_amaranth_sim():
    net = _chain()
    x = _extremes(net, np.random.default_rng(0), 4)
    got = _run(StrassenNetwork(net), x, stall=0.25)
    assert np.array_equal(got, forward(net, x))


def test_report_and_deterministic_verilog():
    net = _chain()
    rep = report(net)
    conv = rep["layers"][0]["conv"]
    # K_h = 1·(2-1)+3 = 4 rows of 7 pixels of 1 channel, 4 bits each
    assert conv["line_buffer_bits"] == 4 * 7 * 4
    # two banks of ⌈7/2⌉ = 4 patches of 2×2 pixels of 4 channels, 5 bits each
    assert conv["patch_bank_bits"] == 2 * 4 * 2 * 2 * 4 * 5
    assert conv["windows_per_image"] == 3 * 4 and conv["multiplications_per_image"] == \
        12 * net.layers[0].r
    assert rep["total"]["n_in"] == 35 and rep["total"]["n_out"] == 2
    first, last, _ = _timing(net.layers[0], images=6)
    assert (conv["cycles_per_image"], conv["latency"]) == (first[5] - first[4],
                                                           last[0] - first[0])
    assert generate_verilog(net) == generate_verilog(_chain())


@pytest.mark.verilator
@pytest.mark.parametrize("case", [0, 2, 4, 5], ids=lambda k: f"case{k}")
def test_odd_conv_layers_under_verilator(case):
    """1 channel and 3×5 images, kernel 1 and 3, p = 1 and 2, groups, padding and none,
    stride 2, max and average pooling: every output bit against the reference, with stalls."""
    from strassen_hw.sim import check, test_vectors
    rng = np.random.default_rng(len(str(CASES[case])))
    net = FrozenNetwork(f"conv{case}", Format(4, True), [_random_conv(rng, *CASES[case])])
    check(net, test_vectors(net, 100, seed=case), seed=case, stalls=True)


@pytest.mark.verilator
def test_chain_under_verilator():
    from strassen_hw.sim import check, test_vectors
    net = _chain()
    check(net, test_vectors(net, 200, seed=1), seed=1, stalls=True)


@pytest.mark.verilator
@pytest.mark.slow
def test_digits_cnn_under_verilator():
    from strassen_hw.sim import check, test_vectors
    from strassen_hw.train.freeze import freeze
    from test_train_freeze_conv import _quick_cnn
    from train_quick import digits
    data = digits()
    net, _ = freeze(_quick_cnn().student, data.x_train, name="cnn",
                    input_format=data.input_format, input_scale=data.input_scale)
    x = np.concatenate([test_vectors(net, 0), data.x_test])
    result = check(net, x, seed=0, stalls=True)
    assert len(result.outputs) == len(data.x_test) + len(test_vectors(net, 0))
