"""Frozen network → Verilog text and a report of its cost."""

import json
import os

from tqdm import tqdm

from ..frozen import atomic_write
from .layer import LayerPlan
from .network import StrassenNetwork
from .tree import convert

__all__ = ["generate_verilog", "generate", "report", "plan"]

_TOTALS = ("multipliers", "products_shift", "products_zero", "adders", "adders_unshared",
           "register_bits", "latency")


def _report(name, plans):
    layers = [plan.report() for plan in plans]
    total = {key: sum(item[key] for item in layers) for key in _TOTALS}
    kinds = {item["kind"] for item in layers}
    total.update(kind=kinds.pop() if len(kinds) == 1 else "mixed",
                 n_in=layers[0]["n_in"], n_out=layers[-1]["n_out"],
                 r=sum(item["r"] for item in layers),
                 input=layers[0]["input"], output=layers[-1]["output"])
    return {"name": name, "layers": layers, "total": total}


def plan(net, *, levels_per_stage=2, share=True, progress=False):
    """The :class:`LayerPlan` of every layer of ``net`` (adder graphs, folding, schedule)."""
    layers = list(zip(net.layers, net.layer_inputs()))
    return [LayerPlan(layer, fmt, levels_per_stage, share)
            for layer, fmt in tqdm(layers, desc="adder graphs", unit="layer",
                                   disable=not progress, leave=False)]


def report(net, *, levels_per_stage=2, share=True):
    """The cost of ``net`` in hardware, without generating it: per layer and in total
    ``kind`` (of the layer; in the total: the one kind of all layers, else ``"mixed"``),
    ``n_in``, ``r``, ``n_out``, ``multipliers`` (after folding trivial ã: ``products_shift``
    of the r products are ã = ±2^k, wires; ``products_zero`` vanish), ``adders`` (from the
    generator's own graph; ``adders_unshared`` without sharing), ``register_bits``,
    ``latency`` (cycles), ``input`` and ``output`` formats."""
    return _report(net.name, plan(net, levels_per_stage=levels_per_stage, share=share))


def generate_verilog(net, *, levels_per_stage=2, share=True, trees="verilog"):
    """The Verilog text of ``net``: a top module named ``net.name`` with ports ``clk``,
    ``rst`` and the streams ``i`` / ``o``. Byte-identical for identical networks in any process.

    The layers are Amaranth components converted by :func:`amaranth.back.verilog.convert`;
    with ``trees="verilog"`` (default) their adder trees are appended as modules written
    directly from the adder graphs (:mod:`.tree`), which keeps large layers fast;
    ``trees="amaranth"`` converts everything through Amaranth (slow for large layers).
    """
    top = StrassenNetwork(net, levels_per_stage=levels_per_stage, share=share, trees=trees)
    return convert(top, net.name, top.trees)


def generate(net, out_dir, *, levels_per_stage=2, share=True, trees="verilog", progress=False):
    """Write ``out_dir/<name>.v`` and ``out_dir/report.json`` (each atomically); return the
    report (see :func:`report`). ``progress`` shows the steps on stderr."""
    plans = plan(net, levels_per_stage=levels_per_stage, share=share, progress=progress)
    top = StrassenNetwork(net, trees=trees, plans=plans)
    with tqdm(total=1, desc="Verilog", disable=not progress, leave=False) as bar:
        text = convert(top, net.name, top.trees)
        bar.update()
    result = _report(net.name, plans)
    atomic_write(os.path.join(out_dir, f"{net.name}.v"), text)
    atomic_write(os.path.join(out_dir, "report.json"), json.dumps(result, indent=1) + "\n")
    return result
