"""The pipelined ternary adder tree as one component, and the stream skeleton around it.

:class:`TernaryAdderTree` computes the rows of an :class:`~.graph.AdderGraph` with the registers
of its :class:`~.graph.Schedule`. It elaborates in one of two ways, chosen in one place
(:meth:`TernaryAdderTree.elaborate`):

* Amaranth statements: always when there is no platform (``amaranth.back.verilog.convert``
  with default arguments, ``amaranth.sim.Simulator``), and for ``backend="amaranth"``.
* Verilog text (``backend="verilog"``, the default) when a platform is given: the module
  text is printed straight from the graph and schedule (:func:`tree_verilog`), handed to
  ``platform.add_file`` and instantiated. Amaranth lowers every adder to a bit-level netlist
  and checks it for combinational cycles, so its cost grows with adders × width²; the text is
  printed in seconds for a 256→256→256 layer. :func:`convert` (used by ``generate``) passes
  the stand-in platform :data:`APPENDED`: the tree modules are then instantiated and their
  texts, made from the plans of the trees that the top component built, are appended to
  the output, so it is complete.

Both ways compute the same nodes in the same widths with the same registers; the quick tests
prove them equivalent with Yosys on random graphs.
"""

from amaranth.back import verilog
from amaranth.hdl import (Cat, ClockSignal, Const, Instance, Module, Signal, Value, signed,
                          unsigned)
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .graph import value_shape

__all__ = ["TernaryAdderTree", "range_shape", "fit", "resize", "stream_pipeline", "tree_verilog",
           "convert", "APPENDED"]

#: Stand-in platform for :func:`convert`: text trees are instantiated, their texts appended.
APPENDED = object()


def range_shape(lo, hi):
    """Smallest Amaranth shape holding every integer in ``[lo, hi]`` (:func:`value_shape`)."""
    width, is_signed = value_shape(lo, hi)
    return signed(width) if is_signed else unsigned(width)


def fit(value, lo, hi):
    """``value`` (known to lie in ``[lo, hi]``) cut or extended to the exact shape of that
    range."""
    return resize(value, range_shape(lo, hi))


def resize(value, shape):
    """``value`` (whose integer fits ``shape``) cut or extended (by its sign when signed) to
    exactly ``shape``."""
    value = Value.cast(value)
    if value.shape() == shape:
        return value
    if len(value) < shape.width:
        extra = shape.width - len(value)
        value = Cat(value, value[-1].replicate(extra) if value.shape().signed else Const(0, extra))
    value = value[:shape.width]
    return value.as_signed() if shape.signed else value


def unpack(word, ranges):
    """The values packed in ``word`` (first in the low bits), each in the shape of its range."""
    out, offset = [], 0
    for lo, hi in ranges:
        shape = range_shape(lo, hi)
        part = word[offset:offset + shape.width]
        out.append(part.as_signed() if shape.signed else part)
        offset += shape.width
    return out


def register(regs, name, items, chunk=16384):
    """Registers holding every ``(value, lo, hi)`` of ``items`` (statements appended to
    ``regs``); returns the registered values, each in the exact shape of its range. Values are
    packed into wide Signals (``name``, ``name_1``, ... of at most ``chunk`` bits): Amaranth's
    cost is per signal and per bit."""
    widths = [value_shape(lo, hi)[0] for _, lo, hi in items]
    out, start, count = [], 0, 0
    while start < len(items):
        stop, width = start, 0
        while stop < len(items) and (stop == start or width + widths[stop] <= chunk):
            width += widths[stop]
            stop += 1
        reg = Signal(width, reset_less=True, name=f"{name}_{count}" if count else name)
        count += 1
        regs.append(reg.eq(Cat(*(fit(v, lo, hi) for v, lo, hi in items[start:stop]))))
        out += unpack(reg, [(lo, hi) for _, lo, hi in items[start:stop]])
        start = stop
    return out


#: Widest port of a tree: Verilog-2005 promises vectors of 2^16 bits and Amaranth refuses
#: wider wires. A tree whose inputs or outputs need more (a dense layer's ``w_c`` of 8,192
#: products) gets several ports, ``x``, ``x_1``, ... each holding whole values.
_PORT_BITS = 1 << 16


def _ports(name, widths):
    """``[(port name, [value index, ...], width), ...]``: the values of ``widths``, in order,
    packed into ports of at most :data:`_PORT_BITS` bits; one port ``name`` when they fit."""
    ports = [[name, [], 0]]
    for index, width in enumerate(widths):
        if ports[-1][2] and ports[-1][2] + width > _PORT_BITS:
            ports.append([f"{name}_{len(ports)}", [], 0])
        ports[-1][1].append(index)
        ports[-1][2] += width
    return [tuple(port) for port in ports]


def stream_pipeline(m, i, o, latency):
    """The stream skeleton of a pipeline of ``latency`` cycles from stream ``i`` to ``o``:
    the clock enable ``en = ~o.valid | o.ready`` (returned; it stalls the whole pipeline under
    back-pressure, and is ``i.ready``) and a shift register of valid bits."""
    en = Signal()
    valid = Signal(latency, name="valid")
    m.d.comb += [en.eq(~o.valid | o.ready), i.ready.eq(en), o.valid.eq(valid[-1])]
    with m.If(en):
        m.d.sync += valid.eq(Cat(i.valid, valid[:-1]))
    return en


class TernaryAdderTree(wiring.Component):
    """The rows of an adder graph, pipelined by its schedule.

    Parameters
    ----------
    graph : AdderGraph
    schedule : Schedule
        Of ``graph``.
    name : str
        Verilog module name of the text back end.
    backend : ``"verilog"`` or ``"amaranth"``
        How to elaborate when a platform is given (see the module notes).

    Attributes
    ----------
    x : In(unsigned)
        Every input, input 0 in the low bits, each in the exact width of its range. Inputs
        wider than 2^16 bits in all continue in ports ``x_1``, ``x_2``, ...; :attr:`inputs`
        is all of them.
    y : Out(unsigned)
        The node of every non-zero row, packed the same way (the caller applies the row sign);
        likewise ``y_1``, ... and :attr:`outputs`.
    en : In(1)
        Clock enable of the registers.
    """

    def __init__(self, graph, schedule, name, backend="verilog"):
        if backend not in ("verilog", "amaranth"):
            raise ValueError(f"backend must be 'verilog' or 'amaranth', not {backend!r}")
        self.graph, self.schedule, self.name, self.backend = graph, schedule, name, backend
        g = graph
        self.input_ranges = [(g.lo[k], g.hi[k]) for k in range(g.n_inputs)]
        self.row_ranges = [(g.lo[row[0]], g.hi[row[0]]) for row in g.rows if row]
        self._x = _ports("x", [value_shape(*r)[0] for r in self.input_ranges])
        self._y = _ports("y", [value_shape(*r)[0] for r in self.row_ranges])
        super().__init__({
            **{name: In(width) for name, _, width in self._x},
            **{name: Out(width) for name, _, width in self._y},
            "en": In(1),
        })

    @property
    def inputs(self):
        """All input ports as one value (``x`` itself when it is the only one)."""
        return _joined(self, self._x)

    @property
    def outputs(self):
        """All output ports as one value (``y`` itself when it is the only one)."""
        return _joined(self, self._y)

    @property
    def text(self):
        """Whether a platform turns this tree into Verilog text (a text module exists)."""
        return self.backend == "verilog" and self.graph.adders > 0

    def rows(self, y=None):
        """``(value, sign)`` of every row (``None`` for a zero row) sliced from ``y``."""
        values = iter(unpack(self.outputs if y is None else y, self.row_ranges))
        return [None if row is None else (next(values), row[1]) for row in self.graph.rows]

    def verilog(self):
        """The Verilog text of the module (:func:`tree_verilog`)."""
        return tree_verilog(self.graph, self.schedule, self.name)

    def elaborate(self, platform):
        m = Module()
        if self.text and platform is not None:
            if platform is not APPENDED:
                platform.add_file(f"{self.name}.v", self.verilog())
            m.submodules.tree = Instance(
                self.name, i_clk=ClockSignal(), i_en=self.en,
                **{f"i_{name}": getattr(self, name) for name, _, _ in self._x},
                **{f"o_{name}": getattr(self, name) for name, _, _ in self._y})
            return m
        g, sched = self.graph, self.schedule
        value = unpack(self.inputs, self.input_ranges) + [None] * g.adders
        regs = []
        for t in range(sched.stages + 1):
            if t:
                live = sched.registered[t - 1]
                held = register(regs, f"s{t}", [(value[n], g.lo[n], g.hi[n]) for n in live])
                for node, reg in zip(live, held):
                    value[node] = reg
            for node in sched.computed[t]:
                a, b = value[g.a[node]], value[g.b[node]]
                value[node] = fit(a - b if g.sub[node] else a + b, g.lo[node], g.hi[node])
        with m.If(self.en):
            m.d.sync += regs
        rows = [fit(value[row[0]], g.lo[row[0]], g.hi[row[0]]) for row in g.rows if row]
        m.d.comb += self.outputs.eq(Cat(*rows))
        return m


def _joined(component, ports):
    if len(ports) == 1:
        return getattr(component, ports[0][0])
    return Cat(*(getattr(component, name) for name, _, _ in ports))


def tree_verilog(graph, schedule, name, keep=True):
    """Verilog module ``name`` (ports ``clk``, ``en``, ``x``, ``y`` of :class:`TernaryAdderTree`)
    computing ``graph``, with the registers (updated when ``en``) of ``schedule``.

    With ``keep`` (default) every adder wire carries ``(* keep *)``: Yosys then maps each
    adder of the graph to its own carry chain instead of merging the adders between two
    registers into wider arithmetic, which costs more (``benchmarks/bench_keep.py``, random
    64→32 layer, r = 32: 11 % fewer iCE40 logic cells for ``W_b``, 7 % for ``W_c``; 8 % and
    9 % fewer ECP5 LUT slots).

    Every operand is made signed (an unsigned node gets a zero bit on top), so each sum is
    computed sign-extended to the width of the widest operand or of the result, and the result,
    known to fit its declared width, is cut to it exactly.
    """
    g = graph
    shape = [value_shape(g.lo[k], g.hi[k]) for k in range(len(g))]
    x_ports = _ports("x", [shape[k][0] for k in range(g.n_inputs)])
    row_nodes = [row[0] for row in g.rows if row]
    y_ports = _ports("y", [shape[node][0] for node in row_nodes])
    names = ", ".join(port for port, _, _ in x_ports + y_ports)
    lines = [f"module {name}(clk, en, {names});", "  input clk;", "  input en;"]
    lines += [f"  input [{width - 1}:0] {port};" for port, _, width in x_ports]
    lines += [f"  output [{width - 1}:0] {port};" for port, _, width in y_ports]
    port_of = {node: port for port, nodes, _ in x_ports for node in nodes}

    def decl(kind, node, label):
        width, is_signed = shape[node]
        return f"  {kind}{' signed' if is_signed else ''} [{width - 1}:0] {label}"

    current = {}                       # node -> name of its value in the current stage
    offset = 0
    for node in range(g.n_inputs):
        width = shape[node][0]
        if node and port_of[node] != port_of[node - 1]:
            offset = 0
        lines.append(decl("wire", node, f"n{node}")
                     + f" = {port_of[node]}[{offset + width - 1}:{offset}];")
        current[node] = f"n{node}"
        offset += width

    def operand(node):
        label = current[node]
        return label if shape[node][1] else f"$signed({{1'b0, {label}}})"

    for t in range(schedule.stages + 1):
        if t and schedule.registered[t - 1]:
            updates = []
            for node in schedule.registered[t - 1]:
                label = f"n{node}_s{t}"
                lines.append(decl("reg", node, label) + ";")
                updates.append(f"      {label} <= {current[node]};")
                current[node] = label
            lines += ["  always @(posedge clk)", "    if (en) begin", *updates, "    end"]
        for node in schedule.computed[t]:
            op = "-" if g.sub[node] else "+"
            lines.append(("  (* keep *)\n" if keep else "") + decl("wire", node, f"n{node}")
                         + f" = {operand(g.a[node])} {op} {operand(g.b[node])};")
            current[node] = f"n{node}"
    for port, rows, _ in y_ports:
        outputs = [current[row_nodes[k]] for k in rows]
        lines.append(f"  assign {port} = {{{', '.join(reversed(outputs))}}};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def convert(top, name, trees):
    """Verilog text of the component ``top`` (module ``name``, no source locations) with the
    text of every tree of ``trees`` that it instantiates appended: complete, byte-identical."""
    text = verilog.convert(top, name=name, emit_src=False, platform=APPENDED)
    return text + "".join(f"\n{tree.verilog()}" for tree in trees if tree.text)
