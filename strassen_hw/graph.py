"""The frozen network as a graph of named, typed nodes (format version 3).

A network is its integer input (a :class:`~.formats.Format` and a shape) and a list of nodes in
topological order. Each node has a ``name``, a ``KIND`` and ``inputs``, the names of earlier
nodes or ``"input"``; the last node is the output, and every other node is read by a later one.
Every edge carries a shape, a vector ``(n,)`` or an image ``(H, W, C)`` whose values lie in pixel
order (``(row·W + col)·C + c``), and an integer format. Validation runs once, here, when a node
and when the network is built; each node kind answers for its own shape and format rule:

- :class:`Linear`: a :class:`~.frozen_layer.FrozenLayer` (strassen, twn or dense); it reads a
  vector, or an image flattened in pixel order.
- :class:`Conv`: a :class:`~.frozen_conv.FrozenConvLayer` (geometry and patch layer); it reads
  an image, or (version 2's chaining rule) the vector a linear node gives.
- :class:`Pool`: ``max`` or ``avg`` over q×q windows (stride q) of an image, or ``global``: the
  sum of each channel over all pixels, shifted right (floor) and saturated, a vector.
- :class:`Flatten`: an image read as a vector (free).
- :class:`Add`: the sum of two or more inputs of one shape, each shifted left to one scale,
  then rounded, ReLU and saturated like a layer's output.

A chain of linear and convolution nodes named ``layer0``, ``layer1``, ... is what versions 1
and 2 hold; :attr:`FrozenNetwork.layers` gives its layers and such a network saves as before.
numpy only.
"""

import math

import numpy as np

from .formats import (MAX_SHIFT, ROUNDING, Format, FrozenError, _fail, _int, _show,
                      check_name)
from .frozen_conv import FrozenConvLayer
from .frozen_layer import FrozenLayer

__all__ = ["NODE_KINDS", "MAX_VALUES", "MAX_NODES", "Node", "Linear", "Conv", "Pool",
           "Flatten", "Add", "FrozenNetwork", "size"]

#: Largest number of values on one edge (one image or vector): 2^24, a 4096×4096 image of one
#: channel. Each field has its own bound but their product does not; this one keeps every step
#: (reference, hardware, simulation) in bounded memory.
MAX_VALUES = 1 << 24
#: Largest number of nodes in one network.
MAX_NODES = 4096
#: Largest left shift of an ``add`` input.
MAX_ALIGN = 32
#: ``pool`` modes: q×q windows with stride q, or one sum over the whole image per channel.
POOL_MODES = ("max", "avg", "global")


def size(shape):
    """Number of values of a shape."""
    return math.prod(shape)


def _show_shape(shape):
    return "×".join(map(str, shape)) + (" (height×width×channels)" if len(shape) == 3 else "")


def _names(where, inputs, count=None):
    if isinstance(inputs, str) or not isinstance(inputs, (list, tuple)):
        _fail(where, f"'inputs' must be a list of node names, not {_show(inputs)}")
    inputs = tuple(inputs)
    for name in inputs:
        if not isinstance(name, str):
            _fail(where, f"'inputs' holds {_show(name)}; give node names")
    if count is not None and len(inputs) != count:
        _fail(where, f"'inputs' has {len(inputs)} names; this kind takes {count}")
    return inputs


class Node:
    """A node: ``name``, ``inputs`` (names) and the fields of its kind. Subclasses define
    ``KIND``, ``ARITY`` (inputs taken, None for two or more), :meth:`shape` and :meth:`format`
    (the output's, from the inputs') and :meth:`fields` (the kind's JSON fields)."""
    KIND = None
    ARITY = 1

    def __init__(self, name, inputs):
        if not isinstance(name, str):
            _fail("node", f"'name' must be a string, not {_show(name)}")
        self.name = name
        self.where = f"node '{name}'" if len(name) <= 64 else "node"
        self.inputs = _names(self.where, inputs, self.ARITY)

    def shape(self, shapes, sources):
        """The output shape for input ``shapes`` (the nodes ``sources`` give them), or
        :class:`FrozenError` naming the mismatch."""
        raise NotImplementedError

    def format(self, formats):
        """The output format for the input ``formats``."""
        raise NotImplementedError

    def fields(self):
        return {}

    def to_json(self):
        return {"name": self.name, "kind": self.KIND, "inputs": list(self.inputs),
                **self.fields()}

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r}, inputs={list(self.inputs)})"


class Linear(Node):
    """A linear layer (any of its kinds) on a vector, or on an image read in pixel order."""
    KIND = "linear"

    def __init__(self, name, inputs, layer):
        super().__init__(name, inputs)
        if not isinstance(layer, FrozenLayer):
            _fail(self.where, f"'layer' must be a FrozenLayer, not {_show(layer)}")
        self.layer = layer

    def shape(self, shapes, sources):
        (shape,) = shapes
        if size(shape) != self.layer.n_in:
            _fail(self.where, f"'w_b' has {self.layer.n_in} columns but its input "
                              f"'{self.inputs[0]}' gives {size(shape)} values "
                              f"({_show_shape(shape)})")
        return (self.layer.n_out,)

    def format(self, formats):
        return self.layer.output

    def fields(self):
        return {"layer": self.layer.to_json()}


class Conv(Node):
    """A convolution: geometry and patch layer (:class:`~.frozen_conv.FrozenConvLayer`)."""
    KIND = "conv"

    def __init__(self, name, inputs, layer):
        super().__init__(name, inputs)
        if not isinstance(layer, FrozenConvLayer):
            _fail(self.where, f"'layer' must be a FrozenConvLayer, not {_show(layer)}")
        self.layer = layer

    def shape(self, shapes, sources):
        (shape,), (source,) = shapes, sources
        want = self.layer.in_shape
        if len(shape) == 1 and (source is None or source.KIND != "linear"):
            _fail(self.where, f"reads the vector '{self.inputs[0]}' ({shape[0]} values); a "
                              "convolution reads an image (a vector only straight from a "
                              "linear node); remove the flatten or pool before it")
        if (len(shape) == 3 and shape != want) or size(shape) != size(want):
            _fail(self.where, f"takes {_show_shape(want)} images but '{self.inputs[0]}' gives "
                              f"{_show_shape(shape)}")
        return self.layer.out_shape

    def format(self, formats):
        return self.layer.output

    def fields(self):
        return self.layer.to_json()


class Pool(Node):
    """Pooling of an image: ``max`` / ``avg`` over q×q windows with stride q (the last
    ``H mod q`` rows and columns dropped; ``avg`` is ``floor(sum / q²)``, q a power of two, in
    the input's format), or ``global``: per channel ``floor(sum / 2^shift)`` over all pixels,
    saturated to ``output`` (a mean when ``2^shift = H·W``; else freeze folds the rest of the
    division into the next layer's ã). No multiplier in any mode."""
    KIND = "pool"

    def __init__(self, name, inputs, mode, size=None, shift=0, output=None):
        super().__init__(name, inputs)
        if not isinstance(mode, str) or mode not in POOL_MODES:
            _fail(self.where, f"'mode' is {_show(mode)}; use one of {', '.join(POOL_MODES)}")
        self.mode = mode
        if mode == "global":
            if size is not None:
                _fail(self.where, "'size' is for max and avg pooling; a global pool has none")
            self.size = None
            self.shift = _int(self.where, "shift", shift, 0, MAX_SHIFT)
            if not isinstance(output, Format):
                _fail(self.where, f"'output' must be a Format, not {_show(output)}")
            self.output = output
        else:
            self.size = _int(self.where, "size", size, 2, 64)
            if mode == "avg" and self.size & (self.size - 1):
                _fail(self.where, f"'size' = {self.size} is not a power of two; average "
                                  "pooling divides by a shift")
            if shift != 0 or output is not None:
                _fail(self.where, "'shift' and 'output' are for a global pool; max and avg "
                                  "keep their input's format")
            self.shift, self.output = 0, None

    def shape(self, shapes, sources):
        (shape,) = shapes
        if len(shape) != 3:
            _fail(self.where, f"pools the vector '{self.inputs[0]}'; pooling takes an image")
        h, w, c = shape
        if self.mode == "global":
            return (c,)
        if self.size > min(h, w):
            _fail(self.where, f"'size' = {self.size} is larger than the {h}×{w} image; use "
                              f"2..{min(h, w)}")
        return (h // self.size, w // self.size, c)

    def format(self, formats):
        return self.output if self.mode == "global" else formats[0]

    def fields(self):
        if self.mode == "global":
            return {"mode": "global", "shift": self.shift, "output": self.output.to_json()}
        return {"mode": self.mode, "size": self.size}


class Flatten(Node):
    """An image read as a vector in pixel order; costs nothing."""
    KIND = "flatten"

    def shape(self, shapes, sources):
        return (size(shapes[0]),)

    def format(self, formats):
        return formats[0]


class Add(Node):
    """``y = saturate(relu?(round_shift(Σ_i x_i · 2^align_i, shift, rounding)))``: two or more
    inputs of one shape (a name may repeat), each shifted left by its ``align`` (0..32) onto one
    scale, exact; then a layer's requantization to ``output``."""
    KIND = "add"
    ARITY = None

    def __init__(self, name, inputs, align, shift, rounding, relu, output):
        super().__init__(name, inputs)
        if len(self.inputs) < 2:
            _fail(self.where, f"'inputs' has {len(self.inputs)} name(s); an add takes 2 or more")
        if isinstance(align, (str, bytes)) or not isinstance(align, (list, tuple, np.ndarray)):
            _fail(self.where, f"'align' must be a list of shifts, not {_show(align)}")
        if len(align) != len(self.inputs):
            _fail(self.where, f"'align' has {len(align)} shifts for {len(self.inputs)} inputs; "
                              "give one per input")
        self.align = tuple(_int(self.where, "align", a, 0, MAX_ALIGN) for a in align)
        self.shift = _int(self.where, "shift", shift, 0, MAX_SHIFT)
        if not isinstance(rounding, str) or rounding not in ROUNDING:
            _fail(self.where, f"'rounding' is {_show(rounding)}; use one of {', '.join(ROUNDING)}")
        self.rounding = rounding
        if not isinstance(relu, bool):
            _fail(self.where, f"'relu' must be true or false, not {_show(relu)}")
        self.relu = relu
        if not isinstance(output, Format):
            _fail(self.where, f"'output' must be a Format, not {_show(output)}")
        self.output = output

    def shape(self, shapes, sources):
        for name, shape in zip(self.inputs[1:], shapes[1:]):
            if shape != shapes[0]:
                _fail(self.where, f"adds '{self.inputs[0]}' ({_show_shape(shapes[0])}) and "
                                  f"'{name}' ({_show_shape(shape)}); an add needs one shape")
        return shapes[0]

    def format(self, formats):
        return self.output

    def fields(self):
        return {"align": list(self.align), "shift": self.shift, "rounding": self.rounding,
                "relu": self.relu, "output": self.output.to_json()}


#: The node kinds, by their ``kind`` string.
NODE_KINDS = {kind.KIND: kind for kind in (Linear, Conv, Pool, Flatten, Add)}


def _chain_nodes(layers):
    return [(Conv if isinstance(layer, FrozenConvLayer) else Linear)(
        f"layer{k}", ("input",) if k == 0 else (f"layer{k - 1}",), layer)
        for k, layer in enumerate(layers)]


def _chain_shape(layers):
    first = layers[0]
    return first.in_shape if isinstance(first, FrozenConvLayer) else (first.n_in,)


class FrozenNetwork:
    """A validated frozen network: its input format and shape and its nodes.

    Build a chain of layers with ``FrozenNetwork(name, input, layers)`` (versions 1 and 2), a
    graph with ``FrozenNetwork(name, input, nodes=[...], input_shape=shape)``; either is
    validated once, here (see the module docstring).

    Attributes
    ----------
    name : str
    input : Format
    input_shape : tuple
    nodes : tuple of Node
    shapes, formats : dict
        Each node's output shape and format, by name (``"input"`` included).

    Raises
    ------
    FrozenError
        One line naming the node and the field.
    """

    def __init__(self, name, input, layers=None, *, nodes=None, input_shape=None):
        check_name(name)
        if not isinstance(input, Format):
            _fail("network", f"'input' must be a Format, not {_show(input)}")
        self.name, self.input = name, input
        if layers is not None and nodes is not None:
            _fail("network", "give 'layers' (a chain) or 'nodes' (a graph), not both")
        if nodes is None:
            if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
                _fail("network", "'layers' must be a sequence of FrozenLayer")
            layers = tuple(layers)
            _validate_chain(layers)
            nodes = _chain_nodes(layers)
            input_shape = _chain_shape(layers)
        elif isinstance(nodes, (str, bytes)) or not hasattr(nodes, "__iter__"):
            _fail("network", "'nodes' must be a sequence of nodes")
        self.nodes = tuple(nodes)
        self.input_shape = self._check_shape(input_shape)
        self._validate()
        self._layers = self._chain()

    # -- validation ---------------------------------------------------------------------------

    @staticmethod
    def _check_shape(shape):
        if isinstance(shape, (str, bytes)) or not isinstance(shape, (list, tuple)) \
                or len(shape) not in (1, 3):
            _fail("network", f"'input_shape' must be [n] or [height, width, channels], not "
                             f"{_show(shape)}")
        shape = tuple(_int("network", "input_shape", v, 1, MAX_VALUES) for v in shape)
        if size(shape) > MAX_VALUES:
            _fail("network", f"'input_shape' {_show_shape(shape)} has {size(shape):,} values; "
                             f"at most {MAX_VALUES:,} (2^24) per image")
        return shape

    def _validate(self):
        if not self.nodes:
            _fail("network", "'nodes' is empty; a network needs at least one node")
        if len(self.nodes) > MAX_NODES:
            _fail("network", f"{len(self.nodes)} nodes; at most {MAX_NODES}")
        self.shapes, self.formats = {"input": self.input_shape}, {"input": self.input}
        source = {"input": None}
        read = set()
        for node in self.nodes:
            if not isinstance(node, Node):
                _fail("network", f"a node must be a Linear, Conv, Pool, Flatten or Add, not "
                                 f"{_show(node)}")
            if node.name == "input" or node.name in self.shapes:
                _fail(node.where, "the name is taken (by an earlier node, or 'input' is the "
                                  "network input); give each node its own name")
            check_name(node.name, node.where, "node")
            for name in node.inputs:
                if name not in self.shapes:
                    later = any(n.name == name for n in self.nodes)
                    _fail(node.where, f"reads '{name}', which is "
                                      + ("a later node: list nodes in topological order (a "
                                         "cycle has none)" if later else
                                         "no node; name an earlier node or 'input'"))
            shape = node.shape([self.shapes[i] for i in node.inputs],
                               [source[i] for i in node.inputs])
            if size(shape) > MAX_VALUES:
                _fail(node.where, f"gives {size(shape):,} values ({_show_shape(shape)}); at "
                                  f"most {MAX_VALUES:,} (2^24) per image")
            self.shapes[node.name] = shape
            self.formats[node.name] = node.format([self.formats[i] for i in node.inputs])
            source[node.name] = node
            read.update(node.inputs)
        unread = [n.name for n in self.nodes[:-1] if n.name not in read]
        if unread:
            _fail(f"node '{unread[0]}'", f"nothing reads it, so the network would have two "
                                         f"outputs ('{unread[0]}' and '{self.nodes[-1].name}'); "
                                         "remove it or feed it to a later node")

    def _chain(self):
        """The layers, when the network is a version 1 or 2 chain, else None."""
        layers = []
        for k, node in enumerate(self.nodes):
            previous = "input" if k == 0 else f"layer{k - 1}"
            if node.KIND not in ("linear", "conv") or node.name != f"layer{k}" \
                    or node.inputs != (previous,):
                return None
            layers.append(node.layer)
        return tuple(layers) if self.input_shape == _chain_shape(layers) else None

    # -- access -------------------------------------------------------------------------------

    @property
    def is_chain(self):
        """True when the network is a chain of layers (it saves as version 1 or 2)."""
        return self._layers is not None

    @property
    def layers(self):
        """The layers of a chain; a graph with other nodes raises :class:`FrozenError`."""
        if self._layers is None:
            kinds = sorted({n.KIND for n in self.nodes} - {"linear", "conv"}) or ["branches"]
            raise FrozenError(f"network '{self.name}' is a graph ({', '.join(kinds)}), not a "
                              "chain of layers; this step takes chains only")
        return self._layers

    def node(self, name):
        for node in self.nodes:
            if node.name == name:
                return node
        raise FrozenError(f"network '{self.name}' has no node '{name}'")

    def shape_of(self, name):
        return self.shapes[name]

    def format_of(self, name):
        return self.formats[name]

    def readers(self, name):
        """The nodes that read ``name``, in order (a node reading it twice is listed once)."""
        return [node for node in self.nodes if name in node.inputs]

    @property
    def output(self):
        return self.formats[self.nodes[-1].name]

    @property
    def output_shape(self):
        return self.shapes[self.nodes[-1].name]

    @property
    def n_in(self):
        return size(self.input_shape)

    @property
    def n_out(self):
        return size(self.output_shape)

    def layer_inputs(self):
        """The input format of each layer of a chain."""
        return [self.input] + [layer.output for layer in self.layers[:-1]]

    def to_json(self):
        if self.is_chain:
            return {
                "format": "strassen-hw-frozen",
                "version": 2 if any(n.KIND == "conv" for n in self.nodes) else 1,
                "name": self.name,
                "input": self.input.to_json(),
                "layers": [layer.to_json() for layer in self._layers],
            }
        return {
            "format": "strassen-hw-frozen",
            "version": 3,
            "name": self.name,
            "input": self.input.to_json(),
            "input_shape": list(self.input_shape),
            "nodes": [node.to_json() for node in self.nodes],
        }


def _validate_chain(layers):
    """The chaining rules of versions 1 and 2, with their messages (``layer k: ...``)."""
    if not layers:
        _fail("network", "'layers' is empty; a network needs at least one layer")
    n_in = shape = None
    for index, layer in enumerate(layers):
        where = f"layer {index}"
        if not isinstance(layer, (FrozenLayer, FrozenConvLayer)):
            _fail(where, f"must be a FrozenLayer or FrozenConvLayer, not {type(layer).__name__}")
        conv = isinstance(layer, FrozenConvLayer)
        if conv and shape is not None and layer.in_shape != shape:
            _fail(where, f"takes {'×'.join(map(str, layer.in_shape))} (height×width×channels) "
                         f"images but the layer before gives {'×'.join(map(str, shape))}")
        if n_in is not None and layer.n_in != n_in:
            what = "its input image has" if conv else "'w_b' has"
            unit = "values" if conv else "columns"
            _fail(where, f"{what} {layer.n_in} {unit} but the layer input has {n_in} values")
        n_in, shape = layer.n_out, layer.out_shape if conv else None
