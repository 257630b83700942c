"""The digits network against its baselines: dense int8 and TWN, from the same teacher.

For each seed, :func:`strassen_hw.demo.digits_variants` gives the frozen Strassen, TWN and dense
int8 networks (training or reusing cached checkpoints); this prints the teacher's test accuracy,
each frozen network's (exact integer reference), and each network's multipliers, wired
(ã = ±2^k) and vanished (ã = 0) products and adders from the hardware report. ``--json`` keeps
the rows.

    python benchmarks/baselines.py --seeds 0
    python benchmarks/baselines.py --seeds 0-4 --json runs/baselines.json
"""

import argparse
import json

import numpy as np


def _seeds(text):
    if "-" in text:
        lo, hi = (int(v) for v in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(v) for v in text.split(",")]


def measure(seed, cache_dir, quick):
    import torch

    from strassen_hw.demo import DEFAULT, QUICK, default_cache_dir, digits_variants, train_or_load
    from strassen_hw.hw import report
    from strassen_hw.train import data as digits
    from strassen_hw.train.recipe import TrainConfig, accuracy

    data = digits.load()
    cache_dir = cache_dir or default_cache_dir()
    variants = digits_variants(seed, cache_dir, quick=quick)
    # the teacher, from the cache that digits_variants has just filled
    config = TrainConfig(seed=seed, **(QUICK if quick else DEFAULT))
    teacher = train_or_load(config, data, cache_dir, False, lambda line: None).teacher
    x = torch.as_tensor(data.x_test, dtype=torch.float32) * data.input_scale
    rows = [{"seed": seed, "variant": "teacher", "accuracy":
             accuracy(teacher, x, torch.as_tensor(data.y_test))}]
    for variant, (net, acc) in variants.items():
        total = report(net)["total"]
        rows.append({"seed": seed, "variant": variant, "accuracy": acc,
                     "a_width": net.layers[0].a_width,
                     **{key: total[key] for key in ("r", "multipliers", "products_shift",
                                                    "products_zero", "adders",
                                                    "register_bits")}})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--seeds", type=_seeds, default=[0], help="e.g. 0-4 or 0,3")
    parser.add_argument("--quick", action="store_true", help="the demo's --quick settings")
    parser.add_argument("--cache-dir", default=None, help="checkpoints (default: the demo's)")
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args()
    head = (f"{'seed':>4}  {'variant':<9} {'accuracy':>8} {'ã bits':>6} {'r':>6} "
            f"{'mults':>6} {'±2^k':>5} {'zero':>5} {'adders':>7} {'reg bits':>9}")
    print(head)
    rows = []
    for seed in args.seeds:
        for row in measure(seed, args.cache_dir, args.quick):
            rows.append(row)
            if row["variant"] == "teacher":
                print(f"{seed:>4}  {'teacher':<9} {100 * row['accuracy']:7.2f}%")
                continue
            print(f"{seed:>4}  {row['variant']:<9} {100 * row['accuracy']:7.2f}% "
                  f"{row['a_width']:>6} {row['r']:>6} {row['multipliers']:>6} "
                  f"{row['products_shift']:>5} {row['products_zero']:>5} {row['adders']:>7} "
                  f"{row['register_bits']:>9}")
    if len(args.seeds) > 1:
        print("mean over seeds:")
        for variant in ("teacher", "strassen", "twn", "dense"):
            accs = [row["accuracy"] for row in rows if row["variant"] == variant]
            print(f"  {variant:<9} {100 * np.mean(accs):.2f}% (min {100 * min(accs):.2f}%, "
                  f"max {100 * max(accs):.2f}%)")
    if args.json:
        from strassen_hw.frozen import atomic_write
        atomic_write(args.json, json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
