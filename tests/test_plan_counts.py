"""Adder and multiplier counts of the layer plans against hand counts, per layer kind: a wrong
count (a dropped bias or negation adder, a shared pair counted twice) fails here, fast.

The convention (hw/layer.py, LayerPlan): every two-input adder or subtractor of the W_b and W_c
adder graphs counts one; a W_c row whose sum comes out negated costs one more (the negation);
an output with a non-zero bias (plus rounding half) costs one more; a product rounded half up
costs one; a product whose ã is ±2^k is a wire (its sign folded into W_c), ã = 0 none."""

from strassen_hw.frozen import Format, FrozenLayer, dense_layer, twn_layer
from strassen_hw.hw.layer import LayerPlan

I8, I16 = Format(8, True), Format(16, True)


def _plan(layer, share):
    return LayerPlan(layer, I8, 2, share)


def test_strassen_layer_with_a_negated_row_and_a_bias():
    layer = FrozenLayer(w_b=[[1, 1, 0, 0], [1, -1, 1, 0], [0, 0, 0, 1]], a_tilde=[3, 5, 7],
                        w_c=[[1, 1, 0], [-1, -1, 0], [0, 1, 1]], bias=[0, 0, 5], a_width=4,
                        bias_width=4, output=I16)
    # W_b: x0+x1 (1), x0-x1+x2 (2), x3 (0); W_c: p0+p1 (1), -(p0+p1) (1 + 1 negation),
    # p1+p2 (1) + bias (1)
    plain = _plan(layer, share=False)
    assert (plain.multipliers, plain.adders, plain.adders_unshared) == (3, 8, 8)
    # shared: -(p0+p1) reuses p0+p1, so W_c needs 2 adders, the negation stays
    shared = _plan(layer, share=True)
    assert (shared.graph_b.adders, shared.graph_c.adders, shared.adders) == (3, 2, 7)


def test_twn_layer_folds_a_power_of_two_alpha_into_a_negation():
    layer = twn_layer([[1, -1, 0], [0, 1, 1]], [3, -4], [0, 2], a_width=4, bias_width=3,
                      output=I16)
    plan = _plan(layer, share=True)
    # W_b: 1 + 1; W_c the identity: none; α = -4 is a shift whose sign negates output 1 (1);
    # the bias of output 1 (1); α = 3 is the one multiplier
    assert (plan.multipliers, plan.graph_c.adders, plan.adders) == (1, 0, 4)
    assert plan.report()["products_shift"] == 1


def test_dense_layer_counts_wires_and_zero_weights():
    layer = dense_layer([[1, 2], [3, 0]], [0, 0], a_width=3, bias_width=2, output=I16)
    plan = _plan(layer, share=True)
    report = plan.report()
    # weights 1 and 2 are wires, 3 a multiplier, 0 nothing; output 0 = q0 + q1 (1 adder),
    # output 1 = q2 (none); W_b only selects inputs (none)
    assert (report["multipliers"], report["products_shift"], report["products_zero"]) == (1, 2, 1)
    assert (plan.graph_b.adders, plan.adders) == (0, 1)


def test_half_up_product_rounding_costs_one_adder_per_rounded_product():
    layer = FrozenLayer(w_b=[[1, 1], [1, 0]], a_tilde=[3, 5], w_c=[[1, 1]], bias=[0],
                        a_width=4, bias_width=2, output=I16, product_shift=2,
                        product_rounding="half_up")
    # W_b 1, W_c 1, two rounded products 2
    assert _plan(layer, share=True).adders == 4
