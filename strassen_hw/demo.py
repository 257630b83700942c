"""The handwritten-digits demo: train, freeze, generate Verilog, simulate, and one table.

:func:`run_demo` trains a float teacher and a Strassen student on scikit-learn's 8×8 digits (or
reuses the cached checkpoint of the same settings and seed), freezes the student into integers,
generates its Verilog, simulates every test image under Verilator and checks that the hardware
equals the exact reference on every output of every image. It does so for the MLP, the CNN
(:func:`strassen_hw.train.models.digits_cnn`) or both, and returns four rows per network: test
accuracy, multiplications and additions per inference.

This module sits above train/, hw/ and sim/ and imports them only inside functions, so that
``import strassen_hw`` stays numpy-only.
"""

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import StrassenHWError

__all__ = ["DEFAULT", "QUICK", "CNN", "CNN_QUICK", "MODELS", "VARIANTS", "Row", "DemoError",
           "run_demo", "digits_variants",
           "train_or_load", "format_table", "rows_to_json", "dense_counts", "strassen_counts",
           "default_cache_dir"]


class DemoError(StrassenHWError, RuntimeError):
    """The hardware disagreed with the reference (or another step failed); one line."""


#: Settings of the demo and of ``--quick`` (:class:`strassen_hw.train.recipe.TrainConfig` fields,
#: the rest at their defaults). The demo's 64 → 32 → 10 MLP with r = 20 and 8 is the smallest
#: iCE40 circuit of ``benchmarks/sweep_digits.py`` within 0.5 points of its teacher in the mean
#: of five seeds, with 28 multiplications (see the README). Plain dicts, so that importing this
#: module does not import torch.
DEFAULT = {"hidden": 32, "r": (20, 8)}
QUICK = {"hidden": 32, "r": (12, 8), "teacher_epochs": 20, "phase_epochs": (20, 20, 10)}

#: Settings of the demo's CNN and of its ``--quick`` one: the digits CNN, r = 8, 16, 10 products
#: per window (conv 1, conv 2) and in the classifier, output patches p = 2, batch norm after
#: ``W_b``; the default epochs (quick: 4, then 4, 4, 2).
CNN = {"model": "cnn", "r": (8, 16, 10), "p": (2, 2), "batch_norm": True}
CNN_QUICK = {**CNN, "teacher_epochs": 4, "phase_epochs": (4, 4, 2)}

#: Settings of the demo's residual model and of its ``--quick`` one
#: (:class:`~strassen_hw.train.resnet.ResNetConfig`): the small ST-ResNet of train/resnet.py
#: (a stem convolution with p = 2 and a 2×2 max pool, three basic blocks of 8, 16 and 16
#: channels, the second with a 1×1 stride-2 projection shortcut, global average pooling and a
#: Strassen classifier with r = 10) on the 8×8 digits.
RESNET = {"teacher_epochs": 30, "phase_epochs": (30, 30, 15)}
RESNET_QUICK = {"teacher_epochs": 4, "phase_epochs": (4, 4, 2)}

#: What :func:`run_demo` can run: the MLP, the CNN, both (MLP first), or the residual network.
MODELS = ("mlp", "cnn", "both", "resnet")

#: The labels of a network's four rows; the CNN's carry the prefix ``"cnn: "``.
_LABELS = ("float teacher (dense layers)", "float Strassen (ternary W_b, W_c)",
           "frozen integer reference", "simulated hardware (Verilator)")


#: The networks :func:`digits_variants` makes, by their layers' ``kind``.
VARIANTS = ("strassen", "twn", "dense")


@dataclass(frozen=True)
class Row:
    """One line of the demo table. ``accuracy`` is a fraction of the test images (0..1)."""
    model: str
    accuracy: float
    multiplications: int
    additions: int


def dense_counts(sizes):
    """(multiplications, additions) per inference of dense layers ``[(n_in, n_out), ...]``
    with biases: ``n_in`` products per output, summed with the bias in ``n_in`` additions."""
    mults = sum(n_in * n_out for n_in, n_out in sizes)
    return mults, mults


def _ternary_additions(matrix):
    nonzero = (np.asarray(matrix) != 0).sum(axis=1)
    return int(np.maximum(nonzero - 1, 0).sum())


def _layer_nodes(net):
    """The linear and conv nodes of ``net``, in order: the ones with a Strassen layer."""
    return [node for node in net.nodes if node.KIND in ("linear", "conv")]


def _add_additions(net):
    """Additions per inference of the ``add`` nodes: ``k - 1`` per value for ``k`` inputs."""
    return sum((len(node.inputs) - 1) * int(np.prod(net.shape_of(node.name)))
               for node in net.nodes if node.KIND == "add")


def _windows(layer):
    """Windows per image of a convolution layer; 1 for a linear layer."""
    g = getattr(layer, "geometry", None)
    return 1 if g is None else g.patches[0] * g.patches[1]


def strassen_counts(net):
    """(multiplications, additions) per inference of a frozen network, without sharing: ``r``
    products per layer; ``k - 1`` additions per ternary row with ``k`` non-zeros, plus one per
    output for the bias. A convolution layer counts its patch layer once per window."""
    mults, adds = 0, _add_additions(net)
    for layer in (node.layer for node in _layer_nodes(net)):
        patch = getattr(layer, "patch", layer)
        mults += _windows(layer) * patch.r
        adds += _windows(layer) * (_ternary_additions(patch.w_b) + _ternary_additions(patch.w_c)
                                   + patch.n_out)
    return mults, adds


def _hardware_counts(net, hw):
    """(multiplications, additions) per inference that the generated hardware performs: each
    layer's multipliers (trivial ã left out) and adders, a convolution's once per window."""
    pairs = [(_windows(node.layer), item)
             for node, item in zip(_layer_nodes(net), hw["layers"])]
    return (sum(n * int(item["multipliers"]) for n, item in pairs),
            _add_additions(net) + sum(n * int(item["adders"]) for n, item in pairs))


def default_cache_dir():
    """``$XDG_CACHE_HOME/strassen-hw/checkpoints`` (default ``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "strassen-hw" / "checkpoints"


def train_or_load(config, data, cache_dir, progress, say, teacher=None):
    """The :class:`~strassen_hw.train.recipe.TrainResult` of ``config``: loaded from
    ``cache_dir/digits-<config.key()>.pt`` when there, else trained and saved there
    (distilling from ``teacher`` when given; it must be the teacher that ``config`` trains,
    since the key does not hold it)."""
    from strassen_hw.train.recipe import load_checkpoint, save_checkpoint, train
    path = Path(cache_dir) / f"digits-{config.key()}.pt"
    if path.is_file():
        try:
            result = load_checkpoint(path)
            say(f"reusing the trained models in {path} (seed {config.seed}, same settings)")
            return result
        except ValueError as e:
            say(f"ignoring a broken cache entry ({e}); training again")
    what = "Strassen" if config.student == "strassen" else config.student.upper()
    say(f"training {'the' if teacher is not None else 'the teacher and the'} {what} model "
        f"(seed {config.seed}) on {len(data.y_train)} images")
    start = time.perf_counter()
    result = train(config, data, progress=progress, teacher=teacher)
    save_checkpoint(path, result)
    say(f"  trained in {time.perf_counter() - start:.0f} s; checkpoint {path}")
    return result


def run_demo(*, model="mlp", quick=False, seed=0, out_dir="runs/demo", cache_dir=None,
             progress=True, say=print, settings=None, cnn_settings=None):
    """Run the whole demo and return its table.

    Parameters
    ----------
    model : {"mlp", "cnn", "both", "resnet"}
        The network(s): the 64 → hidden → 10 MLP, the digits CNN, both (MLP first), or the
        residual network (:data:`RESNET`; its rows named ``"resnet: ..."``, its files in
        ``resnet/``; trained each time, not cached).
    quick : bool
        Small networks and few epochs (for tests and a first look).
    seed : int
        Training seed; the data split is always the same.
    out_dir : path-like
        Receives the MLP's ``digits.json`` (the frozen network), ``digits.v`` and
        ``report.json``, and in ``cnn/`` the CNN's ``digits_cnn.json``, ``digits_cnn.v`` and
        ``report.json``.
    cache_dir : path-like or None
        Trained checkpoints, one per settings and seed (default :func:`default_cache_dir`).
    progress : bool
        Progress bars for training and the Verilator build.
    say : callable
        Receives the status lines.
    settings, cnn_settings : dict or None
        :class:`~strassen_hw.train.recipe.TrainConfig` fields overriding :data:`DEFAULT` or
        :data:`QUICK` (the MLP), :data:`CNN` or :data:`CNN_QUICK` (the CNN).

    Returns
    -------
    list of Row
        Per network: float teacher (dense layers), float Strassen model, frozen integer
        reference and simulated hardware; the CNN's rows named ``"cnn: ..."``.

    Raises
    ------
    ValueError
        ``model`` is not one of :data:`MODELS`.
    DemoError
        The hardware output differs from the reference on some output of some test image.
    """
    from strassen_hw.train import data as digits
    from strassen_hw.train.recipe import TrainConfig

    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, not {model!r}")
    data = digits.load()
    cache_dir = cache_dir or default_cache_dir()
    rows = []
    if model in ("mlp", "both"):
        config = TrainConfig(seed=seed, **{**(QUICK if quick else DEFAULT), **(settings or {})})
        teacher, *rest = _network_rows(config, data, "digits", Path(out_dir), cache_dir,
                                       progress, say)
        dense = dense_counts([(64, config.hidden), (config.hidden, 10)])
        rows += [Row(_LABELS[0], teacher.accuracy, *dense), *rest]
    if model in ("cnn", "both"):
        from strassen_hw.train.layers import count_operations
        config = TrainConfig(seed=seed, **{**(CNN_QUICK if quick else CNN),
                                            **(cnn_settings or {})})
        teacher, *rest = _network_rows(config, data, "digits_cnn", Path(out_dir) / "cnn",
                                       cache_dir, progress, say)
        dense = count_operations(teacher.model, (64,))
        rows += [Row(f"cnn: {_LABELS[0]}", teacher.accuracy, dense["multiplications"],
                     dense["additions"]),
                 *(Row(f"cnn: {row.model}", row.accuracy, row.multiplications, row.additions)
                   for row in rest)]
    if model == "resnet":
        rows += _resnet_rows(data, quick, seed, Path(out_dir) / "resnet", progress, say)
    return rows


def _resnet_rows(data, quick, seed, out_dir, progress, say):
    from strassen_hw.train.layers import count_operations
    from strassen_hw.train.resnet import ResNetConfig, mnist_resnet, train_resnet

    config = ResNetConfig(seed=seed, **(RESNET_QUICK if quick else RESNET))
    start = time.perf_counter()
    say(f"training the residual teacher and its Strassen student ({config.teacher_epochs} + "
        f"{'+'.join(map(str, config.phase_epochs))} epochs) ...")
    result = train_resnet(config, data, log=say if progress else None)
    say(f"trained in {time.perf_counter() - start:.0f} s")
    teacher, *rest = _rows_of(result.teacher, result.student, data, "digits_resnet", out_dir,
                              progress, say)
    dense = count_operations(mnist_resnet(config.widths, 10, 8), (64,))
    return [Row(f"resnet: {_LABELS[0]}", teacher.accuracy, dense["multiplications"],
                dense["additions"]),
            *(Row(f"resnet: {row.model}", row.accuracy, row.multiplications, row.additions)
              for row in rest)]


@dataclass(frozen=True)
class _Teacher:
    model: object
    accuracy: float


def _network_rows(config, data, name, out_dir, cache_dir, progress, say):
    """Train (or load), freeze, generate and simulate the network of ``config``: its float
    teacher (the model and its accuracy) and the three rows of the Strassen model."""
    result = train_or_load(config, data, cache_dir, progress, say)
    return _rows_of(result.teacher, result.student, data, name, out_dir, progress, say)


def _rows_of(teacher_model, student, data, name, out_dir, progress, say):
    """Freeze, generate and simulate the trained ``student``: its teacher (the model and its
    accuracy) and the three rows of the Strassen model."""
    import torch

    from strassen_hw.frozen import save
    from strassen_hw.hw import generate
    from strassen_hw.reference import forward
    from strassen_hw.sim import run
    from strassen_hw.train.recipe import accuracy
    from strassen_hw.train.freeze import float_logits, freeze

    x_test = torch.as_tensor(data.x_test, dtype=torch.float32) * data.input_scale
    y_test = torch.as_tensor(data.y_test)
    teacher_acc = accuracy(teacher_model, x_test, y_test)
    float_pred = float_logits(student, data.x_test, data.input_scale).argmax(1)
    student_acc = float((float_pred == data.y_test).mean())

    net, report = freeze(student, data.x_train, name=name,
                         input_format=data.input_format, input_scale=data.input_scale)
    save(net, out_dir / f"{name}.json")
    expected = forward(net, data.x_test)
    frozen_pred = expected.argmax(1)
    frozen_acc = float((frozen_pred == data.y_test).mean())
    say(f"froze it: ã in {report.a_width} signed bits, hidden activations in "
        f"{_layer_nodes(net)[0].layer.output.width} unsigned bits, logits in {net.output.width} bits; "
        f"{int((frozen_pred == float_pred).sum())}/{len(float_pred)} test predictions "
        f"unchanged, accuracy {100 * student_acc:.2f}% -> {100 * frozen_acc:.2f}%")

    start = time.perf_counter()
    hw = generate(net, out_dir)
    total = hw["total"]
    convs = [item["conv"] for item in hw["layers"] if "conv" in item]
    say(f"generated {out_dir / (name + '.v')}: {total['multipliers']} multipliers, "
        f"{total['adders']} adders, "
        + (f"latency {total['latency']} cycles" if not convs else
           "convolutions at " + " and ".join(str(c["cycles_per_image"]) for c in convs)
           + " cycles per image")
        + f" ({time.perf_counter() - start:.0f} s)")
    sim = run(net, data.x_test, progress=progress)
    outputs = sim.outputs
    if outputs.shape != expected.shape:
        raise DemoError(f"{name}: the hardware returned {outputs.shape} outputs; the reference "
                        f"{expected.shape}")
    differ = outputs != expected
    if differ.any():
        i, j = np.argwhere(differ)[0]
        raise DemoError(f"{name}: the hardware differs from the reference on "
                        f"{int(differ.any(axis=1).sum())} of {len(expected)} test images; first "
                        f"at image {i}, logit {j}: hardware {outputs[i, j]}, reference "
                        f"{expected[i, j]}")
    hw_acc = float((outputs.argmax(1) == data.y_test).mean())
    say(f"simulated {len(outputs)} test images under Verilator"
        + (f" (build {sim.build_seconds:.0f} s)" if sim.build_seconds else " (cached build)")
        + f": all {outputs.size} outputs equal the reference, bit for bit")

    mults, adds = strassen_counts(net)
    return (_Teacher(teacher_model, teacher_acc),
            Row(_LABELS[1], student_acc, mults, adds),
            Row(_LABELS[2], frozen_acc, mults, adds),
            Row(_LABELS[3], hw_acc, *_hardware_counts(net, hw)))


def digits_variants(seed=0, cache_dir=None, *, quick=False, settings=None, progress=False,
                    say=None):
    """The demo's digits network and its two baselines, frozen, with their test accuracies.

    From one trained teacher (the demo's, for ``seed``): the Strassen network as
    :func:`run_demo` freezes it; the TWN network, trained with the same settings and
    distillation from that teacher (:func:`~strassen_hw.train.baselines.train_twn`); and the
    dense int8 network, the teacher post-training quantized
    (:func:`~strassen_hw.train.baselines.freeze_dense`). Trained models are cached in
    ``cache_dir`` like the demo's. Accuracies are those of the exact integer reference on the
    test split.

    Parameters
    ----------
    seed : int
    cache_dir : path-like or None
        Default :func:`default_cache_dir`.
    quick, settings
        As for :func:`run_demo`.
    progress : bool
        Training progress bars.
    say : callable or None
        Receives status lines (default: none).

    Returns
    -------
    dict
        ``{"strassen": (net, accuracy), "twn": (net, accuracy), "dense": (net, accuracy)}``
        (keys in :data:`VARIANTS` order); ``net`` a FrozenNetwork named ``digits``,
        ``digits_twn``, ``digits_dense``; ``accuracy`` a fraction of the 360 test images.
    """
    from dataclasses import replace

    from strassen_hw.reference import forward
    from strassen_hw.train import data as digits
    from strassen_hw.train.baselines import freeze_dense, freeze_twn
    from strassen_hw.train.recipe import TrainConfig
    from strassen_hw.train.freeze import freeze

    say = say or (lambda line: None)
    config = TrainConfig(seed=seed, **{**(QUICK if quick else DEFAULT), **(settings or {})})
    data = digits.load()
    cache_dir = cache_dir or default_cache_dir()
    result = train_or_load(config, data, cache_dir, progress, say)
    twn = train_or_load(replace(config, student="twn"), data, cache_dir, progress, say,
                        teacher=result.teacher)
    formats = dict(input_format=data.input_format, input_scale=data.input_scale)
    nets = {"strassen": freeze(result.student, data.x_train, name="digits", **formats)[0],
            "twn": freeze_twn(twn.student, data.x_train, name="digits_twn", **formats)[0],
            "dense": freeze_dense(result.teacher, data.x_train, name="digits_dense",
                                  **formats)[0]}
    return {variant: (net, float((forward(net, data.x_test).argmax(1) == data.y_test).mean()))
            for variant, net in nets.items()}


def _network(label):
    """The network a row's label names: its prefix before ``": "`` (none: the MLP)."""
    return label.split(": ", 1)[0] if ": " in label else ""


def format_table(rows):
    """The rows as an aligned text table, with multiplications relative to the first row of
    the same network (the label's prefix before ``": "``)."""
    dense = {}
    for r in rows:
        dense.setdefault(_network(r.model), r.multiplications)
    header = ("model", "test accuracy", "mults/inference", "adds/inference", "mults vs dense")
    lines = [[r.model, f"{100 * r.accuracy:.2f}%", f"{r.multiplications:,}",
              f"{r.additions:,}",
              f"{100 * r.multiplications / dense[_network(r.model)]:.2f}%"] for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines)]
    fmt = "  ".join(["{:<%d}" % widths[0]] + ["{:>%d}" % w for w in widths[1:]])
    out = [fmt.format(*header), "  ".join("-" * w for w in widths)]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)


def rows_to_json(rows):
    """The rows as JSON text: a list of objects with ``model``, ``accuracy`` (fraction),
    ``multiplications`` and ``additions``."""
    return json.dumps([asdict(row) for row in rows], indent=1) + "\n"
