"""Training: well above chance quickly, repeatable from the seed, checkpoints, and data-parallel
training in 2 processes ending with identical weights."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from strassen_hw.train.recipe import (TrainConfig, build_models, load_checkpoint,
                                   save_checkpoint, train)
from train_quick import QUICK, digits, quick_result


def _accuracy(model):
    data = digits()
    with torch.no_grad():
        logits = model(torch.as_tensor(data.x_test, dtype=torch.float32) / 16)
    return (logits.argmax(1).numpy() == data.y_test).mean()


def test_small_network_trains_well_above_chance():
    result = quick_result()
    assert _accuracy(result.teacher) > 0.85          # chance is 0.10
    assert _accuracy(result.student) > 0.85
    stages = [row["stage"] for row in result.history]
    assert stages == (["teacher"] * 20 + ["full_precision"] * 20 + ["quantized"] * 20
                      + ["ternary_fixed"] * 10)
    assert result.history[-1]["test_accuracy"] == pytest.approx(_accuracy(result.student))


def _tiny(seed):
    return TrainConfig(hidden=16, r=(6, 4), teacher_epochs=2, phase_epochs=(2, 2, 1), seed=seed)


def test_same_seed_same_weights_other_seed_other_weights():
    runs = [train(_tiny(seed), digits(), progress=False) for seed in (5, 5, 6)]
    states = [r.student.state_dict() for r in runs]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not torch.equal(states[0]["0.w_b"], states[2]["0.w_b"])


def test_ternary_fixed_phase_leaves_the_ternary_matrices_alone():
    config = TrainConfig(hidden=16, r=(6, 4), teacher_epochs=1, phase_epochs=(1, 1, 0), seed=2)
    before = train(config, digits(), progress=False)
    # same seed: the same first two phases, then three epochs with the ternary values fixed
    after = train(TrainConfig(**{**config.to_json(), "phase_epochs": (1, 1, 3)}), digits(),
                  progress=False)
    b, a = before.student.state_dict(), after.student.state_dict()
    for key in ("0.w_b", "0.w_c", "2.w_b", "2.w_c"):
        assert torch.equal(b[key], a[key])
    assert not torch.equal(b["0.a_tilde"], a["0.a_tilde"])


def test_checkpoint_round_trip(tmp_path):
    result = quick_result()
    path = tmp_path / "model.pt"
    save_checkpoint(path, result)
    loaded = load_checkpoint(path)
    assert loaded.config == result.config == TrainConfig(**QUICK)
    assert loaded.student[0].quantized            # loaded in the last phase
    for model, ref in ((loaded.teacher, result.teacher), (loaded.student, result.student)):
        x = torch.as_tensor(digits().x_test, dtype=torch.float32) / 16
        assert torch.equal(model(x), ref(x))
    with pytest.raises(ValueError, match="not a strassen-hw checkpoint"):
        (tmp_path / "bad.pt").write_text("hello")
        load_checkpoint(tmp_path / "bad.pt")


def test_config_key_names_the_settings():
    assert TrainConfig().key() == TrainConfig().key()
    assert TrainConfig(seed=1).key() != TrainConfig().key()
    assert TrainConfig(r=[48, 30]).key() == TrainConfig(r=(48, 30)).key()


@pytest.mark.slow
def test_ddp_two_processes_end_with_identical_weights(tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", "2", str(worker), str(tmp_path)],
                   check=True, env=env, timeout=240, capture_output=True)
    ranks = [torch.load(tmp_path / f"rank{k}.pt", weights_only=True) for k in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    a, b = ranks[0]["state"], ranks[1]["state"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # and they trained: the weights moved away from the seed's initial ones
    teacher, student = build_models(TrainConfig(hidden=16, r=(6, 4), seed=3))
    assert not torch.equal(a["teacher.0.weight"], teacher.state_dict()["0.weight"])
    assert not torch.equal(a["student.0.a_tilde"], student.state_dict()["0.a_tilde"])
