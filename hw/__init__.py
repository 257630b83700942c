"""Amaranth generators: frozen network -> ternary adder trees, r multipliers, Verilog."""
