"""The ``discover`` command: solution files, --json, and one-line errors."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from strassen_hw.cli import main  # noqa: E402
from strassen_hw.matmul import load_algorithm  # noqa: E402


def test_discover_writes_solution_and_json(tmp_path, capsys):
    sol, doc = tmp_path / "sol.json", tmp_path / "run.json"
    status = main(["discover", "--size", "2", "--rank", "7", "--restarts", "24", "--seed", "2",
                   "--fit-steps", "400", "--quant-steps", "800",
                   "--json", str(doc), "-o", str(sol)])
    out = capsys.readouterr().out
    assert status == 0
    assert "24 restart(s) of 2x2, r=7" in out and f"saved to {sol}" in out
    data = json.loads(doc.read_text())
    assert all(isinstance(v, int) for key in ("W_a", "W_b", "W_c") for row in data[key]
               for v in row)
    assert np.array(data["W_a"]).shape == (7, 4) and np.array(data["W_c"]).shape == (4, 7)
    assert data["restarts"] == 24 and 0 < data["exact"] <= 24
    assert data["rate"] == data["exact"] / 24
    from_json, from_file = load_algorithm(doc), load_algorithm(sol)
    assert from_json.is_exact() and from_json.canonical() == from_file.canonical()
    a = np.array([[3, -7], [11, 5]])
    b = np.array([[-2, 4], [9, -13]])
    assert np.array_equal(from_file.multiply(a, b), a @ b)


def test_nothing_found_exits_1_and_writes_no_solution(tmp_path, capsys):
    sol, doc = tmp_path / "sol.json", tmp_path / "run.json"
    status = main(["discover", "--rank", "5", "--restarts", "4", "--fit-steps", "20",
                   "--quant-steps", "20", "--json", str(doc), "-o", str(sol)])
    assert status == 1 and not sol.exists()
    assert "no exact algorithm found" in capsys.readouterr().out
    assert json.loads(doc.read_text())["W_a"] is None


@pytest.mark.parametrize("argv, message", [
    (["--size", "0"], "--size 0: must be 1..4 (n×n matrices)"),
    (["--size", "5"], "--size 5: must be 1..4 (n×n matrices)"),
    (["--rank", "9"], "--rank 9: must be 1..8 for 2×2 (the naive product needs 8)"),
    (["--size", "3", "--rank", "0"],
     "--rank 0: must be 1..27 for 3×3 (the naive product needs 27)"),
    (["--restarts", "0"], "--restarts 0: must be at least 1"),
    (["--fit-steps", "-1"], "--fit-steps -1: must be >= 0"),
])
def test_bad_arguments_give_one_line(argv, message, capsys):
    assert main(["discover", *argv]) == 2
    err = capsys.readouterr().err
    assert err == f"strassen-hw: error: {message}\n"


def _strassen_file(tmp_path, w_c=None):
    from strassen_hw.matmul import STRASSEN, BilinearAlgorithm, save_algorithm
    path = tmp_path / "strassen.json"
    algorithm = STRASSEN if w_c is None else BilinearAlgorithm(STRASSEN.w_a, STRASSEN.w_b, w_c)
    save_algorithm(algorithm, path)
    return path


def test_generate_accepts_a_solution(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", str(_strassen_file(tmp_path)), "-o", str(out), "--name", "mm2"]) == 0
    assert "7 multipliers (naive 8)" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert (report["name"], report["multipliers"], report["naive_multipliers"]) == ("mm2", 7, 8)
    assert "module mm2" in (out / "mm2.v").read_text()


def test_generate_refuses_an_inexact_solution(tmp_path, capsys):
    from strassen_hw.matmul import STRASSEN
    w_c = STRASSEN.w_c.copy()
    w_c[0, 0] = 0 if w_c[0, 0] else 1
    path = _strassen_file(tmp_path, w_c)
    assert main(["generate", str(path), "-o", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        f"strassen-hw: error: {path}: not an exact algorithm (its tensor differs from the "
        "2x2 matrix-multiplication tensor)\n")


@pytest.mark.verilator
@pytest.mark.slow
def test_simulate_checks_a_solution_against_matmul(tmp_path, capsys):
    status = main(["simulate", str(_strassen_file(tmp_path)), "--count", "300",
                   "--name", "strassen_cli"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.startswith("PASS: all 316 pairs (16 extreme, 300 random) of 2x2 int8 matrices")


def test_pick_fewest_adders(tmp_path, capsys):
    common = ["discover", "--restarts", "24", "--seed", "4", "--fit-steps", "400",
              "--quant-steps", "800"]
    adders = {}
    for pick in ("first", "fewest-adders"):
        sol = tmp_path / f"{pick}.json"
        assert main([*common, "--pick", pick, "-o", str(sol)]) == 0
        assert main(["generate", str(sol), "-o", str(tmp_path / pick)]) == 0
        adders[pick] = json.loads((tmp_path / pick / "report.json").read_text())["adders"]
        assert load_algorithm(sol).is_exact()
    out = capsys.readouterr().out
    assert f"exact algorithm with the fewest adders ({adders['fewest-adders']})" in out
    assert adders["fewest-adders"] <= adders["first"]
