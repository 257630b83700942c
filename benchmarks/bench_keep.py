"""Does ``(* keep *)`` on every adder wire keep Yosys from undoing the adder graph?

Synthesizes the ``W_b`` and ``W_c`` adder trees of a random layer (default 64→32, r = 32,
int8 inputs, pipelined every 2 adder levels) as printed by :func:`strassen_hw.hw.tree
.tree_verilog` with and without ``keep``, for iCE40 UP5K and ECP5, and prints LUT4, carries,
flip-flops and logic cells (nextpnr's packing; on ECP5 the LUT slots, ``TRELLIS_COMB``).
Tool results are cached (:mod:`strassen_hw.toolchain`)::

    .venv/bin/python benchmarks/bench_keep.py [--shape 64,32,32] [--seed 0]
        [--device up5k --device ecp5-25k] [--trees w_b,w_c]
"""

import argparse

from strassen_hw.cost import synthesize_module
from strassen_hw.frozen import random_network
from strassen_hw.hw.layer import LayerPlan
from strassen_hw.hw.tree import tree_verilog


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--shape", default="64,32,32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--levels-per-stage", type=int, default=2)
    parser.add_argument("--device", action="append")
    parser.add_argument("--trees", default="w_b,w_c")
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    net = random_network([shape], seed=args.seed)
    plan = LayerPlan(net.layers[0], net.input, args.levels_per_stage)
    trees = {"w_b": (plan.graph_b, plan.sched_b), "w_c": (plan.graph_c, plan.sched_c)}
    print(f"random layer {args.shape}, seed {args.seed}, {args.levels_per_stage} adder levels "
          f"per stage")
    print(f"{'tree':5} {'adders':>6} {'device':9} {'keep':5} {'LUT4':>7} {'carry':>7} "
          f"{'FF':>7} {'LC':>7} {'yosys s':>8}")
    for key in args.trees.split(","):
        graph, sched = trees[key]
        for device in args.device or ["up5k", "ecp5-25k"]:
            cells = {}
            for keep in (False, True):
                text = tree_verilog(graph, sched, "tree", keep=keep)
                row = synthesize_module(text, "tree", device,
                                        name=f"keep_{key}_{int(keep)}", progress=True)
                cells[keep] = row["logic_cells"]
                print(f"{key:5} {graph.adders:6} {device:9} {str(keep):5} {row['luts']:7,} "
                      f"{row['carries']:7,} {row['ffs']:7,} {row['logic_cells']:7,} "
                      f"{row['tool_seconds']:8.0f}", flush=True)
            print(f"      keep saves {100 * (1 - cells[True] / cells[False]):.1f} % of the "
                  f"logic cells on {device}")


if __name__ == "__main__":
    main()
