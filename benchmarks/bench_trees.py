"""Where the logic cells of a network go: each adder tree synthesized alone.

For every layer of a frozen network, the ``W_b`` and ``W_c`` trees (as ``generate`` prints
them, with the default pipeline) are synthesized on their own for ``--device`` through
:func:`strassen_hw.cost.synthesize_module` (cached), next to the whole network; the rest
(multipliers, rounding, requantization, stream control) is the difference::

    .venv/bin/python benchmarks/bench_trees.py out/digits.json [--device up5k]
"""

import argparse

from strassen_hw.cost import synthesize_module
from strassen_hw.frozen import load
from strassen_hw.hw import generate_verilog, report
from strassen_hw.hw.generate import plan
from strassen_hw.hw.timing import widest_adder
from strassen_hw.hw.tree import tree_verilog


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("network")
    parser.add_argument("--device", default="up5k")
    parser.add_argument("--levels-per-stage", type=int, default=2)
    args = parser.parse_args()
    net = load(args.network)
    k = args.levels_per_stage
    print(f"{'part':16} {'adders':>7} {'widest':>6} {'LUT4':>7} {'carry':>7} {'FF':>7} "
          f"{'LC':>7} {'DSP':>4}")
    summed = 0
    for index, layer_plan in enumerate(plan(net, levels_per_stage=k)):
        for key, graph, sched in (("w_b", layer_plan.graph_b, layer_plan.sched_b),
                                  ("w_c", layer_plan.graph_c, layer_plan.sched_c)):
            row = synthesize_module(tree_verilog(graph, sched, "tree"), "tree", args.device,
                                    name=f"trees_{net.name}_{index}_{key}", progress=True)
            summed += row["logic_cells"]
            print(f"layer{index} {key:10} {graph.adders:7,} {widest_adder(graph):6} "
                  f"{row['luts']:7,} {row['carries']:7,} {row['ffs']:7,} "
                  f"{row['logic_cells']:7,} {row['dsps']:4}", flush=True)
    total = report(net, levels_per_stage=k)["total"]
    row = synthesize_module(generate_verilog(net, levels_per_stage=k), net.name, args.device,
                            name=f"trees_{net.name}_all", progress=True)
    print(f"{'whole network':16} {total['adders']:7,} {'':6} {row['luts']:7,} "
          f"{row['carries']:7,} {row['ffs']:7,} {row['logic_cells']:7,} {row['dsps']:4}")
    print(f"the trees: {summed:,} of {row['logic_cells']:,} logic cells "
          f"({100 * summed / row['logic_cells']:.0f} %); {total['multipliers']} multipliers")


if __name__ == "__main__":
    main()
