"""A longer fuzz of the edges than the test suite runs: random valid networks and random
mutations of network files and .npy inputs, each run through ``strassen-hw reference``
in-process and judged by ``tests/edge_fuzz.py`` (rules and exact Python-integer evaluation
written from docs/frozen-format.md). Prints how many cases ran and how many of each outcome.

    python benchmarks/fuzz_edges.py --cases 5000 --seed 0
"""

import argparse
import collections
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from edge_fuzz import Failure, run_case  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=10, help="failures to print (default 10)")
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
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
