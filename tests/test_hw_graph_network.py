"""Version-3 graphs in hardware: branches, adds, global pools and mixed folds under Verilator
with stalls and back-pressure, every output equal to the reference; and skip FIFOs exactly as
deep as the schedule needs."""

import numpy as np
import pytest

from strassen_hw.frozen import (Add, Conv, ConvGeometry, Flatten, Format, FrozenConvLayer,
                                FrozenLayer, FrozenNetwork, Linear, Pool, random_network)
from strassen_hw.hw.network import StrassenNetwork, skip_depths
from strassen_hw.sim import check

I8 = Format(8, True)


def _layer(n_in, r, n_out, seed, relu=True, output=I8):
    layer = random_network([(n_in, r, n_out)], seed=seed).layers[0]
    return FrozenLayer(**{**layer.__dict__, "relu": relu, "output": output})


def _conv(h, w, c, co, seed, stride=1, kernel=3, padding=1, p=1):
    g = ConvGeometry(in_channels=c, out_channels=co, height=h, width=w,
                     kernel=(kernel, kernel), stride=(stride, stride),
                     padding=(padding, padding), p=p, groups=1, pool="none", pool_size=1)
    rng = np.random.default_rng(seed)
    r = 4
    patch = FrozenLayer(w_b=rng.integers(-1, 2, (r, g.n_window)),
                        a_tilde=rng.integers(-16, 16, r), w_c=rng.integers(-1, 2, (g.n_patch, r)),
                        bias=rng.integers(-8, 8, g.n_patch), a_width=6, bias_width=5,
                        output=I8, shift=3, rounding="half_up", relu=True)
    return FrozenConvLayer(g, patch)


def _add(name, inputs, align=None, shift=1, relu=True):
    return Add(name, inputs, align or [0] * len(inputs), shift, "half_up", relu, I8)


def diamond():
    """A two-layer path and a one-layer path of very different latencies, added; then a
    linear layer; the input is also added to itself."""
    return FrozenNetwork("diamond", I8, input_shape=(6,), nodes=[
        Linear("long0", ["input"], _layer(6, 5, 6, 1)),
        Linear("long1", ["long0"], _layer(6, 7, 6, 2)),
        Linear("short", ["input"], _layer(6, 3, 6, 3)),
        _add("s", ["long1", "short", "input", "input"], [1, 0, 0, 2], shift=2),
        Linear("out", ["s"], _layer(6, 4, 3, 4, relu=False))])


def resnet():
    """A stem convolution, an identity residual block, a projection (stride 2, 1×1) block, a
    global average pool and a classifier."""
    return FrozenNetwork("tinyres", I8, input_shape=(6, 6, 1), nodes=[
        Conv("stem", ["input"], _conv(6, 6, 1, 2, 1)),
        Conv("b1", ["stem"], _conv(6, 6, 2, 2, 2)),
        _add("s1", ["b1", "stem"]),
        Conv("b2", ["s1"], _conv(6, 6, 2, 3, 3, stride=2)),
        Conv("proj", ["s1"], _conv(6, 6, 2, 3, 4, stride=2, kernel=1, padding=0)),
        _add("s2", ["b2", "proj"], [1, 0]),
        Pool("gap", ["s2"], "global", shift=3, output=Format(9, True)),
        Linear("fc", ["gap"], _layer(3, 4, 2, 5, relu=False))])


@pytest.mark.verilator
@pytest.mark.parametrize("make, fold", [(diamond, 1), (diamond, {"long1": 3}), (resnet, 1),
                                        (resnet, {"b1": 2, "fc": 2})])
def test_graphs_are_exact_under_stalls(make, fold):
    net = make()
    x = np.random.default_rng(0).integers(-128, 128, (40, net.n_in))
    result = check(net, x, seed=1, stalls=0.4, fold=fold)
    assert result.outputs.shape == (40, net.n_out)


def test_skip_depth_of_a_pipeline_diamond_is_the_latency_difference():
    net = diamond()
    top = StrassenNetwork(net)
    lat = {name: unit.latency for name, unit in top.units.items()}
    depths = skip_depths(net)
    # the add takes transfer j when the long path's is there: lat(long0) + lat(long1) after
    # input j; the short path's waits lat(long0) + lat(long1) - lat(short) cycles, one per
    # clock, so that many + 1 wait at once; the FIFO needs 2 entries more (its docstring)
    assert depths[("s", 0)] == 1 + 2
    assert depths[("s", 1)] == lat["long0"] + lat["long1"] - lat["short"] + 1 + 2
    assert depths[("s", 2)] == depths[("s", 3)] == lat["long0"] + lat["long1"] + 1 + 2


def _cycles_for(net, vectors, skip_depth=None):
    """Cycles until ``vectors`` outputs came out, input always valid and output always ready
    (Amaranth's simulator)."""
    from amaranth.sim import Simulator
    top = StrassenNetwork(net, trees="amaranth", skip_depth=skip_depth)
    sim = Simulator(top)
    sim.add_clock(1e-6)
    result = {}

    async def bench(ctx):
        ctx.set(top.i.valid, 1)
        ctx.set(top.o.ready, 1)
        done = cycles = 0
        while done < vectors and cycles < 500:
            await ctx.tick()
            cycles += 1
            done += ctx.get(top.o.valid)
        result["cycles"] = cycles

    sim.add_testbench(bench)
    sim.run()
    return result["cycles"]


def test_one_entry_less_on_any_skip_path_costs_throughput():
    net = diamond()
    top = StrassenNetwork(net)
    depths = skip_depths(net)
    # latency: the long path, the add, the output layer, and the FIFO's write-to-read cycle
    latency = top.units["long0"].latency + top.units["long1"].latency + 1 \
        + top.units["out"].latency + 1
    assert _cycles_for(net, 40) == 40 + latency         # one vector per clock after it
    for key, depth in depths.items():
        assert _cycles_for(net, 40, {key: depth - 1}) > 40 + latency, key
