"""Simulation speed: Verilator build time and checked vectors per second.

    python benchmarks/bench_simulate.py [--shape 64,32,32 ...] [--vectors 10000] [--seed 0]

For each shape, a random network is generated and built in a fresh build directory (the
design-independent Verilator runtime objects come from the user cache, as in normal use: the
first build on a machine compiles them once, about 20 s more). Then the same vectors are
checked against the reference with the default stalls (20 % of cycles on each stream) and
without stalls.

``vectors/s`` counts vectors through the design per second of the testbench's clock loop;
``total s`` is the whole simulator process (start-up, loading, loop, writing outputs).
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from strassen_hw.frozen import random_network
from strassen_hw.hw import generate_verilog
from strassen_hw.sim import check, test_vectors
from strassen_hw.sim.build import cache_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--shape", action="append", help="n_in,r,n_out (default 64,32,32)")
    parser.add_argument("--vectors", type=int, default=10000, help="random vectors (10000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'shape':>13} {'gen s':>6} {'build s':>7} {'stalls':>6} {'vectors':>7} "
          f"{'cycles':>7} {'loop s':>6} {'total s':>7} {'vectors/s':>9}")
    for shape in args.shape or ["64,32,32"]:
        dims = tuple(int(v) for v in shape.split(","))
        net = random_network([dims], seed=args.seed)
        start = time.perf_counter()
        verilog = generate_verilog(net)
        gen = time.perf_counter() - start
        x = test_vectors(net, args.vectors, seed=args.seed)
        with tempfile.TemporaryDirectory() as tmp:
            shared = cache_dir() / "objects"
            shared.mkdir(parents=True, exist_ok=True)
            Path(tmp, "objects").symlink_to(shared)
            for stalls in (True, False):
                r = check(net, x, seed=args.seed, stalls=stalls, build_dir=tmp, verilog=verilog)
                build = f"{r.build_seconds:.1f}" if r.build_seconds else "cached"
                print(f"{shape:>13} {gen:6.1f} {build:>7} {'20 %' if stalls else 'none':>6} "
                      f"{len(x):7d} {r.cycles:7d} {r.loop_seconds:6.2f} {r.sim_seconds:7.2f} "
                      f"{r.vectors_per_second:9,.0f}", flush=True)


if __name__ == "__main__":
    main()
