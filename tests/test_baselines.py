"""The baselines (dense int8 and TWN) as Strassen layers of a fixed kind: their arithmetic
against plain numpy integer math, the kind rules of the file, their hardware counts, a small
training run, and (Verilator) bit-exact simulation."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from strassen_hw import frozen
from strassen_hw.frozen import (Format, FrozenError, FrozenLayer, FrozenNetwork, dense_layer,
                                twn_layer)
from strassen_hw.hw import report
from strassen_hw.reference import forward


def _shift(v, s):
    """half_up shift with numpy floor division, independent of the reference."""
    return (v + (1 << (s - 1))) // (1 << s) if s else v


def _dense(seed=0, n_in=7, n_out=5, **fields):
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, (n_out, n_in))
    w[0, :3] = [0, 64, -32]                 # a zero and two powers of two
    bias = rng.integers(-500, 500, n_out)
    fields = {"a_width": 8, "bias_width": 10, "output": Format(8, True), "shift": 6,
              "rounding": "half_up", **fields}
    return w, bias, dense_layer(w, bias, **fields)


def _twn(seed=1, n_in=9, n_out=4, **fields):
    rng = np.random.default_rng(seed)
    t = rng.integers(-1, 2, (n_out, n_in))
    alpha = rng.integers(1, 200, n_out)
    alpha[0] = 16                            # a power of two: a wire, no multiplier
    bias = rng.integers(-1000, 1000, n_out)
    fields = {"a_width": 9, "bias_width": 11, "output": Format(8, False), "shift": 7,
              "rounding": "half_up", "relu": True, **fields}
    return t, alpha, bias, twn_layer(t, alpha, bias, **fields)


def test_dense_layer_is_integer_matmul():
    w, bias, layer = _dense()
    assert layer.kind == "dense" and (layer.n_in, layer.r, layer.n_out) == (7, 35, 5)
    net = FrozenNetwork("dense", Format(8, True), [layer])
    x = np.random.default_rng(2).integers(-128, 128, (300, 7))
    expected = np.clip(_shift(x @ w.T + bias, 6), -128, 127)
    assert np.array_equal(forward(net, x), expected)
    assert len(np.unique(expected)) > 100 and (expected == 127).any()


def test_dense_layer_with_rounded_products():
    w, bias, layer = _dense(product_shift=3, product_rounding="floor", shift=3)
    net = FrozenNetwork("dense", Format(8, True), [layer])
    x = np.random.default_rng(3).integers(-128, 128, (200, 7))
    products = (x[:, None, :] * w[None, :, :]) >> 3           # per weight, floor
    expected = np.clip(_shift(products.sum(axis=2) + bias, 3), -128, 127)
    assert np.array_equal(forward(net, x), expected)


def test_twn_layer_is_ternary_matmul_times_alpha():
    t, alpha, bias, layer = _twn()
    assert layer.kind == "twn" and (layer.n_in, layer.r, layer.n_out) == (9, 4, 4)
    net = FrozenNetwork("twn", Format(6, True), [layer])
    x = np.random.default_rng(4).integers(-32, 32, (300, 9))
    expected = np.clip(_shift((x @ t.T) * alpha + bias, 7), 0, 255)
    assert np.array_equal(forward(net, x), expected)
    assert len(np.unique(expected)) > 50 and (expected == 0).any()


def test_kind_round_trips_and_strassen_files_keep_their_bytes(tmp_path):
    _, _, dense = _dense()
    *_, twn = _twn(n_in=5)
    net = FrozenNetwork("mixed", Format(8, True), [dense, twn])
    frozen.save(net, tmp_path / "a.json")
    again = frozen.load(tmp_path / "a.json")
    assert [layer.kind for layer in again.layers] == ["dense", "twn"]
    frozen.save(again, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    # a Strassen layer is written without "kind"; written with it, it loads the same
    plain = frozen.random_network([(6, 4, 3)], seed=1)
    doc = json.loads(frozen.dumps(plain))
    assert "kind" not in doc["layers"][0]
    doc["layers"][0]["kind"] = "strassen"
    assert frozen.dumps(frozen.from_json(doc)) == frozen.dumps(plain)


def _doc(kind_layer, **changes):
    doc = FrozenNetwork("bad", Format(8, True), [kind_layer]).to_json()
    doc["layers"][0].update(changes)
    return doc


def _bad_cases():
    _, _, dense = _dense(n_in=3, n_out=2)
    *_, twn = _twn(n_in=3, n_out=2)
    eye = np.eye(2, dtype=int)
    w_b = dense.w_b.copy()
    w_b[4] = [1, 0, 0]
    w_c = dense.w_c.copy()
    w_c[1, 2] = 1
    return [
        (_doc(twn, w_c=[[1, 0], [0, -1]]),
         "layer 0: 'kind' is 'twn' but 'w_c'[1][1] = -1, not 1; a twn layer's 'w_c' is the "
         "identity (one α per output) (or use kind 'strassen')"),
        (_doc(twn, w_b=np.eye(3, dtype=int).tolist(), w_c=[[1, 0, 0], [0, 1, 0]],
              a_tilde=[1, 2, 3]),
         "layer 0: 'kind' is 'twn' but r = 3 differs from n_out = 2"),
        (_doc(dense, w_b=w_b.tolist()),
         "layer 0: 'kind' is 'dense' but 'w_b'[4][0] = 1, not 0; a dense layer's 'w_b' is 1 in "
         "column k % n_in of row k"),
        (_doc(dense, w_c=w_c.tolist()),
         "layer 0: 'kind' is 'dense' but 'w_c'[1][2] = 1, not 0"),
        (_doc(dense, w_b=eye.tolist(), a_tilde=[1, 1], w_c=eye.tolist()),
         "layer 0: 'kind' is 'dense' but r = 2; a dense layer has r = n_in·n_out = 4"),
        (_doc(dense, kind="conv"), "layer 0: 'kind' is 'conv'; use one of strassen, twn, dense"),
        (_doc(dense, kind=3), "layer 0: 'kind' is 3; use one of strassen, twn, dense"),
    ]


@pytest.mark.parametrize("doc, message", _bad_cases())
def test_bad_baseline_files_are_refused_in_one_line(tmp_path, doc, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(FrozenError) as info:
        frozen.load(path)
    text = str(info.value)
    assert text.startswith(f"{path}: {message}") and "\n" not in text


def test_bad_baseline_constructor_and_cli(tmp_path):
    with pytest.raises(FrozenError, match=r"^twn layer: 'alpha' has shape \(3,\); it needs one "
                                          r"value per row of 'ternary' \(2\)$"):
        twn_layer([[1, 0], [0, 1]], [1, 2, 3], [0, 0], a_width=4, bias_width=2,
                  output=Format(8, True))
    with pytest.raises(FrozenError, match=r"^layer: 'kind' is 'twn' but 'w_c'\[0\]\[0\] = 0"):
        FrozenLayer(w_b=[[1, 0]], a_tilde=[1], w_c=[[0]], bias=[0], a_width=2, bias_width=2,
                    output=Format(8, True), kind="twn")
    doc, message = _bad_cases()[0]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    out = subprocess.run([sys.executable, "-m", "strassen_hw.cli", "reference", str(path),
                          "--inputs", "x.npy", "-o", "y.npy"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and message in out.stderr


def _power_of_two(v):
    v = abs(int(v))
    return v > 0 and v & (v - 1) == 0


def test_hardware_counts_of_the_baselines():
    w, _, dense = _dense()
    t, alpha, _, twn = _twn(n_in=5)
    layers = report(FrozenNetwork("mixed", Format(8, True), [dense, twn]))["layers"]
    d, tw = layers
    assert (d["kind"], tw["kind"]) == ("dense", "twn")
    zero = int((w == 0).sum())
    wires = sum(_power_of_two(v) for v in w.flat)
    assert (d["products_zero"], d["products_shift"]) == (zero, wires)
    assert zero >= 1 and wires >= 2
    assert d["multipliers"] == w.size - zero - wires
    nonzero = (w != 0).sum(axis=1)
    assert d["adders_w_b"] == 0 and d["adders_w_c"] == int((nonzero - 1).sum())
    assert tw["multipliers"] == len(alpha) - 1 and tw["products_shift"] == 1
    assert tw["adders_w_c"] == 0
    assert 0 < tw["adders_w_b"] <= int(np.maximum((t != 0).sum(axis=1) - 1, 0).sum())


# --- training and freezing ------------------------------------------------------------------

def test_twn_linear_by_hand_and_phases():
    from strassen_hw.train.layers import TWNLinear, set_phase, twnize
    layer = TWNLinear(3, 2).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[2.0, 0.1, -2.0], [0.0, 1.0, 3.0]]))
        layer.gain.copy_(torch.tensor([0.5, 2.0]))
        layer.bias.copy_(torch.tensor([1.0, -1.0]))
    x = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    # full precision: (2 + 0.2 - 6, 2 + 9) ⊙ g + b = (-1.9 + 1, 22 - 1)
    # the float training model, not hardware: 0.1 has no exact binary value, so -0.9 is approx
    assert layer(x).tolist() == [[pytest.approx(-0.9), 21.0]]
    set_phase(nn.Sequential(layer), "quantized")
    # row 0: Δ = 0.7·4.1/3 = 0.957, T = (1, 0, -1), α = 2; row 1: Δ = 0.933, T = (0, 1, 1),
    # α = 2: (2·(1 - 3), 2·(2 + 3)) ⊙ g + b = (-2 + 1, 20 - 1)
    assert layer(x).tolist() == [[-1.0, 19.0]]
    assert layer.weight.requires_grad
    set_phase(layer, "ternary_fixed")
    assert not layer.weight.requires_grad and layer.gain.requires_grad
    linear = nn.Linear(3, 2)
    model = twnize(nn.Sequential(linear, nn.ReLU()))
    assert isinstance(model[0], TWNLinear) and torch.equal(model[0].weight, linear.weight)


def test_train_config_key_of_strassen_runs_is_unchanged():
    from strassen_hw.train.recipe import TrainConfig
    assert "student" not in TrainConfig().to_json()
    assert TrainConfig(student="twn").to_json()["student"] == "twn"
    assert TrainConfig(student="twn").key() != TrainConfig().key()
    with pytest.raises(ValueError, match="student must be one of strassen, twn, not 'x'"):
        TrainConfig(student="x")


@pytest.fixture(scope="module")
def tiny():
    from strassen_hw.train import data
    from strassen_hw.train.baselines import train_twn
    from strassen_hw.train.recipe import TrainConfig, train
    digits = data.load()
    config = TrainConfig(hidden=16, r=(8, 6), teacher_epochs=6, phase_epochs=(3, 3, 2))
    result = train(config, digits, progress=False)
    twn = train_twn(config, digits, teacher=result.teacher)
    return digits, result.teacher, twn


def _accuracy(net, digits):
    return float((forward(net, digits.x_test).argmax(1) == digits.y_test).mean())


def test_train_and_freeze_a_tiny_twn(tiny):
    from strassen_hw.train.baselines import freeze_twn
    from strassen_hw.train.quantize import ternarize
    digits, teacher, twn = tiny
    assert twn.config.student == "twn" and twn.teacher is teacher
    assert [row["stage"] for row in twn.history][0] == "full_precision"   # no new teacher
    net, rep = freeze_twn(twn.student, digits.x_train, input_format=digits.input_format,
                          input_scale=digits.input_scale)
    assert [layer.kind for layer in net.layers] == ["twn", "twn"]
    first = net.layers[0]
    ternary, _, _ = ternarize(twn.student[0].weight.detach(), dim=(1,))
    assert np.array_equal(first.w_b, ternary.numpy())
    assert first.product_shift == 0 and first.a_width == rep.a_width
    with torch.no_grad():
        x = torch.as_tensor(digits.x_test, dtype=torch.float32) * digits.input_scale
        float_pred = twn.student(x).argmax(1).numpy()
    frozen_pred = forward(net, digits.x_test).argmax(1)
    assert (frozen_pred == float_pred).mean() >= 0.95
    assert _accuracy(net, digits) > 0.6


def test_cli_freezes_a_twn_checkpoint(tiny, tmp_path, capsys):
    from strassen_hw.cli import main
    from strassen_hw.train.recipe import save_checkpoint
    digits, _, twn = tiny
    save_checkpoint(tmp_path / "twn.pt", twn)
    assert main(["freeze", str(tmp_path / "twn.pt"), "-o", str(tmp_path / "twn.json"),
                 "--name", "twn"]) == 0
    net = frozen.load(tmp_path / "twn.json")
    assert [layer.kind for layer in net.layers] == ["twn", "twn"]
    assert "(frozen)" in capsys.readouterr().out


def test_freeze_dense_quantizes_the_teacher_to_int8(tiny):
    from strassen_hw.train.baselines import freeze_dense
    digits, teacher, _ = tiny
    net, _ = freeze_dense(teacher, digits.x_train, input_format=digits.input_format,
                          input_scale=digits.input_scale)
    first, second = net.layers
    assert (first.kind, second.kind, first.a_width) == ("dense", "dense", 8)
    assert first.output == Format(8, False) and first.product_shift == 0
    w = teacher[0].weight.detach().double().numpy()
    # one power-of-two scale per layer, the largest that fits 8 bits; half_up
    scaled = w * digits.input_scale * 2.0 ** first.a_frac_bits
    assert np.array_equal(first.a_tilde.reshape(w.shape), np.floor(scaled + 0.5))
    assert 64 <= np.abs(first.a_tilde).max() <= 127
    with torch.no_grad():
        x = torch.as_tensor(digits.x_test, dtype=torch.float32) * digits.input_scale
        teacher_pred = teacher(x).argmax(1).numpy()
    assert (forward(net, digits.x_test).argmax(1) == teacher_pred).mean() >= 0.97


# --- Verilator ------------------------------------------------------------------------------

@pytest.mark.verilator
def test_dense_and_twn_layers_simulate_bit_exactly():
    """One design, both kinds: a dense layer (zero and ±2^k weights, rounded products) feeding
    a TWN layer (a power-of-two α); every output equals the reference."""
    from strassen_hw.sim import check, test_vectors
    _, _, dense = _dense(n_in=6, n_out=5, product_shift=2, product_rounding="half_up",
                         shift=4, relu=True, output=Format(7, False))
    *_, twn = _twn(n_in=5, n_out=3, output=Format(8, True), relu=False)
    net = FrozenNetwork("baselines", Format(8, True), [dense, twn])
    x = test_vectors(net, 600, seed=5)
    y = check(net, x, seed=5).outputs
    assert np.array_equal(y, forward(net, x))
    assert len(np.unique(y)) > 20


def test_digits_variants_from_one_teacher_cached(tmp_path):
    from strassen_hw.demo import VARIANTS, digits_variants
    from strassen_hw.train import data
    settings = dict(hidden=16, r=(8, 6), teacher_epochs=4, phase_epochs=(2, 2, 1))
    variants = digits_variants(3, tmp_path, settings=settings)
    assert tuple(variants) == VARIANTS == ("strassen", "twn", "dense")
    digits = data.load()
    for variant, (net, acc) in variants.items():
        kinds = {layer.kind for layer in net.layers}
        assert kinds == {variant} and net.name == {"strassen": "digits"}.get(
            variant, f"digits_{variant}")
        assert acc == np.mean(forward(net, digits.x_test).argmax(1) == digits.y_test)
    assert len(list(tmp_path.glob("digits-*.pt"))) == 2       # Strassen (+ teacher) and TWN
    again = digits_variants(3, tmp_path, settings=settings)     # from the cache, the same
    assert all(frozen.dumps(again[v][0]) == frozen.dumps(variants[v][0]) for v in VARIANTS)


@pytest.mark.verilator
def test_trees_wider_than_a_port_split_their_ports(monkeypatch):
    """A dense digits layer's ``w_c`` takes 8,192 products, more than the 2^16 bits a Verilog
    port may hold: its tree gets ports ``x``, ``x_1``, ... Here the limit is lowered to 24
    bits, so that a small network splits both ports of its trees, and still simulates
    bit-exactly."""
    import strassen_hw.hw.tree as tree
    from strassen_hw.hw import generate_verilog
    from strassen_hw.sim import check, test_vectors
    monkeypatch.setattr(tree, "_PORT_BITS", 24)
    _, _, dense = _dense(n_in=4, n_out=3, relu=True, output=Format(6, False))
    *_, twn = _twn(n_in=3, n_out=5, output=Format(8, True), relu=False)
    net = FrozenNetwork("split", Format(8, True), [dense, twn])
    text = generate_verilog(net)
    assert "input [" in text and " x_2;" in text and " y_1;" in text
    x = test_vectors(net, 400, seed=6)
    assert np.array_equal(check(net, x, verilog=text, seed=6).outputs, forward(net, x))
