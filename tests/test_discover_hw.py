"""The bilinear multiplier: r multipliers, exact widths, and A @ B on every output."""

import itertools

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from strassen_hw.frozen import Format
from strassen_hw.hw.bilinear import BilinearMatmul, BilinearPlan, generate_bilinear_verilog
from strassen_hw.matmul import PAPER_LEARNED, STRASSEN, BilinearAlgorithm

INT8 = Format(8, True)
ALGORITHMS = {"strassen": STRASSEN, "paper": PAPER_LEARNED}


def _naive(n):
    rows = [(p, s, q) for p in range(n) for s in range(n) for q in range(n)]
    one = np.eye(n * n, dtype=np.int64)
    return BilinearAlgorithm([one[p * n + s] for p, s, q in rows],
                             [one[s * n + q] for p, s, q in rows],
                             np.array([one[p * n + q] for p, s, q in rows]).T)


def _operands(n, fmt, count, seed=0):
    """Extreme operand pairs (every entry at the minimum or maximum, mixed signs), then
    random ones; returns A and B, shape (N, n, n)."""
    lo, hi = fmt.min, fmt.max
    mixed = np.where(np.add.outer(np.arange(n), np.arange(n)) % 2 == 0, lo, hi)
    cases = [np.full((n, n), lo), np.full((n, n), hi), mixed, lo + hi - mixed]
    pairs = list(itertools.product(cases, repeat=2))
    rng = np.random.default_rng(seed)
    a = np.concatenate([[p[0] for p in pairs], rng.integers(lo, hi + 1, (count, n, n))])
    b = np.concatenate([[p[1] for p in pairs], rng.integers(lo, hi + 1, (count, n, n))])
    return a.astype(np.int64), b.astype(np.int64)


def _run(dut, a, b, seed=0, stall=0.3):
    """Push vec(A), vec(B) through ``dut`` in the Amaranth simulator with random stalls and
    back-pressure; return the outputs as (N, n, n)."""
    n = a.shape[1]
    x = np.concatenate([a.reshape(len(a), -1), b.reshape(len(b), -1)], axis=1)
    rng = np.random.default_rng(seed)
    got = []

    async def testbench(ctx):
        sent = 0
        while len(got) < len(x):
            ctx.set(dut.i.valid, bool(sent < len(x) and rng.random() >= stall))
            ctx.set(dut.i.payload, x[min(sent, len(x) - 1)].tolist())
            ctx.set(dut.o.ready, bool(rng.random() >= stall))
            *_, iv, ir, ov, ordy, out = await ctx.tick().sample(
                dut.i.valid, dut.i.ready, dut.o.valid, dut.o.ready, dut.o.payload)
            sent += bool(iv and ir)
            if ov and ordy:
                got.append([out[k] for k in range(n * n)])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return np.array(got, dtype=np.int64).reshape(a.shape)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_seven_multipliers_against_eight(name):
    report = BilinearPlan(ALGORITHMS[name], INT8).report()
    assert (report["multipliers"], report["naive_multipliers"]) == (7, 8)
    assert report["adders"] == (report["adders_w_a"] + report["adders_w_b"]
                                + report["adders_w_c"] + report["negations"])
    assert report["naive_adders"] == 4
    # |C| <= 2 * 128 * 128 = 32768 and C >= -2 * 128 * 127: 17 bits signed
    assert report["output"] == {"width": 17, "signed": True, "min": -32512, "max": 32768}


def test_strassen_spends_eighteen_additions_unshared():
    # Strassen (1969): 10 additions on the operands, 8 to combine the products.
    report = BilinearPlan(STRASSEN, INT8, share=False).report()
    assert (report["adders_w_a"] + report["adders_w_b"], report["adders_w_c"]) == (10, 8)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_rtlil_has_exactly_r_multiplier_cells(name):
    text = rtlil.convert(BilinearMatmul(ALGORITHMS[name], INT8), name="mm", emit_src=False)
    assert text.count("cell $mul ") == 7


def test_naive_algorithm_builds_eight_multipliers():
    assert BilinearPlan(_naive(2), INT8).report()["multipliers"] == 8


def test_inexact_algorithm_is_refused():
    w_c = STRASSEN.w_c.copy()
    w_c[0, 0] = 0
    with pytest.raises(ValueError, match="not exact"):
        BilinearPlan(BilinearAlgorithm(STRASSEN.w_a, STRASSEN.w_b, w_c), INT8)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_node_ranges_are_exact(name):
    # Every W_c node's range, checked by brute force over all operands of 2-bit entries.
    fmt = Format(2, True)
    plan = BilinearPlan(ALGORITHMS[name], fmt)
    values = np.array(list(itertools.product(range(fmt.min, fmt.max + 1), repeat=8)))
    a, b = values[:, :4], values[:, 4:]
    alg = plan.algorithm
    g = plan.graph_c
    nodes = [p["sign"] * (a @ alg.w_a[j]) * (b @ alg.w_b[j]) for j, p in enumerate(plan.products)]
    for k in range(g.n_inputs, len(g)):
        nodes.append(nodes[g.a[k]] - nodes[g.b[k]] if g.sub[k] else nodes[g.a[k]] + nodes[g.b[k]])
    for k, v in enumerate(nodes):
        assert (g.lo[k], g.hi[k]) == (v.min(), v.max()), k
    c = (a.reshape(-1, 2, 2) @ b.reshape(-1, 2, 2))
    assert plan.output == (c.min(), c.max())


@pytest.mark.parametrize("name", ALGORITHMS)
@pytest.mark.parametrize("fmt", [INT8, Format(4, True), Format(6, False)], ids=str)
def test_simulation_equals_matmul(name, fmt):
    a, b = _operands(2, fmt, 200, seed=3)
    got = _run(BilinearMatmul(ALGORITHMS[name], fmt), a, b, seed=1)
    assert np.array_equal(got, a @ b)


def test_three_by_three_naive_and_verilog_is_deterministic():
    fmt = Format(5, True)
    a, b = _operands(3, fmt, 50)
    assert np.array_equal(_run(BilinearMatmul(_naive(3), fmt), a, b), a @ b)
    first, report = generate_bilinear_verilog(STRASSEN, INT8, name="strassen2")
    again, _ = generate_bilinear_verilog(STRASSEN, INT8, name="strassen2")
    assert first == again and "module strassen2" in first and report["multipliers"] == 7


@pytest.mark.verilator
@pytest.mark.slow
def test_verilator_every_output_equals_matmul():
    from strassen_hw.sim.bilinear import check_bilinear, matmul_vectors
    a, b = matmul_vectors(2, INT8, 1000, seed=5)
    assert len(a) == 1016
    result, report = check_bilinear(PAPER_LEARNED, INT8, a, b, name="paper_matmul", seed=2)
    assert result.outputs.shape == (1016, 4)
    assert report["multipliers"] == 7


def test_fewest_adders_picks_the_cheapest_algorithm():
    from strassen_hw.hw.bilinear import fewest_adders
    naive = _naive(2)
    # the naive product only adds pairs of products: n²(n-1) = 4 adders, no operand adders
    best, adders = fewest_adders([STRASSEN, PAPER_LEARNED, naive], INT8)
    assert best is naive and adders == 4
    assert fewest_adders([STRASSEN, PAPER_LEARNED], INT8)[0] is not None
    assert fewest_adders([], INT8) == (None, None)
