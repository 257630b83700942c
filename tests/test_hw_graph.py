"""Adder graphs: exact sums, exact ranges, sharing saves adders, determinism."""

import numpy as np
import pytest

from strassen_hw.frozen import Format, random_network, ternary_range
from strassen_hw.hw.graph import AdderGraph, shared_graph, ternary_graph
from strassen_hw.hw.layer import LayerPlan


def _matrix(rows, cols, seed, density=2 / 3):
    rng = np.random.default_rng(seed)
    return (rng.random((rows, cols)) < density) * rng.choice([-1, 1], (rows, cols))


@pytest.mark.parametrize("share", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (40, 60), (3, 100)])
def test_graph_computes_the_matrix_product(shape, share):
    m = _matrix(*shape, seed=shape[0])
    m[0] = 0                                                   # an all-zero row
    graph = ternary_graph(m, [-128] * shape[1], [127] * shape[1], share=share)
    x = np.random.default_rng(1).integers(-128, 128, (50, shape[1]))
    x = np.concatenate([x, np.full((1, shape[1]), -128), np.full((1, shape[1]), 127)])
    assert (graph.evaluate(x) == x @ m.T).all()
    assert graph.rows[0] is None


@pytest.mark.parametrize("share", [False, True])
def test_row_ranges_are_exact(share):
    """The range of each row's node (times its sign) equals the interval of the row."""
    m = _matrix(30, 20, seed=2)
    lo, hi = np.arange(-20, 0), np.arange(3, 23)
    graph = ternary_graph(m, lo, hi, share=share)
    want_lo, want_hi = ternary_range(m, lo, hi)
    for i, row in enumerate(graph.rows):
        node, sign = row
        got = sorted([sign * graph.lo[node], sign * graph.hi[node]])
        assert got == [want_lo[i], want_hi[i]]


def test_no_subtractor_for_a_row_of_only_minus_ones():
    graph = ternary_graph(np.array([[-1, -1, -1, 0]]), [0] * 4, [3] * 4)
    assert graph.adders == 2 and graph.rows[0][1] == -1
    assert not any(graph.sub)


def test_unshared_adder_count_is_nonzeros_minus_rows():
    m = _matrix(16, 24, seed=3)
    graph = ternary_graph(m, [-8] * 24, [7] * 24)
    nonzero_rows = np.count_nonzero(np.any(m != 0, axis=1))
    assert graph.adders == np.count_nonzero(m) - nonzero_rows


def test_sharing_saves_adders_and_keeps_depth_close():
    m = _matrix(64, 64, seed=4)
    plain = ternary_graph(m, [-128] * 64, [127] * 64)
    shared = ternary_graph(m, [-128] * 64, [127] * 64, share=True)
    assert shared.adders < 0.6 * plain.adders
    assert shared.depth <= plain.depth + 2


def test_sharing_respects_input_levels():
    """Inputs that arrive one level late still give the exact sums."""
    m = _matrix(12, 10, seed=5)
    level = [1, 0] * 5
    graph = shared_graph(AdderGraph([-5] * 10, [5] * 10, level), m)
    x = np.random.default_rng(2).integers(-5, 6, (20, 10))
    assert (graph.evaluate(x) == x @ m.T).all()
    for node in range(graph.n_inputs, len(graph)):
        assert graph.level[node] == max(graph.level[graph.a[node]],
                                         graph.level[graph.b[node]]) + 1


def test_plan_counts_only_nontrivial_multipliers():
    net = random_network([(8, 12, 5)], seed=6)
    layer = net.layers[0]
    trivial = sum(1 for a in layer.a_tilde.tolist() if a == 0 or (abs(a) & (abs(a) - 1)) == 0)
    plan = LayerPlan(layer, net.input)
    used = np.any(layer.w_c != 0, axis=0) & np.any(layer.w_b != 0, axis=1)
    assert plan.multipliers == sum(1 for j, a in enumerate(layer.a_tilde.tolist())
                                   if used[j] and a != 0 and abs(a) & (abs(a) - 1))
    assert plan.multipliers <= layer.r - trivial


def test_plan_rejects_bad_levels_per_stage():
    net = random_network([(2, 2, 2)], seed=7)
    with pytest.raises(ValueError, match="^levels_per_stage must be at least 1, not 0$"):
        LayerPlan(net.layers[0], Format(8, True), levels_per_stage=0)
