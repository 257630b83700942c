"""Training on the digits: a float teacher, then a Strassen (or TWN) student in three phases.

The student has the teacher's architecture with every ``nn.Linear`` strassenized. It trains
with the paper's schedule (Sec. 2.2): full precision, then ternary quantization on, then the
ternary values fixed while ã and the biases keep training; and with knowledge distillation
from the teacher (Sec. 2.3): cross-entropy on the labels plus cross-entropy to the teacher's
softmax, T = 1, equal weights. AdamW with a cosine learning-rate decay runs each stage.

The same function trains in one process or under ``torchrun`` (see :mod:`.distributed`): the
global batch is split evenly across processes and every process draws the same shuffle from
the seed, so a run is repeatable for a given seed and process count.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .distributed import Context
from .layers import PHASES, set_phase, strassenize, twnize

__all__ = ["TrainConfig", "TrainResult", "digits_mlp", "build_models", "train", "accuracy",
           "predict", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_FORMAT = "strassen-hw-checkpoint"
#: Kinds of student :func:`build_models` makes (:attr:`TrainConfig.student`).
STUDENTS = ("strassen", "twn")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (and the key of its cached checkpoint).

    Attributes
    ----------
    hidden : int
        Width of the MLP's hidden layer: 64 → hidden → 10, ReLU between.
    r : tuple of int
        Products per Strassen layer (one per ``nn.Linear``).
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
    student : str
        ``"strassen"`` (the teacher's architecture strassenized with ``r``) or ``"twn"``
        (twnized: ternary weights, one α per output; ``r`` unused), a baseline trained the
        same way. Left out of :meth:`to_json` when ``"strassen"``, so that the keys of
        Strassen runs do not depend on it.
    """
    hidden: int = 128
    r: tuple = (48, 30)
    seed: int = 0
    teacher_epochs: int = 60
    phase_epochs: tuple = (60, 60, 30)
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.0
    distill: bool = True
    student: str = "strassen"

    def __post_init__(self):
        if self.student not in STUDENTS:
            raise ValueError(f"student must be one of {', '.join(STUDENTS)}, not "
                             f"{self.student!r}")
        object.__setattr__(self, "r", tuple(int(v) for v in self.r))
        object.__setattr__(self, "phase_epochs", tuple(int(v) for v in self.phase_epochs))
        if len(self.phase_epochs) != len(PHASES):
            raise ValueError(f"phase_epochs needs {len(PHASES)} values, not "
                             f"{len(self.phase_epochs)}")

    def to_json(self):
        doc = asdict(self)
        if doc["student"] == "strassen":
            del doc["student"]
        return {**doc, "r": list(self.r), "phase_epochs": list(self.phase_epochs)}

    def key(self):
        """A short hash of the settings: equal keys mean the same training run."""
        text = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class TrainResult:
    """The trained float ``teacher`` and Strassen ``student`` and one ``history`` row per
    epoch (stage, epoch, loss, train and test accuracy)."""
    config: TrainConfig
    teacher: nn.Module
    student: nn.Module
    history: list = field(default_factory=list)


def digits_mlp(hidden, n_in=64, n_classes=10):
    """The plain PyTorch model: ``Linear(n_in, hidden) → ReLU → Linear(hidden, n_classes)``."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))


def build_models(config):
    """Fresh (teacher, student) for ``config``, initialised from its seed (the student as
    :attr:`TrainConfig.student` says)."""
    torch.manual_seed(config.seed)
    teacher = digits_mlp(config.hidden)
    if config.student == "twn":
        return teacher, twnize(digits_mlp(config.hidden))
    return teacher, strassenize(digits_mlp(config.hidden), config.r)


def _tensors(data, device):
    x_train = torch.as_tensor(data.x_train, dtype=torch.float32, device=device) * data.input_scale
    x_test = torch.as_tensor(data.x_test, dtype=torch.float32, device=device) * data.input_scale
    y_train = torch.as_tensor(data.y_train, device=device)
    y_test = torch.as_tensor(data.y_test, device=device)
    return x_train, y_train, x_test, y_test


def predict(model, x):
    """Logits of ``model`` for float inputs ``x`` (no gradient)."""
    with torch.no_grad():
        return model(x)


def accuracy(model, x, y):
    """Fraction of ``x`` that ``model`` classifies as ``y``."""
    return (predict(model, x).argmax(1) == y).double().mean().item()


def _stage(model, stage, epochs, config, tensors, context, generator, teacher_probs, bar, log):
    """Train ``model`` for ``epochs``; returns its history rows."""
    x_train, y_train, x_test, y_test = tensors
    world, rank = context.world_size, context.rank
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} is not divisible by the "
                         f"{world} processes")
    local_batch = config.batch_size // world
    per_rank = len(x_train) // world
    steps = -(-per_rank // local_batch)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, epochs * steps))
    wrapped = context.wrap(model)
    rows = []
    for epoch in range(epochs):
        order = torch.randperm(len(x_train), generator=generator)[:per_rank * world]
        order = order[rank::world].to(x_train.device)
        total = 0.0
        for step in range(steps):
            batch = order[step * local_batch:(step + 1) * local_batch]
            logits = wrapped(x_train[batch])
            loss = nn.functional.cross_entropy(logits, y_train[batch])
            if teacher_probs is not None:
                loss = loss + nn.functional.cross_entropy(logits, teacher_probs[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        row = {"stage": stage, "epoch": epoch + 1, "epochs": epochs, "loss": total / steps,
               "train_accuracy": accuracy(model, x_train, y_train),
               "test_accuracy": accuracy(model, x_test, y_test)}
        rows.append(row)
        if bar is not None:
            bar.set_postfix_str(f"{stage} loss {row['loss']:.3f} "
                                f"test {100 * row['test_accuracy']:.1f}%")
            bar.update(1)
        if log is not None and context.main and epoch + 1 == epochs:     # one line a stage
            log(f"{stage:>15} epoch {epoch + 1:3}/{epochs}  loss {row['loss']:.4f}  "
                f"train {100 * row['train_accuracy']:5.1f}%  "
                f"test {100 * row['test_accuracy']:5.1f}%")
    return rows


def train(config, data, context=None, progress=True, log=None, teacher=None):
    """Train the teacher (unless given) and the Strassen student of ``config`` on ``data``.

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
    """
    from tqdm import tqdm
    context = context or Context()
    new_teacher, student = build_models(config)
    device = context.device
    student.to(device)
    tensors = _tensors(data, device)
    generator = torch.Generator().manual_seed(config.seed)
    total = sum(config.phase_epochs) + (0 if teacher is not None else config.teacher_epochs)
    # disable=None: a bar on a terminal only, never frames in a log
    bar = tqdm(total=total, unit="epoch", desc="train",
               disable=None if progress and context.main else True,
               dynamic_ncols=True, leave=False)
    if log is not None and bar is not None:
        log = _tqdm_log(log, bar)
    history = []
    threads = torch.get_num_threads()
    if device.type == "cpu":
        # These models are tiny: one thread is fastest (two were 9x slower on a busy 2-core
        # machine); under torchrun the processes are the parallelism.
        torch.set_num_threads(1)
    try:
        if teacher is None:
            teacher = new_teacher.to(device)
            history += _stage(teacher, "teacher", config.teacher_epochs, config, tensors,
                              context, generator, None, bar, log)
        teacher.eval()
        probs = None
        if config.distill:
            probs = torch.softmax(predict(teacher, tensors[0]), dim=1)
        for phase, epochs in zip(PHASES, config.phase_epochs):
            set_phase(student, phase)
            history += _stage(student, phase, epochs, config, tensors, context, generator,
                              probs, bar, log)
    finally:
        bar.close()
        torch.set_num_threads(threads)
    return TrainResult(config, teacher, student, history)


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
                "history": result.history}, buffer)
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
    teacher, student = build_models(config)
    teacher.load_state_dict(doc["teacher"])
    student.load_state_dict(doc["student"])
    set_phase(student, PHASES[-1])
    return TrainResult(config, teacher.eval(), student.eval(), doc["history"])
