"""The frozen lstm node and language model: validation, file round trip, the exact reference
against hand arithmetic and against float math within the documented roundings."""

import json

import numpy as np
import pytest

from strassen_hw import lstm as fl
from strassen_hw.frozen import Format, FrozenError, FrozenLayer
from strassen_hw.graph import FrozenNetwork, Linear


def _layer(rng, n_in, n, r, bias=True, shift=3):
    t = lambda *s: rng.integers(-1, 2, s)          # noqa: E731
    return FrozenLayer(w_b=t(r, n_in), a_tilde=rng.integers(-200, 200, r), w_c=t(n, r),
                       bias=rng.integers(-100, 100, n) if bias else np.zeros(n, np.int64),
                       a_width=10, bias_width=8, output=Format(16), product_shift=2,
                       product_rounding="half_up", shift=shift, rounding="half_up")


def _fields(n_in=5, n=4, r=6, seed=0, zf=5, gf=10, cf=9, hw=10, table_range=8):
    rng = np.random.default_rng(seed)
    products = {k: _layer(rng, n_in if k.startswith("x") else n, n, r, k.startswith("x"))
                for k in fl.PRODUCTS}
    tmin, size = -(table_range << zf), 2 * table_range << zf
    hf = hw - 1
    return dict(name="cell0", inputs=("input",), products=products, table_min=tmin,
                preact_frac=zf, gate_frac=gf,
                sigmoid=fl.activation_table("sigmoid", tmin, size, zf, gf),
                tanh=fl.activation_table("tanh", tmin, size, zf, gf),
                cell=Format(14), cell_frac=cf, hidden=Format(hw), hidden_frac=hf,
                fc_shift=gf, ig_shift=2 * gf - cf, h_shift=2 * gf - hf, cell_shift=cf - zf,
                h0=np.zeros(n, np.int64), c0=np.zeros(n, np.int64))


def _lm(cells=None, vocab=5, n=4, seed=0):
    rng = np.random.default_rng(seed + 100)
    cells = cells or [fl.LSTM(**_fields(n_in=vocab, n=n, seed=seed))]
    decoder = _layer(rng, n, vocab, 7, shift=0)
    return fl.language_model("tiny", cells, decoder, alphabet="abcde"[:vocab])


def _unit(b):
    return FrozenLayer(w_b=[[1]], a_tilde=[1], w_c=[[1]], bias=[b], a_width=2, bias_width=4,
                       output=Format(8))


def test_one_step_by_hand():
    """n_in = n = 1, every product the identity, biases 0 except g's 4 (z_g = 1.0 at
    preact_frac 2). gate_frac 4: σ(0) = 0.5 → 8, tanh(1) = 0.7616 → 12.19 → 12.
    c = 8·12 >> 4 = 6 (cell_frac 4: 0.375). Table address of c: (6 + 2) >> 2 = 2 (0.5),
    tanh(0.5) = 0.4621 → 7.39 → 7. h = (8·7 + 16) >> 5 = 2 (hidden_frac 3: 0.25)."""
    products = {k: _unit(4 if k == "x_g" else 0) for k in fl.PRODUCTS}
    node = fl.LSTM(name="c", inputs=("input",), products=products, table_min=-8,
                   preact_frac=2, gate_frac=4,
                   sigmoid=fl.activation_table("sigmoid", -8, 16, 2, 4),
                   tanh=fl.activation_table("tanh", -8, 16, 2, 4), cell=Format(8), cell_frac=4,
                   hidden=Format(4), hidden_frac=3, fc_shift=4, ig_shift=4, h_shift=5,
                   cell_shift=2, h0=[0], c0=[0])
    assert node.sigmoid[8] == 8 and node.tanh[8 + 4] == 12 and node.tanh[8 + 2] == 7
    stages = {}
    h, c = fl.step(node, np.array([[0]]), fl.initial_state(node, 1), stages)
    assert (stages["i"], stages["g"], stages["o"]) == ([8], [12], [8])
    assert c.tolist() == [[6]] and h.tolist() == [[2]]
    # second step from that state: z_i = z_f = z_o = h = 2 (0.5) → σ = 0.6225 → 9.96 → 10;
    # z_g = 2 + 4 = 6 (1.5) → tanh = 0.9051 → 14.48 → 14; c = (10·6 + 8) >> 4 = 4,
    # plus (10·14 + 8) >> 4 = 9: 13. Address (13 + 2) >> 2 = 3: tanh(0.75) = 0.6351 → 10.16
    # → 10; h = (10·10 + 16) >> 5 = 3
    h, c = fl.step(node, np.array([[0]]), (h, c))
    assert c.tolist() == [[13]] and h.tolist() == [[3]]


def test_step_against_float_math():
    """Random states: the gates are the functions within half a table step (inside the
    table range), the cell and hidden state are the float cell of those integer gates within
    the documented roundings (docs/frozen-format.md, LSTM nodes)."""
    f = _fields(n_in=5, n=4, r=6)
    node = fl.LSTM(**f)
    rng = np.random.default_rng(1)
    x = rng.integers(-50, 50, (400, 5))
    h = rng.integers(node.hidden.min, node.hidden.max + 1, (400, 4))
    c = rng.integers(-3000, 3000, (400, 4))
    stages = {}
    h1, c1 = fl.step(node, x, (h, c), stages)
    zf, gf, cf, hf = node.preact_frac, node.gate_frac, node.cell_frac, node.hidden_frac
    q = 2.0 ** -gf
    sig = lambda v: 1 / (1 + np.exp(-v))           # noqa: E731
    for gate, fn in (("i", sig), ("f", sig), ("g", np.tanh), ("o", sig)):
        z = stages["z"][gate] * 2.0 ** -zf
        inside = np.abs(z) < 8
        assert inside.any() and (~inside).any()
        err = np.abs(stages[gate] * q - fn(np.clip(z, -8, 8 - 2.0 ** -zf)))
        assert err.max() <= q / 2 + 1e-12
    real_c = stages["f"] * q * c * 2.0 ** -cf + stages["i"] * q * stages["g"] * q
    assert np.abs(c1 * 2.0 ** -cf - real_c).max() <= 2.0 ** -cf
    real_h = stages["o"] * q * np.tanh(c1 * 2.0 ** -cf)
    bound = 2.0 ** -(hf + 1) + (1 + q) * (q / 2 + 2.0 ** -(zf + 1))
    assert np.abs(h1 * 2.0 ** -hf - real_h).max() <= bound
    assert np.abs(h1 * 2.0 ** -hf - real_h).max() > 2.0 ** -(hf + 1)    # the bound is not slack


def test_run_equals_steps_and_resets():
    lm = _lm()
    rng = np.random.default_rng(3)
    chars = rng.integers(0, 5, (3, 12))
    logits, states = lm_forward_split(lm, chars)
    whole = fl.lm_forward(lm, chars)
    assert np.array_equal(logits, whole)
    # a reset: each sequence alone from the initial state gives its row
    for k in range(3):
        assert np.array_equal(fl.lm_forward(lm, chars[k:k + 1])[0], whole[k])
    assert whole.dtype == np.int64 and whole.shape == (3, 12, 5)
    assert len(np.unique(whole)) > 10


def lm_forward_split(lm, chars):
    a, state = fl.lm_forward(lm, chars[:, :5], return_state=True)
    b, state = fl.lm_forward(lm, chars[:, 5:], state, return_state=True)
    return np.concatenate([a, b], 1), state


def test_round_trip(tmp_path):
    two = [fl.LSTM(**_fields(n_in=5, n=4, seed=0)),
           fl.LSTM(**{**_fields(n_in=4, n=4, seed=1), "name": "cell1", "inputs": ("cell0",)})]
    lm = _lm(cells=two)
    path = tmp_path / "lm.json"
    fl.save(lm, path)
    back = fl.load(path)
    assert fl.dumps(back) == path.read_text()
    chars = np.random.default_rng(0).integers(0, 5, (2, 9))
    assert np.array_equal(fl.lm_forward(back, chars), fl.lm_forward(lm, chars))
    doc = json.loads(path.read_text())
    assert doc["version"] == 3 and [n["kind"] for n in doc["nodes"]] == ["lstm", "lstm", "linear"]
    assert doc["nodes"][1]["inputs"] == ["cell0"] and doc["nodes"][2]["inputs"] == ["cell1"]
    assert lm.multiplications() == {"products": 2 * 8 * 6 + 7, "elementwise": 2 * 3 * 4}


@pytest.mark.parametrize("change, message", [
    (dict(fc_shift=9), "node 'cell0': 'fc_shift' = 9 but the fractions need 10"),
    (dict(cell_shift=3), "node 'cell0': 'cell_shift' = 3 but the fractions need 4"),
    (dict(h0=np.full(4, 600)), "node 'cell0': 'h0'[0] = 600 is outside the hidden format "
                               "-512..511"),
    (dict(c0=np.zeros(3, np.int64)), "node 'cell0': 'c0' has 3 entries; it needs one per "
                                     "hidden unit (4)"),
    (dict(name="input"), "node 'input': 'name' = 'input' is not a valid node name"),
    (dict(inputs=("a", "b")), "node 'cell0': 'inputs' has 2 names; this kind takes 1"),
    (dict(elementwise_rounding="even"), "node 'cell0': 'elementwise_rounding' is 'even'; use "
                                        "one of floor, half_up"),
    (dict(cell=Format(8, False)), "node 'cell0': 'cell' must be a signed Format"),
    (dict(gate_frac=17, fc_shift=17), "node 'cell0': 'gate_frac' = 17 is outside 1..16"),
])
def test_validation_errors(change, message):
    with pytest.raises(FrozenError) as info:
        fl.LSTM(**{**_fields(), **change})
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_table_and_product_errors():
    f = _fields()
    bad = f["sigmoid"].copy()
    bad[100] += 1
    with pytest.raises(FrozenError, match=r"^node 'cell0': 'sigmoid'\[100\] = \d+ but the rule"):
        fl.LSTM(**{**f, "sigmoid": bad})
    with pytest.raises(FrozenError, match="'tanh' has 511 entries but 'sigmoid' has 512"):
        fl.LSTM(**{**f, "tanh": f["tanh"][:-1]})
    products = dict(f["products"])
    del products["h_o"]
    with pytest.raises(FrozenError, match="'products' must hold exactly x_i, x_f"):
        fl.LSTM(**{**f, "products": products})
    rng = np.random.default_rng(0)
    products = {**f["products"], "h_g": _layer(rng, 5, 4, 6)}
    with pytest.raises(FrozenError, match="product 'h_g' has 5 inputs but needs 4 "
                                          r"\(the hidden size\)"):
        fl.LSTM(**{**f, "products": products})
    products = {**f["products"], "x_f": _layer(rng, 5, 3, 6)}
    with pytest.raises(FrozenError, match="product 'x_f' has 3 outputs but 'h_i' has 4"):
        fl.LSTM(**{**f, "products": products})


def test_language_model_errors(tmp_path):
    cell = fl.LSTM(**_fields(n_in=5))
    rng = np.random.default_rng(0)
    with pytest.raises(FrozenError, match="the one-hot input has 5 entries but the decoder "
                                          "gives 6 logits"):
        fl.language_model("lm", [cell], _layer(rng, 4, 6, 3))
    with pytest.raises(FrozenError, match="node 'cell0': the name is taken"):
        fl.language_model("lm", [cell, cell], _layer(rng, 4, 5, 3))
    other = fl.LSTM(**{**_fields(n_in=5), "name": "cell1", "inputs": ("input",)})
    with pytest.raises(FrozenError, match="node 'cell0': nothing reads it"):
        fl.language_model("lm", [cell, other], _layer(rng, 4, 5, 3))
    with pytest.raises(FrozenError, match="node 'cell0': the 'x_\\*' products have 5 inputs "
                                          "but its input 'input' gives 4 values"):
        net = FrozenNetwork("lm", Format(1, False), nodes=[cell, Linear("d", ["cell0"],
                            _layer(rng, 4, 5, 3))], input_shape=(4,))
    lm = _lm()
    with pytest.raises(FrozenError, match=r"a character index is outside 0\.\.4"):
        fl.lm_forward(lm, np.array([[0, 5]]))
    path = tmp_path / "lm.json"
    fl.save(lm, path)
    doc = json.loads(path.read_text())
    doc["nodes"][0]["extra"] = 1
    path.write_text(json.dumps(doc))
    with pytest.raises(FrozenError, match=r"lm.json: node 'cell0': unknown field 'extra'; remove it"):
        fl.load(path)
    doc["nodes"][0].pop("extra")
    doc["version"] = 2
    path.write_text(json.dumps(doc))
    with pytest.raises(FrozenError, match="version 2 is not a language model file"):
        fl.load(path)
    path.write_text("{")
    with pytest.raises(FrozenError, match="not a frozen network \\(not JSON"):
        fl.load(path)
    with pytest.raises(FrozenError, match="no such file"):
        fl.load(tmp_path / "missing.json")
