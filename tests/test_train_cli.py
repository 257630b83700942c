"""The train, freeze and demo subcommands."""

import json

import pytest

from strassen_hw.cli import main
from strassen_hw.frozen import load


def test_train_then_freeze(tmp_path, capsys):
    ckpt, net_path = tmp_path / "m.pt", tmp_path / "net.json"
    assert main(["train", "--hidden", "16", "--products", "6,4", "--teacher-epochs", "2",
                 "--epochs", "2,2,1", "--seed", "1", "-o", str(ckpt)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "teacher epoch   2/2" in out and "ternary_fixed epoch   1/1" in out
    # not a terminal: one plain line per stage, no progress-bar frames
    assert sum(" epoch " in line for line in out.splitlines()) == 4
    assert "\r" not in captured.err and "\r" not in out
    assert f"wrote {ckpt}: teacher test accuracy" in out
    assert "with 10 multiplications per inference (0.84% of the dense 1,184)" in out
    assert main(["freeze", str(ckpt), "-o", str(net_path), "--a-width", "8"]) == 0
    out = capsys.readouterr().out
    assert "ã in 8 signed bits" in out and "quantization loss" in out
    net = load(net_path)
    assert [(l.n_in, l.r, l.n_out) for l in net.layers] == [(64, 6, 16), (16, 4, 10)]
    assert net.name == "digits" and net.input.width == 5 and not net.input.signed


@pytest.mark.parametrize("argv, message", [
    (["freeze", "missing.pt", "-o", "x.json"], "missing.pt: no such checkpoint"),
    (["train", "--products", "4", "-o", "x.pt"], "--products 4: give two positive values"),
    (["train", "--epochs", "1,2", "-o", "x.pt"], "--epochs 1,2: give three values"),
])
def test_user_errors_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("strassen-hw: error: ") and message in err
    assert err.count("\n") == 1


@pytest.mark.verilator
def test_demo_quick(tmp_path, capsys):
    table = tmp_path / "table.json"
    argv = ["demo", "--model", "mlp", "--quick", "--out", str(tmp_path / "out"), "--cache-dir",
            str(tmp_path / "cache"), "--json", str(table)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "training the teacher" in out
    assert "all 3600 outputs equal the reference, bit for bit" in out
    rows = json.loads(table.read_text())
    assert [r["model"] for r in rows] == [
        "float teacher (dense layers)", "float Strassen (ternary W_b, W_c)",
        "frozen integer reference", "simulated hardware (Verilator)"]
    assert all(set(r) == {"model", "accuracy", "multiplications", "additions"} for r in rows)
    teacher, student, frozen, hardware = rows
    assert teacher["multiplications"] == 64 * 32 + 32 * 10
    assert student["multiplications"] == frozen["multiplications"] == 12 + 8
    # one multiplier per used product whose ã is not 0 or ±2^k (those become wires and shifts)
    net = json.loads((tmp_path / "out" / "digits.json").read_text())
    real = sum(1 for layer in net["layers"] for j, a in enumerate(layer["a_tilde"])
               if abs(a) & (abs(a) - 1) != 0 and any(layer["w_b"][j])
               and any(row[j] for row in layer["w_c"]))
    assert hardware["multiplications"] == real <= 20
    assert hardware["accuracy"] == frozen["accuracy"] > 0.8
    assert (tmp_path / "out" / "digits.v").is_file()
    # a second run reuses the trained checkpoint
    assert main(argv) == 0
    assert "reusing the trained models" in capsys.readouterr().out
    assert json.loads(table.read_text()) == rows


@pytest.mark.verilator
@pytest.mark.slow
def test_demo_quick_cnn(tmp_path, capsys):
    table = tmp_path / "table.json"
    out_dir = tmp_path / "out"
    assert main(["demo", "--model", "cnn", "--quick", "--out", str(out_dir), "--cache-dir",
                 str(tmp_path / "cache"), "--json", str(table)]) == 0
    out = capsys.readouterr().out
    assert "all 3600 outputs equal the reference, bit for bit" in out
    assert "once per window" in out
    rows = json.loads(table.read_text())
    assert [r["model"] for r in rows] == [
        "cnn: float teacher (dense layers)", "cnn: float Strassen (ternary W_b, W_c)",
        "cnn: frozen integer reference", "cnn: simulated hardware (Verilator)"]
    assert all(set(r) == {"model", "accuracy", "multiplications", "additions"} for r in rows)
    teacher, student, frozen, hardware = rows
    # dense: 64 pixels × 9 × 8 channels, 16 pixels × 9 × 8 × 16, 64 features × 10 classes
    assert teacher["multiplications"] == 64 * 9 * 8 + 16 * 9 * 8 * 16 + 64 * 10
    # r per window: 4×4 windows of conv 1 (p = 2 on 8×8), 2×2 of conv 2, then the classifier
    assert student["multiplications"] == frozen["multiplications"] == 8 * 16 + 16 * 4 + 10
    # the hardware: each layer's real multipliers (ã not 0 or ±2^k), a conv's once per window
    net = json.loads((out_dir / "cnn" / "digits_cnn.json").read_text())
    real = 0
    for layer, windows in zip(net["layers"], (16, 4, 1)):
        patch = layer.get("patch", layer)
        real += windows * sum(1 for j, a in enumerate(patch["a_tilde"])
                              if abs(a) & (abs(a) - 1) != 0 and any(patch["w_b"][j])
                              and any(row[j] for row in patch["w_c"]))
    assert hardware["multiplications"] == real <= frozen["multiplications"]
    assert hardware["accuracy"] == frozen["accuracy"] > 0.8
    assert (out_dir / "cnn" / "digits_cnn.v").is_file()
    assert not (out_dir / "digits.json").exists()      # the MLP was not run


def test_demo_rejects_an_unknown_model(capsys):
    assert main(["demo", "--model", "rnn"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("strassen-hw: error: ") and "--model" in err and "rnn" in err
    assert err.count("\n") == 1


def test_table_compares_each_network_with_its_own_teacher():
    from strassen_hw.demo import Row, format_table
    rows = [Row("float teacher (dense layers)", 0.9, 1000, 1000),
            Row("frozen integer reference", 0.9, 10, 50),
            Row("cnn: float teacher (dense layers)", 0.9, 400, 400),
            Row("cnn: frozen integer reference", 0.9, 2, 30)]
    lines = format_table(rows).splitlines()[2:]
    assert [line.split()[-1] for line in lines] == ["100.00%", "1.00%", "100.00%", "0.50%"]
