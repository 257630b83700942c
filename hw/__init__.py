"""Amaranth generators: frozen network -> ternary adder trees, r multipliers, Verilog."""

from .generate import generate, generate_verilog, plan, report
from .layer import StrassenLayer
from .network import StrassenNetwork

__all__ = ["generate", "generate_verilog", "report", "plan", "StrassenLayer", "StrassenNetwork"]
