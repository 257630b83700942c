"""Bits per character against multiplications per character: Strassen LSTM language models on
Shakespeare (several r), the dense float teacher and a TWN LSTM, over seeds.

Per seed: a float teacher (``nn.LSTM``), then per r a Strassen student distilled from it in the
three phases, frozen into integers (:func:`strassen_hw.train.lstm.freeze_lm`) and measured by
the exact integer reference; and a TWN student (float, quantized; not frozen). Every model is
measured on the three test plays (128 segments, each from a zero state). Results go to a JSON
file after every model (a run can be stopped and resumed: finished rows are kept), and a plot::

    nice python benchmarks/lstm_bpc.py --seeds 0 --r 0.5,1,2 --twn \\
        --json runs/lstm/bpc.json --plot benchmarks/lstm_bpc.png --save runs/lstm/lm_r2.json
    python benchmarks/lstm_bpc.py --json runs/lstm/bpc.json,runs/lstm/bpc_s2.json \\
        --plot benchmarks/lstm_bpc.png --plot-only

One thread (``torch.set_num_threads(1)``).
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

from strassen_hw import lstm as frozen_lstm
from strassen_hw.frozen import atomic_write
from strassen_hw.train import lstm, text


def _floats(s):
    return [float(v) for v in s.split(",") if v]


def _ints(s):
    return [int(v) for v in s.split(",") if v]


def _rows(path):
    if path and os.path.exists(path):
        with open(path) as f:
            return json.load(f)["rows"]
    return []


def _write(path, rows, config):
    atomic_write(path, json.dumps({"config": config, "rows": rows}, indent=1) + "\n")


def _have(rows, **key):
    return next((r for r in rows if all(r.get(k) == v for k, v in key.items())), None)


def run(args):
    torch.set_num_threads(1)
    config = {k: v for k, v in vars(args).items() if k not in ("plot_only",)}
    rows = _rows(args.json)
    test = text.corpus("test")
    segs = lstm.segments(test, 128)
    dense = lstm.dense_multiplications(len(text.VOCAB), args.hidden, args.layers)
    ckpt = os.path.join(os.path.dirname(args.json) or ".", "checkpoints")
    os.makedirs(ckpt, exist_ok=True)
    log = print if args.verbose else None
    for seed in args.seeds:
        tag = f"h{args.hidden}_l{args.layers}_s{seed}"
        teacher_path = os.path.join(ckpt, f"teacher_{tag}.pt")
        teacher = lstm.Teacher(len(text.VOCAB), args.hidden, args.layers)
        if os.path.exists(teacher_path):
            teacher.load_state_dict(torch.load(teacher_path))
            teacher.eval()
            seconds = None
        else:
            teacher, seconds = lstm.timed(lstm.train_teacher, args.hidden, args.layers,
                                          args.teacher_steps, seed=seed, log=log)
            torch.save(teacher.state_dict(), teacher_path)
        if not _have(rows, model="teacher", seed=seed):
            rows.append({"model": "teacher", "seed": seed, "r": None,
                         "bpc": lstm.bits_per_char(teacher, test),
                         "products": dense, "elementwise": 3 * args.hidden * args.layers,
                         "train_seconds": seconds})
            _write(args.json, rows, config)
            print(rows[-1], flush=True)
        variants = [("strassen", r) for r in args.r] + ([("twn", None)] if args.twn else [])
        for product, r in variants:
            if _have(rows, model=product, seed=seed, r=r):
                continue
            path = os.path.join(ckpt, f"{product}_{r}_{tag}.pt")
            kw = dict(r=r if r is not None else 1.0, product=product)
            if os.path.exists(path):
                student = lstm.CharLM(len(text.VOCAB), args.hidden, args.layers, **kw)
                lstm.set_phase(student, "ternary_fixed")
                student.load_state_dict(torch.load(path))
                student.eval()
                seconds = None
            else:
                student, seconds = lstm.timed(lstm.train_student, teacher, **kw,
                                              steps=args.student_steps, seed=seed, log=log)
                torch.save(student.state_dict(), path)
            counts = lstm.multiplications(student)
            row = {"model": product, "seed": seed, "r": r, "bpc": lstm.bits_per_char(student, test),
                   "products": counts["products"], "elementwise": counts["elementwise"],
                   "train_seconds": seconds}
            if product == "strassen":
                lm = lstm.freeze_lm(student)
                start = time.perf_counter()
                row["frozen_bpc"] = frozen_lstm.bits_per_char(lm, segs)
                row["frozen_eval_seconds"] = time.perf_counter() - start
                assert lm.multiplications()["products"] == counts["products"]
                if args.save and r == args.save_r and seed == args.seeds[0]:
                    frozen_lstm.save(lm, args.save)
            rows.append(row)
            _write(args.json, rows, config)
            print(row, flush=True)
    return rows


def summary(rows):
    """Mean and range over seeds per (model, r)."""
    groups = {}
    for row in rows:
        groups.setdefault((row["model"], row["r"]), []).append(row)
    out = []
    for (model, r), items in groups.items():
        entry = {"model": model, "r": r, "seeds": len(items), "products": items[0]["products"],
                 "elementwise": items[0]["elementwise"]}
        for key in ("bpc", "frozen_bpc"):
            values = [it[key] for it in items if key in it]
            if values:
                entry[key] = {"mean": float(np.mean(values)), "min": min(values),
                              "max": max(values)}
        out.append(entry)
    return out


def plot(rows, path, dense, hidden, layers=1):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {("teacher", "bpc"): ("dense float LSTM (teacher)", "k", "s"),
              ("twn", "bpc"): ("TWN LSTM (float, ternary)", "tab:orange", "^"),
              ("strassen", "bpc"): ("Strassen LSTM (float, ternary)", "tab:blue", "o"),
              ("strassen", "frozen_bpc"): ("Strassen LSTM, frozen integers", "tab:red", "x")}
    for (model, key), (label, color, marker) in styles.items():
        entries = sorted((e for e in summary(rows) if e["model"] == model and key in e),
                         key=lambda e: e["products"])
        if not entries:
            continue
        x = [e["products"] for e in entries]
        y = [e[key]["mean"] for e in entries]
        err = [[e[key]["mean"] - e[key]["min"] for e in entries],
               [e[key]["max"] - e[key]["mean"] for e in entries]]
        ax.errorbar(x, y, yerr=err, label=label, color=color, marker=marker, capsize=3,
                    linestyle=("--" if key == "frozen_bpc" else "-") if model == "strassen"
                    else "none")
        if model == "strassen" and key == "bpc":
            for e in entries:
                ax.annotate(f"r = {e['r']:g}·n_out", (e["products"], e[key]["mean"]),
                            textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax.axvline(0.05 * dense, color="grey", linestyle=":", label="5 % of the dense LSTM")
    teacher = [e["bpc"]["mean"] for e in summary(rows) if e["model"] == "teacher"]
    if teacher:
        ax.axhline(teacher[0] + 0.10, color="grey", linestyle="-.", linewidth=0.8,
                   label="teacher + 0.10 bpc")
    ax.set_xscale("log")
    ax.set_xlabel("matrix multiplications per character (SPN products; dense: every weight)")
    ax.set_ylabel("bits per character, test plays")
    seeds = sorted({r["seed"] for r in rows})
    ax.set_title(f"Shakespeare character LM, {layers}-layer LSTM, hidden {hidden}; seeds "
                 f"{','.join(map(str, seeds))} (mean and range); 2-core CPU, loaded",
                 fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--seeds", type=_ints, default=[0])
    p.add_argument("--r", type=_floats, default=[0.5, 1.0, 2.0],
                   help="factors c, r = c·n_out of every product (default 0.5,1,2)")
    p.add_argument("--twn", action="store_true", help="also a TWN LSTM per seed")
    p.add_argument("--teacher-steps", type=int, default=1500)
    p.add_argument("--student-steps", type=_ints, default=[300, 300, 150])
    p.add_argument("--json", default="runs/lstm/bpc.json",
                   help="results (with --plot-only: several, separated by commas)")
    p.add_argument("--plot", default=None)
    p.add_argument("--plot-only", action="store_true")
    p.add_argument("--save", default=None, help="write the frozen LM of --save-r, first seed")
    p.add_argument("--save-r", type=float, default=2.0)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.plot_only:     # --json a.json,b.json: the rows of several runs (e.g. one per seed)
        rows = [row for path in args.json.split(",") for row in _rows(path)]
    else:
        rows = run(args)
    dense = lstm.dense_multiplications(len(text.VOCAB), args.hidden, args.layers)
    for entry in summary(rows):
        print(json.dumps({**entry, "percent_of_dense": 100 * entry["products"] / dense}))
    if args.plot:
        plot(rows, args.plot, dense, args.hidden, args.layers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
