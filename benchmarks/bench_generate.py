"""Generation time and cost of random networks: prints one line per shape.

    python benchmarks/bench_generate.py [--shape 64,32,32 ...] [--no-share] [--levels 2]
                                        [--trees verilog|amaranth]

``time`` is the wall clock of ``generate_verilog`` (planning included), ``cpu`` its CPU time
(Amaranth in this process, its built-in Yosys in a child process); ``plan`` is the planning alone
(adder graphs with sharing, schedule, counts).
"""

import argparse
import os
import time

from strassen_hw.frozen import random_network
from strassen_hw.hw import generate_verilog, report

SHAPES = ["64,32,32", "256,128,256", "256,256,256"]


def _cpu():
    """CPU seconds of this process and its finished children (the built-in Yosys)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--shape", action="append", help="n_in,r,n_out (default: the three "
                        "shapes of the issue)")
    parser.add_argument("--no-share", action="store_true", help="no sharing of sub-sums")
    parser.add_argument("--levels", type=int, default=2, help="adder levels per stage")
    parser.add_argument("--trees", choices=["verilog", "amaranth"], default="verilog",
                        help="adder trees as Verilog text (default) or through Amaranth")
    args = parser.parse_args()
    share = not args.no_share
    print(f"sharing {'on' if share else 'off'}, {args.levels} adder levels per stage, "
          f"trees via {args.trees}")
    print(f"{'shape':>13} {'time s':>7} {'cpu s':>6} {'plan s':>6} {'adders':>7} "
          f"{'unshared':>8} {'mults':>5} {'reg bits':>8} {'latency':>7} {'MB':>5}")
    for text in args.shape or SHAPES:
        shape = tuple(int(v) for v in text.split(","))
        net = random_network([shape], seed=0)
        start = time.perf_counter()
        plan = report(net, levels_per_stage=args.levels, share=share)
        plan_s = time.perf_counter() - start
        wall, cpu = time.perf_counter(), _cpu()
        verilog = generate_verilog(net, levels_per_stage=args.levels, share=share,
                                   trees=args.trees)
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
        total, layer = plan["total"], plan["layers"][0]
        print(f"{text:>13} {wall:7.1f} {cpu:6.1f} {plan_s:6.1f} {total['adders']:7d} "
              f"{layer['adders_unshared']:8d} {total['multipliers']:5d} "
              f"{total['register_bits']:8d} {total['latency']:7d} {len(verilog) / 1e6:5.1f}",
              flush=True)


if __name__ == "__main__":
    main()
