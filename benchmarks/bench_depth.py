"""Pipeline depth against logic cells and Fmax (nextpnr), and the timing model's check.

Default: a random layer (``--shape``, default 16,8,8, int8 inputs: its 8 multipliers fit
the UP5K's 8 DSP blocks) generated with 1..4
adder levels per stage; for each, the logic cells (nextpnr's packing), the register bits,
the latency, the Fmax of the whole layer placed and routed inside the report's harness, and
the Fmax the model of :mod:`strassen_hw.hw.timing` predicts for its adder stages.

``--calibrate``: the ``W_b`` and ``W_c`` trees of a layer (default 32,16,16) alone,
harnessed, for 1..4
levels per stage; fits ``a + b·levels + c·width`` (ns) to nextpnr's critical paths and
prints the constants for :data:`strassen_hw.hw.timing.TIMING`. Tool runs are cached::

    .venv/bin/python benchmarks/bench_depth.py --calibrate --device up5k
    .venv/bin/python benchmarks/bench_depth.py --device up5k
"""

import argparse

import numpy as np

from strassen_hw.cost import place_and_route, synthesize_module
from strassen_hw.frozen import random_network
from strassen_hw.hw import generate_verilog, report
from strassen_hw.hw.generate import plan
from strassen_hw.hw.graph import Schedule, value_shape
from strassen_hw.hw.layer import LayerPlan
from strassen_hw.hw.timing import TIMING, stage_ns, widest_adder
from strassen_hw.hw.tree import tree_verilog


def _tree_bits(graph):
    x = sum(value_shape(graph.lo[k], graph.hi[k])[0] for k in range(graph.n_inputs))
    y = sum(value_shape(graph.lo[row[0]], graph.hi[row[0]])[0] for row in graph.rows if row)
    return x, y


def calibrate(net, device, levels):
    layer = LayerPlan(net.layers[0], net.input, 1)
    points = []
    print(f"{'tree':5} {'k':>2} {'width':>5} {'depth':>5} {'Fmax MHz':>9} {'ns':>6}")
    for key, graph in (("w_b", layer.graph_b), ("w_c", layer.graph_c)):
        width = widest_adder(graph)
        for k in levels:
            if k > graph.depth:
                continue
            text = tree_verilog(graph, Schedule.of(graph, k), "tree")
            fmax, _ = place_and_route(text, "tree", device, *_tree_bits(graph), stream=False,
                                      name=f"depth_{key}_{k}", progress=True)
            points.append((k, width, 1000.0 / fmax))
            print(f"{key:5} {k:2} {width:5} {graph.depth:5} {fmax:9.1f} {1000 / fmax:6.2f}",
                  flush=True)
    k, w, ns = (np.array(v, dtype=float) for v in zip(*points))
    design = np.stack([np.ones_like(k), k, w], axis=1)
    (a, b, c), *_ = np.linalg.lstsq(design, ns, rcond=None)
    worst = np.max(np.abs(design @ np.array([a, b, c]) - ns))
    print(f'fit: "{device}": ({a:.2f}, {b:.2f}, {c:.3f}),   # largest error {worst:.2f} ns')


def check(net, device, levels):
    print(f"{'k':>2} {'LC':>7} {'FF':>7} {'reg bits':>8} {'latency':>7} {'Fmax MHz':>9} "
          f"{'model (adders) MHz':>18}")
    width = max(widest_adder(g) for p in plan(net) for g in (p.graph_b, p.graph_c))
    for k in levels:
        text = generate_verilog(net, levels_per_stage=k)
        total = report(net, levels_per_stage=k)["total"]
        row = synthesize_module(text, net.name, device, name=f"depth_net_{k}", progress=True)
        fmax, _ = place_and_route(text, net.name, device, net.n_in * net.input.width,
                                  net.n_out * net.output.width, name=f"depth_net_{k}_pnr",
                                  progress=True)
        model = (f"{1000 / stage_ns(device, k, width):18.1f}"
                 if None not in TIMING.get(device, (None,)) else f"{'-':>18}")
        print(f"{k:2} {row['logic_cells']:7,} {row['ffs']:7,} {total['register_bits']:8,} "
              f"{total['latency']:7} {fmax:9.1f} {model}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--shape", default=None, help="default 16,8,8; 32,16,16 with "
                                                          "--calibrate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="up5k")
    parser.add_argument("--levels", default="1,2,3,4")
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args()
    shape = args.shape or ("32,16,16" if args.calibrate else "16,8,8")
    net = random_network([tuple(int(v) for v in shape.split(","))], seed=args.seed)
    levels = [int(v) for v in args.levels.split(",")]
    print(f"random layer {shape}, seed {args.seed}, {args.device}")
    (calibrate if args.calibrate else check)(net, args.device, levels)


if __name__ == "__main__":
    main()
