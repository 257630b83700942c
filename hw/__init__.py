"""Amaranth generators: frozen network -> ternary adder trees, r multipliers, Verilog."""

from .folded import FoldedNetwork, folded_report
from .generate import check_fold, generate, generate_verilog, plan, report
from .layer import StrassenLayer
from .network import StrassenNetwork

__all__ = ["generate", "generate_verilog", "report", "plan", "check_fold", "StrassenLayer",
           "StrassenNetwork", "FoldedNetwork", "folded_report"]
