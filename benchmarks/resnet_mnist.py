"""The small ST-ResNet (train/resnet.py) on MNIST-5k: teacher, Strassen student, frozen graph.

For each seed: train the float residual teacher and its Strassen student (three phases with
distillation), freeze the student (calibration on the first ``--calibration`` training images,
ã width chosen by :func:`~strassen_hw.train.freeze.freeze`), and measure on the 1,000 test
images the teacher's, the float student's and the frozen network's accuracy (the frozen one
with the exact integer reference). Multiplications per image: the frozen network's, counted
from its nodes (r per window of each convolution, r per linear layer), against the dense
teacher's (every weight of every convolution and linear layer at every output pixel).
Prints one line per seed and the mean and range over the seeds::

    python benchmarks/resnet_mnist.py --seeds 0,1,2 --json resnet_mnist.json
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def frozen_multiplications(net):
    """Multiplications per image of a frozen graph: its conv and linear nodes' r products."""
    total = 0
    for node in net.nodes:
        if node.KIND == "conv":
            total += node.layer.multiplications()
        elif node.KIND == "linear":
            total += node.layer.r
    return total


def run_seed(seed, data, args, say):
    from strassen_hw.frozen import save
    from strassen_hw.reference import forward
    from strassen_hw.train.freeze import freeze
    from strassen_hw.train.resnet import ResNetConfig, accuracy, train_resnet
    teacher_epochs, *phases = args.epochs
    config = ResNetConfig(seed=seed, teacher_epochs=teacher_epochs, phase_epochs=tuple(phases))
    start = time.perf_counter()
    result = train_resnet(config, data, log=say if args.verbose else None)
    trained = time.perf_counter() - start
    x_test = torch.tensor(data.x_test, dtype=torch.float32) * data.input_scale
    y_test = torch.tensor(data.y_test)
    row = {"seed": seed, "teacher": accuracy(result.teacher, x_test, y_test),
           "student": accuracy(result.student, x_test, y_test), "train_seconds": trained}
    start = time.perf_counter()
    net, report = freeze(result.student, data.x_train[:args.calibration], name="mnist_resnet",
                         input_format=data.input_format, input_scale=data.input_scale)
    row["freeze_seconds"] = time.perf_counter() - start
    row["frozen"] = float(np.mean(forward(net, data.x_test).argmax(1) == data.y_test))
    row["a_width"] = report.a_width
    row["multiplications"] = frozen_multiplications(net)
    row["adds"] = sum(node.KIND == "add" for node in net.nodes)
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
        save(net, Path(args.save) / f"mnist_resnet_seed{seed}.json")
    if args.verbose:
        for line in report.summary():
            say("  " + line)
    say(f"seed {seed}: teacher {100 * row['teacher']:.1f}%, float student "
        f"{100 * row['student']:.1f}%, frozen {100 * row['frozen']:.1f}% (ã {report.a_width} "
        f"bits), {row['multiplications']:,} multiplications; trained in {trained:.0f} s, "
        f"froze in {row['freeze_seconds']:.0f} s")
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", default="10,10,10,5",
                        help="teacher, full precision, quantized, ternary fixed")
    parser.add_argument("--calibration", type=int, default=1000)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--save", help="write each seed's frozen network into this folder")
    parser.add_argument("--verbose", action="store_true", help="every epoch and every node")
    args = parser.parse_args(argv)
    args.epochs = tuple(int(v) for v in args.epochs.split(","))
    if len(args.epochs) != 4:
        parser.error("--epochs takes four integers: teacher, full precision, quantized, "
                     "ternary fixed")
    from strassen_hw.train import mnist
    from strassen_hw.train.layers import count_operations
    from strassen_hw.train.resnet import mnist_resnet
    data = mnist.load()
    dense = count_operations(mnist_resnet(), (784,))["multiplications"]
    rows = [run_seed(int(s), data, args, print) for s in args.seeds.split(",")]
    summary = {"dense_multiplications": dense, "epochs": list(args.epochs), "seeds": rows}
    for key in ("teacher", "student", "frozen"):
        values = [100 * row[key] for row in rows]
        summary[key] = {"mean": float(np.mean(values)), "min": min(values), "max": max(values)}
    gap = [100 * (row["teacher"] - row["frozen"]) for row in rows]
    summary["gap_points"] = {"mean": float(np.mean(gap)), "min": min(gap), "max": max(gap)}
    mults = rows[0]["multiplications"]
    summary["multiplication_ratio"] = mults / dense
    t, f, g = summary["teacher"], summary["frozen"], summary["gap_points"]
    print(f"over {len(rows)} seed(s): teacher {t['mean']:.2f}% ({t['min']:.1f}..{t['max']:.1f}), "
          f"frozen {f['mean']:.2f}% ({f['min']:.1f}..{f['max']:.1f}); frozen is "
          f"{g['mean']:.2f} points below the teacher ({g['min']:.1f}..{g['max']:.1f}); "
          f"{mults:,} of {dense:,} dense multiplications ({100 * mults / dense:.2f}%)")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


if __name__ == "__main__":
    main()
