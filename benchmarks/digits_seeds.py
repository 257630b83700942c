"""Digits accuracy across training seeds: float teacher, float Strassen, frozen integers.

For each seed: train the demo's settings (or a cached checkpoint), freeze, and measure test
accuracy of the teacher, the float Strassen model and the frozen integer reference; with
``--hardware`` also generate the Verilog and simulate all test images under Verilator (it must
equal the reference on every output). Prints one line per seed and a summary; ``--json`` keeps
the rows.

    python benchmarks/digits_seeds.py --seeds 0-11
    python benchmarks/digits_seeds.py --seeds 0-2 --hardware
    python benchmarks/digits_seeds.py --seeds 0-4 --model cnn
"""

import argparse
import json
import time

import numpy as np


def _seeds(text):
    if "-" in text:
        lo, hi = (int(v) for v in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(v) for v in text.split(",")]


def measure(seed, settings, cache_dir, hardware):
    import torch

    from strassen_hw.demo import train_or_load, dense_counts, strassen_counts
    from strassen_hw.reference import forward
    from strassen_hw.train import data as digits
    from strassen_hw.train.recipe import TrainConfig, accuracy
    from strassen_hw.train.freeze import float_logits, freeze

    data = digits.load()
    config = TrainConfig(seed=seed, **settings)
    result = train_or_load(config, data, cache_dir, False, lambda line: None)
    x = torch.as_tensor(data.x_test, dtype=torch.float32) * data.input_scale
    row = {"seed": seed, "teacher": accuracy(result.teacher, x, torch.as_tensor(data.y_test))}
    float_pred = float_logits(result.student, data.x_test, data.input_scale).argmax(1)
    row["float_strassen"] = float(np.mean(float_pred == data.y_test))
    net, report = freeze(result.student, data.x_train,
                         name="digits" if config.model == "mlp" else "digits_cnn",
                         input_format=data.input_format, input_scale=data.input_scale)
    expected = forward(net, data.x_test)
    row["frozen"] = float(np.mean(expected.argmax(1) == data.y_test))
    row["a_width"] = report.a_width
    mults, adds = strassen_counts(net)
    if config.model == "mlp":
        dense, _ = dense_counts([(64, config.hidden), (config.hidden, 10)])
    else:
        from strassen_hw.train.layers import count_operations
        dense = count_operations(result.teacher, (64,))["multiplications"]
    row.update(multiplications=mults, dense_multiplications=dense, additions=adds)
    # what the generated hardware performs per inference: trivial ã need no multiplier,
    # common sub-sums are shared (a convolution's patch layer counts once per window)
    from strassen_hw.demo import _hardware_counts
    from strassen_hw.hw import report as hardware_report
    real, adders = _hardware_counts(net, hardware_report(net))
    row.update(real_multipliers=int(real), adders=int(adders))
    if hardware:
        from strassen_hw.sim import hardware_outputs
        outputs = hardware_outputs(net, data.x_test)
        if not np.array_equal(outputs, expected):
            raise SystemExit(f"seed {seed}: the hardware differs from the reference")
        row["hardware"] = float(np.mean(outputs.argmax(1) == data.y_test))
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--seeds", type=_seeds, default=list(range(12)), help="e.g. 0-11")
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp",
                        help="the demo's MLP (default) or its CNN (strassen_hw.demo.CNN)")
    parser.add_argument("--hidden", type=int, default=None)
    parser.add_argument("--r", default=None, help="R1,R2 (default: the demo's)")
    parser.add_argument("--hardware", action="store_true",
                        help="also simulate every test image under Verilator")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from strassen_hw.demo import CNN, DEFAULT, default_cache_dir
    settings = dict(DEFAULT if args.model == "mlp" else CNN)
    if args.hidden:
        settings["hidden"] = args.hidden
    if args.r:
        settings["r"] = tuple(int(v) for v in args.r.split(","))
    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        row = measure(seed, settings, args.cache_dir or default_cache_dir(), args.hardware)
        rows.append(row)
        hw = f" hardware {100 * row['hardware']:.2f}%" if "hardware" in row else ""
        print(f"seed {seed:2}: teacher {100 * row['teacher']:.2f}%  float Strassen "
              f"{100 * row['float_strassen']:.2f}%  frozen {100 * row['frozen']:.2f}%{hw}  "
              f"(frozen - teacher {100 * (row['frozen'] - row['teacher']):+.2f} points, "
              f"ã {row['a_width']} bits, {row['multiplications']} mults = "
              f"{100 * row['multiplications'] / row['dense_multiplications']:.2f}% of dense"
              + f", {row['real_multipliers']} real multiplications and {row['adders']} "
              "additions in hardware"
              + f"; {time.perf_counter() - start:.0f} s)", flush=True)
    gap = np.array([r["frozen"] - r["teacher"] for r in rows]) * 100
    for key in ("teacher", "float_strassen", "frozen", "hardware", "real_multipliers",
                "adders"):
        if key in rows[0]:
            values = np.array([r[key] for r in rows], dtype=float)
            values = values * 100 if key not in ("real_multipliers", "adders") else values
            print(f"  {key}: mean {values.mean():.2f}, range {values.min():.2f} .. "
                  f"{values.max():.2f}")
    print(f"{len(rows)} seeds: teacher {100 * np.mean([r['teacher'] for r in rows]):.2f}%, "
          f"frozen {100 * np.mean([r['frozen'] for r in rows]):.2f}% on average; frozen - "
          f"teacher from {gap.min():+.2f} to {gap.max():+.2f} points; within 1.0 point in "
          f"{int((gap >= -1.0).sum())}/{len(rows)} seeds")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
