"""A longer fuzz of the edges than the test suite runs: random valid networks and random
mutations of network files and .npy inputs, each run through ``strassen-hw reference``
in-process and judged by ``tests/edge_fuzz.py`` (rules and exact Python-integer evaluation
written from docs/frozen-format.md). Prints how many cases ran and how many of each outcome.

    python benchmarks/fuzz_edges.py --cases 5000 --seed 0 [--hardware 5]

``--hardware K`` also simulates K random valid networks (edges favoured, a third of them with
values past 2^63) under Verilator and compares every output with the Python-integer evaluation.
"""

import argparse
import collections
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from edge_fuzz import Failure, evaluate, random_doc, random_rows, run_case  # noqa: E402


def _hardware(count, seed):
    """Simulate ``count`` random valid networks; returns (networks, outputs) that agreed."""
    import numpy as np

    from strassen_hw.frozen import from_json, signed_width, stage_ranges
    from strassen_hw.sim import simulate, test_vectors
    outputs = 0
    for case in range(count):
        rng = random.Random(f"hw-{seed}-{case}")
        doc = random_doc(rng)
        doc["name"] = f"fuzz{case}"
        net = from_json(doc)
        x = np.concatenate([test_vectors(net, 50, seed=case),
                            np.array(random_rows(rng, doc), dtype=np.int64)])
        got = simulate(net, x, seed=case).tolist()
        want = evaluate(doc, x.tolist())
        if got != want:
            raise SystemExit(f"hardware case {case}: the hardware differs from the Python "
                             f"integers: {doc}")
        outputs += len(want) * len(want[0])
        bits = max(signed_width(lo.min(), hi.max()) for layer, fmt in
                   zip(net.layers, net.layer_inputs())
                   for lo, hi in stage_ranges(layer, fmt).values())
        print(f"  hardware {case}: {len(want)} vectors agree (widest value {bits} bits)",
              flush=True)
    return count, outputs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=10, help="failures to print (default 10)")
    parser.add_argument("--hardware", type=int, default=0, metavar="K",
                        help="also simulate K random valid networks under Verilator")
    args = parser.parse_args()
    outcomes, kinds, failures = collections.Counter(), collections.Counter(), []
    start = time.perf_counter()
    for case in range(args.cases):
        rng = random.Random(f"{args.seed}-{case}")
        with tempfile.TemporaryDirectory() as tmp:
            try:
                outcome, mutation = run_case(rng, tmp)
            except Failure as e:
                outcome, mutation = "FAILED", str(e).split(":")[0]
                failures.append(f"case {case}: {e}")
        outcomes[outcome] += 1
        kinds[(mutation.split(" ")[0] if not mutation.startswith("npy") else
               " ".join(mutation.split(" ")[:2]), outcome)] += 1
    seconds = time.perf_counter() - start
    print(f"{args.cases} cases (seed {args.seed}) in {seconds:.1f} s")
    for outcome in ("accepted", "refused", "FAILED"):
        print(f"  {outcome:9} {outcomes[outcome]:6}")
    print("by mutation (accepted / refused / failed):")
    names = sorted({name for name, _ in kinds})
    for name in names:
        print(f"  {name:22} {kinds[name, 'accepted']:5} {kinds[name, 'refused']:5} "
              f"{kinds[name, 'FAILED']:5}")
    for line in failures[:args.show]:
        print(line)
    if args.hardware:
        nets, outputs = _hardware(args.hardware, args.seed)
        print(f"hardware: {nets} networks, {outputs} outputs equal the Python integers")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
