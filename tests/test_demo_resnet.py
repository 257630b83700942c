"""``strassen-hw demo --model resnet``: the small ST-ResNet on the digits, trained, frozen into
a graph with add nodes, generated and checked under Verilator on every test image."""

import json

import pytest

from strassen_hw.cli import main
from strassen_hw.frozen import load

# by hand, per 8×8 digit: the stem (1→8, 3×3, p = 2: 16 windows of r = 8), 2×2 max pool to
# 4×4; block 1 (8→8 twice at 4×4, r = 8 per pixel); block 2 (8→16, stride 2, to 2×2, then
# 16→16, r = 16 per pixel, and the 1×1 stride-2 projection 8→16); block 3 (16→16 twice at
# 2×2); the classifier, r = 10
STRASSEN_MULTS = 16 * 8 + 2 * 16 * 8 + 3 * 4 * 16 + 2 * 4 * 16 + 10
# the dense teacher: every weight at every output pixel
DENSE_MULTS = (64 * 9 * 8 + 2 * 16 * 9 * 8 * 8 + 4 * 9 * 8 * 16 + 4 * 9 * 16 * 16
               + 4 * 8 * 16 + 2 * 4 * 9 * 16 * 16 + 16 * 10)


@pytest.mark.verilator
@pytest.mark.slow
def test_demo_resnet_quick(tmp_path, capsys):
    table = tmp_path / "table.json"
    assert main(["demo", "--model", "resnet", "--quick", "--out", str(tmp_path / "out"),
                 "--cache-dir", str(tmp_path / "cache"), "--json", str(table)]) == 0
    out = capsys.readouterr().out
    assert "all 3600 outputs equal the reference, bit for bit" in out
    rows = json.loads(table.read_text())
    assert [r["model"] for r in rows] == [
        "resnet: float teacher (dense layers)", "resnet: float Strassen (ternary W_b, W_c)",
        "resnet: frozen integer reference", "resnet: simulated hardware (Verilator)"]
    teacher, student, frozen, hardware = rows
    assert teacher["multiplications"] == DENSE_MULTS == 55968
    assert student["multiplications"] == frozen["multiplications"] == STRASSEN_MULTS == 714
    assert hardware["accuracy"] == frozen["accuracy"] > 0.5          # 10 % is chance
    assert hardware["multiplications"] <= STRASSEN_MULTS            # trivial ã need none
    net = load(tmp_path / "out" / "resnet" / "digits_resnet.json")
    kinds = [node.KIND for node in net.nodes]
    assert kinds.count("add") == 3 and kinds.count("conv") == 8
    # the shortcut additions: 8·4·4 values for block 1, 16·2·2 for blocks 2 and 3
    adds = 8 * 16 + 2 * 16 * 4
    assert frozen["additions"] > adds and hardware["additions"] > adds
