"""cocotb + Verilator simulation of generated Verilog against the reference."""
