"""Run a design's Verilog under Verilator with the cocotb testbench, and check it.

A :class:`Design` is what the simulator needs: the Verilog, the top module's name, the formats
and lengths of its stream payloads and a reference function; :meth:`Design.of_network` makes
one from a frozen network (:mod:`.bilinear` one from a matrix multiplier). :func:`simulate`
returns the hardware's outputs; :func:`check` also compares every one of them with the
reference (exact equality) and names the first mismatch. Both take a design or a network.
"""

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from strassen_hw.frozen import Format
from strassen_hw.reference import check_inputs, forward

from .build import build
from .payload import pack, unpack

__all__ = ["Design", "SimulationError", "Mismatch", "SimResult", "run", "simulate", "check",
           "extreme_vectors", "test_vectors"]

#: Stall settings of the testbench: ``stalls=True`` stalls each stream on this fraction of
#: clock cycles, in bursts of this mean length.
DEFAULT_STALLS = 0.2
STALL_BURST = 3
_TB_MODULE = "strassen_hw.sim.tb_network"


class SimulationError(RuntimeError):
    """The simulation could not run to the end (the message is one line)."""


class Mismatch(AssertionError):
    """The hardware's outputs differ from the reference. ``vector`` and ``output`` index the
    first differing value; ``result`` holds the whole :class:`SimResult`."""

    def __init__(self, message, vector, output, result):
        super().__init__(message)
        self.vector, self.output, self.result = vector, output, result


@dataclass(frozen=True)
class Design:
    """A design as the simulator sees it.

    Attributes
    ----------
    verilog : str
        Complete Verilog; its top module ``name`` has the stream ports of the hardware contract.
    name : str
    input, output : Format
        Element formats of the input and output payloads.
    n_in, n_out : int
        Elements per payload.
    reference : callable
        Expected outputs (int64, (N, n_out)) for inputs (N, n_in).
    """
    verilog: str
    name: str
    input: Format
    n_in: int
    output: Format
    n_out: int
    reference: Callable

    @classmethod
    def of_network(cls, net, verilog=None, fold=1):
        """The design of a frozen network: ``verilog`` or ``generate_verilog(net, fold=fold)``,
        checked against :func:`strassen_hw.reference.forward`."""
        if verilog is None:
            from strassen_hw.hw import generate_verilog
            verilog = generate_verilog(net, fold=fold)
        return cls(verilog, net.name, net.input, net.n_in, net.output, net.n_out,
                   partial(forward, net))


def _design(design, verilog, fold=1):
    return design if isinstance(design, Design) else Design.of_network(design, verilog, fold)


@dataclass
class SimResult:
    """What one simulation run produced.

    Attributes
    ----------
    outputs : ndarray of int64, shape (N, n_out)
        The hardware's outputs, in input order.
    cycles : int
        Clock cycles from the end of reset until the last output.
    loop_seconds : float
        Wall time of the testbench's clock loop.
    sim_seconds : float
        Wall time of the whole simulator process (start-up and loading included).
    build_seconds : float
        Verilator compile time; 0.0 when the build came from the cache.
    build_dir : Path
        The (cached) Verilator build.
    waves : Path or None
        The VCD trace, when one was asked for.
    """
    outputs: np.ndarray
    cycles: int
    loop_seconds: float
    sim_seconds: float
    build_seconds: float
    build_dir: Path
    waves: Path = None

    @property
    def vectors_per_second(self):
        """Vectors through the design per second of simulation (loop time)."""
        return len(self.outputs) / max(self.loop_seconds, 1e-9)


def _stall_fraction(stalls):
    if stalls is True:
        return DEFAULT_STALLS
    if stalls is False or stalls is None:
        return 0.0
    fraction = float(stalls)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"stalls must be a bool or a fraction in [0, 1), not {stalls!r}")
    return fraction


def _log_tail(path, lines=5):
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no simulator log"
    return " | ".join(line.strip() for line in text[-lines:])


def run(design, inputs, *, seed=0, stalls=True, waves=False, build_dir=None, verilog=None,
        progress=False, fold=1):
    """Simulate ``design`` on integer ``inputs`` (N, n_in) and return a :class:`SimResult`.

    Parameters
    ----------
    design : Design or FrozenNetwork
    inputs : array_like of int, shape (N, n_in)
        Values in the design's input format.
    seed : int
        Seed of the random stall patterns.
    stalls : bool or float
        Random input stalls and output back-pressure: ``True`` for the default fraction of
        stalled cycles on each stream, ``False`` for none, or a fraction in [0, 1).
    waves : bool or path-like
        Record a VCD trace of every signal: ``True`` writes ``<name>.vcd`` in the current
        directory, a path writes there.
    build_dir : path-like, optional
        Build cache directory (default: ``~/.cache/strassen-hw/verilator``).
    verilog : str, optional
        For a network: Verilog to simulate instead of ``strassen_hw.hw.generate_verilog(net)``;
        its top-level module must be ``net.name`` with the stream ports of the hardware
        contract.
    progress : bool
        Show progress while compiling.
    fold : int
        For a network without ``verilog``: the architecture to generate (1 fully parallel,
        F > 1 folded, see :func:`strassen_hw.hw.generate_verilog`).

    Raises
    ------
    FrozenError
        The inputs do not fit the design.
    ToolError, BuildError, SimulationError
        Verilator is missing, the build failed, or the simulation did not finish.
    """
    x = check_inputs(design, inputs)
    fraction = _stall_fraction(stalls)
    design = _design(design, verilog, fold)
    bdir, build_seconds = build(design.verilog, design.name, waves=bool(waves), cache=build_dir,
                                progress=progress)
    run_dir = Path(tempfile.mkdtemp(prefix="strassen-hw-sim-"))
    try:
        packed = pack(x, design.input.width)
        (run_dir / "inputs.bin").write_bytes(packed.tobytes())
        out_bytes = (design.n_out * design.output.width + 7) // 8
        config = {"seed": int(seed), "stall_fraction": fraction, "stall_burst": STALL_BURST,
                  "in_bytes": packed.shape[1], "out_bytes": out_bytes,
                  "idle_limit": 10_000, "drain_cycles": 16}
        (run_dir / "config.json").write_text(json.dumps(config))
        from cocotb_tools.runner import get_runner
        runner = get_runner("verilator")
        start = time.perf_counter()
        try:
            runner.test(test_module=_TB_MODULE, hdl_toplevel=design.name, build_dir=bdir,
                        hdl_toplevel_lang="verilog",
                        test_dir=run_dir, results_xml=str(run_dir / "results.xml"),
                        extra_env={"STRASSEN_HW_SIM_DIR": str(run_dir)},
                        waves=bool(waves), log_file=run_dir / "sim.log")
        except (RuntimeError, SystemExit):
            pass  # judged by status.json below
        sim_seconds = time.perf_counter() - start
        status_path = run_dir / "status.json"
        if not status_path.is_file():
            keep = Path(tempfile.mkdtemp(prefix="strassen-hw-failed-sim-"))
            shutil.copy(run_dir / "sim.log", keep / "sim.log")
            raise SimulationError(f"the simulator stopped before the testbench finished: "
                                  f"{_log_tail(run_dir / 'sim.log')} (log: {keep / 'sim.log'})")
        status = json.loads(status_path.read_text())
        if status["error"]:
            raise SimulationError(status["error"])
        rows = np.frombuffer((run_dir / "outputs.bin").read_bytes(), dtype=np.uint8)
        rows = rows.reshape(-1, out_bytes)
        outputs = unpack(rows, design.n_out, design.output.width, design.output.signed)
        trace = None
        if waves:
            trace = Path(f"{design.name}.vcd" if waves is True else waves).resolve()
            shutil.move(run_dir / "dump.vcd", trace)
        return SimResult(outputs=outputs, cycles=status["cycles"],
                         loop_seconds=status["loop_seconds"], sim_seconds=sim_seconds,
                         build_seconds=build_seconds, build_dir=bdir, waves=trace)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def simulate(design, inputs, *, seed=0, stalls=True, waves=False, build_dir=None, verilog=None,
             fold=1):
    """The hardware's outputs for ``inputs``: int64 array (N, n_out), in order.
    See :func:`run` for the parameters."""
    return run(design, inputs, seed=seed, stalls=stalls, waves=waves, build_dir=build_dir,
               verilog=verilog, fold=fold).outputs


def check(design, inputs, *, verilog=None, fold=1, **kwargs):
    """Simulate ``design`` (a :class:`Design` or a network) on ``inputs`` (see :func:`run`)
    and compare every output with its reference, exactly. Returns the :class:`SimResult`;
    raises :class:`Mismatch` naming the first differing vector and output."""
    x = check_inputs(design, inputs)
    design = _design(design, verilog, fold)
    result = run(design, x, **kwargs)
    expected = design.reference(x)
    differ = result.outputs != expected
    if differ.any():
        i, j = (int(k) for k in np.argwhere(differ)[0])
        raise Mismatch(f"mismatch at vector {i}, output {j}: the hardware gave "
                       f"{result.outputs[i, j]}, the reference says {expected[i, j]} "
                       f"({int(differ.any(axis=1).sum())} of {len(x)} vectors differ)",
                       i, j, result)
    return result


def extreme_vectors(net):
    """Inputs at the edges of the input range: all minimum, all maximum, alternating
    minimum/maximum (both phases), then for each row of ``W_b`` of every layer that reads the
    network input the two inputs that drive that row's sum to its largest and its smallest value
    (a convolution: every window of the image alike, where the windows do not overlap)."""
    lo, hi = net.input.min, net.input.max
    alternate = np.where(np.arange(net.n_in) % 2 == 0, lo, hi)
    rows = [np.full(net.n_in, lo), np.full(net.n_in, hi), alternate, lo + hi - alternate]
    for node in net.readers("input"):
        if node.KIND not in ("linear", "conv"):
            continue
        conv = node.KIND == "conv"
        for row in (node.layer.patch if conv else node.layer).w_b:
            if conv:
                row = _tile_window(node.layer.geometry, row)
            rows += [np.where(row > 0, hi, lo), np.where(row > 0, lo, hi)]
    return np.stack(rows).astype(np.int64)


def _tile_window(geometry, row):
    """A ``W_b`` row of a convolution's patch layer laid over the image at every window: the
    image value at each pixel is the row's entry there in the last window covering it."""
    image = np.zeros((geometry.height, geometry.width, geometry.in_channels), dtype=np.int64)
    kh, kw = geometry.window
    window = np.asarray(row).reshape(kh, kw, geometry.in_channels)
    (sh, sw), (pad_h, pad_w) = geometry.stride, geometry.padding
    for i in range(geometry.patches[0]):
        for j in range(geometry.patches[1]):
            top, left = sh * geometry.p * i - pad_h, sw * geometry.p * j - pad_w
            for a in range(kh):
                for b in range(kw):
                    if 0 <= top + a < geometry.height and 0 <= left + b < geometry.width:
                        image[top + a, left + b] = window[a, b]
    return image.reshape(-1)


def test_vectors(net, count, seed=0):
    """:func:`extreme_vectors`, then ``count`` random vectors uniform over the input range."""
    lo, hi = net.input.min, net.input.max
    rng = np.random.default_rng(seed)
    random = rng.integers(lo, hi + 1, (count, net.n_in), dtype=np.int64)
    return np.concatenate([extreme_vectors(net), random])


test_vectors.__test__ = False  # not a pytest test, despite the name
