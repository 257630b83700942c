"""The frozen network file: round trip, determinism and every bad-input case."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from strassen_hw import frozen
from strassen_hw.frozen import Format, FrozenError, FrozenLayer, FrozenNetwork


def _layer(**overrides):
    fields = dict(w_b=[[1, -1, 0], [0, 1, 1]], a_tilde=[3, -5], w_c=[[1, 1], [0, -1]],
                  bias=[1, -2], a_width=4, bias_width=3, output=Format(8, True))
    fields.update(overrides)
    return FrozenLayer(**fields)


def _doc():
    return FrozenNetwork("tiny", Format(4, True), [_layer()]).to_json()


def _write(tmp_path, doc):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def test_round_trip_is_exact_and_deterministic(tmp_path):
    net = frozen.random_network([(5, 4, 3), (3, 2, 2)], seed=7)
    frozen.save(net, tmp_path / "a.json")
    again = frozen.load(tmp_path / "a.json")
    for mine, theirs in zip(net.layers, again.layers):
        for key in ("w_b", "a_tilde", "w_c", "bias"):
            assert np.array_equal(getattr(mine, key), getattr(theirs, key))
        assert (mine.shift, mine.rounding, mine.relu, mine.output) == \
               (theirs.shift, theirs.rounding, theirs.relu, theirs.output)
    frozen.save(again, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_random_network_is_reproducible_and_ternary():
    a = frozen.random_network([(16, 8, 4)], seed=3)
    b = frozen.random_network([(16, 8, 4)], seed=3)
    c = frozen.random_network([(16, 8, 4)], seed=4)
    assert frozen.dumps(a) == frozen.dumps(b) != frozen.dumps(c)
    assert set(np.unique(a.layers[0].w_b)) <= {-1, 0, 1}


def _bad(key, value, layer=True):
    doc = _doc()
    target = doc["layers"][0] if layer else doc
    if value is None:
        del target[key]
    else:
        target[key] = value
    return doc


@pytest.mark.parametrize("doc, message", [
    ({"format": "something-else"}, "not a frozen network"),
    ({**_doc(), "version": 99}, "version 99 is not supported"),
    (_bad("w_b", [[1, 2, 0], [0, 1, 1]]), "'w_b'[0][1] = 2 is not ternary"),
    (_bad("w_c", [[1, 1], [0, -3]]), "'w_c'[1][1] = -3 is not ternary"),
    (_bad("w_b", [[1, 0.5, 0], [0, 1, 1]]), "'w_b' holds 0.5; only integers"),
    (_bad("w_c", [[1, 1, 0], [0, -1, 0]]), "'w_c' has 3 columns but 'w_b' has 2 rows"),
    (_bad("a_tilde", [3]), "'a_tilde' has shape (1,)"),
    (_bad("a_tilde", [3, 8]), "'a_tilde'[1] = 8 does not fit 4 signed bits"),
    (_bad("bias", [4, 0]), "'bias'[0] = 4 does not fit 3 signed bits"),
    (_bad("bias", None), "missing field 'bias'"),
    (_bad("name", None, layer=False), "missing field 'name'"),
    (_bad("rounding", "nearest"), "'rounding' is 'nearest'; use one of floor, half_up"),
    (_bad("shift", -1), "'shift' = -1 is outside"),
    (_bad("relu", 1), "'relu' must be true or false"),
    (_bad("layers", [], layer=False), "'layers' is empty"),
    (_bad("name", "9lives", layer=False), "'name' = '9lives' is not a valid network name"),
    (_bad("name", "module", layer=False), "'name' = 'module' is a Verilog keyword"),
    (_bad("name", "x" * 65, layer=False), "use 1 to 64 ASCII letters"),
    (_bad("name", "r\u00e9seau", layer=False), "is not a valid network name"),
    ({**_doc(), "version": True}, "version True is not supported"),
    ({**_doc(), "version": 1.0}, "version 1.0 is not supported"),
    (_bad("extra", 1, layer=False), "network: unknown field 'extra'"),
    (_bad("extra", 1), "unknown field 'extra'"),
])
def test_bad_files_fail_with_one_line(tmp_path, doc, message):
    path = _write(tmp_path, doc)
    with pytest.raises(FrozenError) as info:
        frozen.load(path)
    text = str(info.value)
    assert message in text
    assert "\n" not in text and text.startswith(str(path))


def test_not_json_and_missing_file(tmp_path):
    with pytest.raises(FrozenError, match="not JSON"):
        frozen.load(_write(tmp_path, "{nope"))
    with pytest.raises(FrozenError, match="no such file"):
        frozen.load(tmp_path / "absent.json")


def test_shape_mismatch_between_layers(tmp_path):
    doc = _doc()
    second = dict(doc["layers"][0], w_b=[[1, 1, 1]], a_tilde=[1], w_c=[[1]], bias=[0])
    doc["layers"].append(second)
    with pytest.raises(FrozenError, match="layer 1: 'w_b' has 3 columns but the layer input "
                                          "has 2 values"):
        frozen.load(_write(tmp_path, doc))


def test_wide_intermediates_are_allowed():
    # 32-bit inputs, 2000 of them summed, times a 32-bit ã, summed again: over 64 bits. There
    # is no width limit on intermediates: the reference computes them exactly (test_reference).
    net = FrozenNetwork("wide", Format(32, True), [_layer(
        w_b=np.ones((4, 2000), dtype=np.int64), a_tilde=[-(1 << 31)] * 4, a_width=32,
        w_c=np.ones((2, 4), dtype=np.int64))])
    lo, hi = frozen.stage_ranges(net.layers[0], net.input)["v"]
    assert hi.max() == 4 * 2000 * (1 << 31) * (1 << 31) + 1


def test_save_is_atomic_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "net.json"
    frozen.save(frozen.random_network([(3, 2, 1)]), path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        frozen.save(frozen.random_network([(9, 9, 9)]), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json"]


def test_signed_width_by_hand():
    assert frozen.signed_width(0, 0) == 1
    assert frozen.signed_width(-1, 0) == 1
    assert frozen.signed_width(0, 1) == 2
    assert frozen.signed_width(-128, 127) == 8
    assert frozen.signed_width(-129, 0) == 9
    assert frozen.signed_width(0, 128) == 9


def test_ternary_range_by_hand():
    m = np.array([[1, -1, 0], [0, 0, 0], [-1, -1, 1]])
    lo, hi = frozen.ternary_range(m, -4, 3)
    assert lo.tolist() == [-7, 0, -10] and hi.tolist() == [7, 0, 11]


def test_cli_random_then_reference(tmp_path):
    net, x, y = tmp_path / "n.json", tmp_path / "x.npy", tmp_path / "y.npy"
    run = [sys.executable, "-m", "strassen_hw.cli"]
    assert subprocess.run(run + ["random", "--shape", "6,3,2", "-o", str(net)]).returncode == 0
    np.save(x, np.arange(12).reshape(2, 6))
    assert subprocess.run(run + ["reference", str(net), "--inputs", str(x), "-o", str(y)]
                          ).returncode == 0
    from strassen_hw.reference import forward
    assert np.array_equal(np.load(y), forward(frozen.load(net), np.load(x)))
    np.save(x, np.zeros((2, 5), dtype=np.int64))
    bad = subprocess.run(run + ["reference", str(net), "--inputs", str(x), "-o", str(y)],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (f"strassen-hw: error: {x}: inputs have shape (2, 5); "
                                  "the network takes (N, 6)")
    assert "Traceback" not in bad.stderr


def test_cli_bad_file_one_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_bad("w_b", [[1, 7, 0], [0, 1, 1]])))
    out = subprocess.run([sys.executable, "-m", "strassen_hw.cli", "reference", str(path),
                          "--inputs", "x.npy", "-o", "y.npy"], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "'w_b'[0][1] = 7 is not ternary" in out.stderr
