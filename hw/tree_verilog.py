"""Adder graphs written straight to Verilog text, for large networks.

Amaranth lowers every expression to a bit-level netlist and checks it for combinational cycles
with an edge from every input bit to every output bit of each adder, so its cost grows with
adders × width²: a 256→256→256 layer takes minutes. The adder trees are the bulk of a layer
and have a trivially simple structure, so :func:`tree_verilog` prints them directly (a few
seconds), as a module that :class:`~strassen_hw.hw.layer.StrassenLayer` instantiates. The
module computes exactly what the Amaranth translation of the same graph and schedule computes:
same nodes, same widths, same registers; tests/test_hw_verilog.py runs both under Verilator
against the reference.

Verilog sizing: every operand is made signed (an unsigned node gets a zero bit on top), so
each sum is computed sign-extended to the width of the widest operand or of the result, and
the result, known to fit its declared width, is cut to it exactly.
"""

__all__ = ["tree_verilog", "port_widths"]


def _shape(lo, hi):
    """``(width, signed)`` of the smallest shape holding ``[lo, hi]``; same as the layer's."""
    if lo >= 0:
        return max(1, hi.bit_length()), False
    return max((-lo - 1).bit_length(), max(hi, 0).bit_length()) + 1, True


def port_widths(graph):
    """Widths of the ``x`` (all inputs, packed) and ``y`` (every non-zero row) ports."""
    x = sum(_shape(graph.lo[k], graph.hi[k])[0] for k in range(graph.n_inputs))
    y = sum(_shape(graph.lo[row[0]], graph.hi[row[0]])[0] for row in graph.rows if row)
    return x, y


def tree_verilog(graph, schedule, name):
    """Verilog module ``name`` (ports ``clk``, ``en``, ``x``, ``y``) computing ``graph``.

    ``x`` packs the inputs, input 0 in the low bits, each in the exact width of its range;
    ``y`` packs the node of every non-zero row the same way (the row's sign is applied by the
    caller). Registers (updated when ``en``) sit at the boundaries of ``schedule``, as in
    :func:`~strassen_hw.hw.layer._translate`.
    """
    stage, need, stages = schedule
    g = graph
    shape = [_shape(g.lo[k], g.hi[k]) for k in range(len(g))]
    x_width, y_width = port_widths(g)
    lines = [f"module {name}(clk, en, x, y);", "  input clk;", "  input en;",
             f"  input [{x_width - 1}:0] x;", f"  output [{y_width - 1}:0] y;"]

    def decl(kind, node, label):
        width, signed = shape[node]
        return f"  {kind}{' signed' if signed else ''} [{width - 1}:0] {label}"

    current = {}                       # node -> name of its value in the current stage
    offset = 0
    for node in range(g.n_inputs):
        width = shape[node][0]
        lines.append(decl("wire", node, f"n{node}") + f" = x[{offset + width - 1}:{offset}];")
        current[node] = f"n{node}"
        offset += width

    def operand(node):
        label = current[node]
        return label if shape[node][1] else f"$signed({{1'b0, {label}}})"

    by_stage = [[] for _ in range(stages + 1)]
    for node in range(g.n_inputs, len(g)):
        by_stage[stage[node]].append(node)
    for t in range(stages + 1):
        if t:
            live = [node for node in range(len(g)) if stage[node] < t <= need[node]]
            updates = []
            for node in live:
                label = f"n{node}_s{t}"
                lines.append(decl("reg", node, label) + ";")
                updates.append(f"    {label} <= {current[node]};")
                current[node] = label
            if updates:
                lines += ["  always @(posedge clk)", "    if (en) begin"]
                lines += ["  " + line for line in updates]
                lines.append("    end")
        for node in by_stage[t]:
            op = "-" if g.sub[node] else "+"
            lines.append(decl("wire", node, f"n{node}")
                         + f" = {operand(g.a[node])} {op} {operand(g.b[node])};")
            current[node] = f"n{node}"
    outputs = [current[row[0]] for row in g.rows if row]
    lines.append(f"  assign y = {{{', '.join(reversed(outputs))}}};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"
