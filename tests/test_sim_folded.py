"""The proof for the folded architecture: its Verilog under Verilator, driven by the cocotb
testbench with random input stalls and output back-pressure, equals the numpy reference on every
output, for the corner networks of the parallel design's proof (sim_nets) at two folds.

Six designs are compiled (three networks, F = 2 and 5); builds are cached by content."""

import numpy as np
import pytest
from sim_nets import chain, odd, one

from strassen_hw.hw.folded import folded_report, generate_folded_verilog
from strassen_hw.reference import forward
from strassen_hw.sim import check, test_vectors

pytestmark = pytest.mark.verilator

FOLDS = [2, 5]


@pytest.mark.parametrize("fold", FOLDS)
def test_one_by_one_layer_with_unsigned_input_and_minimum_a(fold):
    net = one()
    x = test_vectors(net, 200, seed=1)
    y = check(net, x, seed=1, verilog=generate_folded_verilog(net, fold)).outputs
    assert y.max() == net.output.max            # saturates at the top
    assert len(np.unique(y)) > 5


@pytest.mark.parametrize("fold", FOLDS)
def test_two_chained_layers(fold):
    net = chain()
    x = test_vectors(net, 600, seed=3)
    check(net, x, seed=3, verilog=generate_folded_verilog(net, fold))


@pytest.mark.parametrize("fold", FOLDS)
def test_odd_shape_heavy_backpressure_and_full_rate(fold):
    """Zero W_b row, zero W_c column, ã = 0, saturation both ways; 75 % of cycles stalled on
    each stream loses and duplicates nothing; without stalls the outputs follow every
    ``cycles_per_vector`` cycles after ``latency``."""
    net = odd()
    verilog = generate_folded_verilog(net, fold)
    x = test_vectors(net, 300, seed=2)
    heavy = check(net, x, seed=2, stalls=0.75, verilog=verilog)
    y = heavy.outputs
    assert (y == net.output.min).any() and (y == net.output.max).any()
    free = check(net, x, seed=2, stalls=False, verilog=verilog)
    assert heavy.cycles > free.cycles               # the stalls really happened
    assert np.array_equal(free.outputs, forward(net, x))
    total = folded_report(net, fold)["total"]
    expected = total["latency"] + (len(x) - 1) * total["cycles_per_vector"]
    assert expected <= free.cycles <= expected + 2
