"""FPGA board tops and bitstream builds through amaranth-boards platforms."""
