"""A frozen network as one stream component: Strassen layers chained on streams.

Convolution layers (:mod:`.conv`) work on pixel streams: a :class:`~.conv.PixelSerializer`
before a run of them turns the input vector into pixels, a :class:`~.conv.PixelDeserializer`
after it turns the output image back into one vector (the flattening, in pixel order), so the
network keeps one vector in and one vector out.

With ``fold = F > 1`` every linear layer is a :class:`~.folded.FoldedLayer` and every
convolution's patch layer one (:class:`~.conv.StreamingConv` with ``fold``), chained on the
same streams (for networks of linear layers only, :class:`~.folded.FoldedNetwork` shares RAMs
between layers and is what :func:`~.generate.generate_verilog` uses)."""

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..frozen import FrozenConvLayer
from .conv import PixelDeserializer, PixelSerializer, StreamingConv
from .folded import FoldedLayer, _Latch
from .layer import StrassenLayer, format_shape

__all__ = ["StrassenNetwork"]


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
    fold : int
        1 (default): fully parallel layers; ``F > 1``: folded layers (module docstring; the
        other parameters unused, and an input latch before a first linear layer, which reads
        its input in place).

    Attributes
    ----------
    i : stream, payload ``ArrayLayout(input shape, n_in)``
    o : stream, payload ``ArrayLayout(output shape, n_out)``
    layers : list of StrassenLayer, FoldedLayer or StreamingConv
        Submodules ``layer0``, ``layer1``, ...
    stages : list of components
        The layers with the pixel (de)serializers between them, in stream order.
    trees : list of TernaryAdderTree
        Those of every layer, in order.
    latency : int or None
        Cycles from an accepted input vector to its output vector, without stalls (None with
        convolution layers, whose cycles depend on the image, and with ``fold > 1``).
    """

    def __init__(self, net, *, levels_per_stage=2, share=True, trees="verilog", plans=None,
                 fold=1):
        self.net = net
        plans = plans or [None] * len(net.layers)
        self.layers, self.stages, pixels = [], [], None
        for index, (layer, fmt, plan) in enumerate(zip(net.layers, net.layer_inputs(), plans)):
            kind = StreamingConv if isinstance(layer, FrozenConvLayer) else StrassenLayer
            if kind is StrassenLayer and fold > 1:
                unit = FoldedLayer(layer, fmt, fold)
            elif kind is StreamingConv and fold > 1:
                unit = StreamingConv(layer, fmt, fold=fold)
            else:
                unit = kind(layer, fmt, levels_per_stage=levels_per_stage, share=share,
                            trees=trees, module_prefix=f"{net.name}_layer{index}", plan=plan)
            if index == 0 and isinstance(unit, FoldedLayer):
                self.stages.append(_Latch(unit.i.signature.flip()))
            if kind is StreamingConv and pixels is None:
                height, width, channels = layer.in_shape
                self.stages.append(PixelSerializer(fmt, height * width, channels))
            elif kind is StrassenLayer and pixels is not None:
                self.stages.append(PixelDeserializer(fmt, *pixels))
            pixels = (layer.out_shape[0] * layer.out_shape[1], layer.out_shape[2]) \
                if kind is StreamingConv else None
            self.layers.append(unit)
            self.stages.append(unit)
        if pixels is not None:
            self.stages.append(PixelDeserializer(net.output, *pixels))
        self.latency = (None if len(self.stages) > len(self.layers)
                        else sum(layer.latency for layer in self.layers))
        self.trees = [tree for layer in self.layers for tree in getattr(layer, "trees", [])]
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(format_shape(net.input), net.n_in))),
            "o": Out(stream.Signature(data.ArrayLayout(format_shape(net.output), net.n_out))),
        })

    def elaborate(self, platform):
        m = Module()
        for index, layer in enumerate(self.layers):
            m.submodules[f"layer{index}"] = layer
        for index, stage in enumerate(self.stages):
            if not any(stage is layer for layer in self.layers):
                m.submodules[f"pixels{index}"] = stage
        wiring.connect(m, wiring.flipped(self.i), self.stages[0].i)
        for a, b in zip(self.stages, self.stages[1:]):
            wiring.connect(m, a.o, b.i)
        wiring.connect(m, self.stages[-1].o, wiring.flipped(self.o))
        return m
