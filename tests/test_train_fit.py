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


# --- fit: the recipe for any model ------------------------------------------------------------

def _float_data(split="train"):
    data = digits()
    x = torch.as_tensor(getattr(data, f"x_{split}"), dtype=torch.float32) / 16
    return x, torch.as_tensor(getattr(data, f"y_{split}"))


def _small_mlp():
    torch.manual_seed(11)
    return torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(),
                               torch.nn.Linear(16, 10))


def test_fit_trains_teacher_and_a_strassen_copy_with_a_history_per_phase():
    from strassen_hw.train import PHASES, StrassenLinear, fit
    model = _small_mlp()
    before = model[0].weight.detach().clone()
    student, history = fit(model, _float_data(), r=(6, 4), test_data=_float_data("test"),
                           teacher_epochs=6, epochs=(4, 3, 2), progress=False)
    assert list(history) == ["teacher", *PHASES]
    assert [len(rows) for rows in history.values()] == [6, 4, 3, 2]
    assert all(row["stage"] == stage for stage, rows in history.items() for row in rows)
    # the model itself was trained as the teacher; the student is a separate copy
    assert not torch.equal(model[0].weight, before)
    assert isinstance(model[0], torch.nn.Linear) and isinstance(student[0], StrassenLinear)
    assert (student[0].r, student[2].r) == (6, 4)
    # three times chance (0.10): any reasonable run, on any machine
    assert _accuracy(model) > 0.3 and _accuracy(student) > 0.3
    assert history["ternary_fixed"][-1]["test_accuracy"] == pytest.approx(_accuracy(student))
    # left in the last phase: ternary values fixed, ã still a parameter that trained
    assert student[0].quantized and not student[0].w_b.requires_grad
    assert not student.training


def test_fit_with_a_dataloader_and_numpy_arrays():
    from torch.utils.data import DataLoader, TensorDataset

    from strassen_hw.train import fit
    x, y = _float_data()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    student, history = fit(_small_mlp(), loader, r=(6, 4), test_data=_float_data("test"),
                           teacher_epochs=3, epochs=(3, 3, 1), progress=False)
    assert history["teacher"][-1]["train_accuracy"] > 0.3          # chance is 0.10
    assert _accuracy(student) > 0.3
    # numpy float64 inputs and int labels are taken as the model's dtype and as class indices
    student, history = fit(_small_mlp(), (x.double().numpy(), y.numpy()), r=4,
                           teacher_epochs=1, epochs=(1, 1, 1), progress=False)
    assert history["ternary_fixed"][0]["test_accuracy"] is None
    assert student[0].r == student[2].r == 4


def test_fit_trains_a_strassen_model_as_it_is():
    from strassen_hw.train import fit, strassenize
    model = strassenize(_small_mlp(), (6, 4))
    student, history = fit(model, _float_data(), epochs=(1, 1, 1), progress=False)
    assert student is model and "teacher" not in history
    teacher = _small_mlp()
    student, history = fit(model, _float_data(), teacher=teacher, epochs=(1, 1, 1),
                           teacher_epochs=5, progress=False)
    assert student is model and "teacher" not in history        # the given teacher is kept
    with pytest.raises(ValueError, match="already holds Strassen layers; leave r out"):
        fit(model, _float_data(), r=3)


def test_fit_repeats_itself_and_restores_the_thread_count():
    from strassen_hw.train import fit
    seen = []
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runs = [fit(_small_mlp(), _float_data(), r=(6, 4), seed=seed, teacher_epochs=1,
                    epochs=(1, 1, 1), progress=False,
                    log=lambda line: seen.append(torch.get_num_threads()))[0].state_dict()
                for seed in (4, 4, 5)]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert seen and set(seen) == {1}                 # one thread while training
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not torch.equal(runs[0]["0.w_b"], runs[2]["0.w_b"])


def test_fit_refusals_are_one_line():
    from strassen_hw.train import fit
    x, y = _float_data()
    with pytest.raises(ValueError, match="give r, the products per Strassen layer"):
        fit(_small_mlp(), (x, y))
    with pytest.raises(ValueError, match="1437 inputs but 10 labels"):
        fit(_small_mlp(), (x, y[:10]), r=4)
    with pytest.raises(ValueError, match="labels must be a 1-D tensor of class indices"):
        fit(_small_mlp(), (x, y.float()), r=4)
    with pytest.raises(ValueError, match="a tuple \\(inputs, labels\\)"):
        fit(_small_mlp(), x, r=4)
    with pytest.raises(ValueError, match="epochs needs 3 values"):
        fit(_small_mlp(), (x, y), r=4, epochs=(1, 1))


def test_train_fit_old_module_path_still_imports():
    import strassen_hw.train as package
    from strassen_hw.train import recipe
    from strassen_hw.train.fit import TrainConfig as old
    assert old is recipe.TrainConfig
    assert callable(package.fit) and package.fit is recipe.fit


def test_default_config_is_the_demos_network():
    from strassen_hw.demo import DEFAULT
    config = TrainConfig()
    assert (config.hidden, config.r) == (32, (20, 8)) == (DEFAULT["hidden"], DEFAULT["r"])
