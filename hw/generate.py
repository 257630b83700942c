"""Frozen network → Verilog text and a report of its cost."""

import json
import os

from amaranth.back import verilog

from ..frozen import atomic_write
from .network import StrassenNetwork

__all__ = ["generate_verilog", "generate", "report"]


def _top(net, levels_per_stage, share):
    return StrassenNetwork(net, levels_per_stage=levels_per_stage, share=share)


def report(top):
    """Per-layer and total figures of an elaborated-or-not :class:`StrassenNetwork`."""
    layers = [layer.plan.report() for layer in top.layers]
    total = {key: sum(item[key] for item in layers)
             for key in ("multipliers", "adders", "register_bits", "latency")}
    total.update(n_in=layers[0]["n_in"], n_out=layers[-1]["n_out"],
                 r=sum(item["r"] for item in layers),
                 input=layers[0]["input"], output=layers[-1]["output"])
    return {"name": top.net.name, "layers": layers, "total": total}


def generate_verilog(net, *, levels_per_stage=2, share=True):
    """The Verilog text of ``net``: one module named ``net.name`` with ports ``clk``, ``rst``
    and the streams ``i`` / ``o``. Byte-identical for identical networks in any process."""
    top = _top(net, levels_per_stage, share)
    return verilog.convert(top, name=net.name, emit_src=False)


def generate(net, out_dir, *, levels_per_stage=2, share=True):
    """Write ``out_dir/<name>.v`` and ``out_dir/report.json`` (atomically); return the report."""
    top = _top(net, levels_per_stage, share)
    text = verilog.convert(top, name=net.name, emit_src=False)
    result = report(top)
    atomic_write(os.path.join(out_dir, f"{net.name}.v"), text)
    atomic_write(os.path.join(out_dir, "report.json"), json.dumps(result, indent=1) + "\n")
    return result
