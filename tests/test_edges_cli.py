"""Issue 10, one test per class of problem: exact answers at any width, and every bad input
refused with the one line it must show (exit status 2, no traceback, no output written)."""

import os

import numpy as np
import pytest

import strassen_hw.sim
from strassen_hw import frozen
from strassen_hw.cli import main
from strassen_hw.frozen import Format, FrozenError, FrozenLayer, FrozenNetwork
from strassen_hw.matmul import STRASSEN, save_algorithm
from strassen_hw.reference import forward


def _err(capsys, status):
    """The one error line of a command that returned ``status`` (asserted to be 2)."""
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("strassen-hw: error: ")
    return err.strip()


@pytest.fixture
def files(tmp_path):
    net = tmp_path / "net.json"
    frozen.save(frozen.random_network([(6, 3, 2)], seed=1), net)
    x = tmp_path / "x.npy"
    np.save(x, np.arange(12).reshape(2, 6))
    solution = tmp_path / "s.json"
    save_algorithm(STRASSEN, solution)
    return net, x, solution, tmp_path


def _wide():
    # v reaches about -2^70 before the shift: int64 would wrap
    layer = FrozenLayer(w_b=np.ones((4, 64), dtype=np.int64), a_tilde=[(1 << 31) - 1] * 4,
                        a_width=32, w_c=np.ones((2, 4), dtype=np.int64), bias=[0, -1],
                        bias_width=2, output=Format(32, True), shift=40)
    return FrozenNetwork("wide", Format(32, True), [layer])


# --- wrong answers -----------------------------------------------------------------------------

def test_the_reference_never_wraps(tmp_path, capsys):
    x = np.full((1, 64), -(1 << 31), dtype=np.int64)
    v = 4 * ((1 << 31) - 1) * (64 * -(1 << 31))           # Python integers: exact
    assert v < -(1 << 69)
    want = [[v >> 40, (v - 1) >> 40]]
    assert forward(_wide(), x).tolist() == want
    frozen.save(_wide(), tmp_path / "wide.json")
    np.save(tmp_path / "x.npy", x)
    assert main(["reference", str(tmp_path / "wide.json"), "--inputs", str(tmp_path / "x.npy"),
                 "-o", str(tmp_path / "y.npy")]) == 0
    assert np.load(tmp_path / "y.npy").tolist() == want


def test_inputs_are_checked_as_integers_whatever_the_dtype(files, capsys):
    net, x, _, tmp = files
    cases = [
        (np.full((1, 6), 2 ** 64 - 1, dtype=np.uint64),
         "input [0][0] = 18446744073709551615 is outside the network input range -128..127"),
        (np.ones((1, 6), dtype=bool), "inputs are booleans; give integers"),
        (np.full((1, 6), 1.5), "input [0][0] = 1.5 is not an integer"),
        (np.full((1, 6), np.inf), "input [0][0] = inf is not a number"),
        (np.full((1, 6), np.nan), "input [0][0] = nan is not a number"),
        (np.zeros((0, 6), dtype=np.int64), "holds no vectors (shape (0, 6))"),
        (np.zeros(6, dtype=np.int64), "the inputs must be 2-D (N, n_in)"),
        (np.zeros((1, 6), dtype=np.complex128), "holds complex128 values, not integers"),
    ]
    for array, message in cases:
        np.save(x, array)
        assert message in _err(capsys, main(["reference", str(net), "--inputs", str(x), "-o",
                                             str(tmp / "y.npy")]))
    np.save(x, np.zeros((1, 6), dtype=object), allow_pickle=True)
    assert "holds Python objects (a pickled array)" in _err(capsys, main(
        ["reference", str(net), "--inputs", str(x), "-o", str(tmp / "y.npy")]))
    np.save(x, np.full((1, 6), 3.0))           # whole numbers in a float array are integers
    assert main(["reference", str(net), "--inputs", str(x), "-o", str(tmp / "y.npy")]) == 0
    y = np.load(tmp / "y.npy")
    assert y.dtype == np.int64
    assert y.tolist() == forward(frozen.load(net), np.full((1, 6), 3, dtype=np.int8)).tolist()


# --- tracebacks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
    ('{"format": ' + "9" * 5000 + "}", "an integer of 5000 digits"),
    ('{"format": NaN}', "NaN is not a JSON number"),
    ('{"format": 1, "format": 2}', "duplicate field 'format'"),
    ("[1, 2]", "not a frozen network (the JSON is a list without"),
])
def test_bad_json_is_one_line(tmp_path, capsys, text, message):
    (tmp_path / "n.json").write_text(text)
    np.save(tmp_path / "x.npy", np.zeros((1, 6), dtype=np.int64))
    err = _err(capsys, main(["reference", str(tmp_path / "n.json"), "--inputs",
                             str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]))
    assert message in err
    assert not (tmp_path / "y.npy").exists()


def test_damaged_npy_files_are_one_line(files, capsys):
    net, x, _, tmp = files
    argv = ["reference", str(net), "--inputs", str(x), "-o", str(tmp / "y.npy")]
    x.write_bytes(b"")
    assert "not a .npy file (no numpy header)" in _err(capsys, main(argv))
    np.save(x, np.zeros((3, 6), dtype=np.int64))
    x.write_bytes(x.read_bytes()[:-5])
    assert "truncated: its header announces shape (3, 6) (144 bytes) but 139 bytes follow" \
        in _err(capsys, main(argv))
    with open(x, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<i8", "fortran_order": False, "shape": (10 ** 8, 10 ** 8)})
    assert "header announces shape (100000000, 100000000)" in _err(capsys, main(argv))
    x.write_text("1 2 3 4 5 6\n")               # a text file: no hint toward pickles
    err = _err(capsys, main(argv))
    assert "not a .npy file" in err and "pickle" not in err
    assert not (tmp / "y.npy").exists()


def test_output_onto_a_folder_or_into_a_read_only_one(files, capsys):
    net, x, _, tmp = files
    (tmp / "d").mkdir()
    assert _err(capsys, main(["reference", str(net), "--inputs", str(x), "-o", str(tmp / "d")])
                ).endswith(f"{tmp / 'd'}: is a folder; give a file name")
    assert os.listdir(tmp / "d") == []
    assert "a file is in the way" in _err(capsys, main(
        ["reference", str(net), "--inputs", str(x), "-o", str(x / "y.npy")]))
    if os.geteuid() != 0:           # root writes anywhere
        (tmp / "ro").mkdir(mode=0o555)
        assert "Permission denied" in _err(capsys, main(
            ["reference", str(net), "--inputs", str(x), "-o", str(tmp / "ro" / "y.npy")]))


@pytest.mark.parametrize("argv, message", [
    (["random", "--shape", "2,2,2", "--input-width", "0", "-o", "n.json"],
     "argument --input-width: 0: must be 1..32 (see 'strassen-hw random --help')"),
    (["random", "--shape", "2,2,2", "--input-width", "40", "-o", "n.json"],
     "argument --input-width: 40: must be 1..32"),
    (["random", "--shape", "2,2,2", "--a-width", "-3", "-o", "n.json"],
     "argument --a-width: -3: must be 1..32"),
    (["random", "--shape", "2,2,2", "--seed", "-1", "-o", "n.json"],
     "argument --seed: -1: must be at least 0"),
    (["random", "--shape", "2,2,2", "--name", "r\u00e9seau", "-o", "n.json"],
     "--name: 'name' = 'réseau' is not a valid network name"),
    (["random", "--shape", "2,2,2", "--name", "x" * 5000, "-o", "n.json"],
     "use 1 to 64 ASCII letters, digits and underscores"),
    (["simulate", "n.json", "--seed", "-1"], "argument --seed: -1: must be at least 0"),
    (["simulate", "n.json", "--vectors", "x"], "argument --vectors/--count: 'x' is not an int"),
    (["reference", "n.json"], "the following arguments are required: --inputs, -o/--output"),
    (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: COMMAND (see 'strassen-hw --help')"),
    (["freeze", "m.pt", "--guard-bits", "-1", "-o", "n.json"],
     "argument --guard-bits: -1: must be at least 0"),
])
def test_option_errors_are_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert message in _err(capsys, main(argv))
    assert os.listdir(tmp_path) == []


# --- accepted things that should not be --------------------------------------------------------

def test_an_output_that_is_an_input_is_refused(files, capsys):
    net, x, _, tmp = files
    before = net.read_bytes(), x.read_bytes()
    for argv in (["reference", str(net), "--inputs", str(x), "-o", str(net)],
                 ["reference", str(net), "--inputs", str(x), "-o", str(x)],
                 ["simulate", str(net), "--outputs", str(net)],
                 ["simulate", str(net), "--inputs", str(x), "--outputs", str(x)]):
        assert "is also an input of this command" in _err(capsys, main(argv))
    assert (net.read_bytes(), x.read_bytes()) == before


def test_the_constructors_apply_the_loader_rules():
    with pytest.raises(FrozenError, match=r"^format: 'width' = -3 is outside 1..32$"):
        Format(-3, True)
    with pytest.raises(FrozenError, match="'signed' must be true or false"):
        Format(8, 1)
    with pytest.raises(FrozenError, match="'input_width' = 40 is outside 1..32"):
        frozen.random_network([(2, 2, 2)], input_width=40)
    layer = dict(w_b=[[1]], a_tilde=[1], w_c=[[1]], bias=[0], a_width=2, bias_width=2,
                 output=Format(8, True))
    with pytest.raises(FrozenError, match="'w_b' has dtype float64; only integers"):
        FrozenLayer(**{**layer, "w_b": np.ones((1, 1))})
    with pytest.raises(FrozenError, match="'shift' = 63 is outside 0..62"):
        FrozenLayer(**layer, shift=63)
    with pytest.raises(FrozenError, match="'name' = 'wire' is a Verilog keyword"):
        FrozenNetwork("wire", Format(8, True), [FrozenLayer(**layer)])
    with pytest.raises(FrozenError, match="layer 1: 'w_b' has 1 columns but the layer input "
                                          "has 2 values"):
        FrozenNetwork("n", Format(8, True), [FrozenLayer(**{**layer, "w_c": [[1], [1]],
                                                           "bias": [0, 0]}),
                                             FrozenLayer(**layer)])


@pytest.mark.parametrize("argv, message", [
    (["simulate", "{s}", "--inputs", "{x}"], "--inputs: does not apply to solution files"),
    (["simulate", "{s}", "--outputs", "y.npy"], "--outputs: does not apply to solution files"),
    (["simulate", "{s}", "--waves"], "--waves: does not apply to solution files"),
    (["simulate", "{n}", "--operand-width", "4"],
     "--operand-width: does not apply to frozen networks"),
    (["simulate", "{n}", "--name", "m"], "--name: does not apply to frozen networks"),
    (["generate", "{n}", "-o", "out", "--name", "m"], "--name: does not apply to frozen networks"),
    (["generate", "{n}", "-o", "out", "--operand-width", "4"],
     "--operand-width: does not apply to frozen networks"),
    (["generate", "{s}", "-o", "out", "--levels-per-stage", "3"],
     "--levels-per-stage: does not apply to solution files"),
    (["generate", "{s}", "-o", "out", "--no-share"], "--no-share: does not apply to solution"),
])
def test_options_that_do_not_apply_are_errors(files, capsys, monkeypatch, argv, message):
    net, x, solution, tmp = files
    monkeypatch.chdir(tmp)
    argv = [a.format(s=solution, n=net, x=x) for a in argv]
    assert message in _err(capsys, main(argv))
    assert not (tmp / "out").exists() and not (tmp / "y.npy").exists()


def test_misleading_messages(files, capsys):
    net, x, solution, tmp = files
    err = _err(capsys, main(["reference", str(solution), "--inputs", str(x), "-o",
                             str(tmp / "y.npy")]))
    assert "a matrix-multiplication solution from 'discover', not a frozen network" in err
    assert ": file:" not in err


# --- outputs a user can compare ------------------------------------------------------------------

def test_waves_are_limited_and_sized_before_writing(files, capsys, monkeypatch):
    net, x, _, tmp = files
    seen = {}

    def stop(net, x, **kwargs):            # stands in for the simulator: the CLI is under test
        seen.update(vectors=len(x), waves=kwargs["waves"])
        raise strassen_hw.sim.SimulationError("stopped by the test")
    monkeypatch.setattr(strassen_hw.sim, "verify", stop, raising=False)
    monkeypatch.chdir(tmp)
    status = main(["simulate", str(net), "--waves"])
    err = capsys.readouterr().err
    extremes = len(strassen_hw.sim.extreme_vectors(frozen.load(net)))
    assert status == 2 and seen == {"vectors": extremes + 100, "waves": "net.vcd"}
    assert f"waves: tracing {extremes + 100} vectors into net.vcd, about " in err
    assert " MB (fewer with --vectors)" in err


@pytest.mark.verilator
def test_the_hardware_agrees_past_64_bits():
    """Wide intermediates are accepted because the hardware is exact there too: the Verilated
    design equals the reference (and the Python-integer value) with v near -2^70."""
    from strassen_hw.sim import check, test_vectors
    net = _wide()
    x = test_vectors(net, 200, seed=5)
    result = check(net, x, seed=5)
    v = 4 * ((1 << 31) - 1) * (64 * -(1 << 31))
    assert result.outputs[0].tolist() == [v >> 40, (v - 1) >> 40]     # all-minimum vector


@pytest.mark.verilator
def test_the_hardware_of_one_bit_in_and_out():
    """The narrowest network: one 1-bit input, one 1-bit output (the ports are scalars)."""
    from strassen_hw.sim import simulate
    layer = FrozenLayer(w_b=[[-1]], a_tilde=[1], a_width=2, w_c=[[1]], bias=[-1], bias_width=1,
                        output=Format(1, True))
    net = FrozenNetwork("onebit", Format(1, True), [layer])
    x = np.array([[0], [-1], [-1], [0]])
    assert simulate(net, x, seed=1).tolist() == [[-1], [0], [0], [-1]]   # -x - 1, by hand
