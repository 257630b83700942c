"""A frozen network as one stream component: its nodes' components connected along its edges.

One composer for every graph, chain or not, and every mix of folds (per node). Each edge is a
stream: a vector edge carries one vector per transfer, an image edge one pixel (all channels)
per transfer, in pixel order. Between the nodes it puts what the edges need:

- a :class:`~.conv.PixelSerializer` where a vector becomes an image (the network input of an
  image network, or a linear node's output read by a convolution), a
  :class:`~.conv.PixelDeserializer` where an image is read as a vector (a ``flatten``, a linear
  node after an image, the network output);
- a :class:`~.nodes.Fork` on an edge that several nodes read (or one node twice);
- a :class:`~.nodes.SkipFifo` on every ``add`` input, as deep as :func:`skip_depths`
  computes from the nodes' schedules, so that the faster path waits without stalling the
  slower one;
- an input latch before a folded linear node that reads the network input.

The network keeps one vector in and one vector out (:attr:`StrassenNetwork.i`, ``o``)."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .conv import PixelDeserializer, PixelSerializer, PoolStream, StreamingConv
from .folded import FoldedLayer, _Latch
from .layer import StrassenLayer
from .conv import line_buffer_bits, patch_bank_bits
from .nodes import AddStream, Fork, GlobalPool, SkipFifo, stream_of
from ..errors import HardwareError
from ..graph import size

__all__ = ["StrassenNetwork", "fold_of", "skip_depths", "check_buildable", "MAX_STREAM_BITS",
           "MAX_BUFFER_BITS", "MAX_WINDOW_MUX", "MAX_ROW_WORK"]

#: Widest stream payload (one vector, or one pixel): Amaranth makes no wire wider.
MAX_STREAM_BITS = 1 << 16
#: Most window-multiplexer inputs of one convolution (window pixels × line-buffer rows × image
#: width): each window pixel is picked out of the line buffer by a multiplexer that large.
MAX_WINDOW_MUX = 1 << 17
#: Most (image width × windows per patch row) of one convolution: what its generation time
#: grows with (measured: a 1×512 image, 262,144, took 140 s; this bound, about 9 s).
MAX_ROW_WORK = 1 << 14
#: Most bits of image buffers (line buffers and patch banks) in one network: 2^24, far more
#: than any FPGA holds, and what generation finishes in bounded time and memory.
MAX_BUFFER_BITS = 1 << 24


def check_buildable(net):
    """Raise :class:`~strassen_hw.errors.HardwareError` (one line) unless every stream of
    ``net``'s hardware fits :data:`MAX_STREAM_BITS` and its image buffers
    :data:`MAX_BUFFER_BITS`; checked before anything is built, so that a valid but enormous
    network is refused at once rather than generated for minutes."""
    def vector(what, n, fmt):
        bits = n * fmt.width
        if bits > MAX_STREAM_BITS:
            raise HardwareError(
                f"network '{net.name}': {what} is {n:,} values × {fmt.width} bits = {bits:,} "
                f"bits, wider than one stream transfer can carry ({MAX_STREAM_BITS:,}); make "
                "it smaller (pool or flatten fewer pixels) or split the network")
    vector("the input vector", net.n_in, net.input)
    vector("the output vector", net.n_out, net.output)
    buffers = 0
    for node in net.nodes:
        fmt_in = net.format_of(node.inputs[0])
        if node.KIND == "linear":
            vector(f"the input of node '{node.name}'", node.layer.n_in, fmt_in)
            vector(f"the output of node '{node.name}'", node.layer.n_out, node.layer.output)
        elif node.KIND == "flatten":
            vector(f"node '{node.name}'", size(net.shape_of(node.name)), fmt_in)
        elif node.KIND == "conv":
            vector(f"the window of node '{node.name}'", node.layer.patch.n_in, fmt_in)
            vector(f"the patch of node '{node.name}'", node.layer.patch.n_out,
                   node.layer.output)
            g = node.layer.geometry
            mux = g.window[0] * g.window[1] * g.window[0] * g.width
            if mux > MAX_WINDOW_MUX:
                raise HardwareError(
                    f"network '{net.name}': node '{node.name}' picks its "
                    f"{g.window[0]}×{g.window[1]} window out of {g.window[0]} rows of "
                    f"{g.width} pixels: {mux:,} multiplexer inputs, more than "
                    f"{MAX_WINDOW_MUX:,}; use a smaller patch p, stride or kernel, or a "
                    "narrower image")
            work = g.width * g.patches[1]
            if work > MAX_ROW_WORK:
                raise HardwareError(
                    f"network '{net.name}': node '{node.name}' streams rows of {g.width} "
                    f"pixels with {g.patches[1]} windows each ({work:,}, more than "
                    f"{MAX_ROW_WORK:,}: its generation would not finish in reasonable time); "
                    "use narrower images, a larger stride or patch p")
            buffers += line_buffer_bits(node.layer, fmt_in) + patch_bank_bits(node.layer)
    if buffers > MAX_BUFFER_BITS:
        raise HardwareError(f"network '{net.name}': its line buffers and patch banks need "
                            f"{buffers:,} bits, more than {MAX_BUFFER_BITS:,}; use smaller "
                            "images, fewer channels or a smaller patch p")


def fold_of(fold, name):
    """The fold of node ``name``: ``fold`` is one int for every node, or a dict from node
    names to folds (nodes not in it are parallel)."""
    if isinstance(fold, dict):
        return fold.get(name, 1)
    return fold


def _image(shape):
    return len(shape) == 3


class StrassenNetwork(wiring.Component):
    """The hardware of a :class:`~strassen_hw.frozen.FrozenNetwork` (module docstring).

    Parameters
    ----------
    net : FrozenNetwork
    levels_per_stage : int
        Adder levels between pipeline registers (default 2).
    share : bool
        Share common pairs between the rows of each ternary matrix (default True).
    trees : ``"verilog"`` or ``"amaranth"``
        Backend of the adder trees (see :mod:`~strassen_hw.hw.tree`); text tree modules are
        named ``<net.name>_<node>_w_b`` / ``_w_c``.
    plans : dict or list of LayerPlan, optional
        Plans already made for the linear and conv nodes, by node name (a list: in node order,
        as :func:`~strassen_hw.hw.generate.plan` gives them).
    fold : int or dict
        1 (default): every node parallel; ``F > 1``: every linear and patch layer folded by F
        (:class:`~.folded.FoldedLayer`); a dict: a fold per node name, others parallel.

    Attributes
    ----------
    i : stream, payload ``ArrayLayout(input shape, n_in)``
    o : stream, payload ``ArrayLayout(output shape, n_out)``
    units : dict
        The component of each node that has one, by node name (submodules of those names).
    layers : list
        The units of the linear and conv nodes, in order.
    trees : list of TernaryAdderTree
        Those of every parallel layer, in order.
    depths : dict
        The depth of each skip FIFO, by ``(add node, input index)`` (:func:`skip_depths`,
        unless ``skip_depth`` gives some: a dict of the same form, for experiments).
    latency : int or None
        Cycles from an accepted input vector to its output vector without stalls, for a chain
        of parallel linear layers; None otherwise.
    """

    def __init__(self, net, *, levels_per_stage=2, share=True, trees="verilog", plans=None,
                 fold=1, skip_depth=None):
        check_buildable(net)
        self.net = net
        if isinstance(plans, (list, tuple)):
            names = [n.name for n in net.nodes if n.KIND in ("linear", "conv")]
            plans = dict(zip(names, plans))
        plans = plans or {}
        self.units, self.layers = {}, []
        self._stages, self._links = [], []       # adapters etc.; (source, sink) streams
        self._adapters = []
        ports = {}                               # edge name -> (stream, is_image)
        uses = {}                                # edge name -> readers left to serve
        for node in net.nodes:
            for name in node.inputs:
                uses[name] = uses.get(name, 0) + 1
        top_sig = stream_of(net.input, net.n_in)
        ports["input"] = (None, False)          # None: the top port ``i`` itself
        if _image(net.input_shape):
            h, w, c = net.input_shape
            ser = self._adapter(PixelSerializer(net.input, h * w, c))
            self._links.append((None, ser.i))
            ports["input"] = (ser.o, True)
        forks = {}

        def take(name, node):
            """The stream of edge ``name`` for one reader (through its fork)."""
            stream, image = ports[name]
            if uses[name] > 1 and name not in forks:
                fork = Fork(_sig(stream, top_sig), uses[name])
                self._add_stage(f"fork_{name}", fork)
                self._links.append((stream, fork.i))
                forks[name] = list(fork.outputs())
            if name in forks:
                return forks[name].pop(0), image
            return stream, image

        def as_vector(stream, image, name, fmt):
            if not image:
                return stream
            h, w, c = net.shape_of(name)
            des = self._adapter(PixelDeserializer(fmt, h * w, c))
            self._links.append((stream, des.i))
            return des.o

        def as_image(stream, image, shape, fmt):
            if image:
                return stream
            h, w, c = shape
            ser = self._adapter(PixelSerializer(fmt, h * w, c))
            self._links.append((stream, ser.i))
            return ser.o

        self.depths = {}
        if any(node.KIND == "add" for node in net.nodes):
            plans = {**_plans(net, levels_per_stage, share, fold, skip=plans), **plans}
        depths = skip_depths(net, plans, levels_per_stage, fold)
        for index, node in enumerate(net.nodes):
            kind, src = node.KIND, node.inputs[0]
            fmt_in = net.format_of(src)
            f = fold_of(fold, node.name)
            if kind in ("linear", "conv"):
                prefix = f"{net.name}_{node.name}"
                if kind == "linear":
                    unit = (FoldedLayer(node.layer, fmt_in, f) if f > 1 else
                            StrassenLayer(node.layer, fmt_in, levels_per_stage=levels_per_stage,
                                          share=share, trees=trees, module_prefix=prefix,
                                          plan=plans.get(node.name)))
                    stream, image = take(src, node)
                    if src == "input" and f > 1 and not image:
                        latch = self._adapter(_Latch(unit.i.signature.flip()))
                        self._links.append((stream, latch.i))
                        stream = latch.o
                    stream = as_vector(stream, image, src, fmt_in)
                else:
                    unit = StreamingConv(node.layer, fmt_in, levels_per_stage=levels_per_stage,
                                         share=share, trees=trees, module_prefix=prefix,
                                         plan=plans.get(node.name), fold=f)
                    stream, image = take(src, node)
                    stream = as_image(stream, image, node.layer.in_shape, fmt_in)
                self.layers.append(unit)
                self._unit(node, unit, [stream])
                ports[node.name] = (unit.o, kind == "conv")
            elif kind == "pool":
                stream, image = take(src, node)
                h, w, c = net.shape_of(src)
                unit = (GlobalPool(node, fmt_in, h * w, c) if node.mode == "global" else
                        PoolStream(fmt_in, h, w, c, node.mode, node.size))
                self._unit(node, unit, [stream])
                ports[node.name] = (unit.o, node.mode != "global")
            elif kind == "flatten":
                stream, image = take(src, node)
                ports[node.name] = (as_vector(stream, image, src, fmt_in), False)
            elif kind == "add":
                taken = [take(name, node) for name in node.inputs]
                image = taken[0][1]
                shape = net.shape_of(node.name)
                unit = AddStream(node, [net.format_of(n) for n in node.inputs],
                                 shape[-1] if image else shape[0])
                streams = []
                for k, (stream, _) in enumerate(taken):
                    depth = (skip_depth or {}).get((node.name, k), depths[(node.name, k)])
                    self.depths[(node.name, k)] = depth
                    skip = SkipFifo(_sig(stream, top_sig), depth)
                    self._add_stage(f"skip_{node.name}_{k}", skip)
                    self._links.append((stream, skip.i))
                    streams.append(skip.o)
                self._unit(node, unit, streams)
                ports[node.name] = (unit.o, image)
            else:
                raise TypeError(f"StrassenNetwork: no hardware for node kind {kind!r}")
        last = net.nodes[-1].name
        stream, image = ports[last]
        self._top_out = as_vector(stream, image, last, net.output)
        self.trees = [tree for layer in self.layers for tree in getattr(layer, "trees", [])]
        parallel_chain = net.is_chain and not self._adapters and all(
            isinstance(layer, StrassenLayer) for layer in self.layers)
        self.latency = sum(layer.latency for layer in self.layers) if parallel_chain else None
        super().__init__({
            "i": In(stream_of(net.input, net.n_in)),
            "o": Out(stream_of(net.output, net.n_out)),
        })

    def _add_stage(self, name, component):
        self._stages.append((name, component))

    def _adapter(self, component):
        """A pixel (de)serializer or latch, named ``pixels<k>`` by its place among the stages
        (the names versions before the graph gave them, so chains keep their Verilog)."""
        self._add_stage(f"pixels{len(self._stages) + len(self.units)}", component)
        self._adapters.append(component)
        return component

    def _unit(self, node, unit, streams):
        self.units[node.name] = unit
        ins = unit.inputs() if isinstance(unit, AddStream) else [unit.i]
        for stream, port in zip(streams, ins):
            self._links.append((stream, port))

    def elaborate(self, platform):
        m = Module()
        for name, unit in self.units.items():
            m.submodules[name] = unit
        for name, stage in self._stages:
            m.submodules[name] = stage
        for source, sink in self._links:
            wiring.connect(m, wiring.flipped(self.i) if source is None else source, sink)
        wiring.connect(m, self._top_out, wiring.flipped(self.o))
        return m


def _sig(stream, top):
    """The (outgoing) stream signature of the interface ``stream`` (``top`` for None, the
    network input)."""
    if stream is None:
        return top
    sig = stream.signature
    return sig.flip() if isinstance(sig, wiring.FlippedSignature) else sig


# --- skip FIFO depths --------------------------------------------------------------------------

def skip_depths(net, plans=None, levels_per_stage=2, fold=1, items=3):
    """The depth of the FIFO on every ``add`` input, by ``(node, input index)``.

    A timing model of the nodes' schedules (each node's output transfers as a function of its
    input transfers, from its plan: a parallel layer's latency, a folded layer's cycles per
    vector, a convolution's rows needed per patch row and its patch latency, a pool's window)
    runs ``items`` inferences into the network at one vector per clock, nothing stalled. On each
    ``add`` input, the FIFO must hold what has arrived there and not yet been taken, because the
    add waits for its slowest input: the depth is the most that ever waits (at least 1), plus
    two for :class:`amaranth.lib.fifo.SyncFIFOBuffered` (a written entry is readable one cycle
    later, and a full FIFO takes no write in the cycle it is read). With that depth no FIFO
    fills, so the fork before the paths never stalls the slower one; one entry less on a
    pipeline diamond costs throughput (``tests/test_hw_graph_network.py``)."""
    from .layer import LayerPlan
    plans = dict(plans or {})
    if not any(node.KIND == "add" for node in net.nodes):
        return {}
    times = {}
    # enough vectors for the longest wait to show: a vector network runs as many as its
    # layers' latencies add up to (an image network: ``items`` images, each many transfers)
    n = items
    if not any(_image(shape) for shape in net.shapes.values()):
        n += sum(_latency(node, net, plans, levels_per_stage, fold) for node in net.nodes
                 if node.KIND == "linear")
    if _image(net.input_shape):
        h, w, c = net.input_shape
        times["input"] = _serialize(list(range(n)), h * w)
    else:
        times["input"] = list(range(n))
    depths = {}
    for node in net.nodes:
        src = node.inputs[0]
        t = times[src]
        fmt_in = net.format_of(src)
        kind = node.KIND
        f = fold_of(fold, node.name)
        image_in = _image(net.shape_of(src)) or (src == "input" and _image(net.input_shape))
        if kind == "linear":
            if image_in:
                t = _deserialize(t, _pixels_of(net.shape_of(src)))
            if f > 1:
                from .folded import FoldedPlan
                fp = FoldedPlan.make(node.layer, fmt_in, f)
                out = _pipe(t, fp.latency, fp.cycles_per_vector)
            else:
                plan = plans.get(node.name) or LayerPlan(node.layer, fmt_in, levels_per_stage)
                out = _pipe(t, plan.latency, 1)
        elif kind == "conv":
            if not image_in:
                t = _serialize(t, _pixels_of(node.layer.in_shape))
            if f > 1:
                from .folded import FoldedPlan
                fp = FoldedPlan.make(node.layer.patch, fmt_in, f)
                latency, rate = fp.latency, fp.cycles_per_vector
            else:
                plan = plans.get(node.name) or LayerPlan(node.layer.patch, fmt_in,
                                                         levels_per_stage)
                latency, rate = plan.latency, 1
            out = _conv_times(node.layer.geometry, t, latency, rate)
        elif kind == "pool":
            h, w, c = net.shape_of(src)
            out = (_deserialize(t, h * w) if node.mode == "global" else
                   _pool_times(t, h, w, node.size))
        elif kind == "flatten":
            out = _deserialize(t, _pixels_of(net.shape_of(src))) if image_in else t
        else:       # add: every input's transfer j is taken when the last of them is there
            ins = [times[name] for name in node.inputs]
            taken = [max(col) for col in zip(*ins)]
            for k, arrivals in enumerate(ins):
                waiting, first = 1, 0
                for j, when in enumerate(taken):
                    while first < len(arrivals) and arrivals[first] <= when:
                        first += 1
                    waiting = max(waiting, first - j)
                depths[(node.name, k)] = waiting + _FIFO_SLACK
            out = _pipe(taken, 1, 1)
        times[node.name] = out
    return depths


#: Entries a :class:`~.nodes.SkipFifo` needs beyond the transfers waiting in it (skip_depths).
_FIFO_SLACK = 2


def _plans(net, levels_per_stage, share, fold, skip=()):
    """The :class:`~.layer.LayerPlan` of every parallel linear and conv node not in ``skip``,
    by name (made once, for the units and for :func:`skip_depths`)."""
    from .layer import LayerPlan
    return {node.name: LayerPlan(node.layer.patch if node.KIND == "conv" else node.layer,
                                 net.format_of(node.inputs[0]), levels_per_stage, share)
            for node in net.nodes
            if node.KIND in ("linear", "conv") and fold_of(fold, node.name) == 1
            and node.name not in skip}


def _latency(node, net, plans, levels_per_stage, fold):
    from .folded import FoldedPlan
    from .layer import LayerPlan
    fmt_in, f = net.format_of(node.inputs[0]), fold_of(fold, node.name)
    if f > 1:
        return FoldedPlan.make(node.layer, fmt_in, f).latency
    return (plans.get(node.name) or LayerPlan(node.layer, fmt_in, levels_per_stage)).latency


def _pixels_of(shape):
    return shape[0] * shape[1]


def _pipe(t, latency, rate):
    out = []
    for when in t:
        out.append(max(when + latency, out[-1] + rate if out else 0))
    return out


def _serialize(t, pixels):
    out = []
    for when in t:
        start = max(when + 1, out[-1] + 1 if out else 0)
        out.extend(range(start, start + pixels))
    return out


def _deserialize(t, pixels):
    return [t[(j + 1) * pixels - 1] + 1 for j in range(len(t) // pixels)]


def _pool_times(t, h, w, q):
    per, out = h * w, []
    for image in range(len(t) // per):
        base = image * per
        for y in range(h // q):
            for x in range(w // q):
                need = base + ((y + 1) * q - 1) * w + (x + 1) * q - 1
                out.append(max(t[need], out[-1] + 1 if out else 0))
    return out


def _conv_times(g, t, patch_latency, rate):
    """Output pixel times of a :class:`~.conv.StreamingConv`: patch row I is sent once the
    rows its windows read are in (one window per ``rate`` clocks), comes back
    ``patch_latency`` later and is emitted one pixel per clock (pooling as it passes)."""
    kh, sh, pad_h = g.window[0], g.stride[0], g.padding[0]
    (ph, pw), (h_out, w_out), p = g.patches, g.conv_hw, g.p
    q = g.pool_size if g.pool != "none" else 1
    per, out = g.height * g.width, []
    for image in range(len(t) // per):
        base = image * per
        rows = []     # emission time of each conv output row
        for i in range(ph):
            need = min(max(sh * p * i - pad_h + kh, 1), g.height)
            ready = t[base + need * g.width - 1] + 1
            start = max(ready, rows[-1] + 1 if rows else 0) + pw * rate + patch_latency
            for a in range(min(p, h_out - p * i)):
                rows.append(max(start + a * w_out, rows[-1] + w_out if rows else 0))
        for y in range(h_out // q):
            for x in range(w_out // q):
                when = rows[(y + 1) * q - 1] + (x + 1) * q - 1
                out.append(max(when, out[-1] + 1 if out else 0))
    return out
