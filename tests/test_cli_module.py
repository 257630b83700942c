"""``python3 -m strassen_hw`` is the ``strassen-hw`` command (the README's main job uses it)."""

import subprocess
import sys

from strassen_hw.frozen import load


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "strassen_hw", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_module_runs_a_command(tmp_path):
    done = _run("random", "--shape", "5,3,2", "--seed", "4", "-o", "net.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    net = load(tmp_path / "net.json")
    assert [(l.n_in, l.r, l.n_out) for l in net.layers] == [(5, 3, 2)]


def test_module_errors_are_one_line_with_status_2(tmp_path):
    done = _run("generate", "missing.json", "-o", "out", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "missing.json: no such file" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
