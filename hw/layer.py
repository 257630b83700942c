"""One Strassen layer as a pipelined Amaranth component.

::

    x ─▶ W_b trees ─▶ × ã (r constant multipliers) ─▶ round ─▶ W_c trees ─▶ + bias ─▶ requant

The arithmetic is decided by :class:`LayerPlan` (plain Python: adder graphs, folding of trivial
ã, exact value ranges, pipeline schedule, counts); :class:`StrassenLayer` translates the plan to
Amaranth. Every value has the exact width of its range (no overflow, no wasted bit). Registers sit
every ``levels_per_stage`` adder levels, after the multipliers and at the output; a stream with a
clock enable (``en = ~o.valid | o.ready``) stalls the whole pipeline under back-pressure.
"""

from amaranth.hdl import (Cat, ClockSignal, Const, Instance, Module, Mux, Signal, Value, signed,
                          unsigned)
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

import numpy as np

from .graph import ternary_graph
from .tree_verilog import port_widths, tree_verilog

__all__ = ["LayerPlan", "StrassenLayer", "format_shape"]


def format_shape(fmt):
    """The Amaranth shape of an integer :class:`~strassen_hw.frozen.Format`."""
    return signed(fmt.width) if fmt.signed else unsigned(fmt.width)


def _range_shape(lo, hi):
    """Smallest shape holding every integer in ``[lo, hi]``."""
    if lo >= 0:
        return unsigned(max(1, hi.bit_length()))
    return signed(max((-lo - 1).bit_length(), max(hi, 0).bit_length()) + 1)


def _fit(value, lo, hi):
    """``value`` (known to lie in ``[lo, hi]``) cut to the exact shape of that range."""
    value = Value.cast(value)
    shape = _range_shape(lo, hi)
    have = value.shape()
    if have == shape:
        return value
    assert shape.width <= have.width, (lo, hi, have)
    value = value[:shape.width]
    return value.as_signed() if shape.signed else value


def _power_of_two(a):
    """``k`` when ``|a| == 2**k``, else ``None``."""
    a = abs(int(a))
    return a.bit_length() - 1 if a and a & (a - 1) == 0 else None


def _half(shift, rounding):
    return 1 << (shift - 1) if shift and rounding == "half_up" else 0


def _schedule(graph, k):
    """Stage of every node (registers after every ``k`` adder levels), the number of register
    boundaries ``stages`` the graph spans, and the last stage each node is needed in."""
    stage = [0 if lv == 0 else (lv - 1) // k for lv in graph.level]
    stages = -(-graph.depth // k)
    need = stage[:]
    for node in range(graph.n_inputs, len(graph)):
        s = stage[node]
        for op in (graph.a[node], graph.b[node]):
            if need[op] < s:
                need[op] = s
    for row in graph.rows:
        if row is not None:
            need[row[0]] = stages
    return stage, need, stages


class LayerPlan:
    """The arithmetic of one hardware layer, decided in plain Python.

    Parameters
    ----------
    layer : FrozenLayer
    input_format : Format
        Format of the layer's input vector.
    levels_per_stage : int
        Adder levels between pipeline registers.
    share : bool
        Share common pairs between rows (:func:`~.graph.shared_graph`).

    Attributes
    ----------
    graph_b, graph_c : AdderGraph
        ``W_b`` over the inputs; ``W_c`` (folded columns) over the rounded products ``q``.
    columns : list of dict
        Per product ``j``: ``kind`` (``zero``, ``shift`` or ``mul``), and the folding constants.
    multipliers, adders, register_bits, latency : int
    """

    def __init__(self, layer, input_format, levels_per_stage=2, share=True):
        if levels_per_stage < 1:
            raise ValueError(f"levels_per_stage must be at least 1, not {levels_per_stage}")
        self.layer, self.input_format, self.k = layer, input_format, levels_per_stage
        fmt = input_format
        self.graph_b = ternary_graph(layer.w_b, [fmt.min] * layer.n_in, [fmt.max] * layer.n_in,
                                     share=share)
        self.sched_b = _schedule(self.graph_b, self.k)
        s, rounding = layer.product_shift, layer.product_rounding
        h = _half(s, rounding)
        used = np.any(layer.w_c != 0, axis=0)
        self.columns = []
        q_lo, q_hi, q_level, w_c = [], [], [], layer.w_c.astype(np.int64).copy()
        for j in range(layer.r):
            row = self.graph_b.rows[j]
            a = int(layer.a_tilde[j]) * (row[1] if row else 0)
            col = {"u": row[0] if row else None}
            if a == 0 or not used[j]:
                col.update(kind="zero", lo=0, hi=0, add=0)
                w_c[:, j] = 0
            else:
                u_lo, u_hi = self.graph_b.lo[row[0]], self.graph_b.hi[row[0]]
                k = _power_of_two(a)
                if k is not None:
                    sign = 1 if a > 0 else -1
                    c = h if sign > 0 else (1 << s) - 1 - h
                    if k >= s:            # exact: q = u << (k - s)
                        add, rshift, lshift = 0, 0, k - s
                    else:                 # q = (u + (c >> k)) >> (s - k)
                        add, rshift, lshift = c >> k, s - k, 0
                    m_lo, m_hi = u_lo, u_hi
                    w_c[:, j] *= sign
                    col.update(kind="shift", sign=sign, add=add, rshift=rshift, lshift=lshift)
                else:
                    m_lo, m_hi = min(a * u_lo, a * u_hi), max(a * u_lo, a * u_hi)
                    add, rshift, lshift = h, s, 0
                    col.update(kind="mul", a=a, add=add, rshift=rshift, lshift=0)
                col.update(m_lo=m_lo, m_hi=m_hi,
                           lo=((m_lo + add) >> rshift) << lshift,
                           hi=((m_hi + add) >> rshift) << lshift)
            self.columns.append(col)
            q_lo.append(col["lo"])
            q_hi.append(col["hi"])
            q_level.append(1 if col["add"] else 0)
        self.w_c = w_c
        self.graph_c = ternary_graph(w_c, q_lo, q_hi, q_level, share=share)
        self.sched_c = _schedule(self.graph_c, self.k)
        self.bias_add = [int(b) + _half(layer.shift, layer.rounding) for b in layer.bias]
        self._count()

    def _count(self):
        layer = self.layer
        self.multipliers = sum(c["kind"] == "mul" for c in self.columns)
        rounding = sum(1 for c in self.columns if c["kind"] != "zero" and c["add"])
        final = 0
        for row, const in zip(self.graph_c.rows, self.bias_add):
            if row is not None and (const != 0 or row[1] < 0):
                final += 1
        self.adders = self.graph_b.adders + self.graph_c.adders + rounding + final
        # what the two trees would cost without sharing: one adder less than terms per row
        plain = sum(int(np.count_nonzero(m)) - int(np.count_nonzero(np.any(m != 0, axis=1)))
                    for m in (layer.w_b, self.w_c))
        self.adders_unshared = plain + rounding + final
        bits = 0
        for graph, (stage, need, _) in ((self.graph_b, self.sched_b), (self.graph_c, self.sched_c)):
            for node in range(len(graph)):
                if need[node] > stage[node]:
                    bits += (need[node] - stage[node]) * _range_shape(graph.lo[node],
                                                                      graph.hi[node]).width
        for c in self.columns:
            if c["kind"] != "zero":
                bits += _range_shape(c["m_lo"], c["m_hi"]).width
        self.latency = self.sched_b[2] + 1 + self.sched_c[2] + 1
        bits += layer.n_out * layer.output.width + self.latency    # output and valid bits
        self.register_bits = bits

    def report(self):
        """The figures of this layer as a JSON-ready dict."""
        layer = self.layer
        return {
            "n_in": layer.n_in, "r": layer.r, "n_out": layer.n_out,
            "multipliers": self.multipliers, "adders": self.adders,
            "adders_w_b": self.graph_b.adders, "adders_w_c": self.graph_c.adders,
            "adders_unshared": self.adders_unshared,
            "register_bits": self.register_bits, "latency": self.latency,
            "input": self.input_format.to_json(), "output": layer.output.to_json(),
        }


def _register(regs, name, items, chunk=16384):
    """Registers holding every ``(value, lo, hi)`` of ``items``; returns the registered values,
    each in the exact shape of its range. Values are packed into wide Signals (``name``,
    ``name_1``, ... of at most ``chunk`` bits): Amaranth's cost is per signal and per bit.
    """
    shapes = [_range_shape(lo, hi) for _, lo, hi in items]
    out, start, count = [], 0, 0
    while start < len(items):
        stop, width = start, 0
        while stop < len(items) and (stop == start or width + shapes[stop].width <= chunk):
            width += shapes[stop].width
            stop += 1
        reg = Signal(width, reset_less=True, name=f"{name}_{count}" if count else name)
        count += 1
        regs.append(reg.eq(Cat(*(_fit(v, lo, hi) for v, lo, hi in items[start:stop]))))
        offset = 0
        for shape in shapes[start:stop]:
            part = reg[offset:offset + shape.width]
            out.append(part.as_signed() if shape.signed else part)
            offset += shape.width
        start = stop
    return out


def _translate(graph, schedule, inputs, prefix, regs):
    """Amaranth values of the rows of ``graph`` (``(value, sign)`` or ``None``), computed from
    ``inputs`` with one register ``<prefix>_s<t>`` at each pipeline boundary ``t``."""
    stage, need, stages = schedule
    g = graph
    value = list(inputs) + [None] * g.adders
    by_stage = [[] for _ in range(stages + 1)]
    for node in range(g.n_inputs, len(g)):
        by_stage[stage[node]].append(node)
    for t in range(stages + 1):
        if t:
            live = [node for node in range(len(g)) if stage[node] < t <= need[node]]
            held = _register(regs, f"{prefix}_s{t}",
                             [(value[node], g.lo[node], g.hi[node]) for node in live])
            for node, reg in zip(live, held):
                value[node] = reg
        for node in by_stage[t]:
            a, b = value[g.a[node]], value[g.b[node]]
            value[node] = _fit(a - b if g.sub[node] else a + b, g.lo[node], g.hi[node])
    return [None if row is None else (value[row[0]], row[1]) for row in g.rows]


def _resize(value, shape):
    """``value`` (whose integer fits ``shape``) extended or cut to exactly ``shape``."""
    value = Value.cast(value)
    if len(value) < shape.width:
        fill = value[-1].replicate(shape.width - len(value)) if value.shape().signed \
            else Const(0, shape.width - len(value))
        value = Cat(value, fill)
    return value[:shape.width]


class StrassenLayer(wiring.Component):
    """A frozen Strassen layer as a fully pipelined stream component (one vector per clock).

    Parameters
    ----------
    layer : FrozenLayer
    input_format : Format
        Format of the input vector elements.
    levels_per_stage : int
        Adder levels between pipeline registers (default 2).
    share : bool
        Share common pairs between rows (default True).
    trees : ``"amaranth"`` or ``"verilog"``
        Build the adder trees in Amaranth (simulatable), or instantiate them as modules
        ``<module_prefix>_w_b`` / ``_w_c`` whose Verilog text is :attr:`verilog_modules`
        (:mod:`~strassen_hw.hw.tree_verilog`; fast for large layers).
    module_prefix : str
        Prefix of those module names.
    plan : LayerPlan, optional
        A plan already made for ``layer`` (then ``levels_per_stage`` and ``share`` are unused).

    Attributes
    ----------
    i : stream, payload ``ArrayLayout(input shape, n_in)``
    o : stream, payload ``ArrayLayout(output shape, n_out)``
    plan : LayerPlan
    latency : int
        Cycles from an accepted input to its output, without stalls.
    """

    def __init__(self, layer, input_format, *, levels_per_stage=2, share=True, trees="amaranth",
                 module_prefix="layer", plan=None):
        if trees not in ("amaranth", "verilog"):
            raise ValueError(f"trees must be 'amaranth' or 'verilog', not {trees!r}")
        self.plan = plan or LayerPlan(layer, input_format, levels_per_stage, share)
        self.latency = self.plan.latency
        self.trees, self.module_prefix = trees, module_prefix
        #: ``(name, text)`` of the tree modules written as Verilog text (``trees="verilog"``)
        self.verilog_modules = []
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(format_shape(input_format), layer.n_in))),
            "o": Out(stream.Signature(data.ArrayLayout(format_shape(layer.output),
                                                       layer.n_out))),
        })

    def elaborate(self, platform):
        m = Module()
        plan, layer = self.plan, self.plan.layer
        regs = []
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]

        # W_b trees
        self.verilog_modules = []
        x = [self.i.payload[j] for j in range(layer.n_in)]
        u = self._trees(m, en, plan.graph_b, plan.sched_b, x, "w_b", regs)

        # r products (the only multipliers), registered
        active = [j for j, col in enumerate(plan.columns) if col["kind"] != "zero"]
        products = []
        for j in active:
            col = plan.columns[j]
            value = u[j][0] * col["a"] if col["kind"] == "mul" else u[j][0]
            products.append((value, col["m_lo"], col["m_hi"]))
        held = dict(zip(active, _register(regs, "products", products)))
        q = []
        for j, col in enumerate(plan.columns):
            if col["kind"] == "zero":
                q.append(0)
                continue
            value = held[j]
            if col["add"]:
                value = _fit(value + col["add"], col["m_lo"] + col["add"],
                             col["m_hi"] + col["add"])
            if col["rshift"]:
                value = value >> col["rshift"]
            if col["lshift"]:
                value = value << col["lshift"]
            q.append(_fit(value, col["lo"], col["hi"]))

        # W_c trees over the rounded products
        v = self._trees(m, en, plan.graph_c, plan.sched_c, q, "w_c", regs)

        # bias, requantization, output register
        fmt, shift = layer.output, layer.shift
        y = []
        for i, (row, const) in enumerate(zip(v, plan.bias_add)):
            if row is None:
                lo = hi = const
                value = const
            else:
                expr, sign = row
                node = plan.graph_c.rows[i][0]
                n_lo, n_hi = plan.graph_c.lo[node], plan.graph_c.hi[node]
                if sign > 0:
                    lo, hi = n_lo + const, n_hi + const
                    value = expr + const if const else expr
                else:
                    lo, hi = const - n_hi, const - n_lo
                    value = const - expr
                value = _fit(value, lo, hi)
            if shift:
                lo, hi = lo >> shift, hi >> shift
                value = _fit(Value.cast(value) >> shift, lo, hi)
            if layer.relu and lo < 0:
                value = Mux(Value.cast(value) < 0, 0, value)
                lo, hi = 0, max(hi, 0)
            if hi > fmt.max:
                value = Mux(Value.cast(value) > fmt.max, fmt.max, value)
            if lo < fmt.min:
                value = Mux(Value.cast(value) < fmt.min, fmt.min, value)
            y.append(_resize(value, format_shape(fmt)))
        regs.append(self.o.payload.as_value().eq(Cat(*y)))

        # valid bits: a shift register of the pipeline's latency
        valid = Signal(self.latency, name="valid")
        regs.append(valid.eq(Cat(self.i.valid, valid[:-1])))
        m.d.comb += self.o.valid.eq(valid[-1])
        with m.If(en):
            m.d.sync += regs
        return m

    def _trees(self, m, en, graph, schedule, inputs, label, regs):
        """Row values ``(value, sign)`` (or ``None``) of ``graph`` over ``inputs``."""
        if self.trees == "amaranth" or not graph.adders:
            return _translate(graph, schedule, inputs, label, regs)
        name = f"{self.module_prefix}_{label}"
        x = Cat(*(_fit(value, graph.lo[k], graph.hi[k]) for k, value in enumerate(inputs)))
        y = Signal(port_widths(graph)[1], name=f"{label}_y")
        m.submodules[label] = Instance(name, i_clk=ClockSignal(), i_en=en, i_x=x, o_y=y)
        self.verilog_modules.append((name, tree_verilog(graph, schedule, name)))
        rows, offset = [], 0
        for row in graph.rows:
            if row is None:
                rows.append(None)
                continue
            lo, hi = graph.lo[row[0]], graph.hi[row[0]]
            shape = _range_shape(lo, hi)
            part = y[offset:offset + shape.width]
            rows.append((part.as_signed() if shape.signed else part, row[1]))
            offset += shape.width
        return rows

