"""``strassen-hw build``: a frozen network on a board, as a bitstream and a report."""

import json
import os
from pathlib import Path

from ..frozen import atomic_write
from ..toolchain import ToolchainError, build_options, run_plan
from . import get_board
from .top import DEFAULT_BAUD, BoardTop

from strassen_hw.errors import StrassenHWError

__all__ = ["BoardBuildError", "DoesNotFit", "FOLDS", "build_board", "link_throughput"]

#: The folds ``build`` tries, smallest first, when none is given.
FOLDS = (1,) + tuple(1 << k for k in range(1, 13))

#: nextpnr resource names of each family: the summary keys of ``report.json``.
_RESOURCES = {
    "ice40": {"logic_cells": "ICESTORM_LC", "dsps": "ICESTORM_DSP", "rams": "ICESTORM_RAM",
              "sprams": "ICESTORM_SPRAM"},
    "ecp5": {"logic_cells": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsps": "MULT18X18D",
             "rams": "DP16KD"},
}
_WHAT = {"logic_cells": "logic cells", "ffs": "flip-flops", "dsps": "DSP blocks",
         "rams": "block RAMs", "sprams": "SPRAMs"}


class BoardBuildError(StrassenHWError, RuntimeError):
    """The build failed, or its result does not fit or meet the clock; one line."""


class DoesNotFit(BoardBuildError):
    """The design needs more of a resource than the device has."""


def link_throughput(in_bytes, out_bytes, baud):
    """Vectors per second the UART link carries (8N1: 10 bits per byte; requests and answers
    travel at the same time, so the longer frame sets the rate)."""
    request, response = in_bytes + 4, out_bytes + 5
    return baud / 10 / max(request, response)


def _summary(family, utilization, cells):
    summary = {}
    for key, resource in _RESOURCES[family].items():
        if resource in utilization:
            summary[key] = dict(utilization[resource])
    if not cells:
        return summary
    if family == "ice40":
        summary["luts"] = {"used": cells.get("SB_LUT4", 0)}
        summary["carries"] = {"used": cells.get("SB_CARRY", 0)}
        summary["ffs"] = {"used": sum(v for k, v in cells.items() if k.startswith("SB_DFF"))}
    else:
        summary["luts"] = {"used": cells.get("LUT4", 0)}
        summary["carries"] = {"used": cells.get("CCU2C", 0)}
    return summary


def _core(net, fold, levels_per_stage, component=True):
    """The network's core (a component, fully parallel for ``fold = 1``, else folded) and its
    report; only the report (and ``None``) without ``component``."""
    from ..hw.generate import cost, hardware
    try:
        if component:
            return hardware(net, fold=fold, levels_per_stage=levels_per_stage)
        return None, cost(net, fold=fold, levels_per_stage=levels_per_stage)
    except ValueError as e:
        raise BoardBuildError(f"--fold: {e}") from None


def build_board(net, board, out_dir, *, fold=None, baud=DEFAULT_BAUD, levels_per_stage=2,
                timeout=3600, progress=False, cache=None, say=None):
    """Build ``net`` for ``board`` and write ``out_dir/<name>.bin`` (iCE40) or ``.bit`` (ECP5)
    and ``out_dir/report.json``; return the report.

    ``fold`` (see :func:`strassen_hw.hw.generate_verilog`) trades area for cycles per vector;
    ``None`` picks the smallest of :data:`FOLDS` that fits the device: a fold whose registers
    alone need more flip-flops than the device has is skipped without running the tools, the
    others are built (cached by content) until one fits. ``say`` receives a line per fold
    tried; the report lists them under ``folds_tried``.

    The report holds the board, the clock, the baud rate, ``utilization`` (``logic_cells``,
    ``luts``, ``carries``, ``ffs``, ``dsps``, ``rams`` with ``used`` and, where the device has
    a fixed number, ``available``), ``fmax_mhz`` from nextpnr, the link's and the core's
    vectors per second, the raw ``nextpnr`` utilization and Yosys ``cells``, and the layer
    report of :func:`strassen_hw.hw.generate.report` under ``network``.

    Raises
    ------
    BoardBuildError
        Unknown board, a tool failed, the design does not fit the device, or it misses the
        board's clock (nothing is written then).
    """
    try:
        spec = get_board(board)
    except ValueError as e:
        raise BoardBuildError(str(e)) from None
    if fold is not None:
        return _build(net, spec, out_dir, fold, baud, levels_per_stage, timeout, progress,
                      cache, [])
    say = say or (lambda line: None)
    tried = []
    for candidate in FOLDS:
        _, core_report = _core(net, candidate, levels_per_stage, component=False)
        bits = core_report["total"]["register_bits"]
        if bits > spec.flip_flops:
            reason = (f"{bits:,} register bits, more than the {spec.flip_flops:,} "
                      "flip-flops of the device")
            tried.append({"fold": candidate, "fits": False, "reason": reason})
            say(f"fold {candidate}: {reason}; skipped")
            continue
        say(f"fold {candidate}: building ...")
        try:
            return _build(net, spec, out_dir, candidate, baud, levels_per_stage, timeout,
                          progress, cache, tried)
        except DoesNotFit as e:
            tried.append({"fold": candidate, "fits": False, "reason": str(e)})
            say(f"fold {candidate}: {e}")
    raise DoesNotFit(f"{net.name} does not fit the {spec.name} at any fold up to "
                     f"{tried[-1]['fold'] if tried else 1}: {tried[-1]['reason'] if tried else ''}"
                     "; use a smaller network or a larger board")


def _build(net, spec, out_dir, fold, baud, levels_per_stage, timeout, progress, cache, tried):
    core, core_report = _core(net, fold, levels_per_stage)
    try:
        top = BoardTop(core, spec.name, baud=baud)
    except ValueError as e:
        raise BoardBuildError(str(e)) from None
    platform = top.platform
    plan = platform.build(top, name=net.name, do_build=False, **build_options(spec.family))
    try:
        result = run_plan(plan, spec.family, timeout=timeout, progress=progress, cache=cache)
    except ToolchainError as e:
        _check_fit(net.name, _summary(spec.family, e.utilization, {}), spec, platform)
        raise BoardBuildError(str(e)) from None
    summary = _summary(spec.family, result.utilization, result.cells)
    _check_fit(net.name, summary, spec, platform)
    clock_mhz = platform.default_clk_frequency / 1e6
    cycles = core_report["total"].get("cycles_per_vector", 1)
    fmax = min((v["achieved"] for v in result.fmax.values()), default=None)
    logic = top.logic
    report = {
        "board": spec.name, "device": platform.device, "clock_mhz": clock_mhz,
        "fmax_mhz": fmax, "timing_met": fmax is not None and fmax >= clock_mhz,
        "fold": fold, "levels_per_stage": levels_per_stage, "baud": baud,
        "bitstream": f"{net.name}.{spec.bitstream}",
        "utilization": summary,
        "link": {"request_bytes": logic.in_bytes + 4, "response_bytes": logic.out_bytes + 5,
                 "vectors_per_s": round(link_throughput(logic.in_bytes, logic.out_bytes,
                                                        baud), 1)},
        "core": {"cycles_per_vector": cycles,
                 "vectors_per_s": round(platform.default_clk_frequency / cycles)},
        "folds_tried": tried + [{"fold": fold, "fits": True}],
        "build_seconds": round(result.seconds, 1), "cached": result.seconds == 0.0,
        "nextpnr": result.utilization, "cells": result.cells,
        "network": core_report,
    }
    _check_timing(report, spec)
    os.makedirs(out_dir, exist_ok=True)
    atomic_write(Path(out_dir) / report["bitstream"],
                 result.file(spec.bitstream).read_bytes())
    atomic_write(Path(out_dir) / "report.json", json.dumps(report, indent=1) + "\n")
    return report


def _check_fit(name, summary, spec, platform):
    over = [f"{item['used']:,} of {item['available']:,} {_WHAT.get(key, key)}"
            for key, item in summary.items()
            if "available" in item and item["used"] > item["available"]]
    if over:
        raise DoesNotFit(f"{name} does not fit the {spec.name}'s {platform.device}: needs "
                              + ", ".join(over) + "; use a larger --fold (fewer physical "
                              "adders and multipliers) or a smaller network")


def _check_timing(report, spec):
    if not report["timing_met"]:
        raise BoardBuildError(
            f"{report['network']['name']} misses the {spec.name}'s {report['clock_mhz']:g} MHz "
            f"clock: nextpnr reaches {report['fmax_mhz']} MHz; use a smaller "
            f"--levels-per-stage (more pipeline registers) or a larger --fold")
