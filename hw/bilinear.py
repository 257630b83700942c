"""A bilinear matrix multiplier: ``C = A @ B`` with r variable-by-variable multipliers.

::

    vec(A) ─▶ W_a trees ─┐
                         ├─▶ r multipliers u_j·v_j ─▶ W_c trees ─▶ vec(C)
    vec(B) ─▶ W_b trees ─┘

Both matrices arrive on one stream: the payload holds ``vec(A)`` then ``vec(B)`` (row-major,
``2n²`` elements of the operand format). The output stream carries ``vec(A @ B)``. The
ternary trees are the adder graphs of :mod:`.graph` (``+1`` and ``-1`` terms summed apart,
common pairs shared), registered every ``levels_per_stage`` adder levels: two
:class:`~.tree.TernaryAdderTree` (``ab`` and ``c``).

Every signal has the exact width of its value range for the declared operand format. The
``W_a``/``W_b`` nodes and the products are exact by interval arithmetic (``A`` and ``B`` vary
independently); a ``W_c`` node is a bilinear form ``vec(A)ᵀ T vec(B)``, so its extremes lie on
corners of the operand box and are found by enumerating the corners of ``A``.
"""

import itertools
import json
import os

import numpy as np
from amaranth.hdl import Cat, Const, Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .graph import Schedule, ternary_graph, value_shape
from .requantize import format_shape as _format_shape
from .tree import TernaryAdderTree, convert, fit, range_shape, register, stream_pipeline

__all__ = ["BilinearPlan", "BilinearMatmul", "fewest_adders", "generate_bilinear_verilog",
           "generate_bilinear"]


def _bilinear_range(t, lo, hi):
    """Exact ``(min, max)`` of ``aᵀ t b`` over ``a, b ∈ [lo, hi]^m`` (corners of ``a``)."""
    m = t.shape[0]
    corners = np.array(list(itertools.product((lo, hi), repeat=m)), dtype=np.int64)
    s = corners @ t                                   # (corners, m): coefficient of each b_l
    high = np.maximum(s * lo, s * hi).sum(axis=1)
    low = np.minimum(s * lo, s * hi).sum(axis=1)
    return int(low.min()), int(high.max())


class BilinearPlan:
    """The arithmetic of a bilinear multiplier, decided in plain Python.

    Parameters
    ----------
    algorithm : strassen_hw.matmul.BilinearAlgorithm
        Must be exact (checked by the tensor identity).
    operand : strassen_hw.frozen.Format
        Format of every entry of ``A`` and ``B``.
    levels_per_stage : int
        Adder levels between pipeline registers.
    share : bool
        Share common pairs between the rows of each ternary matrix.

    Attributes
    ----------
    graph_ab : AdderGraph
        ``W_a`` (rows ``0..r-1``, over ``vec(A)``) and ``W_b`` (rows ``r..2r-1``, over
        ``vec(B)``) in one graph.
    graph_c : AdderGraph
        ``W_c``, product signs folded in, over the products; exact node ranges.
    sched_ab, sched_c : Schedule
    products : list of dict
        Per product: ``kind`` (``mul`` or ``zero``), ``a``/``b`` (graph nodes), ``sign``
        (folded into ``W_c``), ``lo``/``hi``.
    output : tuple
        ``(lo, hi)`` of every entry of ``A @ B``.
    """

    def __init__(self, algorithm, operand, levels_per_stage=2, share=True):
        if not algorithm.is_exact():
            raise ValueError("the algorithm is not exact: its tensor differs from the "
                             "matrix-multiplication tensor")
        self.algorithm, self.operand, self.k = algorithm, operand, levels_per_stage
        n2, r = algorithm.n ** 2, algorithm.r
        lo, hi = operand.min, operand.max
        block = np.zeros((2 * r, 2 * n2), dtype=np.int64)
        block[:r, :n2], block[r:, n2:] = algorithm.w_a, algorithm.w_b
        self.graph_ab = ternary_graph(block, [lo] * 2 * n2, [hi] * 2 * n2, share=share)
        g = self.graph_ab
        w_c = algorithm.w_c.copy()
        self.products = []
        for j in range(r):
            ra, rb = g.rows[j], g.rows[r + j]
            if ra is None or rb is None or not w_c[:, j].any():
                self.products.append({"kind": "zero", "lo": 0, "hi": 0})
                w_c[:, j] = 0
                continue
            sign = ra[1] * rb[1]                      # the multiplier sees the nodes unsigned
            w_c[:, j] *= sign
            corners = [x * y for x in (g.lo[ra[0]], g.hi[ra[0]])
                       for y in (g.lo[rb[0]], g.hi[rb[0]])]
            self.products.append({"kind": "mul", "a": ra[0], "b": rb[0], "sign": sign,
                                  "lo": min(corners), "hi": max(corners)})
        self.w_c = w_c
        self.graph_c = ternary_graph(w_c, [p["lo"] for p in self.products],
                                     [p["hi"] for p in self.products], share=share)
        self._exact_ranges()
        scalar = [x * y for x in (lo, hi) for y in (lo, hi)]   # C[p,q] sums n such products
        self.output = (algorithm.n * min(scalar), algorithm.n * max(scalar))
        self.sched_ab = Schedule.of(self.graph_ab, levels_per_stage)
        self.sched_c = Schedule.of(self.graph_c, levels_per_stage)
        self.latency = self.sched_ab.stages + 1 + self.sched_c.stages + 1

    def _exact_ranges(self):
        """Replace the interval bounds of the ``W_c`` nodes by the exact bilinear ranges."""
        alg, g = self.algorithm, self.graph_c
        zero = np.zeros((alg.n ** 2,) * 2, dtype=np.int64)
        forms = [p["sign"] * np.outer(alg.w_a[j], alg.w_b[j]) if p["kind"] == "mul" else zero
                 for j, p in enumerate(self.products)]
        lo, hi = self.operand.min, self.operand.max
        for node in range(g.n_inputs, len(g)):
            a, b = forms[g.a[node]], forms[g.b[node]]
            forms.append(a - b if g.sub[node] else a + b)
            g.lo[node], g.hi[node] = _bilinear_range(forms[node], lo, hi)

    @property
    def multipliers(self):
        """Variable-by-variable multipliers (one per non-zero product)."""
        return sum(p["kind"] == "mul" for p in self.products)

    @property
    def negations(self):
        """Output rows that end as ``0 - node`` (one subtractor each)."""
        return sum(1 for row in self.graph_c.rows if row is not None and row[1] < 0)

    def _adders_ab(self):
        g, n2 = self.graph_ab, self.algorithm.n ** 2
        side = [k >= n2 for k in range(g.n_inputs)]
        for node in range(g.n_inputs, len(g)):
            side.append(side[g.a[node]])
        a = sum(1 for node in range(g.n_inputs, len(g)) if not side[node])
        return a, g.adders - a

    def report(self):
        """The figures of the multiplier, with the naive ``n³``-product algorithm beside."""
        n = self.algorithm.n
        adders_a, adders_b = self._adders_ab()
        return {
            "n": n, "r": self.algorithm.r, "multipliers": self.multipliers,
            "naive_multipliers": n ** 3,
            "adders": self.graph_ab.adders + self.graph_c.adders + self.negations,
            "adders_w_a": adders_a, "adders_w_b": adders_b,
            "adders_w_c": self.graph_c.adders, "negations": self.negations,
            "naive_adders": n * n * (n - 1),
            "operand": self.operand.to_json(),
            "output": {"width": value_shape(*self.output)[0], "signed": self.output[0] < 0,
                       "min": self.output[0], "max": self.output[1]},
            "latency": self.latency,
        }


def fewest_adders(algorithms, operand, **kwargs):
    """The algorithm whose multiplier for ``operand`` entries needs the fewest adders (the first
    on ties) and that number, from its :class:`BilinearPlan` (``kwargs`` go there); ``(None,
    None)`` for no algorithm."""
    algorithms = list(algorithms)
    adders = [BilinearPlan(a, operand, **kwargs).report()["adders"] for a in algorithms]
    best = adders.index(min(adders)) if adders else None
    return (None, None) if best is None else (algorithms[best], adders[best])


class BilinearMatmul(wiring.Component):
    """``C = A @ B`` for ``n×n`` matrices by a bilinear algorithm, fully pipelined.

    Parameters
    ----------
    algorithm : strassen_hw.matmul.BilinearAlgorithm
        An exact algorithm (for example a ``strassen-hw discover`` solution).
    operand : strassen_hw.frozen.Format
        Format of the entries of ``A`` and ``B``.
    levels_per_stage : int
        Adder levels between pipeline registers (default 2).
    share : bool
        Share common pairs between rows (default True).

    Attributes
    ----------
    i : stream, payload ``ArrayLayout(operand shape, 2n²)``: ``vec(A)`` then ``vec(B)``
    o : stream, payload ``ArrayLayout(signed(w), n²)``: ``vec(A @ B)``, ``w`` exact
    plan : BilinearPlan
    latency : int
    """

    def __init__(self, algorithm, operand, *, levels_per_stage=2, share=True, trees="verilog",
                 name="matmul"):
        self.plan = plan = BilinearPlan(algorithm, operand, levels_per_stage, share)
        self.latency = plan.latency
        self.trees = [TernaryAdderTree(plan.graph_ab, plan.sched_ab, f"{name}_ab", trees),
                      TernaryAdderTree(plan.graph_c, plan.sched_c, f"{name}_c", trees)]
        n2 = algorithm.n ** 2
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(_format_shape(operand), 2 * n2))),
            "o": Out(stream.Signature(data.ArrayLayout(range_shape(*plan.output), n2))),
        })

    def elaborate(self, platform):
        m = Module()
        plan = self.plan
        en = stream_pipeline(m, self.i, self.o, self.latency)
        tree_ab, tree_c = self.trees
        m.submodules.ab, m.submodules.c = tree_ab, tree_c
        m.d.comb += [tree_ab.en.eq(en), tree_c.en.eq(en), tree_ab.x.eq(self.i.payload.as_value())]

        # r multipliers, registered
        ab, r, regs = tree_ab.rows(), plan.algorithm.r, []
        live = [j for j, p in enumerate(plan.products) if p["kind"] == "mul"]
        held = register(regs, "products", [(ab[j][0] * ab[r + j][0], plan.products[j]["lo"],
                                            plan.products[j]["hi"]) for j in live])
        held = dict(zip(live, held))
        m.d.comb += tree_c.x.eq(Cat(*(held[j] if j in held else Const(0, 1) for j in range(r))))

        # the output register
        lo, hi = plan.output
        for i, (expr, sign) in enumerate(tree_c.rows()):
            regs.append(self.o.payload[i].eq(fit(expr if sign > 0 else -expr, lo, hi)))
        with m.If(en):
            m.d.sync += regs
        return m


def generate_bilinear_verilog(algorithm, operand, name="matmul", **kwargs):
    """Verilog text of :class:`BilinearMatmul` (top module ``name``, ports ``clk``, ``rst``,
    ``i``, ``o``) and the report; byte-identical for identical arguments."""
    top = BilinearMatmul(algorithm, operand, name=name, **kwargs)
    return convert(top, name, top.trees), top.plan.report()


def generate_bilinear(algorithm, operand, out_dir, name="matmul", **kwargs):
    """Write ``out_dir/<name>.v`` and ``out_dir/report.json`` (atomically); return the report."""
    from strassen_hw.frozen import atomic_write
    text, report = generate_bilinear_verilog(algorithm, operand, name=name, **kwargs)
    report = {"name": name, **report}
    atomic_write(os.path.join(out_dir, f"{name}.v"), text)
    atomic_write(os.path.join(out_dir, "report.json"), json.dumps(report, indent=1) + "\n")
    return report
