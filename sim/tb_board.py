"""cocotb testbench for a whole board design (:class:`strassen_hw.boards.top.BoardLogic`)
driven through its UART pins, bit by bit (runs inside the simulator, started by
:mod:`strassen_hw.sim.board`; not a pytest file).

``config.json`` in ``STRASSEN_HW_SIM_DIR`` holds ``divisor`` (clock cycles per bit) and
``chunks``: byte strings (as lists) sent on ``rx`` back to back, each followed by ``gap``
idle clock cycles, then ``drain`` cycles of listening. The bytes read on ``tx`` go to
``received.bin``; the ``error`` LED sampled at the end of each chunk's gap and a summary to
``status.json``.
"""

import json
import os
import traceback
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer

_PERIOD = 10  # ns


async def _send_byte(line, byte, bit_ns):
    for bit in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
        line.value = bit
        await Timer(bit_ns, unit="ns")


async def _monitor(line, bit_ns, out, framing):
    while True:
        await FallingEdge(line)
        await Timer(bit_ns // 2, unit="ns")
        if int(line.value):
            continue        # a glitch, not a start bit
        bits = []
        for _ in range(9):
            await Timer(bit_ns, unit="ns")
            bits.append(int(line.value))
        if not bits[8]:
            framing.append(len(out))
        out.append(sum(b << k for k, b in enumerate(bits[:8])))


@cocotb.test()
async def board_link(dut):
    run_dir = Path(os.environ["STRASSEN_HW_SIM_DIR"])
    status = {"error": None}
    try:
        config = json.loads((run_dir / "config.json").read_text())
        bit_ns = config["divisor"] * _PERIOD
        cocotb.start_soon(Clock(dut.clk, _PERIOD, unit="ns").start())
        dut.rx.value = 1
        dut.rst.value = 1
        await Timer(5 * _PERIOD, unit="ns")
        dut.rst.value = 0
        await Timer(5 * _PERIOD + 2, unit="ns")
        received, framing, leds, alive = [], [], [], set()
        cocotb.start_soon(_monitor(dut.tx, bit_ns, received, framing))
        for chunk in config["chunks"]:
            for byte in chunk["bytes"]:
                await _send_byte(dut.rx, byte, bit_ns)
            await Timer(max(1, chunk["gap"]) * _PERIOD, unit="ns")
            leds.append(int(dut.error.value))
            alive.add(int(dut.alive.value))
        await Timer(config["drain"] * _PERIOD, unit="ns")
        (run_dir / "received.bin").write_bytes(bytes(received))
        status.update(framing_errors=framing, error_led=leds)
    except Exception:
        status["error"] = "testbench: " + traceback.format_exc().strip().splitlines()[-1]
    (run_dir / "status.json").write_text(json.dumps(status))
