"""The command line with a user's own model and data (``train --model MODULE:FUNCTION`` with
.npy files, then ``freeze``), and the small traps: no option abbreviations, ``random`` names
the network after its file, the simulator's function names."""

import json

import numpy as np
import pytest

from strassen_hw.cli import main

MODELS = '''
from torch import nn


def mlp():
    return nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))


def cnn():                       # fed (N, 1, 8, 8) images
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 10))


def not_a_model():
    return 42
'''


@pytest.fixture
def user(tmp_path, monkeypatch):
    from strassen_hw.train import data
    digits = data.load()
    (tmp_path / "usermodels.py").write_text(MODELS)
    np.save(tmp_path / "x.npy", digits.x_train)
    np.save(tmp_path / "y.npy", digits.y_train)
    np.save(tmp_path / "xt.npy", digits.x_test)
    np.save(tmp_path / "yt.npy", digits.y_test)
    np.save(tmp_path / "xi.npy", digits.x_train.reshape(-1, 1, 8, 8))
    np.save(tmp_path / "xti.npy", digits.x_test.reshape(-1, 1, 8, 8))
    monkeypatch.chdir(tmp_path)
    return digits


_DATA = ["--x-train", "x.npy", "--y-train", "y.npy", "--x-test", "xt.npy", "--y-test", "yt.npy",
         "--input-scale", "0.0625"]
_SHORT = ["--teacher-epochs", "3", "--epochs", "3,3,1"]


def test_train_and_freeze_a_user_model(user, tmp_path, capsys):
    from strassen_hw.frozen import Format, load
    from strassen_hw.reference import forward
    from strassen_hw.train.recipe import load_checkpoint
    assert main(["train", "--model", "usermodels:mlp", *_DATA, "--products", "6,4", *_SHORT,
                 "-o", "out/user.pt"]) == 0
    out = capsys.readouterr().out
    assert "teacher usermodels:mlp()" in out and "with 10 multiplications" in out
    result = load_checkpoint(tmp_path / "out" / "user.pt")
    assert result.config.model == "usermodels:mlp" and result.config.r == (6, 4)
    assert result.data["input_format"] == {"width": 5, "signed": False}     # pixels 0..16
    assert result.data["input_scale"] == 0.0625 and result.data["input_shape"] is None
    assert result.data["x_train"] == str(tmp_path / "x.npy")
    assert main(["freeze", "out/user.pt", "-o", "out/user-net.json"]) == 0
    out = capsys.readouterr().out
    net = load(tmp_path / "out" / "user-net.json")
    assert net.name == "user_net" and net.input == Format(5, signed=False)
    assert [layer.r for layer in net.layers] == [6, 4]
    accuracy = float(np.mean(forward(net, user.x_test).argmax(1) == user.y_test))
    assert f"-> {100 * accuracy:.2f}% (frozen)" in out
    assert accuracy > 0.3                                # chance is 0.10


def test_train_and_freeze_a_user_cnn_on_images(user, tmp_path, capsys):
    from strassen_hw.frozen import load
    from strassen_hw.reference import forward
    args = ["--x-train", "xi.npy", "--y-train", "y.npy", "--x-test", "xti.npy", "--y-test",
            "yt.npy", "--input-scale", "0.0625"]
    assert main(["train", "--model", "usermodels:cnn", *args, "--products", "4,6", "--p", "2",
                 "--teacher-epochs", "2", "--epochs", "2,2,1", "-o", "c.pt"]) == 0
    assert main(["freeze", "c.pt", "-o", "c.json", "--name", "mine"]) == 0
    net = load(tmp_path / "c.json")
    assert net.name == "mine" and net.layers[0].geometry.p == 2
    # the .npy images were (N, 1, 8, 8); the network reads rows in pixel order
    frozen = forward(net, user.x_test).argmax(1)
    assert f"{100 * np.mean(frozen == user.y_test):.2f}% (frozen)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--model", "usermodels:mlp", "--products", "6,4"], "give the data, --x-train"),
    (["--model", "usermodels:mlp", *_DATA], "give --products"),
    (["--model", "usermodels:mlp", *_DATA, "--products", "6,4,2"],
     "r lists 3 value(s) but the model has 2"),
    (["--model", "usermodels:not_a_model", *_DATA, "--products", "3"],
     "returned int, not a torch nn.Module"),
    (["--model", "usermodels:nothing", *_DATA, "--products", "3"],
     "usermodels has no function 'nothing'"),
    (["--model", "nomodule:make", *_DATA, "--products", "3"], "cannot import 'nomodule'"),
    (["--model", "not a spec", *_DATA, "--products", "3"], "MODULE:FUNCTION"),
    (["--model", "usermodels:mlp", "--x-train", "x.npy", "--y-train", "yt.npy",
      "--products", "3"], "1,437 rows but --y-train 360 labels"),
    (["--model", "usermodels:mlp", "--x-train", "y.npy", "--y-train", "y.npy",
      "--products", "3"], "must be 2-D or 4-D"),
    (["--model", "usermodels:mlp", "--x-train", "x.npy", "--y-train", "y.npy",
      "--x-test", "xt.npy", "--products", "3"], "--x-test and --y-test go together"),
    (["--x-train", "x.npy"], "--x-train: applies to --model MODULE:FUNCTION"),
    (["--model", "usermodels:mlp", *_DATA, "--products", "3", "--input-scale", "0"],
     "--input-scale 0.0: must be a positive number"),
])
def test_user_model_refusals_are_one_line(user, tmp_path, capsys, argv, message):
    assert main(["train", *argv, "-o", "never.pt"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "never.pt").exists()


def test_freeze_of_a_user_checkpoint_whose_data_moved(user, tmp_path, capsys):
    assert main(["train", "--model", "usermodels:mlp", *_DATA, "--products", "3",
                 "--teacher-epochs", "1", "--epochs", "1,1,1", "-o", "m.pt"]) == 0
    (tmp_path / "x.npy").rename(tmp_path / "moved.npy")
    capsys.readouterr()
    assert main(["freeze", "m.pt", "-o", "m.json"]) == 2
    err = capsys.readouterr().err
    assert "are gone; give them with --calibration X.npy" in err and err.count("\n") == 1
    assert main(["freeze", "m.pt", "-o", "m.json", "--calibration", "moved.npy"]) == 0
    assert (tmp_path / "m.json").is_file()
    assert main(["freeze", "m.pt", "-o", "m2.json", "--calibration", "nothing.npy"]) == 2
    assert "nothing.npy: no such file" in capsys.readouterr().err


def test_no_abbreviated_options(tmp_path, capsys):
    assert main(["random", "--shape", "4,3,2", "-o", str(tmp_path / "n.json")]) == 0
    capsys.readouterr()
    assert main(["simulate", str(tmp_path / "n.json"), "--vector", "3"]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --vector 3" in err and err.count("\n") == 1
    assert main(["random", "--shap", "4,3,2", "-o", str(tmp_path / "m.json")]) == 2
    assert "--shape" in capsys.readouterr().err          # required, so --shap was no match
    assert not (tmp_path / "m.json").exists()


def test_random_names_the_network_after_its_file(tmp_path, capsys):
    from strassen_hw.frozen import load
    cases = {"layer-one.json": "layer_one", "two.json": "two", "3d.json": "net",
             "module.json": "net"}
    for file, name in cases.items():
        assert main(["random", "--shape", "4,3,2", "-o", str(tmp_path / file)]) == 0
        assert load(tmp_path / file).name == name
        assert f"network {name}," in capsys.readouterr().out
    assert main(["random", "--shape", "4,3,2", "--name", "given", "-o",
                 str(tmp_path / "x.json")]) == 0
    assert json.loads((tmp_path / "x.json").read_text())["name"] == "given"


def test_simulator_names_say_what_they_do():
    from strassen_hw import sim
    assert sim.simulate is sim.hardware_outputs                 # former names, for a release
    assert sim.check is sim.verify
    assert "not compared" in sim.hardware_outputs.__doc__
    assert "compare every output with its reference" in sim.verify.__doc__
