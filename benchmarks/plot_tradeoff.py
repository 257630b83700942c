"""Accuracy against multiplications per inference on the digits, for several r.

Trains (or reuses cached checkpoints of) the demo's default network (64 → 32 → 10,
:data:`strassen_hw.demo.DEFAULT`) with several (r_hidden, r_out) and seeds, freezes each, and plots the frozen integer test accuracy (mean,
min-max bars) and the float Strassen accuracy against the multiplications per inference, with
the float teacher (dense layers) as a horizontal line. Writes the PNG and the numbers as JSON.

    python benchmarks/plot_tradeoff.py                       # docs/accuracy-vs-mults.png
    python benchmarks/plot_tradeoff.py --seeds 0-1 --out /tmp/tradeoff.png
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from digits_seeds import _seeds, measure  # noqa: E402

#: (r of the hidden layer, r of the output layer) for the 64 → 32 → 10 default, from 7 to
#: 96 multiplications; (20, 8) is the default's.
R_VALUES = [(4, 3), (8, 4), (12, 8), (16, 8), (20, 8), (24, 12), (32, 16), (48, 24),
            (64, 32)]


def plot(rows, path, hidden, default_r=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dense = rows[0]["dense_multiplications"]
    by_r = {}
    for row in rows:
        by_r.setdefault(row["multiplications"], []).append(row)
    mults = sorted(by_r)
    frozen = [100 * np.array([r["frozen"] for r in by_r[m]]) for m in mults]
    floats = [100 * np.mean([r["float_strassen"] for r in by_r[m]]) for m in mults]
    teacher = 100 * np.mean([r["teacher"] for r in rows])
    mean = np.array([f.mean() for f in frozen])
    err = np.array([[f.mean() - f.min() for f in frozen], [f.max() - f.mean() for f in frozen]])
    seeds = len(by_r[mults[0]])

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    ax.axhline(teacher, color="black", lw=1.2,
               label=f"float teacher, dense layers ({dense:,} mults): {teacher:.2f}%")
    ax.axhline(teacher - 1, color="black", lw=0.8, ls=":", label="teacher − 1 point")
    ax.axvline(dense / 100, color="grey", lw=0.8, ls="--", label="1% of the dense mults")
    ax.plot(mults, floats, "s--", color="tab:orange", ms=4, lw=1,
            label="float Strassen model (mean)")
    ax.errorbar(mults, mean, yerr=err, fmt="o-", color="tab:blue", ms=5, capsize=3,
                label=f"frozen integers = hardware (mean, min–max of {seeds} seeds)")
    if default_r is not None and sum(default_r) in by_r:
        m = sum(default_r)
        ax.annotate(f"demo default\nr = {default_r[0]}, {default_r[1]}",
                    (m, mean[mults.index(m)]), xytext=(0, -34), textcoords="offset points",
                    ha="center", fontsize=7.5, arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax.set_xscale("log")
    ax.set_xticks(mults)
    ax.set_xticklabels([str(m) for m in mults], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel(f"multiplications per inference (64→{hidden}→10; dense: {dense:,})")
    ax.set_ylabel("test accuracy (%), 360 images")
    ax.set_title("Handwritten digits: accuracy vs multiplications (StrassenNets, r per layer)",
                 fontsize=10)
    bottom = max(min(mean.min() - 3, teacher - 4), 0)
    ax.set_ylim(bottom, 100)
    for m, f in zip(mults, frozen):
        if f.min() < bottom:                   # say where a clipped bar ends
            ax.annotate(f"min {f.min():.1f}%", (m, bottom), xytext=(4, 4),
                        textcoords="offset points", fontsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="e.g. 0-2")
    parser.add_argument("--out", default="docs/accuracy-vs-mults.png")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--replot", metavar="JSON",
                        help="plot the rows of an earlier run's JSON instead of training")
    args = parser.parse_args()
    from strassen_hw.demo import DEFAULT, default_cache_dir
    from strassen_hw.train.recipe import TrainConfig
    hidden = DEFAULT.get("hidden", TrainConfig().hidden)
    if args.replot:
        rows = json.loads(Path(args.replot).read_text())
        plot(rows, Path(args.out), hidden, DEFAULT["r"])
        print(f"wrote {args.out}")
        return
    rows = []
    for r in R_VALUES:
        for seed in args.seeds:
            start = time.perf_counter()
            row = measure(seed, {**DEFAULT, "r": r}, args.cache_dir or default_cache_dir(),
                          False)
            rows.append({**row, "r": list(r)})
            print(f"r = {r}: seed {seed}: teacher {100 * row['teacher']:.2f}%, frozen "
                  f"{100 * row['frozen']:.2f}% with {row['multiplications']} mults "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    out = Path(args.out)
    plot(rows, out, hidden, DEFAULT["r"])
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
