"""The pipeline depth for a clock: a timing model of adder stages, calibrated on nextpnr.

A pipeline stage of the adder trees holds ``k`` chained adder levels (``levels_per_stage``).
Ripple-carry adders chained this way overlap (the low bits of a sum are ready early), so a
stage whose widest adder has ``w`` bits is modelled as taking ``a + b·k + c·w`` ns, with
``a, b, c`` per device (:data:`TIMING`). :func:`levels_for_clock` picks the largest ``k``
(the fewest registers) whose slowest stage meets the clock.

The model covers the adder stages only. The multipliers and the requantization (bias,
shift, clip) are stages of their own whose depth does not depend on ``k``; on the iCE40 they
can be the slower ones (``benchmarks/bench_depth.py`` prints the whole layer's Fmax next to
the model).
"""

from .graph import value_shape

__all__ = ["TIMING", "stage_ns", "levels_for_clock", "widest_adder"]

#: ``(a, b, c)`` in ns per device of ``strassen-hw report --device``. Fitted by least
#: squares to nextpnr's Fmax of the harnessed ``W_b`` and ``W_c`` trees (widest adders 13
#: and 22 bits) of a random 32→16 layer (r = 16, int8 inputs, seed 0) at 1..4 adder levels
#: per stage, with ``.venv/bin/python benchmarks/bench_depth.py --calibrate --device DEVICE``
#: (Yosys 0.70 and nextpnr 0.11 from YoWASP; ECP5 before ``report`` moved to classic ABC
#: LUT mapping; largest error of the fit in the comment). The
#: larger ECP5 parts share the 25k's fabric and speed grade and take its constants; the
#: HX8K is not calibrated.
TIMING = {
    "up5k": (-1.07, 6.43, 0.533),      # largest error 0.99 ns
    "ecp5-25k": (1.36, 2.00, 0.055),   # largest error 0.41 ns
    "ecp5-45k": (1.36, 2.00, 0.055),
    "ecp5-85k": (1.36, 2.00, 0.055),
}


def stage_ns(device, levels, width):
    """Predicted delay (ns) of a stage of ``levels`` chained adders at most ``width`` bits
    wide on ``device``."""
    a, b, c = TIMING[device]
    return a + b * levels + c * width


def widest_adder(graph):
    """Width in bits of the widest adder node of ``graph`` (0 without adders)."""
    return max((value_shape(graph.lo[n], graph.hi[n])[0]
                for n in range(graph.n_inputs, len(graph))), default=0)


def levels_for_clock(plans, mhz, device):
    """The largest ``levels_per_stage`` whose adder stages the model predicts to meet
    ``mhz`` on ``device``, for the layers of ``plans`` (:class:`~.layer.LayerPlan`, any
    ``levels_per_stage``: only their graphs are used).

    Returns
    -------
    (int, float)
        ``levels_per_stage`` and the predicted Fmax (MHz) of its slowest adder stage.

    Raises
    ------
    ValueError
        No model for ``device``, or even one adder level per stage is predicted slower than
        the clock (the message says how fast it is predicted).
    """
    if device not in TIMING:
        raise ValueError(f"--device {device}: no timing model; choose one of "
                         + ", ".join(TIMING))
    if mhz <= 0:
        raise ValueError(f"--clock {mhz:g}: must be positive")
    graphs = [g for plan in plans for g in (plan.graph_b, plan.graph_c) if g.adders]
    width = max((widest_adder(g) for g in graphs), default=0)
    depth = max((g.depth for g in graphs), default=1)
    period = 1000.0 / mhz
    best = None
    for k in range(1, max(depth, 1) + 1):
        if stage_ns(device, k, width) <= period:
            best = k
    if best is None:
        fastest = 1000.0 / stage_ns(device, 1, width)
        raise ValueError(f"--clock {mhz:g}: the model predicts at most {fastest:.0f} MHz on "
                         f"{device} (one adder level of {width} bits per stage); choose a "
                         "slower clock")
    return best, 1000.0 / stage_ns(device, best, width)
