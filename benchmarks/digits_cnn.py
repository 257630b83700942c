"""Strassen CNNs on the digits: accuracy against multiplications per image, next to the dense CNN.

For each seed, trains the float teacher (:func:`strassen_hw.train.models.digits_cnn`, two 3×3
convolutions with max pooling and a linear classifier) once, then for each r setting a Strassen
student (both convolutions and the classifier strassenized) in the three phases with
distillation from that teacher. Prints per run the test accuracy of the teacher, of the float
Strassen model (end of the full-precision phase) and of the ternary one (end of training), and
the multiplications and additions per image against the dense CNN's; then a summary per r, and
plots accuracy against multiplications (mean and min-max over the seeds).

The ternary model is the float network with ternary ``W_b``/``W_c``; each is then frozen into
integers (:func:`strassen_hw.train.freeze.freeze`, batch norm folded into ã and the biases) and
the frozen network's accuracy is that of the exact reference (``frozen``).

    python benchmarks/digits_cnn.py                     # docs/cnn-accuracy-vs-mults.png
    python benchmarks/digits_cnn.py --seeds 0 --r 8,16,10 --out /tmp/cnn.png
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from digits_seeds import _seeds  # noqa: E402

#: r of (conv 1, conv 2, classifier), with p = 2 in both convolutions by default.
R_VALUES = [(2, 4, 10), (4, 8, 10), (4, 16, 10), (8, 16, 10), (16, 32, 10)]


def _ints(text):
    return tuple(int(v) for v in text.split(","))


def measure(config, data, teacher):
    """Train the student of ``config`` distilled from ``teacher``; one result row."""
    import torch

    from strassen_hw.reference import forward
    from strassen_hw.train.recipe import accuracy, train
    from strassen_hw.train.freeze import freeze
    from strassen_hw.train.layers import count_operations
    from strassen_hw.train.models import digits_cnn

    result = train(config, data, progress=False, teacher=teacher)
    x = torch.as_tensor(data.x_test, dtype=torch.float32) / 16
    y = torch.as_tensor(data.y_test)
    last = {row["stage"]: row["test_accuracy"] for row in result.history}
    ops = count_operations(result.student, (64,))
    dense = count_operations(digits_cnn(), (64,))
    net, report = freeze(result.student, data.x_train, name="cnn",
                         input_format=data.input_format, input_scale=data.input_scale)
    frozen = float(np.mean(forward(net, data.x_test).argmax(1) == data.y_test))
    return {"seed": config.seed, "r": list(config.r), "p": list(config.p),
            "batch_norm": config.batch_norm, "teacher": accuracy(teacher, x, y),
            "float_strassen": last["full_precision"], "ternary": accuracy(result.student, x, y),
            "frozen": frozen, "a_width": report.a_width,
            "multiplications": ops["multiplications"], "additions": ops["additions"],
            "additions_worst_case": count_operations(result.student, (64,),
                                                     worst_case=True)["additions"],
            "dense_multiplications": dense["multiplications"],
            "dense_additions": dense["additions"],
            "layers": ops["layers"]}


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dense = rows[0]["dense_multiplications"]
    by_m = {}
    for row in rows:
        by_m.setdefault(row["multiplications"], []).append(row)
    mults = sorted(by_m)
    ternary = [100 * np.array([r["ternary"] for r in by_m[m]]) for m in mults]
    floats = [100 * np.mean([r["float_strassen"] for r in by_m[m]]) for m in mults]
    teacher = 100 * np.mean([r["teacher"] for r in {r["seed"]: r for r in rows}.values()])
    mean = np.array([t.mean() for t in ternary])
    err = np.array([[t.mean() - t.min() for t in ternary], [t.max() - t.mean() for t in ternary]])
    seeds = len(by_m[mults[0]])

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    ax.axhline(teacher, color="black", lw=1.2,
               label=f"float teacher, dense CNN ({dense:,} mults): {teacher:.2f}%")
    ax.axhline(teacher - 1, color="black", lw=0.8, ls=":", label="teacher − 1 point")
    ax.axvline(dense / 100, color="grey", lw=0.8, ls="--", label="1% of the dense mults")
    ax.plot(mults, floats, "s--", color="tab:orange", ms=4, lw=1,
            label="float Strassen CNN (mean)")
    ax.errorbar(mults, mean, yerr=err, fmt="o-", color="tab:blue", ms=5, capsize=3,
                label=f"ternary Strassen CNN (mean, min–max of {seeds} seeds)")
    for m, y, low in zip(mults, mean, err[0]):
        ax.annotate(f"r={','.join(map(str, by_m[m][0]['r']))}", (m, y - low), xytext=(0, -10),
                    textcoords="offset points", fontsize=7, ha="center")
    ax.set_xscale("log")
    ax.set_xticks(mults)
    ax.set_xticklabels([str(m) for m in mults], fontsize=8)
    ax.minorticks_off()
    patch = sorted({",".join(map(str, row["p"])) for row in rows})
    ax.set_xlabel(f"multiplications per image (p = {' / '.join(patch)}; dense CNN: {dense:,})")
    ax.set_ylabel("test accuracy (%), 360 images")
    ax.set_title("Digits CNN: accuracy vs multiplications (Strassen conv + linear, r per layer)",
                 fontsize=10)
    ax.set_ylim(max(min(mean.min() - 4, teacher - 5), 0), 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="e.g. 0-2")
    parser.add_argument("--r", type=_ints, action="append", default=None,
                        help="R1,R2,R3: r of conv 1, conv 2, classifier (repeat the option "
                             "for several; default: " + " ".join(
                                 ",".join(map(str, r)) for r in R_VALUES) + ")")
    parser.add_argument("--p", type=_ints, default=(2, 2), help="P1,P2 (default 2,2)")
    parser.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=True,
                        help="batch norm after W_b in the Strassen convolutions (default on; "
                             "the paper found it helped)")
    parser.add_argument("--epochs", type=_ints, default=(60, 60, 60, 30),
                        help="teacher, full precision, quantized, ternary fixed (default "
                             "60,60,60,30)")
    parser.add_argument("--out", default="docs/cnn-accuracy-vs-mults.png")
    parser.add_argument("--replot", metavar="JSON",
                        help="plot the rows of an earlier run's JSON instead of training")
    args = parser.parse_args(argv)
    if args.replot:
        rows = json.loads(Path(args.replot).read_text())
        plot(rows, Path(args.out))
        print(f"wrote {args.out}")
        return rows
    if len(args.p) != 2 or len(args.epochs) != 4 or any(len(r) != 3 for r in args.r or []):
        parser.error("--p needs 2 values, --epochs 4 and each --r 3")

    from strassen_hw.train import data as digits
    from strassen_hw.train.recipe import TrainConfig, train

    data = digits.load()
    rows = []
    for seed in args.seeds:
        base = TrainConfig(model="cnn", seed=seed, p=args.p, batch_norm=args.batch_norm,
                           teacher_epochs=args.epochs[0], phase_epochs=args.epochs[1:],
                           r=R_VALUES[0])
        start = time.perf_counter()
        teacher = train(TrainConfig(**{**base.to_json(), "phase_epochs": (0, 0, 0)}), data,
                        progress=False).teacher
        print(f"seed {seed}: teacher trained ({time.perf_counter() - start:.0f} s)", flush=True)
        for r in args.r or R_VALUES:
            start = time.perf_counter()
            row = measure(TrainConfig(**{**base.to_json(), "r": r}), data, teacher)
            rows.append(row)
            print(f"seed {seed} r={','.join(map(str, r))}: teacher {100 * row['teacher']:.2f}%"
                  f"  float Strassen {100 * row['float_strassen']:.2f}%  ternary "
                  f"{100 * row['ternary']:.2f}%  frozen {100 * row['frozen']:.2f}% (ã in "
                  f"{row['a_width']} bits)  mults {row['multiplications']} = "
                  f"{100 * row['multiplications'] / row['dense_multiplications']:.2f}% of "
                  f"{row['dense_multiplications']}  adds {row['additions']} (every entry: "
                  f"{row['additions_worst_case']}; dense {row['dense_additions']})  "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    print("summary (mean over seeds; gap = ternary - teacher, points):")
    for r in args.r or R_VALUES:
        sel = [row for row in rows if tuple(row["r"]) == tuple(r)]
        gap = 100 * np.array([row["ternary"] - row["teacher"] for row in sel])
        frozen_gap = 100 * np.array([row["frozen"] - row["teacher"] for row in sel])
        print(f"  r={','.join(map(str, r))} p={','.join(map(str, args.p))}: teacher "
              f"{100 * np.mean([row['teacher'] for row in sel]):.2f}%  float Strassen "
              f"{100 * np.mean([row['float_strassen'] for row in sel]):.2f}%  ternary "
              f"{100 * np.mean([row['ternary'] for row in sel]):.2f}%  gap {gap.mean():+.2f} "
              f"(from {gap.min():+.2f} to {gap.max():+.2f})  frozen "
              f"{100 * np.mean([row['frozen'] for row in sel]):.2f}% gap "
              f"{frozen_gap.mean():+.2f} (from {frozen_gap.min():+.2f} to "
              f"{frozen_gap.max():+.2f})  mults "
              f"{sel[0]['multiplications']} = "
              f"{100 * sel[0]['multiplications'] / sel[0]['dense_multiplications']:.2f}%"
              f" of dense", flush=True)
    out = Path(args.out)
    plot(rows, out)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return rows


if __name__ == "__main__":
    main()
