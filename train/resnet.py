"""A small residual network for MNIST-5k (28×28) and its Strassen student (an ST-ResNet).

The float teacher (:func:`mnist_resnet`) reads the 784 pixels of :mod:`.mnist` flat, like the
digits models, and is

``view → 1×28×28 → stem Conv2d(1, c1, 3, pad 1) → BN → ReLU → MaxPool 2 → 14×14×c1 →
block(c1 → c1, identity shortcut) → block(c1 → c2, stride 2, 1×1 stride-2 projection shortcut)
→ 7×7×c2 → block(c2 → c2, identity) → global average pool → Linear(c2, 10)``

with He et al.'s basic block (two 3×3 convolutions with batch norm, ReLU after the sum). The
student (:func:`st_resnet`) is the same model strassenized (:func:`~.layers.strassenize`):
every convolution with ``r = c_out`` (the stem with patches of ``p = 2``, the others ``p = 1``),
the classifier a Strassen layer with ``r = 10``; each batch norm moves after its layer's
``W_b``, where it folds into ã. Training (:func:`train_resnet`) is the project's recipe: the
teacher first, then the student in the three phases (:data:`~.layers.PHASES`) with
distillation from the teacher (cross-entropy to the labels plus to the teacher's softmax,
T = 1), AdamW with a cosine decay per stage: what :mod:`.fit` does for the digits models, in a
loop of its own here (the generic ``fit(model, data)`` was being written in parallel).
"""

import copy
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from .layers import PHASES, set_phase, strassenize

__all__ = ["WIDTHS", "BasicBlock", "mnist_resnet", "st_resnet", "ResNetConfig", "train_resnet",
           "accuracy"]

#: Channels of the stem and first block, and of the last two blocks.
WIDTHS = (8, 16)


class BasicBlock(nn.Module):
    """He et al.'s basic block: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``, the
    shortcut the identity or a 1×1 convolution (stride 2 where the block halves the image)
    with its batch norm."""

    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class _ResNet(nn.Module):
    def __init__(self, widths, classes, side):
        super().__init__()
        c1, c2 = widths
        self.side = side
        self.stem = nn.Conv2d(1, c1, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(c1)
        self.block1 = BasicBlock(c1, c1)
        self.block2 = BasicBlock(c1, c2, stride=2)
        self.block3 = BasicBlock(c2, c2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c2, classes)

    def forward(self, x):
        x = x.view(x.size(0), 1, self.side, self.side)
        x = F.max_pool2d(F.relu(self.bn(self.stem(x))), 2)
        x = self.block3(self.block2(self.block1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def mnist_resnet(widths=WIDTHS, classes=10, side=28):
    """The float teacher (module docstring); it reads flat ``side²`` pixels."""
    return _ResNet(tuple(widths), classes, side)


def st_resnet(teacher_like, classifier_r=10):
    """A fresh Strassen student of ``teacher_like``'s architecture (a copy, strassenized): r =
    c_out in every convolution, p = 2 in the stem and 1 elsewhere, ``classifier_r`` products
    in the classifier."""
    model = copy.deepcopy(teacher_like)
    return strassenize(model, lambda m: classifier_r if isinstance(m, nn.Linear)
                       else m.out_channels,
                       p=lambda conv: 2 if conv.in_channels == 1 else 1)


@dataclass(frozen=True)
class ResNetConfig:
    """One training run: ``teacher_epochs``, ``phase_epochs`` (full precision, quantized,
    ternary fixed), AdamW's ``lr``, ``batch_size``, the ``seed`` of weights and shuffles,
    and the teacher's ``widths``."""
    seed: int = 0
    teacher_epochs: int = 10
    phase_epochs: tuple = (10, 10, 5)
    batch_size: int = 64
    lr: float = 3e-3
    widths: tuple = WIDTHS
    classifier_r: int = 10


@dataclass
class ResNetResult:
    config: ResNetConfig
    teacher: nn.Module
    student: nn.Module
    history: list = field(default_factory=list)


def _predict(model, x, batch=500):
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    finally:
        model.train(training)


def accuracy(model, x, y):
    """Fraction of the float inputs ``x`` that ``model`` (in eval mode) classifies as ``y``."""
    return (_predict(model, x).argmax(1) == y).double().mean().item()


def _stage(model, name, epochs, config, tensors, generator, targets, log):
    x_train, y_train, x_test, y_test = tensors
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    steps = -(-len(x_train) // config.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, epochs * steps))
    rows = []
    model.train()
    for epoch in range(epochs):
        start, total = time.perf_counter(), 0.0
        order = torch.randperm(len(x_train), generator=generator)
        for step in range(steps):
            batch = order[step * config.batch_size:(step + 1) * config.batch_size]
            logits = model(x_train[batch])
            loss = F.cross_entropy(logits, y_train[batch])
            if targets is not None:
                loss = loss + F.cross_entropy(logits, targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        row = {"stage": name, "epoch": epoch + 1, "loss": total / steps,
               "test_accuracy": accuracy(model, x_test, y_test),
               "seconds": time.perf_counter() - start}
        rows.append(row)
        if log is not None:
            log(f"{name:>15} epoch {epoch + 1:2}/{epochs}  loss {row['loss']:.4f}  test "
                f"{100 * row['test_accuracy']:5.2f}%  ({row['seconds']:.1f} s)")
    return rows


def train_resnet(config, data, log=None, threads=1):
    """Train the teacher and the ST-ResNet student of ``config`` on ``data`` (an
    :class:`~.mnist.MNIST` or :class:`~.data.Digits` split of square one-channel images) on
    the CPU with ``threads`` threads; returns a :class:`ResNetResult` (both models in eval
    mode, the student in the ``ternary_fixed`` phase)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        side = int(round(data.x_train.shape[1] ** 0.5))
        torch.manual_seed(config.seed)
        teacher = mnist_resnet(config.widths, data.n_classes, side)
        student = st_resnet(mnist_resnet(config.widths, data.n_classes, side),
                            config.classifier_r)
        scale = float(data.input_scale)
        tensors = (torch.tensor(data.x_train, dtype=torch.float32) * scale,
                   torch.tensor(data.y_train), torch.tensor(data.x_test, dtype=torch.float32)
                   * scale, torch.tensor(data.y_test))
        generator = torch.Generator().manual_seed(config.seed)
        history = _stage(teacher, "teacher", config.teacher_epochs, config, tensors,
                         generator, None, log)
        targets = torch.softmax(_predict(teacher, tensors[0]), dim=1)
        for phase, epochs in zip(PHASES, config.phase_epochs):
            set_phase(student, phase)
            history += _stage(student, phase, epochs, config, tensors, generator, targets, log)
        return ResNetResult(config, teacher.eval(), student.eval(), history)
    finally:
        torch.set_num_threads(before)
