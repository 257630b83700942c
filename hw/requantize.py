"""Requantization of one output element: ``+ bias`` (and rounding), arithmetic shift, ReLU,
saturation to the output format. :class:`RequantPlan` decides every range in plain Python;
:func:`requantize` translates it to a combinational Amaranth value."""

from dataclasses import dataclass

from amaranth.hdl import Mux, Value, signed, unsigned

from strassen_hw.frozen import Format

from .tree import fit

__all__ = ["RequantPlan", "requant_plans", "requantize", "format_shape", "vector_ports"]


def format_shape(fmt):
    """The Amaranth shape of an integer :class:`~strassen_hw.frozen.Format`."""
    return signed(fmt.width) if fmt.signed else unsigned(fmt.width)


def vector_ports(input_format, n_in, output_format, n_out):
    """The signature members of a layer: stream ``i`` of ``n_in`` elements of
    ``input_format`` and stream ``o`` of ``n_out`` elements of ``output_format``."""
    from amaranth.lib import data, stream
    from amaranth.lib.wiring import In, Out
    return {"i": In(stream.Signature(data.ArrayLayout(format_shape(input_format), n_in))),
            "o": Out(stream.Signature(data.ArrayLayout(format_shape(output_format), n_out)))}


def _half(shift, rounding):
    """The rounding constant added before a right shift by ``shift``."""
    return 1 << (shift - 1) if shift and rounding == "half_up" else 0


@dataclass(frozen=True)
class RequantPlan:
    """Requantization of one output element.

    Attributes
    ----------
    lo, hi : int
        Exact range of the ``W_c`` row value ``v`` (before the bias).
    add : int
        Bias plus rounding half, added before the shift.
    shift : int
        Arithmetic right shift (floor).
    relu : bool
    output : Format
    """
    lo: int
    hi: int
    add: int
    shift: int
    relu: bool
    output: Format

    @property
    def biased(self):
        """Range of ``v + add``."""
        return self.lo + self.add, self.hi + self.add

    @property
    def shifted(self):
        """Range of ``(v + add) >> shift``."""
        return tuple(v >> self.shift for v in self.biased)

    @property
    def rectified(self):
        """Range after the ReLU (when there is one)."""
        lo, hi = self.shifted
        return (0, max(hi, 0)) if self.relu and lo < 0 else (lo, hi)

    @property
    def saturates(self):
        """``(below, above)``: whether the output format clips at its minimum / maximum."""
        lo, hi = self.rectified
        return lo < self.output.min, hi > self.output.max


def requant_plans(layer, ranges=None, input_format=None):
    """The :class:`RequantPlan` of every output of the :class:`~strassen_hw.frozen.FrozenLayer`
    ``layer``, given the exact range ``(lo, hi)`` of every ``W_c`` row value, or the layer's
    ``input_format`` to find them (as :class:`~.layer.LayerPlan` does: interval arithmetic over
    the rounded products, exact for a sum of independent terms)."""
    if ranges is None:
        from .layer import LayerPlan
        return LayerPlan(layer, input_format, share=False).requant
    half = _half(layer.shift, layer.rounding)
    return [RequantPlan(int(lo), int(hi), int(b) + half, layer.shift, bool(layer.relu),
                        layer.output) for (lo, hi), b in zip(ranges, layer.bias)]


def requantize(value, plan):
    """``value`` (``v``, within ``plan.lo .. plan.hi``) requantized: a combinational Amaranth
    value in ``format_shape(plan.output)``."""
    value = fit(value, plan.lo, plan.hi)
    if plan.add:
        value = fit(value + plan.add, *plan.biased)
    if plan.shift:
        value = fit(value >> plan.shift, *plan.shifted)
    if plan.rectified != plan.shifted:
        value = Mux(value < 0, 0, value)
    below, above = plan.saturates
    fmt = plan.output
    if above:
        value = Mux(Value.cast(value) > fmt.max, fmt.max, value)
    if below:
        value = Mux(Value.cast(value) < fmt.min, fmt.min, value)
    return fit(value, fmt.min, fmt.max)
