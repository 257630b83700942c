"""Stream components of the graph nodes that are not layers: ``add``, the global pool, the fork
of an edge read by several nodes, and the FIFO on an ``add`` input (a skip path).

Every stream here carries one transfer per vector or per pixel (``ArrayLayout(shape, m)``,
``m`` the vector's values or the pixel's channels) and keeps the stream rules of
:mod:`amaranth.lib.stream`: ``valid`` never waits for ``ready``, and the payload holds while
``valid`` and not ``ready``."""

from amaranth.hdl import Cat, Module, Mux, Shape, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .requantize import RequantPlan, _half, format_shape, requantize
from .tree import fit, range_shape

__all__ = ["stream_of", "Fork", "AddStream", "GlobalPool", "SkipFifo", "add_plan"]


def stream_of(fmt, count):
    """The stream signature of ``count`` values of the integer format ``fmt`` per transfer."""
    return stream.Signature(data.ArrayLayout(format_shape(fmt), count))


def _check(cls, **positive):
    for key, value in positive.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TypeError(f"{cls.__name__}: {key} must be a positive integer, not {value!r}")


class Fork(wiring.Component):
    """One stream in, ``n`` copies out; each copy is given once per transfer, in any order of
    the readers' ``ready`` (an eager fork: a copy taken early waits, marked done, for the
    others), so no reader waits for another's ``ready`` within a cycle.

    Parameters
    ----------
    signature : stream.Signature
    n : int, at least 2
    """

    def __init__(self, signature, n):
        _check(Fork, n=n)
        if n < 2:
            raise TypeError(f"Fork: n must be at least 2, not {n}")
        self.n = n
        super().__init__({"i": In(signature),
                          **{f"o{k}": Out(signature) for k in range(n)}})

    def outputs(self):
        return [getattr(self, f"o{k}") for k in range(self.n)]

    def elaborate(self, platform):
        m = Module()
        done = Signal(self.n)
        outs = self.outputs()
        taken = Cat(*(done[k] | o.ready for k, o in enumerate(outs)))
        m.d.comb += self.i.ready.eq(taken.all())
        for k, o in enumerate(outs):
            m.d.comb += [o.valid.eq(self.i.valid & ~done[k]), o.payload.eq(self.i.payload)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += done.eq(0)
        with m.Else():
            m.d.sync += done.eq(done | Cat(*(o.valid & o.ready for o in outs)))
        return m


def add_plan(node, formats):
    """The :class:`~.requantize.RequantPlan` of an ``add`` node whose inputs have ``formats``:
    the exact range of ``Σ x_i · 2^align_i`` and the node's rounding, ReLU and saturation."""
    lo = sum(f.min << a for f, a in zip(formats, node.align))
    hi = sum(f.max << a for f, a in zip(formats, node.align))
    return RequantPlan(lo, hi, _half(node.shift, node.rounding), node.shift, node.relu,
                       node.output)


class AddStream(wiring.Component):
    """An ``add`` node: waits for one transfer on every input, then gives
    ``requantize(Σ x_i · 2^align_i)`` per value, registered (one cycle of latency).

    Parameters
    ----------
    node : strassen_hw.graph.Add
    formats : list of Format
        Of the inputs.
    count : int
        Values per transfer (a vector's, or a pixel's channels).
    """

    latency = 1

    def __init__(self, node, formats, count):
        _check(AddStream, count=count)
        if len(formats) != len(node.inputs):
            raise TypeError(f"AddStream: {len(formats)} formats for {len(node.inputs)} inputs")
        self.node, self.formats, self.count = node, list(formats), count
        self.plan = add_plan(node, formats)
        super().__init__({**{f"i{k}": In(stream_of(f, count)) for k, f in enumerate(formats)},
                          "o": Out(stream_of(node.output, count))})

    def inputs(self):
        return [getattr(self, f"i{k}") for k in range(len(self.formats))]

    def elaborate(self, platform):
        m = Module()
        ins = self.inputs()
        ready = Cat(*(i.valid for i in ins)).all()
        en = ~self.o.valid | self.o.ready
        for i in ins:
            m.d.comb += i.ready.eq(en & ready)
        with m.If(en):
            m.d.sync += self.o.valid.eq(ready)
            for c in range(self.count):
                total = 0
                lo = hi = 0
                for i, f, a in zip(ins, self.formats, self.node.align):
                    lo, hi = lo + (f.min << a), hi + (f.max << a)
                    total = fit(total + (i.payload[c] << a), lo, hi)
                m.d.sync += self.o.payload[c].eq(requantize(total, self.plan))
        return m


class GlobalPool(wiring.Component):
    """A ``global`` pool node: ``pixels`` transfers of ``channels`` values in, one vector out,
    ``floor(sum / 2^shift)`` per channel, saturated to ``output`` (no multiplier)."""

    def __init__(self, node, input_format, pixels, channels):
        _check(GlobalPool, pixels=pixels, channels=channels)
        self.node, self.fmt, self.pixels, self.channels = node, input_format, pixels, channels
        self.lo, self.hi = pixels * input_format.min, pixels * input_format.max
        self.plan = RequantPlan(self.lo, self.hi, 0, node.shift, False, node.output)
        super().__init__({"i": In(stream_of(input_format, channels)),
                          "o": Out(stream_of(node.output, channels))})

    def elaborate(self, platform):
        m = Module()
        k = Signal(range(self.pixels))
        acc = [Signal(range_shape(self.lo, self.hi), name=f"acc{c}")
               for c in range(self.channels)]
        m.d.comb += self.i.ready.eq(~self.o.valid)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            first, last = k == 0, k == self.pixels - 1
            m.d.sync += k.eq(0 if self.pixels == 1 else k + 1)
            for c in range(self.channels):
                new = fit(self.i.payload[c] + Mux(first, 0, acc[c]), self.lo, self.hi)
                m.d.sync += acc[c].eq(new)
                with m.If(last):
                    m.d.sync += self.o.payload[c].eq(requantize(new, self.plan))
            with m.If(last):
                m.d.sync += [self.o.valid.eq(1), k.eq(0)]
        return m


class SkipFifo(wiring.Component):
    """A FIFO of ``depth`` transfers on a stream (an ``add`` input: the path that waits for
    the other). ``depth`` comes from the plans (:func:`~.network.skip_depths`)."""

    def __init__(self, signature, depth):
        _check(SkipFifo, depth=depth)
        self.depth = depth
        self.width = Shape.cast(signature.members["payload"].shape).width
        super().__init__({"i": In(signature), "o": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=self.width, depth=self.depth)
        m.d.comb += [q.w_data.eq(self.i.payload.as_value()), q.w_en.eq(self.i.valid),
                     self.i.ready.eq(q.w_rdy),
                     self.o.payload.as_value().eq(q.r_data), self.o.valid.eq(q.r_rdy),
                     q.r_en.eq(self.o.ready)]
        return m
