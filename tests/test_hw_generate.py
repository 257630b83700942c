"""Verilog generation: ports, multipliers, report, determinism, the ``generate`` command."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from strassen_hw.frozen import Format, FrozenLayer, FrozenNetwork, random_network, save
from strassen_hw.hw import generate, generate_verilog

INT8 = Format(8, True)
MUL = re.compile(r"\S \* \S")       # a multiplication anywhere (not an attribute "(* ... *)")


def _net(a_tilde, n_in=7, n_out=5, seed=0, name="dut"):
    rng = np.random.default_rng(seed)
    r = len(a_tilde)
    layer = FrozenLayer(w_b=rng.integers(-1, 2, (r, n_in)), a_tilde=np.array(a_tilde),
                        w_c=rng.integers(-1, 2, (n_out, r)), bias=rng.integers(-9, 9, n_out),
                        a_width=8, bias_width=8, output=INT8, shift=4)
    return FrozenNetwork(name=name, input=INT8, layers=[layer])


@pytest.mark.parametrize("trees", ["verilog", "amaranth"])
def test_exactly_r_multipliers_when_a_is_nontrivial(tmp_path, trees):
    a = [3, -5, 7, 100, -127, 99, 13, -3, 5]
    net = _net(a, n_in=12, n_out=9, seed=1)
    assert np.all(net.layers[0].w_b.any(axis=1)) and np.all(net.layers[0].w_c.any(axis=0))
    report = generate(net, tmp_path, trees=trees)
    text = (tmp_path / "dut.v").read_text()
    assert report["layers"][0]["multipliers"] == len(a) == report["total"]["multipliers"]
    assert len(MUL.findall(text)) == len(a)          # W_b and W_c add no multiplier
    assert json.loads((tmp_path / "report.json").read_text()) == report


@pytest.mark.parametrize("trees", ["verilog", "amaranth"])
def test_trivial_a_folds_to_no_multiplier(trees):
    text = generate_verilog(_net([1, -1, 2, -4, 64, -128, 0], seed=2), trees=trees)
    assert MUL.findall(text) == []
    assert generate_verilog(_net([1, -1, 3], seed=2), trees=trees).count(" * ") == 1


def test_multiplier_count_matches_report_on_a_random_network(tmp_path):
    net = random_network([(20, 16, 12), (12, 10, 6)], seed=3, name="two")
    report = generate(net, tmp_path)
    text = (tmp_path / "two.v").read_text()
    assert len(MUL.findall(text)) == report["total"]["multipliers"]
    assert report["total"]["multipliers"] == sum(l["multipliers"] for l in report["layers"])
    assert report["total"]["latency"] == sum(l["latency"] for l in report["layers"])


def test_ports_and_module_name():
    net = random_network([(6, 4, 3)], seed=4, name="tiny_net")
    text = generate_verilog(net)
    header = re.search(r"^module tiny_net\((.*?)\);", text, re.MULTILINE)
    assert header is not None
    assert sorted(header.group(1).split(", ")) == sorted(
        ["clk", "rst", "i__valid", "i__ready", "i__payload", "o__valid", "o__ready",
         "o__payload"])
    assert re.search(r"^\s*input \[47:0\] i__payload;$", text, re.MULTILINE)
    assert re.search(r"^\s*output \[23:0\] o__payload;$", text, re.MULTILINE)


def test_report_fields(tmp_path):
    net = random_network([(9, 8, 7), (7, 6, 5)], seed=5)
    report = generate(net, tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["net.v", "report.json"]   # no temporary left over
    first, second = report["layers"]
    assert (first["n_in"], first["r"], first["n_out"]) == (9, 8, 7)
    assert (second["n_in"], second["r"], second["n_out"]) == (7, 6, 5)
    assert first["input"] == {"width": 8, "signed": True}
    for layer in report["layers"]:
        assert layer["adders"] > 0 and layer["register_bits"] > 0 and layer["latency"] >= 2
        assert layer["adders"] <= layer["adders_unshared"] + layer["n_out"] + layer["r"]
    assert report["total"]["adders"] == first["adders"] + second["adders"]


_HASH = ("import hashlib, sys; from strassen_hw.frozen import random_network; "
         "from strassen_hw.hw import generate_verilog; "
         "net = random_network([(24, 16, 10), (10, 8, 4)], seed=6, name='det'); "
         "sys.stdout.write(hashlib.sha256(generate_verilog(net).encode()).hexdigest())")


def test_byte_identical_across_processes():
    digests = set()
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", _HASH], env=env, capture_output=True,
                             text=True, check=True)
        digests.add(out.stdout)
    assert len(digests) == 1 and len(digests.pop()) == 64


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "strassen_hw.cli", *map(str, args)],
                          capture_output=True, text=True)


def test_cli_generate(tmp_path):
    net_path = tmp_path / "n.json"
    save(random_network([(5, 4, 3)], seed=7, name="cli_net"), net_path)
    out = _cli("generate", net_path, "-o", tmp_path / "out")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out" / "cli_net.v").read_text().count("module cli_net(") == 1
    assert "multiplier" in out.stdout and "latency" in out.stdout


@pytest.mark.parametrize("content", ['{"format": "strassen-hw-frozen", "version": 1}',
                                     "not json at all", '{"x": 1}'])
def test_cli_generate_bad_network(tmp_path, content):
    net_path = tmp_path / "bad.json"
    net_path.write_text(content)
    out = _cli("generate", net_path, "-o", tmp_path / "out")
    assert out.returncode == 2
    assert out.stderr.startswith("strassen-hw: error: ") and out.stderr.count("\n") == 1
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()


def test_cli_generate_options(tmp_path):
    net_path = tmp_path / "n.json"
    save(random_network([(12, 10, 6)], seed=8), net_path)
    shared = _cli("generate", net_path, "-o", tmp_path / "a")
    plain = _cli("generate", net_path, "-o", tmp_path / "b", "--no-share",
                 "--levels-per-stage", "1")
    assert shared.returncode == plain.returncode == 0
    a = json.loads((tmp_path / "a" / "report.json").read_text())["total"]
    b = json.loads((tmp_path / "b" / "report.json").read_text())["total"]
    assert b["adders"] == b["adders_unshared"] == a["adders_unshared"] > a["adders"]
    assert b["latency"] > a["latency"]
    bad = _cli("generate", net_path, "-o", tmp_path / "c", "--levels-per-stage", "0")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "at least 1" in bad.stderr


def test_cli_generate_missing_file(tmp_path):
    out = _cli("generate", tmp_path / "nope.json", "-o", tmp_path / "out")
    assert out.returncode == 2 and "no such file" in out.stderr
