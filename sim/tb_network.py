"""cocotb testbench for a generated network (runs inside the simulator, started by
:mod:`strassen_hw.sim.runner`; not a pytest file).

The runner hands over a run directory in ``STRASSEN_HW_SIM_DIR`` holding ``config.json`` and
``inputs.bin`` (packed input payloads, ``in_bytes`` little-endian bytes per vector). The
testbench drives the ``i`` stream with random stalls, reads the ``o`` stream under random
back-pressure, and writes the output payloads in arrival order to ``outputs.bin`` and a summary
to ``status.json``. Checking against the reference happens in the runner, outside the simulator.

Speed matters (cocotb costs Python time per clock), so one loop does everything with two
awaits per clock: at the falling edge the driver and monitor write ``valid``/``ready``/payload,
then in ``ReadOnly`` the settled handshake signals say exactly which transfers the next rising
edge makes. Payloads travel as one integer per vector. No numpy here: importing it inside the
simulator's embedded Python costs about a second per run.
"""

import json
import os
import random
import time
import traceback
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

__all__ = ["StreamDriver", "StreamMonitor", "NetworkTestbench"]


def stall_pattern(rng, cycles, fraction, burst):
    """Bursty stalls: a list of ``cycles`` bools, True on about ``fraction`` of them, in runs of
    mean length ``burst`` (a two-state Markov chain driven by ``random.Random`` ``rng``)."""
    if fraction <= 0:
        return [False] * cycles
    leave = 1 / burst
    enter = min(1.0, fraction * leave / (1 - fraction))
    pattern, stalled = [], False
    for _ in range(cycles):
        draw = rng.random()
        stalled = (draw >= leave) if stalled else (draw < enter)
        pattern.append(stalled)
    return pattern


class StreamDriver:
    """Feeds payload words into a stream; holds ``valid`` and the payload until accepted
    (no retraction), and idles on stall cycles between vectors."""

    def __init__(self, valid, ready, payload, words, stalls):
        self.valid, self.ready, self.payload = valid, ready, payload
        self.words, self.stalls = words, stalls
        self.sent = 0
        self._presenting = False
        self._valid_out = None

    def drive(self, cycle):
        if not self._presenting and self.sent < len(self.words):
            if not self.stalls[cycle % len(self.stalls)]:
                self.payload.value = self.words[self.sent]
                self._presenting = True
        if self._valid_out is not self._presenting:
            self.valid.value = int(self._presenting)
            self._valid_out = self._presenting

    def sample(self):
        """In ReadOnly: True when the next rising edge transfers a word."""
        if self._presenting and self.ready.value:
            self.sent += 1
            self._presenting = False
            return True
        return False


class StreamMonitor:
    """Reads a stream into a list of payload integers, toggling ``ready`` at random."""

    def __init__(self, valid, ready, payload, stalls):
        self.valid, self.ready, self.payload = valid, ready, payload
        self.stalls = stalls
        self.words = []
        self._ready_out = None

    def drive(self, cycle):
        ready = not self.stalls[cycle % len(self.stalls)]
        if ready is not self._ready_out:
            self.ready.value = int(ready)
            self._ready_out = ready

    def sample(self):
        if self._ready_out and self.valid.value:
            value = self.payload.value       # a 1-bit port reads as Logic, wider as LogicArray
            self.words.append(value.to_unsigned() if hasattr(value, "to_unsigned") else int(value))
            return True
        return False


class NetworkTestbench:
    """Driver on ``i``, monitor on ``o``, one clock loop; see the module docstring."""

    def __init__(self, dut, config, raw):
        self.dut, self.config = dut, config
        size = config["in_bytes"]
        words = [int.from_bytes(raw[k:k + size], "little") for k in range(0, len(raw), size)]
        rng = random.Random(config["seed"])
        period = max(4096, 2 * len(words) + 1)
        frac, burst = config["stall_fraction"], config["stall_burst"]
        self.driver = StreamDriver(dut.i__valid, dut.i__ready, dut.i__payload, words,
                                   stall_pattern(rng, period, frac, burst))
        self.monitor = StreamMonitor(dut.o__valid, dut.o__ready, dut.o__payload,
                                     stall_pattern(rng, period + 1, frac, burst))
        self.cycles = 0
        self.error = None

    async def reset(self, cycles=2):
        dut = self.dut
        dut.rst.value = 1
        dut.i__valid.value = 0
        dut.o__ready.value = 0
        for _ in range(cycles):
            await FallingEdge(dut.clk)
        dut.rst.value = 0

    async def run(self):
        n = len(self.driver.words)
        idle_limit, drain = self.config["idle_limit"], self.config["drain_cycles"]
        fall, settled = FallingEdge(self.dut.clk), ReadOnly()
        driver, monitor = self.driver, self.monitor
        words = monitor.words
        idle = 0
        while len(words) < n:
            await fall
            driver.drive(self.cycles)
            monitor.drive(self.cycles)
            await settled
            self.cycles += 1
            if driver.sample() | monitor.sample():
                idle = 0
            else:
                idle += 1
                if idle >= idle_limit:
                    self.error = (f"no transfer on either stream for {idle_limit} cycles: the "
                                  f"design accepted {driver.sent} of {n} vectors and gave "
                                  f"{len(words)} outputs, then stopped (lost data or a stuck "
                                  "handshake)")
                    return
        # Drain: a design that duplicates data would keep producing outputs.
        monitor.stalls = [False]
        for _ in range(drain):
            await fall
            monitor.drive(0)
            await settled
            if monitor.sample():
                self.error = (f"the design gave an output after all {n} vectors had come "
                              "out (duplicated or invented data)")
                return


@cocotb.test()
async def network_stream(dut):
    """Drive every input vector through the design and record every output."""
    run_dir = Path(os.environ["STRASSEN_HW_SIM_DIR"])
    config = json.loads((run_dir / "config.json").read_text())
    status = {"cycles": 0, "loop_seconds": 0.0, "error": None}
    tb = None
    try:
        tb = NetworkTestbench(dut, config, (run_dir / "inputs.bin").read_bytes())
        Clock(dut.clk, 10, unit="ns").start()
        await tb.reset()
        start = time.perf_counter()
        await tb.run()
        status.update(cycles=tb.cycles, loop_seconds=time.perf_counter() - start,
                      error=tb.error)
    except Exception as e:  # report anything to the runner, which prints one line
        status["error"] = f"testbench failed: {type(e).__name__}: {e}"
        status["traceback"] = traceback.format_exc()
    finally:
        words = tb.monitor.words if tb is not None else []
        size = config["out_bytes"]
        (run_dir / "outputs.bin").write_bytes(b"".join(w.to_bytes(size, "little")
                                                       for w in words))
        (run_dir / "status.json").write_text(json.dumps(status))
