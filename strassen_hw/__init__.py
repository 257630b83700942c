"""strassen-hw: StrassenNets layers as bit-exact hardware."""
