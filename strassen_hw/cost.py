"""What a network costs in silicon: Yosys (and nextpnr) figures per variant and device.

:func:`measure` generates a variant's Verilog (:func:`strassen_hw.hw.generate_verilog`), runs
the synthesis tools on it through :mod:`strassen_hw.toolchain` (the one module that runs them;
results cached by a hash of the files and tool versions) and returns one row of figures:

* iCE40 and ECP5 (:data:`DEVICES`): ``synth_ice40`` (``-dsp`` on the UP5K, the iCE40 with DSP
  blocks) or ``synth_ecp5``, then nextpnr ``--pack-only`` for the logic cells (packing needs
  no pins, so any design is counted, fitting or not). With ``pnr``, the design is also placed
  and routed inside a small harness (:func:`harness_verilog`: a serial shift register drives
  the inputs, the outputs are XOR-reduced to one pin) for nextpnr's Fmax.
* ``asic``: Yosys' generic synthesis to a small gate library (:data:`ASIC_SCRIPT`), with gate
  and flip-flop counts and the logic depth (``ltp -noff``: cells on the longest path between
  flip-flops and ports).

A variant is a frozen network with a label and, where known, its accuracy
(:class:`Variant`); ``--baselines`` adds the dense int8 and TWN variants of the same trained
model (:func:`baseline_variants`).
"""

import json
import re
import sys
import time
from dataclasses import dataclass, replace

from .toolchain import ToolchainError, run_plan

from .errors import StrassenHWError

__all__ = ["Device", "DEVICES", "Variant", "CostError", "measure", "cost_report",
           "synthesize_module", "place_and_route",
           "format_table", "digits_accuracy", "baseline_variants", "harness_verilog",
           "ASIC_SCRIPT"]


class CostError(StrassenHWError, RuntimeError):
    """A tool failed, ran out of time or is missing, or a variant cannot be made; one line."""


@dataclass(frozen=True)
class Device:
    """A synthesis target and what it holds.

    Attributes
    ----------
    name : str
        As given to ``--device``.
    family : ``"ice40"``, ``"ecp5"`` or ``"yosys"`` (generic gates, no device)
    part : str
        The chip.
    synth : str
        Yosys synthesis commands (``{top}``: the top module).
    nextpnr : str
        nextpnr's device options.
    logic_cells, dsps, rams, ffs : int or None
        Capacity: iCE40 logic cells (LUT4 + carry + flip-flop) or ECP5 LUT4 (``TRELLIS_COMB``
        slots), DSP blocks (``SB_MAC16`` / ``MULT18X18D``), block RAMs (``SB_RAM40_4K`` /
        ``DP16KD``), flip-flops where they are counted apart (ECP5); ``None`` for no limit.
    target_mhz : float
        Clock given to nextpnr with ``pnr`` (its timing-driven placement aims at it; the
        achieved Fmax is reported).
    fallback : str or None
        Synthesis commands used instead of ``synth`` when Yosys fails an internal assertion
        on it.
    """
    name: str
    family: str
    part: str
    synth: str
    nextpnr: str = ""
    logic_cells: int = None
    dsps: int = None
    rams: int = None
    ffs: int = None
    target_mhz: float = 0.0
    fallback: str = None


#: Generic synthesis for ``--device asic``: simple two-input gates and 2:1 muxes (plus NOT),
#: flip-flops as Yosys' internal cells.
ASIC_SCRIPT = "synth -flatten -noabc -top {top}; abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX; opt_clean"

#: ``synth_ecp5`` with Yosys' classic ABC for the LUT mapping instead of ABC9, the ECP5
#: fallback: Yosys 0.70's ABC9 fails an assertion (``GetSize(conn.first) ==
#: GetSize(conn.second)``, in ``abc_ops -reintegrate``) on the demo's digits network. ABC9 is
#: timing-driven: on a random 16→8 layer the fallback reached 100 MHz instead of 125.
ECP5_SCRIPT = ("synth_ecp5 -top {top} -run begin:map_luts; "
               "techmap -map +/lattice/latches_map.v; abc -lut 4; clean; "
               "synth_ecp5 -top {top} -run map_cells:")

#: The devices of ``--device`` and their capacities (data sheets: iCE40 UltraPlus and LP/HX
#: families, ECP5 family; the same figures nextpnr reports as available).
DEVICES = {d.name: d for d in (
    Device("up5k", "ice40", "iCE40UP5K", "synth_ice40 -dsp -top {top}", "--up5k --package sg48",
           logic_cells=5280, dsps=8, rams=30, target_mhz=50),
    Device("hx8k", "ice40", "iCE40HX8K", "synth_ice40 -top {top}", "--hx8k --package ct256",
           logic_cells=7680, dsps=0, rams=32, target_mhz=100),
    Device("ecp5-25k", "ecp5", "LFE5U-25F", "synth_ecp5 -top {top}", "--25k --package CABGA256",
           logic_cells=24288, dsps=28, rams=56, ffs=24288, target_mhz=150, fallback=ECP5_SCRIPT),
    Device("ecp5-45k", "ecp5", "LFE5U-45F", "synth_ecp5 -top {top}", "--45k --package CABGA256",
           logic_cells=43848, dsps=72, rams=108, ffs=43848, target_mhz=150, fallback=ECP5_SCRIPT),
    Device("ecp5-85k", "ecp5", "LFE5U-85F", "synth_ecp5 -top {top}", "--85k --package CABGA381",
           logic_cells=83640, dsps=156, rams=208, ffs=83640, target_mhz=150, fallback=ECP5_SCRIPT),
    Device("asic", "yosys", "generic gates", ASIC_SCRIPT),
)}

#: Yosys cell types per family: (LUTs, carries, flip-flop prefix, DSPs, RAMs); nextpnr's name
#: of the logic cells.
_CELLS = {
    "ice40": ("SB_LUT4", "SB_CARRY", "SB_DFF", "SB_MAC16", ("SB_RAM40_4K",), "ICESTORM_LC"),
    "ecp5": ("LUT4", "CCU2C", "TRELLIS_FF", "MULT18X18D", ("DP16KD", "PDPW16KD"),
             "TRELLIS_COMB"),
}
_FF = re.compile(r"^\$_(S?DFF|DFFSR|ALDFF|DLATCH|SR)")
_PACK = "pack-report.json"


@dataclass(frozen=True)
class Variant:
    """A network to cost: ``label`` (``"strassen"``, ``"twn"``, ``"dense"``), the frozen
    network, and its test accuracy (a fraction) when known."""
    label: str
    net: object
    accuracy: float = None


def _tool_script(device, name, top, sources, json_out):
    """Shell line running Yosys on ``sources`` for ``device``: log ``name.rpt``, cell counts
    in ``yosys-stat.json``, netlist ``json_out`` (FPGA)."""
    commands = [f"read_verilog {' '.join(sources)}", device.synth.format(top=top),
                "tee -q -o yosys-stat.json stat -json"]
    if device.family == "yosys":
        commands.append("tee -q -o ltp.txt ltp -noff")
    else:
        commands.append(f"write_json {json_out}")
    return f'"$YOSYS" -q -l {name}.rpt -p "{"; ".join(commands)}"'


def _nextpnr(device, name, netlist, options, report):
    tool = "$NEXTPNR_ICE40" if device.family == "ice40" else "$NEXTPNR_ECP5"
    return (f'"{tool}" -q -l {name}.tim {device.nextpnr} --json {netlist} {options} '
            f"--report {report}")


def _synthesis_plan(verilog, top, device, name):
    """The build plan of ``verilog`` (top module ``top``) for ``device``: synthesis, then
    nextpnr's packing (FPGA)."""
    from amaranth.build.run import BuildPlan
    plan = BuildPlan(f"build_{name}")
    plan.add_file(f"{name}.v", verilog)
    lines = ["set -e", _tool_script(device, name, top, [f"{name}.v"], f"{name}.json")]
    if device.family != "yosys":
        lines.append(_nextpnr(device, name, f"{name}.json", "--pack-only", _PACK))
        lines.append(f"cp {_PACK} nextpnr-report.json")
    plan.add_file(f"build_{name}.sh", "\n".join(lines) + "\n")
    return plan


def _pnr_plan(verilog, top, device, name, in_bits, out_bits, stream=True):
    """The build plan placing and routing ``top`` inside :func:`harness_verilog`."""
    from amaranth.build.run import BuildPlan
    plan = BuildPlan(f"build_{name}")
    plan.add_file(f"{name}.v", verilog)
    plan.add_file("harness.v", harness_verilog(top, in_bits, out_bits, stream))
    lines = ["set -e", _tool_script(device, name, "harness", [f"{name}.v", "harness.v"],
                                    "harness.json"),
             _nextpnr(device, name, "harness.json",
                      f"--freq {device.target_mhz:g} --timing-allow-fail",
                      "nextpnr-report.json")]
    plan.add_file(f"build_{name}.sh", "\n".join(lines) + "\n")
    return plan


def harness_verilog(top, in_bits, out_bits, stream=True, group=16):
    """Verilog module ``harness(clk, sin, sout)`` around the module ``top``: a shift
    register fed from ``sin`` holds every input bit, and the output bits are XOR-reduced
    through one register level (groups of ``group`` bits) to ``sout``, so that place and
    route sees every input and output on three pins. ``top`` is a network (``stream``: ports
    of :class:`~strassen_hw.hw.StrassenNetwork`, valid and ready held high) or an adder tree
    (ports ``clk``, ``en``, ``x``, ``y``; ``en`` held high)."""
    groups = -(-out_bits // group)
    lines = ["module harness(clk, sin, sout);", "  input clk;", "  input sin;",
             "  output reg sout;",
             f"  reg [{in_bits - 1}:0] shift;", f"  wire [{out_bits - 1}:0] out;",
             f"  reg [{groups - 1}:0] part;",
             f"  {top} core(.clk(clk), .rst(1'b0), .i__valid(1'b1), .i__payload(shift), "
             ".i__ready(), .o__ready(1'b1), .o__valid(), .o__payload(out));" if stream else
             f"  {top} core(.clk(clk), .en(1'b1), .x(shift), .y(out));",
             "  always @(posedge clk) begin",
             "    shift <= {shift, sin};" if in_bits > 1 else "    shift <= sin;"]
    for k in range(groups):
        hi = min(out_bits, (k + 1) * group) - 1
        lines.append(f"    part[{k}] <= ^out[{hi}:{k * group}];")
    lines += ["    sout <= ^part;", "  end", "endmodule"]
    return "\n".join(lines) + "\n"


def _run(plan, family, timeout, progress, cache, what):
    try:
        return run_plan(plan, family, timeout=timeout, progress=progress, cache=cache)
    except ToolchainError as e:
        raise CostError(f"{what}: {e}") from None


def _fpga_figures(device, cells, utilization):
    luts, carries, ff, dsp, rams, lc = _CELLS[device.family]
    return {
        "luts": cells.get(luts, 0), "carries": cells.get(carries, 0),
        "ffs": sum(v for k, v in cells.items() if k.startswith(ff)),
        "logic_cells": utilization.get(lc, {}).get("used"),
        "dsps": cells.get(dsp, 0), "rams": sum(cells.get(k, 0) for k in rams),
    }


def _fits(device, row):
    """Whether the row's figures fit the capacities of ``device`` (``None``: no limit)."""
    if device.logic_cells is None:
        return None
    limits = (("logic_cells", device.logic_cells), ("dsps", device.dsps),
              ("rams", device.rams), ("ffs", device.ffs))
    return all(row[key] <= cap for key, cap in limits if cap is not None)


def synthesize_module(verilog, top, device, *, name=None, timeout=3600, progress=False,
                      cache=None):
    """Synthesize the Verilog text ``verilog`` (top module ``top``) for ``device`` (a name of
    :data:`DEVICES`); cached.

    Returns
    -------
    dict
        ``luts``, ``carries``, ``ffs``, ``logic_cells`` (nextpnr's packing), ``dsps``,
        ``rams`` (FPGA; ``None`` for ``asic`` except ``ffs``), ``gates`` and ``depth``
        (``asic``; else ``None``), ``fits`` (against :data:`DEVICES`; ``None`` for ``asic``),
        ``tool_seconds`` (0 when cached), ``synth`` (the Yosys commands used: the device's,
        or its ``fallback``).

    Raises
    ------
    CostError
        Unknown device, or a tool is missing, fails or runs out of time (one line).
    """
    dev = _device(device)
    name = name or f"{top}_{device.replace('-', '_')}"
    try:
        built = _run(_synthesis_plan(verilog, top, dev, name), dev.family, timeout, progress,
                     cache, f"{name} on {device}")
    except CostError as e:
        if dev.fallback is None or "yosys failed: Assert" not in str(e):
            raise
        print(f"{e}; again with {dev.fallback!r}", file=sys.stderr)
        dev = replace(dev, synth=dev.fallback)
        built = _run(_synthesis_plan(verilog, top, dev, name), dev.family, timeout, progress,
                     cache, f"{name} on {device}")
    row = {"luts": None, "carries": None, "ffs": None, "logic_cells": None, "dsps": None,
           "rams": None, "gates": None, "depth": None}
    cells = {k: v for k, v in built.cells.items() if not k.startswith("$scopeinfo")}
    if dev.family == "yosys":
        match = re.search(r"length=(\d+)", (built.directory / "ltp.txt").read_text())
        row["ffs"] = sum(v for k, v in cells.items() if _FF.match(k))
        row["gates"] = sum(cells.values()) - row["ffs"]
        row["depth"] = int(match.group(1)) if match else None
    else:
        packed = json.loads((built.directory / _PACK).read_text()).get("utilization", {})
        row.update(_fpga_figures(dev, cells, packed))
    row["fits"] = _fits(dev, row)
    row["tool_seconds"] = round(built.seconds, 1)
    row["synth"] = dev.synth
    return row


def place_and_route(verilog, top, device, in_bits, out_bits, *, stream=True, name=None,
                    synth=None, timeout=3600, progress=False, cache=None):
    """nextpnr's Fmax (MHz) of the module ``top`` of ``verilog`` (``in_bits`` input and
    ``out_bits`` output bits), placed and routed on ``device`` inside
    :func:`harness_verilog` (synthesized with the commands ``synth``, ``{top}`` for the top
    module; default the device's); cached.
    Returns ``(fmax_mhz, tool_seconds)``."""
    dev = _device(device)
    if synth is not None:
        dev = replace(dev, synth=synth)
    if dev.family == "yosys":
        raise CostError(f"--device {device}: has no place and route")
    name = name or f"{top}_{device.replace('-', '_')}_pnr"
    placed = _run(_pnr_plan(verilog, top, dev, name, in_bits, out_bits, stream), dev.family,
                  timeout, progress, cache, f"{name} on {device} (place and route)")
    fmax = min((v["achieved"] for v in placed.fmax.values()), default=None)
    return fmax, round(placed.seconds, 1)


def _device(device):
    if device not in DEVICES:
        raise CostError(f"--device {device}: unknown device; choose one of "
                        + ", ".join(DEVICES))
    return DEVICES[device]


def measure(variant, device, *, pnr=False, levels_per_stage=2, timeout=3600, progress=False,
            cache=None):
    """The cost of ``variant`` on ``device`` (a name of :data:`DEVICES`) as one row.

    Returns
    -------
    dict
        ``variant``, ``device``, ``multipliers``, ``adders``, ``register_bits``, ``latency``
        (from the generator's report); the figures of :func:`synthesize_module`;
        ``fmax_mhz`` (with ``pnr`` on an FPGA the design fits; else ``None``),
        ``accuracy``, ``generate_seconds``.

    Raises
    ------
    CostError
        Unknown device, or a tool is missing, fails or runs out of time (one line).
    """
    from .hw import generate_verilog, report
    _device(device)
    net = variant.net
    start = time.perf_counter()
    verilog = generate_verilog(net, levels_per_stage=levels_per_stage)
    generate_seconds = time.perf_counter() - start
    total = report(net, levels_per_stage=levels_per_stage)["total"]
    name = f"{variant.label}_{device.replace('-', '_')}"
    row = {"variant": variant.label, "device": device,
           "multipliers": total["multipliers"], "adders": total["adders"],
           "register_bits": total["register_bits"], "latency": total["latency"]}
    row.update(synthesize_module(verilog, net.name, device, name=name, timeout=timeout,
                                 progress=progress, cache=cache))
    row["fmax_mhz"] = None
    if pnr and DEVICES[device].family != "yosys" and row["fits"]:
        row["fmax_mhz"], seconds = place_and_route(
            verilog, net.name, device, net.n_in * net.input.width,
            net.n_out * net.output.width, name=f"{name}_pnr",
            synth=row["synth"], timeout=timeout,
            progress=progress, cache=cache)
        row["tool_seconds"] += seconds
    row.update(accuracy=variant.accuracy, generate_seconds=round(generate_seconds, 2))
    return row


def cost_report(variants, devices, *, pnr=False, levels_per_stage=2, timeout=3600,
                progress=False, cache=None):
    """One :func:`measure` row per variant and device (variants first)."""
    return [measure(v, d, pnr=pnr, levels_per_stage=levels_per_stage, timeout=timeout,
                    progress=progress, cache=cache)
            for v in variants for d in devices]


_COLUMNS = (("variant", "variant", "{}"), ("device", "device", "{}"),
            ("multipliers", "mults", "{:,}"), ("adders", "adders", "{:,}"),
            ("luts", "LUT4", "{:,}"), ("carries", "carry", "{:,}"), ("ffs", "FF", "{:,}"),
            ("logic_cells", "LC", "{:,}"), ("dsps", "DSP", "{}"), ("rams", "RAM", "{}"),
            ("gates", "gates", "{:,}"), ("depth", "depth", "{}"),
            ("fmax_mhz", "Fmax MHz", "{:.1f}"), ("latency", "latency", "{}"),
            ("fits", "fits", "{}"), ("accuracy", "accuracy", "{:.2%}"))


def format_table(rows):
    """The rows as an aligned text table (columns without any figure left out)."""
    columns = [c for c in _COLUMNS if any(row.get(c[0]) is not None for row in rows)]
    body = [[("-" if row.get(key) is None else
              ("yes" if row[key] else "no") if key == "fits" else fmt.format(row[key]))
             for key, _, fmt in columns] for row in rows]
    header = [title for _, title, _ in columns]
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    line = "  ".join("{:<%d}" % w if k < 2 else "{:>%d}" % w for k, w in enumerate(widths))
    return "\n".join([line.format(*header), line.format(*("-" * w for w in widths))]
                     + [line.format(*cells) for cells in body])


def digits_accuracy(net):
    """Test accuracy of ``net`` on the demo's fixed digits split when it reads the digits
    (64 inputs in the pixel format, 10 outputs), else ``None``."""
    from .train import data as digits
    if net.n_in != 64 or net.n_out != 10 or net.input != digits.INPUT_FORMAT:
        return None
    from .reference import forward
    data = digits.load()
    return float((forward(net, data.x_test).argmax(1) == data.y_test).mean())


def baseline_variants(seed=0, cache_dir=None, settings=None):
    """The dense int8 and TWN variants of the demo's digits model of ``seed`` (trained
    checkpoints in ``cache_dir``; ``settings``: training settings overriding the demo's),
    with their accuracies, from
    :func:`strassen_hw.demo.digits_variants` (the one place that makes the baselines).

    Raises
    ------
    CostError
        The baseline generator is not part of this version.
    """
    from . import demo
    if not hasattr(demo, "digits_variants"):
        raise CostError("--baselines: the dense and TWN baseline generator "
                        "(strassen_hw.demo.digits_variants) is not part of this version")
    variants = demo.digits_variants(seed, cache_dir, settings=settings, progress=True,
                                    say=lambda line: print(line, file=sys.stderr))
    return [Variant(label, net, accuracy)
            for label, (net, accuracy) in variants.items() if label != "strassen"]
