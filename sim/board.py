"""Run a board design (:class:`~strassen_hw.boards.top.BoardLogic`) under Verilator, driving
its UART pins bit by bit with the cocotb testbench :mod:`.tb_board`."""

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .build import build
from .runner import SimulationError

__all__ = ["BoardSimResult", "simulate_board"]

_PORTS = ("clk", "rst", "rx", "tx", "alive", "error")


@dataclass
class BoardSimResult:
    """``received``: the bytes the board sent on ``tx``; ``error_led``: the error LED after
    each chunk (and its gap); ``framing_errors``: indices of received bytes with a low stop
    bit (none expected)."""
    received: bytes
    error_led: list
    framing_errors: list


def simulate_board(logic, chunks, *, name="board", drain=None, build_dir=None):
    """Send ``chunks`` (a list of ``(bytes, gap_cycles)``) to the board design ``logic`` (a
    :class:`~strassen_hw.boards.top.BoardLogic`; its ``divisor`` sets the bit time) through
    its ``rx`` pin and return what it answers on ``tx`` as a :class:`BoardSimResult`.

    ``drain`` is the number of clock cycles to keep listening after the last chunk (default:
    enough for 64 answer bytes).
    """
    from amaranth.back import verilog
    text = verilog.convert(logic, name=name, emit_src=False)
    bdir, _ = build(text, name, cache=build_dir, ports=_PORTS)
    run_dir = Path(tempfile.mkdtemp(prefix="strassen-hw-board-sim-"))
    try:
        config = {"divisor": logic.divisor,
                  "chunks": [{"bytes": list(data), "gap": int(gap)} for data, gap in chunks],
                  "drain": drain if drain is not None else 64 * 10 * logic.divisor}
        (run_dir / "config.json").write_text(json.dumps(config))
        from cocotb_tools.runner import get_runner
        runner = get_runner("verilator")
        try:
            runner.test(test_module="strassen_hw.sim.tb_board", hdl_toplevel=name,
                        build_dir=bdir, hdl_toplevel_lang="verilog", test_dir=run_dir,
                        results_xml=str(run_dir / "results.xml"),
                        extra_env={"STRASSEN_HW_SIM_DIR": str(run_dir)},
                        log_file=run_dir / "sim.log")
        except (RuntimeError, SystemExit):
            pass  # judged by status.json below
        status_path = run_dir / "status.json"
        if not status_path.is_file():
            raise SimulationError("the simulator stopped before the board testbench finished")
        status = json.loads(status_path.read_text())
        if status["error"]:
            raise SimulationError(status["error"])
        return BoardSimResult((run_dir / "received.bin").read_bytes(), status["error_led"],
                              status["framing_errors"])
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
