"""``fold=`` / ``--fold`` through generate and simulate (the folded design itself is proven in
test_hw_folded.py and test_sim_folded.py)."""

import json

import numpy as np
import pytest
from sim_nets import chain

from strassen_hw.cli import main
from strassen_hw.frozen import save
from strassen_hw.hw import check_fold, folded_report, generate, generate_verilog


@pytest.fixture
def chain_file(tmp_path):
    path = tmp_path / "chain.json"
    save(chain(), path)
    return path


def _one_error_line(capsys, text):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("strassen-hw: error: ") and text in err[0], err


def test_generate_fold_writes_the_folded_design_and_its_report(chain_file, tmp_path, capsys):
    assert main(["generate", str(chain_file), "-o", str(tmp_path / "f"), "--fold", "3"]) == 0
    net = chain()
    report = json.loads((tmp_path / "f" / "report.json").read_text())
    assert report == folded_report(net, 3)
    total = report["total"]
    assert total["fold"] == 3 and total["cycles_per_vector"] >= 3
    # one multiplication per product whose ã, W_b row and W_c column are not zero
    used = sum(int(((l.a_tilde != 0) & l.w_b.any(axis=1) & l.w_c.any(axis=0)).sum())
               for l in net.layers)
    assert total["multiplications_per_inference"] == used
    assert total["multipliers"] < sum(layer.r for layer in net.layers)
    text = (tmp_path / "f" / f"{net.name}.v").read_text()
    assert text == generate_verilog(net, fold=3)
    assert text != generate_verilog(net)
    assert "folded by 3" in capsys.readouterr().out


def test_fold_one_is_the_parallel_design_with_its_rate(tmp_path):
    net = chain()
    report = generate(net, tmp_path, fold=1)
    assert report["total"]["cycles_per_vector"] == 1 and report["total"]["fold"] == 1
    assert report["total"]["multiplications_per_inference"] == sum(l.r for l in net.layers)
    assert (tmp_path / f"{net.name}.v").read_text() == generate_verilog(net)


@pytest.mark.parametrize("fold", [0, -2, 1.5, True, "2"])
def test_a_bad_fold_is_refused_by_name(fold):
    with pytest.raises(ValueError, match="fold must be a positive integer"):
        check_fold(fold)


@pytest.mark.parametrize("argv, text", [
    (["--fold", "0"], "argument --fold: 0: must be 1.."),
    (["--fold", "2", "--levels-per-stage", "3"], "--levels-per-stage: does not apply to the "
                                                 "folded architecture"),
])
def test_generate_fold_errors_are_one_line(chain_file, tmp_path, capsys, argv, text):
    out = tmp_path / "out"
    assert main(["generate", str(chain_file), "-o", str(out), *argv]) == 2
    _one_error_line(capsys, text)
    assert not out.exists()


def test_simulate_fold_does_not_apply_to_a_solution(tmp_path, capsys):
    from strassen_hw.matmul import STRASSEN, save_algorithm
    path = tmp_path / "s.json"
    save_algorithm(STRASSEN, path)
    assert main(["simulate", str(path), "--fold", "2"]) == 2
    _one_error_line(capsys, "--fold: does not apply to solution files")


@pytest.mark.verilator
def test_simulate_fold_checks_the_folded_design(chain_file, tmp_path, capsys):
    x = np.random.default_rng(5).integers(-128, 128, (40, chain().n_in))
    np.save(tmp_path / "x.npy", x)
    assert main(["simulate", str(chain_file), "--fold", "4", "--vectors", "60",
                 "--inputs", str(tmp_path / "x.npy")]) == 0
    assert "PASS" in capsys.readouterr().out
