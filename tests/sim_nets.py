"""Small hand-made networks for the Verilator tests (shared by test_sim_*.py).

Each is built to reach a corner: degenerate and odd shapes, zero rows and columns, ã at 0 and at
both ends of its width, unsigned input, saturation at both ends, two layers. Few designs on
purpose: every one costs a Verilator compile.
"""

import numpy as np

from strassen_hw.frozen import Format, FrozenLayer, FrozenNetwork

__all__ = ["one", "chain", "odd", "wrap"]


def one():
    """1,1,1 with a 4-bit unsigned input and ã = -128, the minimum of its 8 bits."""
    layer = FrozenLayer(w_b=[[1]], a_tilde=[-128], w_c=[[-1]], bias=[5], a_width=8,
                        bias_width=4, output=Format(6, True), shift=5, rounding="half_up")
    return FrozenNetwork(name="one", input=Format(4, False), layers=[layer])


def chain():
    """Two layers, 3,5,2 then 2,4,3: ReLU between them, ã = 127 (the maximum of 8 bits), a
    rounding shift on the products of the second layer."""
    rng = np.random.default_rng(7)
    first = FrozenLayer(w_b=[[1, -1, 1], [0, 1, 1], [-1, -1, 0], [1, 0, 0], [1, 1, 1]],
                        a_tilde=[127, -3, 45, -90, 7], w_c=[[1, 0, -1, 1, 1], [0, 1, 1, -1, 1]],
                        bias=[-20, 9], a_width=8, bias_width=6, output=Format(8, True),
                        shift=4, rounding="half_up", relu=True)
    second = FrozenLayer(w_b=rng.integers(-1, 2, (4, 2)), a_tilde=[-77, 101, 64, -1],
                         w_c=[[1, -1, 0, 1], [1, 1, 1, 0], [0, -1, 1, -1]], bias=[3, -2, 0],
                         a_width=8, bias_width=3, output=Format(8, True), product_shift=1,
                         shift=6)
    return FrozenNetwork(name="chain", input=Format(8, True), layers=[first, second])


def odd():
    """37,19,23: a zero row in W_b (row 4), a zero column in W_c (column 7), ã = 0 (index 2),
    ã at -128 and 127; product rounding half up; a shift that saturates some outputs at both
    ends of the 8-bit output."""
    rng = np.random.default_rng(11)
    w_b = rng.integers(-1, 2, (19, 37))
    w_b[4] = 0
    w_c = rng.integers(-1, 2, (23, 19))
    w_c[:, 7] = 0
    a = rng.integers(-128, 128, 19)
    a[0], a[1], a[2] = -128, 127, 0
    layer = FrozenLayer(w_b=w_b, a_tilde=a, w_c=w_c, bias=rng.integers(-2048, 2048, 23),
                        a_width=8, bias_width=12, output=Format(8, True), product_shift=2,
                        product_rounding="half_up", shift=8, rounding="floor")
    return FrozenNetwork(name="odd", input=Format(8, True), layers=[layer])


def wrap(verilog, net, body):
    """Wrap the top module of ``verilog`` in a new top of the same name and ports; ``body`` is
    Verilog that connects the inner instance's ``inner_*`` signals to the ports. Used to
    tamper with a correct design from outside."""
    w_in, w_out = net.n_in * net.input.width, net.n_out * net.output.width
    inner = verilog.replace(f"module {net.name}(", f"module {net.name}_inner(", 1)
    assert inner != verilog
    return inner + f"""
module {net.name}(input clk, input rst, input i__valid, output i__ready,
    input [{w_in - 1}:0] i__payload, output o__valid, input o__ready,
    output [{w_out - 1}:0] o__payload);
  wire inner_i_ready, inner_o_valid;
  wire [{w_out - 1}:0] inner_o_payload;
  {net.name}_inner inner(.clk(clk), .rst(rst), .i__valid(i__valid), .i__ready(inner_i_ready),
    .i__payload(i__payload), .o__valid(inner_o_valid), .o__ready(o__ready),
    .o__payload(inner_o_payload));
{body}
endmodule
"""
