"""Streaming convolutions with a folded patch layer (``fold = F > 1``: a window taken only every
F or so cycles, its patch back after the folded layer's latency), against the reference bit
for bit: odd geometries and a conv → conv → linear chain in Amaranth's simulator with stalls
and back-pressure, then the chain under Verilator."""

import json

import numpy as np
import pytest
from test_frozen_conv import CASES, _random_conv
from test_hw_conv import _chain, _extremes, _run

from strassen_hw.frozen import Format, FrozenNetwork, random_network
from strassen_hw.hw import StrassenNetwork, check_fold, generate, generate_verilog
from strassen_hw.hw.generate import cost, hardware
from strassen_hw.hw.conv import StreamingConv
from strassen_hw.hw.folded import FoldedLayer
from strassen_hw.reference import forward

#: Odd geometries of test_frozen_conv.CASES: 1 channel 3×5 kernel 1; p = 2 with max pooling;
#: groups and stride 2; a non-square kernel with stride (1, 2) and pooling; p = 3 on a padded
#: 1×1 image; padding wider than the kernel; p = 4 past a 3×3 image.
_CASES = [CASES[k] for k in (0, 2, 4, 6, 8, 10, 12)]


def _net(case):
    rng = np.random.default_rng(len(str(case)))
    return FrozenNetwork("conv", Format(4, True), [_random_conv(rng, *case)])


@pytest.mark.parametrize("fold", [2, 5])
@pytest.mark.parametrize("case", _CASES, ids=[str(c) for c in range(len(_CASES))])
def test_folded_conv_network_in_amaranth_sim(case, fold):
    net = _net(case)
    x = _extremes(net, np.random.default_rng(fold), 3)
    dut = StrassenNetwork(net, fold=fold)
    assert isinstance(dut.layers[0].patch, FoldedLayer)
    got = _run(dut, x, stall=0.3, seed=fold, limit=40_000)
    assert got.shape == (len(x), net.n_out)
    assert np.array_equal(got, forward(net, x))


@pytest.mark.parametrize("fold", [2, 5])
def test_folded_streaming_conv_pixels_with_stalls(fold):
    """The StreamingConv alone, pixel by pixel, the input stalled and the output held back
    on half the cycles (back-pressure into the banks and the folded layer's output)."""
    net = _net(CASES[5])          # 4 channels, 5×3, kernel 3, p 2, stride 2, groups 2, avg pool
    layer = net.layers[0]
    x = _extremes(net, np.random.default_rng(3), 2)
    pixels = x.reshape(-1, layer.geometry.in_channels)
    dut = StreamingConv(layer, net.input, fold=fold)
    got = _run(dut, pixels, stall=0.5, seed=fold, limit=40_000)
    expected = forward(net, x).reshape(-1, layer.geometry.out_channels)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("fold", [2, 5])
def test_folded_chain_in_amaranth_sim(fold):
    net = _chain()
    x = _extremes(net, np.random.default_rng(fold), 4)
    got = _run(StrassenNetwork(net, fold=fold), x, stall=0.25, seed=fold, limit=40_000)
    assert got.shape == (len(x), net.n_out)
    assert np.array_equal(got, forward(net, x))


def test_folded_conv_generate_and_report(tmp_path):
    net = _chain()
    assert check_fold(3, net) == 3
    component, report = hardware(net, fold=3)
    assert isinstance(component, StrassenNetwork) and report == cost(net, fold=3)
    text = generate_verilog(net, fold=3)
    assert text == generate_verilog(_chain(), fold=3)
    assert text != generate_verilog(net)
    rep = generate(net, tmp_path, fold=3)
    assert json.loads((tmp_path / "report.json").read_text()) == rep
    assert (tmp_path / "convchain.v").read_text() == text
    total = rep["total"]
    assert total["fold"] == 3 and "cycles_per_image" not in json.dumps(rep)
    assert "not modelled" in total["note"]
    assert total["line_buffer_bits"] == 4 * 7 * 4 + 1 * 3 * 4 * 5     # K_h 4 and 1 rows
    conv = rep["layers"][0]["conv"]
    assert conv["windows_per_image"] == 12 and conv["patch_bank_bits"] == 2 * 4 * 2 * 2 * 4 * 5
    for item in rep["layers"]:
        assert item["fold"] == 3 and item["multipliers"] <= -(-item["r"] // 3)
    assert "conv" not in rep["layers"][2]


@pytest.mark.verilator
def test_folded_chain_under_verilator():
    from strassen_hw.sim import check, test_vectors
    net = _chain()
    check(net, test_vectors(net, 60, seed=2), fold=3, seed=2, stalls=True)


def test_folded_linear_layers_in_strassen_network():
    """Linear layers only (FoldedNetwork's job in generate_verilog): StrassenNetwork with
    ``fold`` chains FoldedLayers on streams (behind an input latch, as FoldedNetwork), under
    stalls and back-pressure."""
    net = random_network([(7, 5, 6), (6, 4, 3)], seed=4, input_width=4)
    x = np.random.default_rng(4).integers(net.input.min, net.input.max + 1, (12, net.n_in))
    got = _run(StrassenNetwork(net, fold=3), x, stall=0.3, seed=4)
    assert np.array_equal(got, forward(net, x))
