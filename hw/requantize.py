"""Requantization of one output element: bias and rounding half, right shift, ReLU, saturation.

The plan (:class:`RequantPlan`) is plain Python; :func:`requantize` translates it into a
combinational Amaranth value in the output format. Every intermediate value has the exact width
of its range.
"""

from dataclasses import dataclass

from amaranth.hdl import Mux, Value

from ..frozen import Format
from .layer import _fit, _resize, format_shape

__all__ = ["RequantPlan", "requantize"]


@dataclass(frozen=True)
class RequantPlan:
    """The requantization of one output element.

    Attributes
    ----------
    lo, hi : int
        Exact range of the value to requantize (the ``W_c`` row value before the bias).
    add : int
        Bias plus the rounding half, added before the shift.
    shift : int
        Arithmetic right shift (floor).
    relu : bool
        Clamp negative values to 0 after the shift.
    output : Format
        Saturation target.
    """
    lo: int
    hi: int
    add: int
    shift: int
    relu: bool
    output: Format


def requantize(value, plan):
    """``saturate(relu?((value + plan.add) >> plan.shift))`` as a combinational Amaranth value
    of shape ``format_shape(plan.output)``; ``value`` lies in ``[plan.lo, plan.hi]``."""
    value = Value.cast(value)
    lo, hi, fmt = plan.lo + plan.add, plan.hi + plan.add, plan.output
    if plan.add:
        value = _fit(value + plan.add, lo, hi)
    if plan.shift:
        lo, hi = lo >> plan.shift, hi >> plan.shift
        value = _fit(value >> plan.shift, lo, hi)
    if plan.relu and lo < 0:
        value = Mux(value < 0, 0, value)
        lo, hi = 0, max(hi, 0)
    if hi > fmt.max:
        value = Mux(Value.cast(value) > fmt.max, fmt.max, value)
    if lo < fmt.min:
        value = Mux(Value.cast(value) < fmt.min, fmt.min, value)
    return _resize(value, format_shape(fmt))
