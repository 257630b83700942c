"""Silicon against accuracy on the digits: a sweep over hidden width and r per layer.

For each point (hidden width, r of the hidden and of the output layer, seed): train the
teacher and the Strassen model (:func:`strassen_hw.demo.train_or_load`, checkpoints cached),
freeze, measure the frozen test accuracy, generate the Verilog and synthesize it for an iCE40
(``strassen-hw report``'s :func:`strassen_hw.cost.measure`: Yosys ``synth_ice40 -dsp``,
nextpnr's packing). Each point's row is cached in ``--cache`` (with the times measured when it
was first run). Plots, with matplotlib's Agg backend:

* ``<out>-cells.png``: logic cells and multiplications per inference against accuracy (with
  the dense int8 and TWN baselines, when the baseline generator is available);
* ``<out>-time.png``: generation and synthesis time against the network's adders.

A small run (a few minutes on a loaded 2-core machine, shorter training)::

    .venv/bin/python benchmarks/sweep_digits.py --hidden 32,64 --r 8,5 --r 16,10 \\
        --seeds 0 --epochs 20,20,20,10 --baselines 32 --out docs/sweep-small

The sweep that chose the demo's default (five seeds, only seed 0 synthesized; it prints the
mean teacher and frozen accuracy of each point, their gap and its logic cells; about 15
minutes)::

    .venv/bin/python benchmarks/sweep_digits.py --hidden 24,32,64 --r 12,8 --r 16,8 \\
        --r 16,10 --r 20,8 --r 24,8 --r 20,12 --seeds 0-4 --synth-seeds 0 \\
        --out docs/sweep-default

The full sweep (hours)::

    .venv/bin/python benchmarks/sweep_digits.py --hidden 32,64,128 --r 4,3 --r 8,5 \\
        --r 12,8 --r 16,10 --r 24,15 --r 32,20 --r 48,30 --seeds 0-4 --baselines \\
        --out docs/sweep
"""

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from digits_seeds import _seeds  # noqa: E402


def _point(hidden, r, seed, epochs, device, cache_dir, cache, baselines, synth=True):
    """The cached rows of one point (trained, frozen, and unless ``synth`` is false generated
    and synthesized; without synthesis one row with the accuracies and null silicon figures)."""
    key = json.dumps([hidden, list(r), seed, list(epochs), device, baselines]
                     + ([] if synth else ["accuracy only"]))
    path = Path(cache) / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    if path.is_file():
        return json.loads(path.read_text())
    from strassen_hw.cost import Variant, baseline_variants, measure
    from strassen_hw.demo import train_or_load
    from strassen_hw.reference import forward
    from strassen_hw.train import data as digits
    from strassen_hw.train.recipe import TrainConfig, accuracy
    from strassen_hw.train.freeze import freeze
    import torch

    data = digits.load()
    config = TrainConfig(hidden=hidden, r=r, seed=seed, teacher_epochs=epochs[0],
                         phase_epochs=epochs[1:])
    start = time.perf_counter()
    result = train_or_load(config, data, cache_dir, False, lambda line: None)
    train_seconds = time.perf_counter() - start
    x = torch.as_tensor(data.x_test, dtype=torch.float32) * data.input_scale
    teacher = accuracy(result.teacher, x, torch.as_tensor(data.y_test))
    net, _ = freeze(result.student, data.x_train, name="digits",
                    input_format=data.input_format, input_scale=data.input_scale)
    acc = float(np.mean(forward(net, data.x_test).argmax(1) == data.y_test))
    if synth:
        rows = [measure(Variant("strassen", net, acc), device, progress=True)]
    else:
        from strassen_hw.demo import strassen_counts
        rows = [{"variant": "strassen", "device": device, "accuracy": acc,
                 "multipliers": strassen_counts(net)[0], "adders": None,
                 "logic_cells": None, "dsps": None, "generate_seconds": None,
                 "tool_seconds": None}]
    if baselines and synth:
        settings = {"hidden": hidden, "r": r, "teacher_epochs": epochs[0],
                    "phase_epochs": epochs[1:]}
        rows += [measure(v, device, progress=True)
                 for v in baseline_variants(seed, cache_dir, settings)]
    for row in rows:
        row.update(hidden=hidden, r=list(r), seed=seed, teacher=teacher,
                   train_seconds=round(train_seconds, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1) + "\n")
    return rows


def _cell(value, spec):
    width = int(spec.rstrip(",f").split(".")[0])
    return " " * (width - 1) + "-" if value is None else format(value, spec)


def _summary(rows):
    """Print one line per (hidden, r) of the Strassen rows: means over the seeds of the
    teacher's and the frozen network's accuracy, their gap, and the synthesized seeds' logic
    cells; return ``{(hidden, r): (mean teacher, mean frozen accuracy, seeds)}``."""
    points = {}
    for row in rows:
        if row["variant"] == "strassen":
            points.setdefault((row["hidden"], tuple(row["r"])), []).append(row)
    print(f"\n{'hidden':>6} {'r':>7} {'seeds':>5} {'mults':>5} {'teacher %':>9} "
          f"{'frozen %':>8} {'gap':>6} {'LC':>7}")
    for (hidden, r), mine in points.items():
        teacher = 100 * np.mean([row["teacher"] for row in mine])
        frozen = 100 * np.mean([row["accuracy"] for row in mine])
        cells = [row["logic_cells"] for row in mine if row["logic_cells"] is not None]
        mults = max(row["multipliers"] for row in mine)
        print(f"{hidden:6} {r[0]:3},{r[1]:<3} {len(mine):5} {mults:5} "
              f"{teacher:9.2f} {frozen:8.2f} {teacher - frozen:6.2f} "
              f"{_cell(min(cells) if cells else None, '7,')}")
    print()
    return {key: (np.mean([row["teacher"] for row in mine]),
                  np.mean([row["accuracy"] for row in mine]), len(mine))
            for key, mine in points.items()}


def _axis(ax, values, integer=False):
    """A linear x axis when the values span less than a factor of 10 (log beyond), with
    ticks that show their values."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator
    lo, hi = min(values), max(values)
    if hi > 10 * lo:
        ax.set_xscale("log")
    else:
        pad = 0.06 * (hi - lo or 1)
        ax.set_xlim(lo - pad, hi + pad)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=integer))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def plot_cells(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=120)
    teacher = 100 * np.mean([r.get("mean_teacher", r["teacher"]) for r in rows])
    markers = {"strassen": ("o", "tab:blue"), "twn": ("s", "tab:green"),
               "dense": ("^", "tab:red")}
    accuracies = []
    for label, (marker, color) in markers.items():
        mine = [r for r in rows if r["variant"] == label and r["logic_cells"] is not None]
        if not mine:
            continue
        acc = [100 * r.get("mean_accuracy", r["accuracy"]) for r in mine]
        accuracies += acc
        left.scatter([r["logic_cells"] for r in mine], acc, marker=marker, color=color,
                     label=label, zorder=3)
        right.scatter([r["multipliers"] for r in mine], acc, marker=marker, color=color,
                      label=label, zorder=3)
        if label == "strassen":
            for r, a in zip(mine, acc):
                text = f"{r['hidden']}: {r['r'][0]},{r['r'][1]}"
                for ax, x in ((left, r["logic_cells"]), (right, r["multipliers"])):
                    ax.annotate(text, (x, a), fontsize=6.5, xytext=(3, 3),
                                textcoords="offset points")
    cells = [r["logic_cells"] for r in rows if r["logic_cells"] is not None]
    _axis(left, cells)
    _axis(right, [r["multipliers"] for r in rows if r["logic_cells"] is not None], integer=True)
    lo, hi = min(accuracies + [teacher - 0.5]), max(accuracies + [teacher])
    pad = 0.12 * (hi - lo or 1)
    for ax, what in ((left, f"iCE40 logic cells ({rows[0]['device']}, + DSPs), seed 0"),
                     (right, "multipliers (DSPs) in hardware, seed 0")):
        ax.axhline(teacher, color="black", lw=1, label=f"float teacher (mean) {teacher:.2f}%")
        ax.axhline(teacher - 0.5, color="black", lw=0.8, ls=":", label="teacher − 0.5 point")
        ax.set_ylim(lo - pad, hi + pad)           # the teacher line inside the frame
        ax.set_xlabel(what)
        ax.set_ylabel("frozen test accuracy (%), mean of the seeds")
        ax.grid(alpha=0.3)
    left.legend(fontsize=7, loc="lower right")
    fig.suptitle("Digits MLP 64→hidden→10: silicon against accuracy (labels: hidden: r1,r2)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_time(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["adders"])
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    adders = [r["adders"] for r in rows]
    ax.plot(adders, [r["generate_seconds"] for r in rows], "o-", label="generate (Verilog)")
    ax.plot(adders, [r["tool_seconds"] for r in rows], "s-",
            label="synthesize (Yosys + nextpnr packing)")
    ax.set_xlabel("adders of the network (generator's count)")
    ax.set_ylabel("seconds")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--hidden", default="32,64,128", help="hidden widths, e.g. 32,64")
    parser.add_argument("--r", action="append", help="R1,R2 (repeat; default 8,5 16,10 48,30)")
    parser.add_argument("--seeds", type=_seeds, default=[0], help="e.g. 0-4")
    parser.add_argument("--epochs", default="60,60,60,30",
                        help="teacher and the three phases (default: the demo's)")
    parser.add_argument("--device", default="up5k")
    parser.add_argument("--synth-seeds", type=_seeds, default=None, metavar="SEEDS",
                        help="synthesize only these seeds' networks (default: every seed); "
                             "the others are trained and frozen for their accuracy")
    parser.add_argument("--baselines", nargs="?", const="all", default=None, metavar="H,...",
                        help="also the dense int8 and TWN networks of each trained model "
                             "(of the hidden widths H only, when given)")
    parser.add_argument("--cache", default=None,
                        help="rows per point (default ~/.cache/strassen-hw/sweep)")
    parser.add_argument("--cache-dir", default=None, help="trained checkpoints")
    parser.add_argument("--out", default="docs/sweep", help="prefix of the PNGs and JSON")
    parser.add_argument("--replot", metavar="JSON",
                        help="draw the PNGs of an earlier run's JSON (its rows) at --out")
    args = parser.parse_args()
    if args.replot:
        rows = json.loads(Path(args.replot).read_text())
        plot_cells(rows, f"{args.out}-cells.png")
        plot_time([r for r in rows if r["variant"] == "strassen"], f"{args.out}-time.png")
        print(f"wrote {args.out}-cells.png and {args.out}-time.png")
        return
    from strassen_hw.demo import default_cache_dir
    cache_dir = args.cache_dir or default_cache_dir()
    cache = args.cache or Path(default_cache_dir()).parent / "sweep"
    epochs = tuple(int(v) for v in args.epochs.split(","))
    rs = [tuple(int(v) for v in text.split(",")) for text in args.r or ["8,5", "16,10", "48,30"]]
    rows, seen = [], set()
    print(f"{'hidden':>6} {'r':>7} {'seed':>4} {'variant':8} {'acc %':>6} {'mults':>5} "
          f"{'adders':>6} {'LC':>7} {'DSP':>4} {'gen s':>6} {'synth s':>7} {'train s':>7}")
    for hidden in (int(v) for v in args.hidden.split(",")):
        for r in rs:
            for seed in args.seeds:
                baselines = args.baselines == "all" or (
                    args.baselines is not None
                    and str(hidden) in args.baselines.split(","))
                synth = args.synth_seeds is None or seed in args.synth_seeds
                for row in _point(hidden, r, seed, epochs, args.device, cache_dir, cache,
                                  baselines, synth):
                    same = (row["variant"], hidden, seed)
                    if row["variant"] != "strassen" and same in seen:
                        continue      # the baselines do not depend on r: once per width
                    seen.add(same)
                    rows.append(row)
                    print(f"{hidden:6} {r[0]:3},{r[1]:<3} {seed:4} {row['variant']:8} "
                          f"{100 * row['accuracy']:6.2f} {row['multipliers']:5} "
                          + " ".join(_cell(row[k], f) for k, f in (
                              ("adders", "6,"), ("logic_cells", "7,"), ("dsps", "4"),
                              ("generate_seconds", "6.1f"), ("tool_seconds", "7.1f")))
                          + f" {row['train_seconds']:7.1f}", flush=True)
    means = _summary(rows)
    rows = [r for r in rows if r["logic_cells"] is not None]
    for row in rows:      # the plot shows a point's mean over its seeds
        if row["variant"] == "strassen":
            teacher, acc, seeds = means[row["hidden"], tuple(row["r"])]
            row.update(mean_teacher=float(teacher), mean_accuracy=float(acc), seeds=seeds)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_cells(rows, f"{out}-cells.png")
    plot_time([r for r in rows if r["variant"] == "strassen"], f"{out}-time.png")
    Path(f"{out}.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {out}-cells.png, {out}-time.png and {out}.json")


if __name__ == "__main__":
    main()
