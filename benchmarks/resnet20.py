"""Strassen ResNet-20 (the paper's ST-ResNet-20, Sec. 3.2.1) on any image data set in .npy files.

The network is He et al.'s CIFAR ResNet-20 (a 3×3 convolution, three stages of three basic
blocks with 16, 32 and 64 channels, 1×1 projections where the shape changes, global average
pooling and a dense classifier), with every convolution, the first and the projections
included, replaced by a :class:`~strassen_hw.train.conv.StrassenConv2d` with ``r = ratio·c_out``
and patch side p; the classifier stays dense, as in the paper's CIFAR-10 models. It trains in
the paper's three phases with its schedule: SGD (momentum 0.9, weight decay 1e-4), full
precision at lr 0.1 (÷10 at 60 % and 80 % of the phase), quantized at lr 0.01 (÷10 every
quarter of the phase), then ternary values fixed at lr 0.001 (the paper leaves this rate open).
Augmentation: random crops of the image padded by 4 and horizontal flips (He et al., Sec. 4.2).
With ``--teacher-epochs N`` a float ResNet-20 trains first and the student distils from it.

Data: ``--data DIR`` holding ``x_train.npy``, ``y_train.npy``, ``x_test.npy``, ``y_test.npy``
(x: N×C×H×W or N×H×W×C, any numeric type, uint8 taken as 0..255; y: N integer labels), or
the four paths one by one. CIFAR-10 as numpy arrays reproduces the paper's Table 1 with the
default epochs (250, 40, 10)::

    python benchmarks/resnet20.py --data cifar10-npy --r 1.0 --p 1
    torchrun --nproc_per_node 4 benchmarks/resnet20.py --data cifar10-npy --r 0.5 --p 2
    python benchmarks/resnet20.py --smoke          # a few steps on random data

Under ``torchrun`` each process trains on its share of every global batch (see
:mod:`strassen_hw.train.distributed`); only the first process prints and writes files.

Freezing: ``--freeze PATH`` writes the trained student as a frozen network (a version-3 graph:
its nine shortcut additions are ``add`` nodes, the projections 1×1 stride-2 conv nodes, the
global average pool a ``pool`` node, the dense classifier a ``dense`` linear node) and reports
the file's size and load time. The frozen input is the integer pixels (8 bits), so with
``--freeze`` the images must be uint8 and the model sees them scaled by one factor
``1/(255·std)`` (std over all pixels and channels) instead of per-channel mean and std (an
offset or a per-channel scale cannot fold exactly into ternary ``W_b`` with zero padding).
``--smoke --freeze PATH`` trains on random 3×32×32 uint8 images::

    python benchmarks/resnet20.py --smoke --freeze st_resnet20.json
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from strassen_hw.train.distributed import setup, teardown
from strassen_hw.train.layers import PHASES, count_operations, set_phase, strassenize
from strassen_hw.train.resnet import BasicBlock

#: The paper's CIFAR-10 epochs: full precision, quantized, ternary fixed.
PAPER_EPOCHS = (250, 40, 10)


def resnet20(channels=3, classes=10, width=16):
    """The dense CIFAR ResNet-20: 19 convolutions and one linear layer."""
    layers = [nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
              nn.ReLU()]
    c_in = width
    for stage, c_out in enumerate((width, 2 * width, 4 * width)):
        for block in range(3):
            layers.append(BasicBlock(c_in, c_out, 2 if stage and not block else 1))
            c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, classes)]
    return nn.Sequential(*layers)


def st_resnet20(channels, classes, width, ratio, p, groups, batch_norm):
    """ResNet-20 with every convolution strassenized (r = ratio·c_out), the classifier dense."""
    def rule(layer):
        if isinstance(layer, nn.Linear):
            return None
        r = max(1, round(ratio * layer.out_channels))
        return -(-r // groups) * groups                   # a multiple of the groups
    return strassenize(resnet20(channels, classes, width), rule, p=p, groups=groups,
                       batch_norm=batch_norm)


def load_images(paths, layout):
    """``(x_train, y_train, x_test, y_test)`` as float32 N×C×H×W (uint8 scaled to 0..1) and
    int64 labels; raises ``ValueError`` with one line on a bad file."""
    arrays = []
    for path in paths:
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: cannot read it as a .npy array ({e})") from None
    x_train, y_train, x_test, y_test = arrays
    xs = []
    for name, x, y in (("x_train", x_train, y_train), ("x_test", x_test, y_test)):
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{name} must be N×C×H×W or N×H×W×C with N labels, not "
                             f"{x.shape} with {y.shape} labels")
        kind = layout
        if kind == "auto":
            if x.shape[1] <= 4 < x.shape[3]:
                kind = "nchw"
            elif x.shape[3] <= 4 < x.shape[1]:
                kind = "nhwc"
            else:
                raise ValueError(f"{name} {x.shape}: cannot tell the channel axis; pass "
                                 "--layout nchw or nhwc")
        if kind == "nhwc":
            x = x.transpose(0, 3, 1, 2)
        scale = 1 / 255 if x.dtype == np.uint8 else 1.0
        xs.append(np.ascontiguousarray(x, dtype=np.float32) * np.float32(scale))
    if xs[0].shape[1:] != xs[1].shape[1:]:
        raise ValueError(f"train images are {xs[0].shape[1:]} but test images "
                         f"{xs[1].shape[1:]}")
    return xs[0], y_train.astype(np.int64), xs[1], y_test.astype(np.int64)


def _augment(x, generator):
    """Random crop of the 4-padded images and random horizontal flip, per image."""
    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dy, dx, flip = (torch.randint(0, 9, (n,), generator=generator),
                    torch.randint(0, 9, (n,), generator=generator),
                    torch.rand(n, generator=generator) < 0.5)
    dy, dx, flip = dy.to(x.device), dx.to(x.device), flip.to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]
    cols = torch.where(flip[:, None, None], cols.flip(2), cols)
    index = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[index, rows, cols].permute(0, 3, 1, 2)


def _evaluate(model, x, y, batch=1000):
    training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    model.train(training)
    return correct / len(x)


def _lr(stage, epoch, epochs, base):
    """The paper's step schedules; ``epoch`` counts from 0."""
    if stage in ("teacher", "full_precision"):
        return base * 0.1 ** sum(epoch >= f * epochs for f in (0.6, 0.8))
    if stage == "quantized":
        return 0.01 * 0.1 ** (epoch * 4 // max(epochs, 1))
    return 0.001


def _train_stage(model, stage, epochs, data, context, args, generator, teacher, say):
    x_train, y_train, x_test, y_test = data
    world, rank = context.world_size, context.rank
    local = args.batch_size // world
    per_rank = len(x_train) // world
    steps = max(1, per_rank // local)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=1e-4)
    wrapped = context.wrap(model)
    model.train()
    for epoch in range(epochs):
        start = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = _lr(stage, epoch, epochs, args.lr)
        order = torch.randperm(len(x_train), generator=generator)[:per_rank * world]
        order = order[rank::world].to(x_train.device)
        total = 0.0
        for step in range(steps):
            batch = order[step * local:(step + 1) * local]
            x = x_train[batch]
            if not args.no_augment:
                x = _augment(x, generator)
            logits = wrapped(x)
            loss = F.cross_entropy(logits, y_train[batch])
            if teacher is not None:
                with torch.no_grad():
                    target = torch.softmax(teacher(x), dim=1)
                loss = loss + F.cross_entropy(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item()
        if context.main:
            lr = optimizer.param_groups[0]["lr"]
            say(f"{stage:>15} epoch {epoch + 1:3}/{epochs}  lr {lr:.0e}  loss "
                f"{total / steps:.4f}  test {100 * _evaluate(model, x_test, y_test):.2f}%  "
                f"({time.perf_counter() - start:.1f} s)")
    return _evaluate(model, x_test, y_test)


def _pixel_rows(x):
    """Integer pixels (N, H·W·C) in pixel order of float images ``x`` (N, C, H, W) in 0..1."""
    return np.round(x * 255).astype(np.int64).transpose(0, 2, 3, 1).reshape(len(x), -1)


def freeze_student(student, x_train, x_test, y_test, std, args, say):
    """Freeze ``student`` (inputs ``x / std``, x the pixels in 0..1) into ``args.freeze``;
    returns its figures: nodes, adds, ã width, file size, load time and the frozen test
    accuracy (exact integer reference)."""
    from strassen_hw.frozen import Format, load, save
    from strassen_hw.reference import forward
    from strassen_hw.train.freeze import freeze
    student = student.cpu().eval()
    shape = tuple(x_train.shape[1:])
    start = time.perf_counter()
    net, report = freeze(student, _pixel_rows(x_train[:args.calibration]), name="st_resnet20",
                         input_format=Format(8, signed=False), input_scale=1 / (255 * std),
                         input_shape=shape, a_width=args.a_width)
    seconds = time.perf_counter() - start
    save(net, args.freeze)
    size = Path(args.freeze).stat().st_size
    start = time.perf_counter()
    again = load(args.freeze)
    load_seconds = time.perf_counter() - start
    predictions = forward(again, _pixel_rows(x_test)).argmax(1)
    kinds = [node.KIND for node in net.nodes]
    figures = {"path": str(args.freeze), "bytes": size, "load_seconds": load_seconds,
               "freeze_seconds": seconds, "nodes": len(kinds), "adds": kinds.count("add"),
               "convs": kinds.count("conv"), "a_width": report.a_width,
               "accuracy": float(np.mean(predictions == y_test))}
    say(f"froze into {args.freeze}: {len(kinds)} nodes ({kinds.count('conv')} conv, "
        f"{kinds.count('add')} add, {kinds.count('pool')} pool, {kinds.count('linear')} "
        f"linear), ã in {report.a_width} bits, {size:,} bytes, loads in {load_seconds:.2f} s "
        f"(froze in {seconds:.1f} s); frozen test accuracy {100 * figures['accuracy']:.2f}%")
    return figures


def _args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="folder with x_train.npy, y_train.npy, x_test.npy, "
                                       "y_test.npy")
    for name in ("x-train", "y-train", "x-test", "y-test"):
        parser.add_argument(f"--{name}", help=f"{name.replace('-', '_')}.npy (instead of "
                                              "--data)")
    parser.add_argument("--layout", choices=("auto", "nchw", "nhwc"), default="auto")
    parser.add_argument("--smoke", action="store_true",
                        help="two steps per phase on random 3×16×16 images, no data needed")
    parser.add_argument("--r", type=float, default=1.0, help="r = R·c_out (default 1.0)")
    parser.add_argument("--p", type=int, default=1, help="output patch side (default 1)")
    parser.add_argument("--groups", type=int, default=1, help="groups of W_b (default 1)")
    parser.add_argument("--batch-norm", action="store_true",
                        help="batch norm after W_b inside each Strassen convolution")
    parser.add_argument("--width", type=int, default=16, help="channels of the first stage")
    parser.add_argument("--epochs", default=",".join(map(str, PAPER_EPOCHS)),
                        help="full precision, quantized, ternary fixed (default 250,40,10)")
    parser.add_argument("--teacher-epochs", type=int, default=0,
                        help="train a float ResNet-20 first and distil from it")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch size")
    parser.add_argument("--lr", type=float, default=0.1, help="initial learning rate")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--save", help="write the trained student's state_dict here")
    parser.add_argument("--freeze", metavar="PATH",
                        help="write the trained student as a frozen network (JSON) here")
    parser.add_argument("--calibration", type=int, default=256,
                        help="training images that calibrate the freeze (default 256)")
    parser.add_argument("--a-width", type=int, default=None,
                        help="signed bits of ã when freezing (default: chosen by freeze)")
    args = parser.parse_args(argv)
    try:
        args.epochs = tuple(int(v) for v in args.epochs.split(","))
    except ValueError:
        parser.error(f"--epochs must be three integers such as 250,40,10, not {args.epochs!r}")
    if len(args.epochs) != 3 or min(args.epochs) < 0:
        parser.error(f"--epochs must be three integers such as 250,40,10, not {args.epochs}")
    files = [getattr(args, n) for n in ("x_train", "y_train", "x_test", "y_test")]
    if args.smoke:
        args.paths = None
    elif args.data:
        args.paths = [Path(args.data) / f"{n}.npy" for n in
                      ("x_train", "y_train", "x_test", "y_test")]
    elif all(files):
        args.paths = files
    else:
        parser.error("give --data DIR, or all of --x-train --y-train --x-test --y-test, "
                     "or --smoke")
    return parser, args


def main(argv=None):
    parser, args = _args(argv)
    context = setup(args.device)
    if args.batch_size % context.world_size:
        parser.error(f"--batch-size {args.batch_size} is not divisible by the "
                     f"{context.world_size} processes")
    say = print if context.main else (lambda line: None)
    torch.manual_seed(args.seed)
    if args.smoke:
        gen = torch.Generator().manual_seed(args.seed)
        side = 32 if args.freeze else 16
        arrays = (torch.rand(32, 3, side, side, generator=gen), torch.randint(0, 10, (32,)),
                  torch.rand(16, 3, side, side, generator=gen), torch.randint(0, 10, (16,)))
        arrays = [a.numpy() for a in arrays]
        if args.freeze:                            # integer pixels, as a uint8 file gives
            arrays[0] = np.round(arrays[0] * 255).astype(np.float32) / 255
            arrays[2] = np.round(arrays[2] * 255).astype(np.float32) / 255
        args.epochs, args.batch_size = (1, 1, 1), 16
        args.teacher_epochs = min(args.teacher_epochs, 1)
    else:
        try:
            arrays = load_images(args.paths, args.layout)
        except ValueError as e:
            parser.error(str(e))
    x_train, y_train, x_test, y_test = arrays
    if args.freeze:
        pixels = np.round(x_train * 255)
        if np.abs(x_train * 255 - pixels).max() > 1e-3 or pixels.min() < 0 or pixels.max() > 255:
            parser.error("--freeze needs uint8 images (integer pixels 0..255): the frozen "
                         "network's input is the integer pixels")
        # one scale for all channels: it folds into the first layer's ã exactly
        mean = np.zeros((1, 1, 1, 1), dtype=np.float32)
        std = np.full((1, 1, 1, 1), x_train.std() + 1e-8, dtype=np.float32)
    else:
        mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
        std = x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-8
    device = context.device
    data = (torch.as_tensor((x_train - mean) / std, device=device),
            torch.as_tensor(y_train, device=device),
            torch.as_tensor((x_test - mean) / std, device=device),
            torch.as_tensor(y_test, device=device))
    shape = tuple(x_train.shape[1:])
    classes = int(max(y_train.max(), y_test.max())) + 1
    student = st_resnet20(shape[0], classes, args.width, args.r, args.p, args.groups,
                          args.batch_norm).to(device)
    dense = count_operations(resnet20(shape[0], classes, args.width), shape)
    ops = count_operations(student, shape, worst_case=True)
    say(f"ST-ResNet-20 on {len(x_train)} + {len(x_test)} images {shape}, {classes} classes, "
        f"r = {args.r:g}·c_out, p = {args.p}, g = {args.groups}; {context.world_size} "
        f"process(es) on {device}")
    say(f"multiplications per image {ops['multiplications']:,} vs {dense['multiplications']:,}"
        f" dense ({100 * (1 - ops['multiplications'] / dense['multiplications']):.2f}% fewer);"
        f" additions (every ternary entry non-zero) {ops['additions']:,} vs "
        f"{dense['additions']:,}")
    generator = torch.Generator().manual_seed(args.seed)
    result = {"r_ratio": args.r, "p": args.p, "groups": args.groups, "shape": list(shape),
              "world_size": context.world_size, "epochs": list(args.epochs),
              "dense_multiplications": dense["multiplications"],
              "multiplications": ops["multiplications"]}
    teacher = None
    if args.teacher_epochs:
        teacher = resnet20(shape[0], classes, args.width).to(device)
        result["teacher"] = _train_stage(teacher, "teacher", args.teacher_epochs, data,
                                         context, args, generator, None, say)
        teacher.eval()
    for phase, epochs in zip(PHASES, args.epochs):
        set_phase(student, phase)
        result[phase] = _train_stage(student, phase, epochs, data, context, args, generator,
                                     teacher, say)
    ops = count_operations(student, shape)
    result["additions"] = ops["additions"]
    result["dense_additions"] = dense["additions"]
    say(f"test accuracy: float Strassen {100 * result['full_precision']:.2f}%, ternary "
        f"{100 * result['ternary_fixed']:.2f}%"
        + (f", float teacher {100 * result['teacher']:.2f}%" if teacher is not None else "")
        + f"; additions with the trained ternary values {ops['additions']:,}")
    if context.main and args.save:
        torch.save({k: v.cpu() for k, v in student.state_dict().items()}, args.save)
    if context.main and args.freeze:
        result["frozen"] = freeze_student(student, x_train, x_test, y_test, float(std.flat[0]),
                                          args, say)
    if context.main and args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    teardown(context)
    return result


if __name__ == "__main__":
    main()
