"""benchmarks/resnet20.py: the ST-ResNet-20 runs (random data, .npy files in both layouts, two
processes under torchrun) and counts ResNet-20's multiplications as worked out by hand."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import resnet20  # noqa: E402

from strassen_hw.train.conv import StrassenConv2d  # noqa: E402
from strassen_hw.train.layers import count_operations  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_resnet20_multiplications_by_hand():
    dense = count_operations(resnet20.resnet20(), (3, 32, 32))
    # 32×32: conv1 16·1024·27; stage 1: 6 convs 16·1024·144; stage 2: 32·256·144, 5 × 32·256·288
    # and the projection 32·256·16; stage 3: 64·64·288, 5 × 64·64·576, projection 64·64·32;
    # the classifier 64·10
    assert dense["multiplications"] == (16 * 1024 * 27 + 6 * 16 * 1024 * 144
                                        + 32 * 256 * (144 + 5 * 288 + 16)
                                        + 64 * 64 * (288 + 5 * 576 + 32) + 640) == 40_813_184
    student = resnet20.st_resnet20(3, 10, 16, 1.0, 1, 1, False)
    convs = [m for m in student.modules() if isinstance(m, StrassenConv2d)]
    assert len(convs) == 21 and isinstance(student[-1], torch.nn.Linear)
    # r = c_out, p = 1: c_out products per output pixel; 7 layers per stage count the projection
    # (stage 1 has none but the first convolution)
    ops = count_operations(student, (3, 32, 32))
    assert ops["multiplications"] == 16 * 1024 * 7 + 32 * 256 * 7 + 64 * 64 * 7 + 640
    # p = 2 and r = c_out/4: a quarter of the patches, a quarter of r
    ops = count_operations(resnet20.st_resnet20(3, 10, 16, 0.25, 2, 1, False), (3, 32, 32))
    assert ops["multiplications"] == (16 * 1024 * 7 + 32 * 256 * 7 + 64 * 64 * 7) // 16 + 640


def test_smoke_runs_all_phases_with_distillation(tmp_path, capsys):
    result = resnet20.main(["--smoke", "--p", "2", "--r", "0.5", "--batch-norm",
                            "--teacher-epochs", "1", "--json", str(tmp_path / "r.json")])
    assert {"teacher", "full_precision", "quantized", "ternary_fixed"} <= result.keys()
    assert result["multiplications"] < result["dense_multiplications"] / 100
    assert (tmp_path / "r.json").is_file()
    assert "ternary_fixed epoch   1/1" in capsys.readouterr().out


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_reads_npy_files_in_either_layout(tmp_path, layout):
    rng = np.random.default_rng(0)
    shape = (12, 8, 8, 3) if layout == "nhwc" else (12, 3, 8, 8)
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    y = rng.integers(0, 4, 12)
    for name, array in (("x_train", x), ("y_train", y), ("x_test", x[:4]), ("y_test", y[:4])):
        np.save(tmp_path / f"{name}.npy", array)
    result = resnet20.main(["--data", str(tmp_path), "--epochs", "1,0,1", "--batch-size", "4",
                            "--width", "4", "--no-augment"])
    assert result["shape"] == [3, 8, 8]
    loaded = resnet20.load_images([tmp_path / f"{n}.npy" for n in
                                   ("x_train", "y_train", "x_test", "y_test")], "auto")
    assert loaded[0].shape == (12, 3, 8, 8) and loaded[0].max() <= 1.0


def test_bad_files_give_one_line(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((5, 4, 4, 4)))
    np.save(tmp_path / "y.npy", np.zeros(5, dtype=np.int64))
    paths = [tmp_path / "x.npy", tmp_path / "y.npy"] * 2
    with pytest.raises(ValueError, match=r"cannot tell the channel axis; pass --layout"):
        resnet20.load_images(paths, "auto")
    with pytest.raises(ValueError, match=r"x_train must be N×C×H×W or N×H×W×C with N labels"):
        resnet20.load_images([tmp_path / "x.npy", tmp_path / "x.npy"] * 2, "nchw")
    (tmp_path / "bad.npy").write_text("no")
    with pytest.raises(ValueError, match=r"bad.npy: cannot read it as a .npy array"):
        resnet20.load_images([tmp_path / "bad.npy"] + paths[1:], "nchw")


@pytest.mark.slow
def test_torchrun_two_processes_smoke():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", str(BENCH / "resnet20.py"), "--smoke",
                           "--device", "cpu"], env=env, timeout=300, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 process(es) on cpu" in done.stdout
    assert done.stdout.count("test accuracy:") == 1            # only the first process prints
