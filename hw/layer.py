"""One Strassen layer as a pipelined Amaranth component.

::

    x ─▶ w_b tree ─▶ products (× ã, rounded) ─▶ w_c tree ─▶ requant (+ bias, shift, ReLU, clip)

The arithmetic is decided by :class:`LayerPlan` (plain Python: adder graphs and their
schedules, folding of trivial ã, exact value ranges, requantization, counts);
:class:`StrassenLayer` translates the plan to Amaranth, in the submodules ``w_b``, ``products``,
``w_c`` and ``requant``. Every value has the exact width of its range (no overflow, no wasted
bit). Registers sit every ``levels_per_stage`` adder levels, after the multipliers and at the
output; a stream with a clock enable (``en = ~o.valid | o.ready``) stalls the whole pipeline
under back-pressure.
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module
from amaranth.lib import wiring

import numpy as np

from .graph import Schedule, ternary_graph, value_shape
from .requantize import _half, format_shape, requant_plans, requantize, vector_ports
from .tree import TernaryAdderTree, fit, range_shape, register, stream_pipeline

__all__ = ["LayerPlan", "Column", "StrassenLayer", "format_shape", "range_shape"]

_range_shape = range_shape     # the name other modules import


def _power_of_two(a):
    """``k`` when ``|a| == 2**k``, else ``None``."""
    a = abs(int(a))
    return a.bit_length() - 1 if a and a & (a - 1) == 0 else None


@dataclass(frozen=True)
class Column:
    """Product ``j`` of a layer: ``q = ((m + add) >> rshift) << lshift`` of the registered
    ``m`` (``u·a`` for ``kind="mul"``, ``u`` for ``kind="shift"`` with the sign folded into
    ``W_c``; ``kind="zero"``: no product, ``q = 0``).

    Attributes
    ----------
    kind : str
    a : int
        The constant of a ``mul`` product (row sign folded in).
    m_lo, m_hi : int
        Range of the registered ``m``.
    add, rshift, lshift : int
    """
    kind: str
    a: int = 0
    m_lo: int = 0
    m_hi: int = 0
    add: int = 0
    rshift: int = 0
    lshift: int = 0

    @property
    def lo(self):
        return ((self.m_lo + self.add) >> self.rshift) << self.lshift

    @property
    def hi(self):
        return ((self.m_hi + self.add) >> self.rshift) << self.lshift


def _column(a, u_lo, u_hi, s, h):
    """The :class:`Column` of a product ``a·u`` (``a`` non-zero) rounded by ``s`` bits."""
    k = _power_of_two(a)
    if k is None:
        return Column("mul", a, min(a * u_lo, a * u_hi), max(a * u_lo, a * u_hi), h, s)
    c = h if a > 0 else (1 << s) - 1 - h
    if k >= s:                       # exact: q = u << (k - s)
        return Column("shift", 0, u_lo, u_hi, 0, 0, k - s)
    return Column("shift", 0, u_lo, u_hi, c >> k, s - k)   # q = (u + (c >> k)) >> (s - k)


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
    sched_b, sched_c : Schedule
    columns : list of Column
    requant : list of RequantPlan
        One per output.
    multipliers, adders, adders_unshared, register_bits, latency : int
        ``multipliers`` counts the ``mul`` columns: of the r products, those with ã = ±2^k
        are wires (``shift``) and those with ã = 0 or an unused column vanish (``zero``).
    """

    def __init__(self, layer, input_format, levels_per_stage=2, share=True):
        self.layer, self.input_format, self.k = layer, input_format, levels_per_stage
        fmt = input_format
        self.graph_b = ternary_graph(layer.w_b, [fmt.min] * layer.n_in, [fmt.max] * layer.n_in,
                                     share=share)
        self.sched_b = Schedule.of(self.graph_b, self.k)
        s = layer.product_shift
        h = _half(s, layer.product_rounding)
        used = np.any(layer.w_c != 0, axis=0)
        self.columns = []
        w_c = layer.w_c.astype(np.int64).copy()
        g = self.graph_b
        for j in range(layer.r):
            row = g.rows[j]
            a = int(layer.a_tilde[j]) * (row[1] if row else 0)
            if a == 0 or not used[j]:
                col = Column("zero")
                w_c[:, j] = 0
            else:
                col = _column(a, g.lo[row[0]], g.hi[row[0]], s, h)
                if col.kind == "shift" and a < 0:
                    w_c[:, j] *= -1
            self.columns.append(col)
        self.w_c = w_c
        self.graph_c = ternary_graph(w_c, [c.lo for c in self.columns],
                                     [c.hi for c in self.columns],
                                     [1 if c.add else 0 for c in self.columns], share=share)
        self.sched_c = Schedule.of(self.graph_c, self.k)
        gc = self.graph_c
        ranges = [(0, 0) if row is None else (gc.lo[row[0]], gc.hi[row[0]]) if row[1] > 0
                  else (-gc.hi[row[0]], -gc.lo[row[0]]) for row in gc.rows]
        self.requant = requant_plans(layer, ranges)
        self._count()

    def _count(self):
        layer = self.layer
        self.multipliers = sum(c.kind == "mul" for c in self.columns)
        rounding = sum(1 for c in self.columns if c.kind != "zero" and c.add)
        final = sum((row is not None and row[1] < 0) + (row is not None and plan.add != 0)
                    for row, plan in zip(self.graph_c.rows, self.requant))
        self.adders = self.graph_b.adders + self.graph_c.adders + rounding + final
        # what the two trees would cost without sharing: one adder less than terms per row
        plain = sum(int(np.count_nonzero(m)) - int(np.count_nonzero(np.any(m != 0, axis=1)))
                    for m in (layer.w_b, self.w_c))
        self.adders_unshared = plain + rounding + final
        self.latency = self.sched_b.stages + 1 + self.sched_c.stages + 1
        self.register_bits = (self.sched_b.register_bits + self.sched_c.register_bits
                              + sum(value_shape(c.m_lo, c.m_hi)[0] for c in self.columns
                                    if c.kind != "zero")
                              + layer.n_out * layer.output.width + self.latency)

    def report(self):
        """The figures of this layer as a JSON-ready dict."""
        layer = self.layer
        return {
            "kind": layer.kind, "n_in": layer.n_in, "r": layer.r, "n_out": layer.n_out,
            "multipliers": self.multipliers,
            "products_shift": sum(c.kind == "shift" for c in self.columns),
            "products_zero": sum(c.kind == "zero" for c in self.columns),
            "adders": self.adders,
            "adders_w_b": self.graph_b.adders, "adders_w_c": self.graph_c.adders,
            "adders_unshared": self.adders_unshared,
            "register_bits": self.register_bits, "latency": self.latency,
            "input": self.input_format.to_json(), "output": layer.output.to_json(),
        }


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
    trees : ``"verilog"`` or ``"amaranth"``
        Backend of the :class:`~.tree.TernaryAdderTree` ``w_b`` and ``w_c`` (modules
        ``<module_prefix>_w_b`` / ``_w_c`` in text).
    module_prefix : str
        Prefix of those module names.
    plan : LayerPlan, optional
        A plan already made for ``layer`` (then ``levels_per_stage`` and ``share`` are unused).

    Attributes
    ----------
    i : stream, payload ``ArrayLayout(input shape, n_in)``
    o : stream, payload ``ArrayLayout(output shape, n_out)``
    plan : LayerPlan
    trees : list of TernaryAdderTree
    latency : int
        Cycles from an accepted input to its output, without stalls.
    """

    def __init__(self, layer, input_format, *, levels_per_stage=2, share=True, trees="verilog",
                 module_prefix="layer", plan=None):
        self.plan = plan = plan or LayerPlan(layer, input_format, levels_per_stage, share)
        self.latency = plan.latency
        self.trees = [TernaryAdderTree(plan.graph_b, plan.sched_b, f"{module_prefix}_w_b", trees),
                      TernaryAdderTree(plan.graph_c, plan.sched_c, f"{module_prefix}_w_c", trees)]
        super().__init__(vector_ports(input_format, layer.n_in, layer.output, layer.n_out))

    def elaborate(self, platform):
        m = Module()
        plan, layer = self.plan, self.plan.layer
        en = stream_pipeline(m, self.i, self.o, self.latency)
        tree_b, tree_c = self.trees
        m.submodules.w_b, m.submodules.w_c = tree_b, tree_c
        m.d.comb += [tree_b.en.eq(en), tree_c.en.eq(en)]
        g = plan.graph_b
        m.d.comb += tree_b.inputs.eq(Cat(*(fit(self.i.payload[j], g.lo[j], g.hi[j])
                                      for j in range(layer.n_in))))
        m.submodules.products = products = Module()
        q = self._products(products, en, tree_b.rows())
        m.d.comb += tree_c.inputs.eq(Cat(*(fit(v, c.lo, c.hi) for v, c in zip(q, plan.columns))))
        m.submodules.requant = requant = Module()
        y = []
        for row, rq in zip(tree_c.rows(), plan.requant):
            v = Const(0, 1) if row is None else row[0] if row[1] > 0 else -row[0]
            y.append(requantize(v, rq))
        with requant.If(en):
            requant.d.sync += self.o.payload.as_value().eq(Cat(*y))
        return m

    def _products(self, m, en, u):
        """The rounded products ``q`` (a registered constant multiplication each)."""
        columns = self.plan.columns
        active = [j for j, col in enumerate(columns) if col.kind != "zero"]
        regs = []
        items = [(u[j][0] * columns[j].a if columns[j].kind == "mul" else u[j][0],
                  columns[j].m_lo, columns[j].m_hi) for j in active]
        held = dict(zip(active, register(regs, "products", items)))
        with m.If(en):
            m.d.sync += regs
        q = []
        for j, col in enumerate(columns):
            if col.kind == "zero":
                q.append(Const(0, 1))
                continue
            value = held[j]
            if col.add:
                value = fit(value + col.add, col.m_lo + col.add, col.m_hi + col.add)
            if col.rshift:
                value = value >> col.rshift
            if col.lshift:
                value = value << col.lshift
            q.append(fit(value, col.lo, col.hi))
        return q
