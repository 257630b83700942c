"""The small ST-ResNet (train/resnet.py): its multiplications by hand, its structure after
strassenize, a short training run on the digits, and its frozen graph against its float
model; and benchmarks/resnet20.py --freeze (the nine shortcut additions as add nodes)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from strassen_hw.frozen import load
from strassen_hw.reference import forward
from strassen_hw.train.conv import StrassenConv2d
from strassen_hw.train.freeze import float_logits, freeze
from strassen_hw.train.layers import StrassenLinear, count_operations
from strassen_hw.train.resnet import ResNetConfig, mnist_resnet, st_resnet, train_resnet
from train_quick import digits

BENCH = Path(__file__).parents[1] / "benchmarks"


def test_multiplications_by_hand():
    # 28×28: stem 784·8·9; max pool to 14×14; block 1: 2 × 196·8·72; block 2: 49·16·72,
    # 49·16·144 and the projection 49·16·8; block 3: 2 × 49·16·144; the classifier 16·10
    dense = (784 * 8 * 9 + 2 * 196 * 8 * 72 + 49 * 16 * (72 + 144 + 8) + 2 * 49 * 16 * 144
             + 160)
    assert count_operations(mnist_resnet(), (784,))["multiplications"] == dense == 683_808
    # r = c_out per window: the stem's 2×2 patches make 14·14 windows of 8; then one window
    # per output pixel; the classifier r = 10
    strassen = 196 * 8 + 2 * 196 * 8 + 3 * 49 * 16 + 2 * 49 * 16 + 10
    assert count_operations(st_resnet(mnist_resnet()), (784,))["multiplications"] == strassen
    assert strassen / dense < 0.02


def test_student_structure():
    student = st_resnet(mnist_resnet())
    convs = [m for m in student.modules() if isinstance(m, StrassenConv2d)]
    assert len(convs) == 8 and all(c.bn is not None and c.r == c.out_channels for c in convs)
    assert [c.p for c in convs] == [2] + [1] * 7
    projection = student.block2.shortcut[0]
    assert isinstance(projection, StrassenConv2d)
    assert projection.kernel_size == (1, 1) and projection.stride == (2, 2)
    assert isinstance(student.block1.shortcut, nn.Identity)
    assert isinstance(student.fc, StrassenLinear) and student.fc.r == 10
    assert not any(isinstance(m, nn.BatchNorm2d) for m in student.modules()
                   if not any(m is c.bn for c in convs))


@pytest.mark.slow
def test_trains_on_the_digits_and_freezes_into_its_graph():
    data = digits()
    result = train_resnet(ResNetConfig(teacher_epochs=3, phase_epochs=(3, 3, 2)), data)
    student = result.student
    with torch.no_grad():
        torch_pred = student(torch.as_tensor(data.x_test, dtype=torch.float32) / 16).argmax(1)
    float_pred = float_logits(student, data.x_test, data.input_scale).argmax(1)
    assert (float_pred == torch_pred.numpy()).mean() > 0.99
    assert (float_pred == data.y_test).mean() > 0.5           # it learned (10 % is chance)
    net, report = freeze(student, data.x_train, input_format=data.input_format,
                         input_scale=data.input_scale, name="resnet")
    kinds = [n.KIND for n in net.nodes]
    assert kinds.count("add") == 3 and kinds.count("conv") == 8 and kinds[-1] == "linear"
    assert net.node("pool").mode == "global"
    frozen_pred = forward(net, data.x_test).argmax(1)
    assert (frozen_pred == float_pred).mean() > 0.95


@pytest.mark.slow
def test_resnet20_smoke_freeze_writes_nine_adds(tmp_path):
    # in a process of its own with one thread: a CI run crashed (SIGSEGV inside torch's
    # backward) when this training ran in the suite's process after the other tests, which
    # took the whole suite down; alone it passed, and a child process cannot inherit that state
    path, figures_path = tmp_path / "st20.json", tmp_path / "figures.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(BENCH / "resnet20.py"), "--smoke", "--width",
                           "4", "--freeze", str(path), "--calibration", "8", "--a-width", "8",
                           "--device", "cpu", "--json", str(figures_path)],
                          env=env, timeout=600, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(figures_path.read_text())
    net = load(path)
    assert net.input_shape == (32, 32, 3) and net.shape_of(net.nodes[-1].name) == (10,)
    adds = [n for n in net.nodes if n.KIND == "add"]
    assert len(adds) == 9 and all(n.relu for n in adds)
    projections = [n for n in net.nodes if n.KIND == "conv" and n.layer.geometry.kernel ==
                   (1, 1)]
    assert [n.layer.geometry.stride for n in projections] == [(2, 2), (2, 2)]
    # each add reads its block's second convolution and the shortcut: the block input (the
    # node the block's first convolution reads) or the projection
    for add in adds:
        second, shortcut = (net.node(name) for name in add.inputs)
        assert second.KIND == "conv"
        first = net.node(second.inputs[0])
        assert shortcut.name == first.inputs[0] or shortcut in projections
    assert net.nodes[-1].layer.kind == "dense"                   # the paper's dense classifier
    figures = result["frozen"]
    assert figures["adds"] == 9 and figures["bytes"] == path.stat().st_size
    assert figures["a_width"] == 8
