"""Training on the digits: a float teacher, then a Strassen (or TWN) student in three phases.

The student has the teacher's architecture (an MLP or a small CNN) with every ``nn.Linear``
and ``nn.Conv2d`` strassenized. It trains with the paper's schedule (Sec. 2.2): full
precision, then ternary quantization on, then the ternary values fixed while ã and the biases
keep training; and with knowledge distillation from the teacher (Sec. 2.3): cross-entropy on
the labels plus cross-entropy to the teacher's softmax, T = 1, equal weights. AdamW with a
cosine learning-rate decay runs each stage.

The same function trains in one process or under ``torchrun`` (see :mod:`.distributed`): the
global batch is split evenly across processes and every process draws the same shuffle from
the seed, so a run is repeatable for a given seed and process count.
"""

import contextlib
import copy
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .distributed import Context
from .layers import PHASES, set_phase, strassenize, twnize
from .models import digits_cnn

__all__ = ["fit", "TrainConfig", "TrainResult", "digits_mlp", "build_models", "train",
           "accuracy", "predict", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_FORMAT = "strassen-hw-checkpoint"
_MODELS = ("mlp", "cnn")
#: Kinds of student :func:`build_models` makes (:attr:`TrainConfig.student`).
STUDENTS = ("strassen", "twn")
#: Fields added after the first checkpoints, with their defaults (left out of the JSON).
_NEW_DEFAULTS = {"model": "mlp", "p": [], "batch_norm": False, "student": "strassen"}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (and the key of its cached checkpoint).

    Attributes
    ----------
    hidden : int
        Width of the MLP's hidden layer: 64 → hidden → 10, ReLU between (unused by the other
        models). The default 32 is the demo's (:data:`strassen_hw.demo.DEFAULT`).
    r : tuple of int
        Products per Strassen layer (one per ``nn.Linear`` or ``nn.Conv2d``, in order); the
        default (20, 8) is the demo's.
    seed : int
        Seeds the initial weights and every shuffle.
    teacher_epochs : int
        Epochs of the float teacher.
    phase_epochs : tuple of int
        Epochs of the student's three phases (full precision, quantized, ternary fixed).
    batch_size, lr, weight_decay : int, float, float
        Global batch size (split across processes), Adam's initial learning rate and its
        decoupled weight decay (AdamW).
    distill : bool
        Add the cross-entropy to the teacher's softmax to the student's loss.
    model : str
        ``"mlp"`` (:func:`digits_mlp`), ``"cnn"`` (:func:`strassen_hw.train.models.digits_cnn`)
        or a user's model as ``"MODULE:FUNCTION"``: ``FUNCTION()`` of the importable
        ``MODULE`` returns the float ``nn.Module`` (see :func:`resolve_model`).
    p : tuple of int
        Output patch side of each convolution (empty: all 1).
    batch_norm : bool
        Batch norm after ``W_b`` in the Strassen convolutions.
    student : str
        ``"strassen"`` (the teacher's architecture strassenized with ``r``) or ``"twn"``
        (twnized: ternary weights, one α per output; ``r`` unused), a baseline trained the
        same way.

    ``model``, ``p``, ``batch_norm`` and ``student`` are left out of :meth:`to_json` (and so
    of :meth:`key`) at their defaults, so the MLP's keys and checkpoints stay as before.
    """
    hidden: int = 32
    r: tuple = (20, 8)
    seed: int = 0
    teacher_epochs: int = 60
    phase_epochs: tuple = (60, 60, 30)
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.0
    distill: bool = True
    model: str = "mlp"
    p: tuple = ()
    batch_norm: bool = False
    student: str = "strassen"

    def __post_init__(self):
        if self.student not in STUDENTS:
            raise ValueError(f"student must be one of {', '.join(STUDENTS)}, not "
                             f"{self.student!r}")
        object.__setattr__(self, "r", tuple(int(v) for v in self.r))
        object.__setattr__(self, "p", tuple(int(v) for v in self.p))
        if self.model not in _MODELS and not _is_spec(self.model):
            raise ValueError(f"model must be one of {', '.join(_MODELS)}, not {self.model!r} "
                             "(or MODULE:FUNCTION for your own model)")
        object.__setattr__(self, "phase_epochs", tuple(int(v) for v in self.phase_epochs))
        if len(self.phase_epochs) != len(PHASES):
            raise ValueError(f"phase_epochs needs {len(PHASES)} values, not "
                             f"{len(self.phase_epochs)}")

    def to_json(self):
        doc = {**asdict(self), "r": list(self.r), "phase_epochs": list(self.phase_epochs),
               "p": list(self.p)}
        return {k: v for k, v in doc.items() if k not in _NEW_DEFAULTS or v != _NEW_DEFAULTS[k]}

    def key(self):
        """A short hash of the settings: equal keys mean the same training run."""
        text = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class TrainResult:
    """The trained float ``teacher`` and Strassen ``student`` and one ``history`` row per
    epoch (stage, epoch, loss, train and test accuracy). ``data`` describes a user's data
    (``strassen-hw train --model MODULE:FUNCTION``): the ``.npy`` paths, ``input_scale``,
    ``input_format`` and ``input_shape``; None for the digits."""
    config: TrainConfig
    teacher: nn.Module
    student: nn.Module
    history: list = field(default_factory=list)
    data: dict = None


def digits_mlp(hidden, n_in=64, n_classes=10):
    """The plain PyTorch model: ``Linear(n_in, hidden) → ReLU → Linear(hidden, n_classes)``."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))


def _is_spec(model):
    module, _, function = str(model).partition(":")
    return bool(module) and function.isidentifier() and all(
        part.isidentifier() for part in module.split("."))


def resolve_model(spec):
    """The function named by ``"MODULE:FUNCTION"`` (imported with the current directory on
    the path, like ``python -m``); calling it must return an ``nn.Module``.

    Raises ``ValueError`` with one line when the module or the function is missing.
    """
    import importlib
    import sys
    if not _is_spec(spec):
        raise ValueError(f"{spec!r} is not MODULE:FUNCTION (for example mymodels:make_net)")
    module_name, function = spec.split(":")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ValueError(f"{spec}: cannot import {e.name!r}; run from the folder that holds "
                         f"{module_name.split('.')[0]}.py or put it on PYTHONPATH") from None
    make = getattr(module, function, None)
    if not callable(make):
        raise ValueError(f"{spec}: {module_name} has no function {function!r}")
    return make


def _make_user_model(spec):
    model = resolve_model(spec)()
    if not isinstance(model, nn.Module):
        raise ValueError(f"{spec}: returned {type(model).__name__}, not a torch nn.Module")
    return model


def build_models(config):
    """Fresh (teacher, student) for ``config``, initialised from its seed (the student as
    :attr:`TrainConfig.student` says)."""
    torch.manual_seed(config.seed)
    if config.model == "mlp":
        def make():
            return digits_mlp(config.hidden)
    elif config.model == "cnn":
        make = digits_cnn
    else:
        def make():
            return _make_user_model(config.model)
    teacher = make()
    if config.student == "twn":
        return teacher, twnize(make())
    r = config.r[0] if len(config.r) == 1 else config.r       # one value: every layer
    p = config.p[0] if len(config.p) == 1 else (config.p or 1)
    return teacher, strassenize(make(), r, p=p, batch_norm=config.batch_norm)


def _tensors(data, device):
    x_train = torch.as_tensor(data.x_train, dtype=torch.float32, device=device) * data.input_scale
    x_test = torch.as_tensor(data.x_test, dtype=torch.float32, device=device) * data.input_scale
    y_train = torch.as_tensor(data.y_train, device=device)
    y_test = torch.as_tensor(data.y_test, device=device)
    return x_train, y_train, x_test, y_test


def predict(model, x):
    """Logits of ``model`` for float inputs ``x`` (no gradient, in eval mode: batch norms use
    their running statistics and keep them)."""
    training = model.training
    try:
        with torch.no_grad():
            return model.eval()(x)
    finally:
        model.train(training)


def accuracy(model, x, y=None):
    """Fraction of ``x`` that ``model`` classifies as ``y``; ``x`` may also be a
    ``DataLoader`` of ``(inputs, labels)`` batches (``y`` then None)."""
    if y is not None:
        return (predict(model, x).argmax(1) == y).double().mean().item()
    device = _device_of(model)
    right = total = 0
    dtype = next(model.parameters()).dtype
    for xb, yb in x:
        xb, yb = xb.to(device, dtype), yb.to(device)
        right += int((predict(model, xb).argmax(1) == yb).sum())
        total += len(yb)
    return right / max(total, 1)


def _device_of(model):
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


class _Tensors:
    """Training data held as two tensors: shuffled from the run's generator, split evenly
    across processes (every process draws the same permutation)."""

    def __init__(self, x, y, device, dtype, what):
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"{what}: {len(x)} inputs but {len(y)} labels; give as many "
                             "labels as inputs (and at least one)")
        x = x.to(dtype)
        if y.is_floating_point() or y.dim() != 1:
            raise ValueError(f"{what}: the labels must be a 1-D tensor of class indices "
                             f"(integers), not {y.dtype} of shape {tuple(y.shape)}")
        self.x, self.y = x.to(device), y.long().to(device)

    def epoch(self, generator, batch_size, context, probs):
        world, rank = context.world_size, context.rank
        if batch_size % world:
            raise ValueError(f"batch_size {batch_size} is not divisible by the {world} "
                             "processes")
        local_batch = batch_size // world
        per_rank = len(self.x) // world
        steps = -(-per_rank // local_batch)
        order = torch.randperm(len(self.x), generator=generator)[:per_rank * world]
        order = order[rank::world].to(self.x.device)
        for step in range(steps):
            batch = order[step * local_batch:(step + 1) * local_batch]
            yield self.x[batch], self.y[batch], None if probs is None else probs[batch]

    def teacher_probs(self, teacher):
        return torch.softmax(predict(teacher, self.x), dim=1)

    def accuracy(self, model):
        return accuracy(model, self.x, self.y)


class _Loader:
    """Training data from a ``DataLoader`` of ``(inputs, labels)`` batches: its own order
    (and sampler, under torchrun); the teacher's softmax is computed batch by batch."""

    def __init__(self, loader, device, dtype):
        self.loader, self.device, self.dtype = loader, device, dtype

    def epoch(self, generator, batch_size, context, teacher):
        for x, y in self.loader:
            x, y = x.to(self.device, self.dtype), y.to(self.device)
            yield x, y.long(), None if teacher is None else torch.softmax(predict(teacher, x), 1)

    def teacher_probs(self, teacher):
        return teacher          # per batch, in epoch()

    def accuracy(self, model):
        return accuracy(model, self.loader)         # casts to the model's dtype


def _data(data, device, dtype, what):
    """The data as :class:`_Tensors` or :class:`_Loader`, inputs in ``dtype`` (the model's)."""
    from torch.utils.data import DataLoader
    if isinstance(data, DataLoader):
        return _Loader(data, device, dtype)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return _Tensors(*data, device, dtype, what)
    raise ValueError(f"{what}: give a tuple (inputs, labels) of tensors or arrays, or a "
                     f"torch DataLoader of such batches, not {type(data).__name__}")


def _stage(model, stage, epochs, settings, data, test, context, generator, targets, bar, log):
    """Train ``model`` for ``epochs`` with a fresh AdamW and cosine decay; returns its
    history rows. ``targets`` is what ``data.teacher_probs`` gave, or None (no
    distillation)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings["lr"],
                                  weight_decay=settings["weight_decay"])
    if isinstance(data, _Tensors):
        per_rank = len(data.x) // context.world_size
        steps = -(-per_rank // (settings["batch_size"] // max(1, context.world_size)))
    else:
        steps = len(data.loader)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, epochs * steps))
    wrapped = context.wrap(model)
    rows = []
    for epoch in range(epochs):
        total, count = 0.0, 0
        for x, y, probs in data.epoch(generator, settings["batch_size"], context, targets):
            logits = wrapped(x)
            loss = nn.functional.cross_entropy(logits, y)
            if probs is not None:
                loss = loss + nn.functional.cross_entropy(logits, probs)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
            count += 1
        row = {"stage": stage, "epoch": epoch + 1, "epochs": epochs,
               "loss": total / max(count, 1), "train_accuracy": data.accuracy(model),
               "test_accuracy": None if test is None else test.accuracy(model)}
        rows.append(row)
        if bar is not None:
            bar.set_postfix_str(f"{stage} loss {row['loss']:.3f}" + (
                "" if test is None else f" test {100 * row['test_accuracy']:.1f}%"))
            bar.update(1)
        if log is not None and context.main and epoch + 1 == epochs:     # one line a stage
            log(f"{stage:>15} epoch {epoch + 1:3}/{epochs}  loss {row['loss']:.4f}  "
                f"train {100 * row['train_accuracy']:5.1f}%"
                + ("" if test is None else f"  test {100 * row['test_accuracy']:5.1f}%"))
    return rows


@contextlib.contextmanager
def _settings(device, threads, deterministic):
    """Thread count and deterministic algorithms for one run; restored afterwards.

    ``torch.use_deterministic_algorithms`` is switched on where it can matter: on CUDA, or on
    the CPU with more than one thread (torch's CPU kernels on one thread are deterministic
    already, and the switch costs seconds of imports)."""
    old_threads = torch.get_num_threads()
    if device.type == "cpu" and threads:
        torch.set_num_threads(threads)
    switch = deterministic and not torch.are_deterministic_algorithms_enabled() and (
        device.type != "cpu" or torch.get_num_threads() > 1)
    if switch:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        if switch:
            torch.use_deterministic_algorithms(False)


def fit(model, train_data, *, r=None, p=1, groups=None, batch_norm=False, teacher=None,
        student=None, epochs=(60, 60, 30), teacher_epochs=60, test_data=None, batch_size=64,
        lr=3e-3, weight_decay=0.0, distill=True, seed=0, threads=1, deterministic=True,
        context=None, progress=True, log=None):
    """Train a Strassen model from an ordinary PyTorch model: the project's recipe.

    1. The float teacher: ``model`` itself is trained (in place) for ``teacher_epochs``,
       unless ``teacher`` gives one already trained.
    2. The student: a copy of ``model`` (taken before the teacher trains) with every
       ``nn.Linear`` and ``nn.Conv2d`` replaced by a Strassen layer
       (:func:`~strassen_hw.train.strassenize` with ``r``, ``p``, ``groups``,
       ``batch_norm``; the Strassen layers start from fresh weights).
    3. The three phases of :data:`~strassen_hw.train.PHASES` (full precision, quantized,
       ternary fixed), ``epochs`` each, every phase with a fresh AdamW optimizer over the
       parameters that train in it and a cosine learning-rate decay, on cross-entropy to the
       labels plus (``distill``) cross-entropy to the teacher's softmax.

    A ``model`` that already holds Strassen (or TWN) layers is the student itself and is
    trained as it is: no teacher is trained, and it distils only from a given ``teacher``.

    Parameters
    ----------
    model : nn.Module
        Takes a float batch of inputs, returns logits (N, classes).
    train_data, test_data : (inputs, labels) or DataLoader
        Inputs as the model takes them (converted to the model's dtype, float32 unless you
        chose otherwise; scale integers yourself) and integer class labels; tensors or numpy arrays, or a
        ``torch.utils.data.DataLoader`` yielding ``(inputs, labels)`` batches (it then
        decides the order and the batch size). ``test_data`` (optional) is only measured.
    r, p, groups, batch_norm
        :func:`~strassen_hw.train.strassenize`'s: products per layer (an int, a float
        times the outputs, one per layer, or a rule), output patch side of the convolutions,
        groups of ``W_b``, batch norm after ``W_b``. ``r`` is required for a float model.
    teacher : nn.Module or None
        A trained float model to distil from; ``model`` is then not trained.
    student : nn.Module or None
        The Strassen model to train instead of strassenizing a copy of ``model``.
    epochs : (int, int, int)
        Epochs of the three phases.
    teacher_epochs : int
        Epochs of the teacher (when it is trained here).
    batch_size, lr, weight_decay
        Batch of a tuple of tensors (global, split across processes), AdamW's initial
        learning rate and decoupled weight decay.
    distill : bool
        Add the cross-entropy to the teacher's softmax (T = 1, equal weights).
    seed : int or None
        Seeds torch (so the student's initial weights and any dropout) and the shuffles;
        None leaves torch's random state as it is.
    threads : int or None
        CPU threads during training (restored afterwards). The default 1 is the fastest for
        small models on a busy machine (2 threads were 9× slower on a loaded 2-core one) and
        makes runs repeatable; None keeps torch's setting.
    deterministic : bool
        ``torch.use_deterministic_algorithms(True, warn_only=True)`` during training, on CUDA
        or with several CPU threads (one CPU thread is deterministic without it).
    context : strassen_hw.train.distributed.Context or None
        Device and process group (see :mod:`.distributed`); None trains on the CPU.
    progress, log
        A tqdm bar (terminal only); a callable receiving one line per stage.

    Returns
    -------
    (nn.Module, dict)
        The trained student (in eval mode, ``ternary_fixed`` phase) and its history: per
        stage (``"teacher"`` when trained here, then each phase) a list of rows, one per
        epoch: ``stage``, ``epoch``, ``epochs``, ``loss``, ``train_accuracy``,
        ``test_accuracy`` (None without ``test_data``).

    Training is repeatable on one machine for a given seed, thread count and process count;
    CPU float results differ between machines, so another CPU can give another model.
    """
    from tqdm import tqdm

    from .layers import _quantized_layers
    context = context or Context()
    device = context.device
    epochs = tuple(int(e) for e in epochs)
    if len(epochs) != len(PHASES):
        raise ValueError(f"epochs needs {len(PHASES)} values (one per phase), not "
                         f"{len(epochs)}")
    if seed is not None:
        torch.manual_seed(seed)
    generator = torch.Generator()
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    train_teacher = False
    if student is not None:
        if teacher is not None:
            raise ValueError("give either a teacher or a student, not both")
        teacher, train_teacher = model, True
    elif _quantized_layers(model):
        if r is not None:
            raise ValueError("the model already holds Strassen layers; leave r out (it "
                             "applies to a float model, which fit strassenizes)")
        student = model
    else:
        if r is None:
            raise ValueError("give r, the products per Strassen layer (for example r=0.5 "
                             "for half the outputs of each layer)")
        student = strassenize(copy.deepcopy(model), r, p=p, groups=groups,
                              batch_norm=batch_norm)
        if teacher is None:
            teacher, train_teacher = model, True
    student.to(device)
    if teacher is not None:
        teacher.to(device)
    dtype = next(student.parameters()).dtype
    data = _data(train_data, device, dtype, "train_data")
    test = None if test_data is None else _data(test_data, device, dtype, "test_data")
    settings = {"batch_size": int(batch_size), "lr": float(lr),
                "weight_decay": float(weight_decay)}
    if isinstance(data, _Tensors) and settings["batch_size"] < 1:
        raise ValueError(f"batch_size must be positive, not {batch_size}")
    total = sum(epochs) + (teacher_epochs if train_teacher else 0)
    # disable=None: a bar on a terminal only, never frames in a log
    bar = tqdm(total=total, unit="epoch", desc="train",
               disable=None if progress and context.main else True,
               dynamic_ncols=True, leave=False)
    if log is not None:
        log = _tqdm_log(log, bar)
    history = {}
    try:
        with _settings(device, threads, deterministic):
            if train_teacher:
                teacher.train()
                history["teacher"] = _stage(teacher, "teacher", teacher_epochs, settings,
                                            data, test, context, generator, None, bar, log)
            probs = None
            if teacher is not None and distill:
                teacher.eval()
                probs = data.teacher_probs(teacher)
            student.train()
            for phase, n in zip(PHASES, epochs):
                set_phase(student, phase)
                history[phase] = _stage(student, phase, n, settings, data, test, context,
                                        generator, probs, bar, log)
    finally:
        bar.close()
    if teacher is not None:
        teacher.eval()
    return student.eval(), history


def train(config, data, context=None, progress=True, log=None, teacher=None):
    """Train the teacher (unless given) and the Strassen student of ``config`` on the
    digits ``data``: :func:`fit` with the models of :func:`build_models`.

    Parameters
    ----------
    config : TrainConfig
    data : strassen_hw.train.data.Digits
    context : Context or None
        From :func:`strassen_hw.train.distributed.setup`; None trains in this process on CPU.
    progress : bool
        Show a tqdm progress bar (in the main process only).
    log : callable or None
        Receives one line per stage, at its last epoch (loss, train and test accuracy),
        main process only.
    teacher : nn.Module or None
        A trained float teacher to distil from instead of training one.

    Returns
    -------
    TrainResult
        ``history`` is :func:`fit`'s, flattened in stage order.
    """
    context = context or Context()
    new_teacher, student = build_models(config)
    x_train, y_train, x_test, y_test = _tensors(data, context.device)
    settings = dict(epochs=config.phase_epochs, teacher_epochs=config.teacher_epochs,
                    test_data=(x_test, y_test), batch_size=config.batch_size, lr=config.lr,
                    weight_decay=config.weight_decay, distill=config.distill,
                    seed=config.seed, context=context, progress=progress, log=log)
    if teacher is None:
        teacher = new_teacher
        student, history = fit(teacher, (x_train, y_train), student=student, **settings)
    else:
        student, history = fit(student, (x_train, y_train), teacher=teacher, **settings)
    rows = [row for stage_rows in history.values() for row in stage_rows]
    return TrainResult(config, teacher, student, rows)


def _tqdm_log(log, bar):
    from tqdm import tqdm

    def write(line):
        if log is print:
            tqdm.write(line)
        else:
            log(line)
    return write


def save_checkpoint(path, result):
    """Write ``result`` (config, both models' weights, history) to ``path`` atomically."""
    import io

    from strassen_hw.frozen import atomic_write
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "config": result.config.to_json(),
                "teacher": _cpu(result.teacher.state_dict()),
                "student": _cpu(result.student.state_dict()),
                "history": result.history,
                **({} if result.data is None else {"data": result.data})}, buffer)
    atomic_write(path, buffer.getvalue())


def _cpu(state):
    return {key: value.detach().cpu() for key, value in state.items()}


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns a :class:`TrainResult` on the CPU with the student in the ``ternary_fixed`` phase.
    Raises ``ValueError`` with one line when the file is not a checkpoint.
    """
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such checkpoint; write one with 'strassen-hw train'"
                         ) from None
    except Exception as e:
        raise ValueError(f"{path}: not a strassen-hw checkpoint ({type(e).__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a strassen-hw checkpoint")
    config = TrainConfig(**doc["config"])
    try:
        teacher, student = build_models(config)
    except ValueError as e:
        raise ValueError(f"{path}: cannot rebuild its model: {e}") from None
    try:
        teacher.load_state_dict(doc["teacher"])
        student.load_state_dict(doc["student"])
    except RuntimeError:
        raise ValueError(f"{path}: the weights do not fit the model of {config.model!r} "
                         "any more; train again") from None
    set_phase(student, PHASES[-1])
    return TrainResult(config, teacher.eval(), student.eval(), doc["history"], doc.get("data"))
