"""The proof: generated Verilog under Verilator, driven by the cocotb testbench with stalls and
back-pressure, equals the numpy reference on every output. And the check can fail: a wrong
reference, a tampered design and a design that ignores back-pressure are all caught.

Five designs are compiled (one, chain, odd and two tampered wrappers); builds are cached by
content, so a second run only simulates."""

import numpy as np
import pytest
from sim_nets import chain, odd, one, wrap

import strassen_hw.sim.runner as runner
from strassen_hw.hw import generate_verilog, report
from strassen_hw.reference import forward
from strassen_hw.sim import Mismatch, SimulationError, check, simulate, test_vectors

pytestmark = pytest.mark.verilator


def _assert_exact(net, x, got):
    expected = forward(net, x)
    assert got.shape == expected.shape
    bad = np.argwhere(got != expected)
    assert len(bad) == 0, f"first mismatch (vector, output) {bad[0]}: {got[tuple(bad[0])]} " \
                          f"!= {expected[tuple(bad[0])]}"


def test_one_by_one_layer_with_unsigned_input_and_minimum_a():
    net = one()
    x = test_vectors(net, 300, seed=1)
    got = simulate(net, x, seed=1)
    _assert_exact(net, x, got)
    assert got.max() == net.output.max          # saturates at the top
    assert len(np.unique(got)) > 5


def test_odd_shape_zero_row_zero_column_zero_a_and_saturation():
    net = odd()
    x = test_vectors(net, 1500, seed=2)
    result = check(net, x, seed=2)
    y = result.outputs
    _assert_exact(net, x, y)
    assert (y == net.output.min).any() and (y == net.output.max).any()
    assert len(np.unique(y)) > 200


def test_two_chained_layers():
    net = chain()
    x = test_vectors(net, 1500, seed=3)
    _assert_exact(net, x, simulate(net, x, seed=3))


def test_heavy_backpressure_and_full_rate():
    """75 % of cycles stalled on each stream loses and duplicates nothing; without stalls the
    design takes one vector per clock (cycles = vectors + latency)."""
    net = odd()
    x = test_vectors(net, 400, seed=4)
    heavy = check(net, x, seed=4, stalls=0.75)
    assert heavy.cycles > 3 * len(x)            # the stalls really happened
    free = check(net, x, seed=4, stalls=False)
    latency = report(net)["total"]["latency"]
    assert len(x) <= free.cycles <= len(x) + latency + 1
    assert np.array_equal(heavy.outputs, free.outputs)


def test_a_wrong_reference_is_caught_and_the_vector_named(monkeypatch):
    net = chain()
    x = test_vectors(net, 200, seed=5)

    def wrong(net_, x_):
        y = forward(net_, x_)
        y[150, 2] += 1
        return y

    monkeypatch.setattr(runner, "forward", wrong)
    with pytest.raises(Mismatch) as e:
        check(net, x, seed=5)
    assert (e.value.vector, e.value.output) == (150, 2)
    assert "vector 150, output 2" in str(e.value)


def test_a_tampered_design_is_caught_and_the_first_bad_vector_named():
    """Flip bit 0 of output 1 whenever its true value is a chosen one: the check must name the
    first vector where the reference gives that value."""
    net = chain()
    x = test_vectors(net, 600, seed=6)
    expected = forward(net, x)
    target = int(expected[300, 1])
    first = int(np.flatnonzero(expected[:, 1] == target)[0])
    w = net.output.width
    body = f"""  assign i__ready = inner_i_ready;
  assign o__valid = inner_o_valid;
  assign o__payload = inner_o_payload ^
      (inner_o_payload[{2 * w - 1}:{w}] == {w}'d{target % (1 << w)} ? {3 * w}'d{1 << w} : 0);"""
    with pytest.raises(Mismatch) as e:
        check(net, x, seed=6, verilog=wrap(generate_verilog(net), net, body))
    assert (e.value.vector, e.value.output) == (first, 1)
    assert f"vector {first}, output 1" in str(e.value)


def test_a_design_that_ignores_backpressure_fails_only_under_stalls():
    """Claiming ready while the pipeline is full drops vectors: caught under stalls, while the
    same design passes at full rate (so it is the stalls that find it)."""
    net = one()
    x = test_vectors(net, 300, seed=7)
    verilog = wrap(generate_verilog(net), net, """  assign i__ready = 1'b1;
  assign o__valid = inner_o_valid;
  assign o__payload = inner_o_payload;""")
    _assert_exact(net, x, simulate(net, x, stalls=False, verilog=verilog))
    with pytest.raises((Mismatch, SimulationError)):
        check(net, x, seed=7, stalls=0.5, verilog=verilog)


def test_waves_writes_a_trace_of_the_ports(tmp_path):
    net = one()
    x = test_vectors(net, 10)
    result = runner.run(net, x, waves=tmp_path / "one.vcd")
    _assert_exact(net, x, result.outputs)
    text = result.waves.read_text()
    assert result.waves == tmp_path / "one.vcd"
    assert "$enddefinitions" in text and "o__payload" in text and "i__ready" in text
