"""A frozen network as one stream component: Strassen layers chained on streams."""

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..frozen import FrozenConvLayer, FrozenError
from .layer import StrassenLayer, format_shape

__all__ = ["StrassenNetwork", "check_linear"]


def check_linear(net):
    """Raise :class:`~strassen_hw.frozen.FrozenError` (one line) when ``net`` has a
    convolution layer: the hardware generator builds linear layers only so far."""
    for index, layer in enumerate(net.layers):
        if isinstance(layer, FrozenConvLayer):
            raise FrozenError(f"layer {index} of {net.name} is a convolution; the hardware "
                              "handles linear layers only so far (use 'strassen-hw reference' "
                              "for its exact outputs)")


class StrassenNetwork(wiring.Component):
    """All layers of a :class:`~strassen_hw.frozen.FrozenNetwork`, chained, pipelined.

    Parameters
    ----------
    net : FrozenNetwork
    levels_per_stage : int
        Adder levels between pipeline registers (default 2).
    share : bool
        Share common pairs between the rows of each ternary matrix (default True).
    trees : ``"verilog"`` or ``"amaranth"``
        Backend of the adder trees (see :mod:`~strassen_hw.hw.tree`); text tree modules are
        named ``<net.name>_layer<k>_w_b`` / ``_w_c``.
    plans : list of LayerPlan, optional
        Plans already made for the layers (see :func:`~strassen_hw.hw.generate.plan`).

    Attributes
    ----------
    i : stream, payload ``ArrayLayout(input shape, n_in)``
    o : stream, payload ``ArrayLayout(output shape, n_out)``
    layers : list of StrassenLayer
        Submodules ``layer0``, ``layer1``, ...
    trees : list of TernaryAdderTree
        Those of every layer, in order.
    latency : int
        Cycles from an accepted input vector to its output vector, without stalls.
    """

    def __init__(self, net, *, levels_per_stage=2, share=True, trees="verilog", plans=None):
        check_linear(net)
        self.net = net
        plans = plans or [None] * len(net.layers)
        self.layers = [StrassenLayer(layer, fmt, levels_per_stage=levels_per_stage, share=share,
                                     trees=trees, module_prefix=f"{net.name}_layer{index}",
                                     plan=plan)
                       for index, (layer, fmt, plan) in enumerate(zip(net.layers,
                                                                      net.layer_inputs(), plans))]
        self.latency = sum(layer.latency for layer in self.layers)
        self.trees = [tree for layer in self.layers for tree in layer.trees]
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(format_shape(net.input), net.n_in))),
            "o": Out(stream.Signature(data.ArrayLayout(format_shape(net.output), net.n_out))),
        })

    def elaborate(self, platform):
        m = Module()
        for index, layer in enumerate(self.layers):
            m.submodules[f"layer{index}"] = layer
        wiring.connect(m, wiring.flipped(self.i), self.layers[0].i)
        for a, b in zip(self.layers, self.layers[1:]):
            wiring.connect(m, a.o, b.i)
        wiring.connect(m, self.layers[-1].o, wiring.flipped(self.o))
        return m
