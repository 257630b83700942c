"""The frozen LSTM: an ``lstm`` node of the frozen graph, and its exact integer reference.

An :class:`LSTM` node holds the eight products of one LSTM layer as ordinary
:class:`~strassen_hw.frozen.FrozenLayer` objects (``x_i, x_f, x_g, x_o`` read the node's
input, ``h_i, h_f, h_g, h_o`` the hidden state), the integer formats of the cell and hidden
state, sigmoid and tanh as lookup tables over the quantized pre-activation range, the rounding
shifts of the element-wise products and the initial state. Everything is an integer; one step,
for input ``x`` (n_in integers) and state ``(h, c)`` (n integers each)::

    z_k = X_k(x) + H_k(h)                       k = i, f, g, o   (each a FrozenLayer, exact)
    a_k = clip(z_k, table_min, table_min + L - 1) - table_min    (table address, L entries)
    i, f, o = sigmoid[a_i], sigmoid[a_f], sigmoid[a_o];   g = tanh[a_g]
    c' = sat_cell(round_shift(f * c, fc_shift) + round_shift(i * g, ig_shift))
    a_c = clip(round_shift(c', cell_shift), table_min, table_min + L - 1) - table_min
    h' = sat_hidden(round_shift(o * tanh[a_c], h_shift))

``round_shift`` is the project's (:func:`strassen_hw.reference.round_shift`) with
``elementwise_rounding``; ``sat`` clamps to a format. The real values: a pre-activation ``z`` is
``z / 2^preact_frac``, a gate or table value ``v / 2^gate_frac``, the cell ``c / 2^cell_frac``,
the hidden state ``h / 2^hidden_frac``. The tables hold ``round_half_up(2^gate_frac ·
σ((table_min + j) / 2^preact_frac))`` and the same of tanh (``table_rounding = "half_up"``);
the constructor recomputes them and refuses a table that differs. The shifts put every product
on its result's grid, so they follow from the fractions and are checked against them:
``fc_shift = gate_frac``, ``ig_shift = 2·gate_frac − cell_frac``, ``h_shift = 2·gate_frac −
hidden_frac``, ``cell_shift = cell_frac − preact_frac``.

:class:`LSTM` is a :class:`~strassen_hw.graph.Node` (``KIND = "lstm"``): a
:class:`~strassen_hw.graph.FrozenNetwork` validates it with the other kinds (names, order,
shapes, formats). :func:`sequence_forward` runs such a graph over sequences: lstm nodes
recurrently, every other kind step by step with the reference's own function.
:class:`FrozenLM` is the character language model (one-hot characters, lstm nodes in a chain,
a linear decoder to logits) and its ``alphabet``; :func:`save` / :func:`load` write and read it
as a version-3 file (the graph's layout plus ``alphabet``; docs/frozen-format.md, "LSTM
nodes"). Until :mod:`strassen_hw.frozen` registers the kind, only :func:`load` reads lstm
nodes. numpy only: no torch here.
"""

import json
import math

import numpy as np

from . import frozen
from .formats import (FORMAT, MAX_NAME, MAX_SHIFT, ROUNDING, Format, FrozenError, _NAME, _int,
                      _integers, _show)
from .frozen_layer import FrozenLayer
from .graph import FrozenNetwork, Linear, Node, size
from .reference import FORWARD, check_inputs, layer_forward, round_shift, saturate

__all__ = ["GATES", "PRODUCTS", "TABLE_ROUNDING", "LSTM", "FrozenLM", "language_model",
           "activation_table", "step", "run", "initial_state", "sequence_forward", "lm_forward",
           "logit_step", "one_hot", "bits_per_char", "save", "load", "dumps", "from_json"]

#: The gates, in the order of ``nn.LSTM``'s weight rows.
GATES = ("i", "f", "g", "o")
#: The product keys: input-to-hidden then hidden-to-hidden, one per gate.
PRODUCTS = tuple(f"x_{g}" for g in GATES) + tuple(f"h_{g}" for g in GATES)
#: How the table entries are rounded (the only rule: ties toward +infinity).
TABLE_ROUNDING = ("half_up",)
#: The version of the file written by :func:`save`.
VERSION = 3
#: Largest table (entries) and ``gate_frac``: int64 holds every element-wise product
#: (at most 2^(gate_frac+1) · 2^31 < 2^49).
MAX_TABLE = 1 << 16
MAX_GATE_FRAC = 16
_FUNCTIONS = {"sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)), "tanh": np.tanh}


def _fail(where, message):
    raise FrozenError(f"{where}: {message}")


def _exact(function, table_min, size, preact_frac, gate_frac):
    z = (np.arange(size, dtype=np.float64) + table_min) / 2.0 ** preact_frac
    return _FUNCTIONS[function](z) * 2.0 ** gate_frac


def activation_table(function, table_min, size, preact_frac, gate_frac):
    """The table of ``function`` (``"sigmoid"`` or ``"tanh"``): int64 array of ``size`` entries,
    entry j = round_half_up(2^gate_frac · f((table_min + j) / 2^preact_frac))."""
    return np.floor(_exact(function, table_min, size, preact_frac, gate_frac) + 0.5).astype(
        np.int64)


def _check_table(where, key, table, node):
    """``table`` must equal :func:`activation_table`'s, except by one where the exact value is
    within 1e-9 of a tie (float64 cannot decide those)."""
    args = (key, node.table_min, len(table), node.preact_frac, node.gate_frac)
    exact = _exact(*args)
    want = np.floor(exact + 0.5).astype(np.int64)
    tie = np.abs(exact - np.floor(exact) - 0.5) < 1e-9
    bad = np.flatnonzero((table != want) & ~(tie & (np.abs(table - want) <= 1)))
    if len(bad):
        j = int(bad[0])
        _fail(where, f"'{key}'[{j}] = {table[j]} but the rule (round half up of "
                     f"2^gate_frac·{key}((table_min + j)/2^preact_frac)) gives {want[j]}; "
                     "rebuild the table with strassen_hw.lstm.activation_table")


class LSTM(Node):
    """One frozen LSTM layer: a node of kind ``"lstm"`` of the version-3 graph
    (:class:`~strassen_hw.graph.Node`). The module docstring gives the arithmetic;
    ``docs/frozen-format.md`` ("LSTM nodes") every field. It reads a vector of ``n_in`` values
    per step and gives its hidden state, n values in the ``hidden`` format.

    Parameters
    ----------
    name : str
        Node name.
    inputs : sequence of one str
        The node that gives ``x`` each step, or ``"input"``.
    products : dict of str → FrozenLayer
        The eight products (:data:`PRODUCTS`); ``x_*`` take n_in inputs, ``h_*`` n = the hidden
        size; all give n outputs. The ``h_*`` read the hidden state in the ``hidden`` format.
    table_min, preact_frac, gate_frac : int
        Address 0 of both tables is the pre-activation ``table_min``; fractions of the
        pre-activations and of the table values.
    sigmoid, tanh : array of int, (L,)
    cell, hidden : Format
        The state formats (signed); ``cell_frac``, ``hidden_frac`` their fractions.
    fc_shift, ig_shift, h_shift, cell_shift : int
        Rounding shifts of ``f·c``, ``i·g``, ``o·tanh(c)`` and of ``c`` to a table address.
    h0, c0 : array of int, (n,)
        The initial state (the state after a reset).
    table_rounding : str, ``"half_up"``
    elementwise_rounding : str, ``"floor"`` or ``"half_up"``

    Raises
    ------
    FrozenError
        A field breaks a rule; one line starting with ``node '<name>'``.
    """
    KIND = "lstm"
    ARITY = 1
    FIELDS = ("products", "table_min", "preact_frac", "gate_frac", "table_rounding", "sigmoid",
              "tanh", "cell", "cell_frac", "hidden", "hidden_frac", "fc_shift", "ig_shift",
              "h_shift", "cell_shift", "elementwise_rounding", "h0", "c0")

    def __init__(self, name, inputs, products, table_min, preact_frac, gate_frac, sigmoid,
                 tanh, cell, cell_frac, hidden, hidden_frac, fc_shift, ig_shift, h_shift,
                 cell_shift, h0, c0, table_rounding="half_up", elementwise_rounding="half_up"):
        super().__init__(name, inputs)
        if not 1 <= len(name) <= MAX_NAME or not _NAME.fullmatch(name) \
                or name == "input":
            _fail(self.where, f"'name' = {_show(name)} is not a valid node name; use 1 to "
                              f"{MAX_NAME} ASCII letters, digits and underscores, starting "
                              "with a letter, other than 'input'")
        self.products, self.table_min, self.preact_frac = products, table_min, preact_frac
        self.gate_frac, self.sigmoid, self.tanh = gate_frac, sigmoid, tanh
        self.cell, self.cell_frac, self.hidden, self.hidden_frac = cell, cell_frac, hidden, \
            hidden_frac
        self.fc_shift, self.ig_shift, self.h_shift, self.cell_shift = fc_shift, ig_shift, \
            h_shift, cell_shift
        self.h0, self.c0 = h0, c0
        self.table_rounding, self.elementwise_rounding = table_rounding, elementwise_rounding
        self._validate()

    def _validate(self):
        where = self.where
        products = self.products
        if not isinstance(products, dict) or set(products) != set(PRODUCTS):
            got = sorted(map(str, products)) if isinstance(products, dict) else products
            _fail(where, f"'products' must hold exactly {', '.join(PRODUCTS)}, not "
                         f"{_show(got)}")
        self.products = {k: products[k] for k in PRODUCTS}
        for key, layer in self.products.items():
            if not isinstance(layer, FrozenLayer):
                _fail(where, f"product '{key}' must be a FrozenLayer, not "
                             f"{type(layer).__name__}")
        n = self.products["h_i"].n_out
        n_in = self.products["x_i"].n_in
        for key, layer in self.products.items():
            want_in = n_in if key.startswith("x") else n
            if layer.n_out != n:
                _fail(where, f"product '{key}' has {layer.n_out} outputs but 'h_i' has {n}; "
                             "every product gives the hidden size")
            if layer.n_in != want_in:
                _fail(where, f"product '{key}' has {layer.n_in} inputs but needs {want_in} "
                             f"({'the node input' if key.startswith('x') else 'the hidden size'})")
        for key, lo, hi in (("table_min", -(1 << 31), (1 << 31) - 1),
                            ("preact_frac", 0, 32), ("gate_frac", 1, MAX_GATE_FRAC),
                            ("cell_frac", 0, 32), ("hidden_frac", 0, 32),
                            ("fc_shift", 0, MAX_SHIFT), ("ig_shift", 0, MAX_SHIFT),
                            ("h_shift", 0, MAX_SHIFT), ("cell_shift", 0, MAX_SHIFT)):
            setattr(self, key, _int(where, key, getattr(self, key), lo, hi))
        for key in ("cell", "hidden"):
            fmt = getattr(self, key)
            if not isinstance(fmt, Format) or not fmt.signed:
                _fail(where, f"'{key}' must be a signed Format, not {_show(fmt)}")
        for key, value in (("table_rounding", self.table_rounding),
                           ("elementwise_rounding", self.elementwise_rounding)):
            allowed = TABLE_ROUNDING if key == "table_rounding" else ROUNDING
            if not isinstance(value, str) or value not in allowed:
                _fail(where, f"'{key}' is {_show(value)}; use one of {', '.join(allowed)}")
        g = self.gate_frac
        for key, want in (("fc_shift", g), ("ig_shift", 2 * g - self.cell_frac),
                          ("h_shift", 2 * g - self.hidden_frac),
                          ("cell_shift", self.cell_frac - self.preact_frac)):
            if getattr(self, key) != want:
                _fail(where, f"'{key}' = {getattr(self, key)} but the fractions need {want} "
                             "(see docs/frozen-format.md, LSTM nodes); fix the shift or the "
                             "fractions")
        for key in ("sigmoid", "tanh"):
            setattr(self, key, _integers(where, key, getattr(self, key), 1))
        table_size = len(self.sigmoid)
        if len(self.tanh) != table_size:
            _fail(where, f"'tanh' has {len(self.tanh)} entries but 'sigmoid' has {table_size}; "
                         "both tables cover the same addresses")
        if table_size > MAX_TABLE:
            _fail(where, f"the tables have {table_size} entries; at most {MAX_TABLE} are "
                         "allowed")
        for key in ("sigmoid", "tanh"):
            _check_table(where, key, getattr(self, key), self)
        for key, fmt in (("h0", self.hidden), ("c0", self.cell)):
            value = _integers(where, key, getattr(self, key), 1)
            if value.shape != (n,):
                _fail(where, f"'{key}' has {len(value)} entries; it needs one per hidden unit "
                             f"({n})")
            bad = np.flatnonzero((value < fmt.min) | (value > fmt.max))
            if len(bad):
                _fail(where, f"'{key}'[{bad[0]}] = {value[bad[0]]} is outside the "
                             f"{'hidden' if key == 'h0' else 'cell'} format {fmt.min}..{fmt.max}")
            setattr(self, key, value)

    # -- the graph's node interface -------------------------------------------------------------

    def shape(self, shapes, sources):
        (shape,) = shapes
        if size(shape) != self.n_in:
            _fail(self.where, f"the 'x_*' products have {self.n_in} inputs but its input "
                              f"'{self.inputs[0]}' gives {size(shape)} values")
        return (self.n,)

    def format(self, formats):
        return self.hidden

    @property
    def n_in(self):
        return self.products["x_i"].n_in

    @property
    def n(self):
        """The hidden size."""
        return self.products["h_i"].n_out

    @property
    def output(self):
        """The format of the node's output (its hidden state)."""
        return self.hidden

    @property
    def table_size(self):
        return len(self.sigmoid)

    def multiplications(self):
        """Multiplications per step: ``{"products": Σ r of the eight products,
        "elementwise": 3·n}``."""
        return {"products": sum(layer.r for layer in self.products.values()),
                "elementwise": 3 * self.n}

    def fields(self):
        return {
            "products": {key: layer.to_json() for key, layer in self.products.items()},
            "table_min": self.table_min, "preact_frac": self.preact_frac,
            "gate_frac": self.gate_frac, "table_rounding": self.table_rounding,
            "sigmoid": self.sigmoid.tolist(), "tanh": self.tanh.tolist(),
            "cell": self.cell.to_json(), "cell_frac": self.cell_frac,
            "hidden": self.hidden.to_json(), "hidden_frac": self.hidden_frac,
            "fc_shift": self.fc_shift, "ig_shift": self.ig_shift, "h_shift": self.h_shift,
            "cell_shift": self.cell_shift, "elementwise_rounding": self.elementwise_rounding,
            "h0": self.h0.tolist(), "c0": self.c0.tolist(),
        }

    @classmethod
    def from_json(cls, item, where="node"):
        """An :class:`LSTM` from its JSON object (``to_json``'s form); errors name ``where``
        (or the node's name)."""
        if not isinstance(item, dict):
            _fail(where, "must be an object")
        if isinstance(item.get("name"), str) and len(item["name"]) <= MAX_NAME:
            where = f"node '{item['name']}'"
        frozen._keys(where, item, ("name", "kind", "inputs") + cls.FIELDS)
        if item["kind"] != cls.KIND:
            _fail(where, f"'kind' is {_show(item['kind'])}, not 'lstm'")
        if not isinstance(item["products"], dict):
            _fail(where, "'products' must be an object of eight layers")
        frozen._keys(f"{where} products", item["products"], PRODUCTS)
        products = {key: frozen._layer_from_json(f"{where} product {key}",
                                                 item["products"][key]) for key in PRODUCTS}
        fields = {k: v for k, v in item.items() if k not in ("kind", "products")}
        fields["cell"] = frozen._format(f"{where} cell", item["cell"])
        fields["hidden"] = frozen._format(f"{where} hidden", item["hidden"])
        return cls(**{**fields, "products": products})


# --- the reference -------------------------------------------------------------------------

def _address(node, z):
    return np.clip(z, node.table_min, node.table_min + node.table_size - 1) - node.table_min


def _gates_x(node, x):
    """The input products ``X_k(x)`` per gate, int64 (batch, n)."""
    return {g: np.asarray(layer_forward(node.products[f"x_{g}"], x)).astype(np.int64)
            for g in GATES}


def step(node, x, state, stages=None, zx=None):
    """One step of ``node`` for a batch: ``x`` int64 (batch, n_in), ``state = (h, c)`` int64
    (batch, n) each. Returns the new ``(h, c)``. ``stages`` (a dict) receives ``z`` (per gate),
    the gate values ``i, f, g, o`` and ``tanh_c``. ``zx``: the input products of ``x`` if
    already computed (then ``x`` is not read)."""
    h, c = state
    zx = _gates_x(node, x) if zx is None else zx
    z = {g: zx[g] + np.asarray(layer_forward(node.products[f"h_{g}"], h)).astype(np.int64)
         for g in GATES}
    i, f, o = (node.sigmoid[_address(node, z[g])] for g in "ifo")
    g = node.tanh[_address(node, z["g"])]
    rnd = node.elementwise_rounding
    c = saturate(round_shift(f * c, node.fc_shift, rnd) + round_shift(i * g, node.ig_shift, rnd),
                 node.cell)
    tanh_c = node.tanh[_address(node, round_shift(c, node.cell_shift, rnd))]
    h = saturate(round_shift(o * tanh_c, node.h_shift, rnd), node.hidden)
    if stages is not None:
        stages.update(z=z, i=i, f=f, g=g, o=o, tanh_c=tanh_c)
    return h, c


def initial_state(node, batch):
    """``(h0, c0)`` repeated for ``batch`` sequences."""
    return (np.tile(node.h0, (batch, 1)), np.tile(node.c0, (batch, 1)))


def run(node, xs, state=None):
    """Run ``node`` over sequences ``xs`` int64 (batch, steps, n_in) from ``state`` (default:
    the initial state). Returns ``(hs, state)``: the hidden states (batch, steps, n) and the
    final ``(h, c)``. The input products of all steps are formed first (they do not depend on
    the state); then the steps run in order."""
    xs = np.asarray(xs, dtype=np.int64)
    batch, steps = xs.shape[:2]
    state = initial_state(node, batch) if state is None else state
    zx = {g: v.reshape(batch, steps, node.n)
          for g, v in _gates_x(node, xs.reshape(batch * steps, -1)).items()}
    hs = np.empty((batch, steps, node.n), dtype=np.int64)
    for t in range(steps):
        state = step(node, None, state, zx={g: v[:, t] for g, v in zx.items()})
        hs[:, t] = state[0]
    return hs, state


# --- sequences through a graph --------------------------------------------------------------

def sequence_forward(net, xs, state=None, return_state=False):
    """Exact outputs of the graph ``net`` (a :class:`~strassen_hw.graph.FrozenNetwork` with
    ``lstm`` nodes) for sequences ``xs`` (batch, steps, n_in) of integer input vectors: int64
    (batch, steps, n_out). Every node runs in topological order; an ``lstm`` node over all
    steps (:func:`run`) from ``state[name]`` (default: its initial state), every other kind step
    by step with the reference's function (:data:`strassen_hw.reference.FORWARD`). With
    ``return_state`` also the final ``{name: (h, c)}`` of the lstm nodes."""
    xs = np.asarray(xs)
    if xs.ndim != 3:
        raise FrozenError(f"inputs have shape {xs.shape}; give (sequences, steps, {net.n_in})")
    batch, steps = xs.shape[:2]
    values = {"input": check_inputs(net, xs.reshape(batch * steps, -1)).reshape(
        batch, steps, -1)}
    states = dict(state or {})
    for node in net.nodes:
        inputs = [values[i] for i in node.inputs]
        if node.KIND == LSTM.KIND:
            values[node.name], states[node.name] = run(node, inputs[0], states.get(node.name))
        else:
            flat = [v.reshape(batch * steps, -1) for v in inputs]
            out = np.asarray(FORWARD[node.KIND](net, node, flat))
            values[node.name] = out.reshape(batch, steps, -1)
    out = values[net.nodes[-1].name]
    return (out, states) if return_state else out


# --- the language model ----------------------------------------------------------------------

class FrozenLM:
    """A character language model in integers: a version-3 graph ``net`` whose input is the
    one-hot vector of a character (its format holds 1: 1 for the character, 0 elsewhere), then
    ``lstm`` nodes in a chain, then a ``linear`` decoder to one integer logit per character of
    the vocabulary; and the ``alphabet`` (character k is index k; may be empty).

    Raises
    ------
    FrozenError
        The graph is not such a chain, or the alphabet does not match the vocabulary.
    """

    def __init__(self, net, alphabet=""):
        if not isinstance(net, FrozenNetwork):
            _fail("network", f"a language model is a FrozenNetwork, not {_show(net)}")
        self.net, self.alphabet = net, alphabet
        *cells, decoder = net.nodes
        if not cells or not all(isinstance(c, LSTM) for c in cells):
            _fail("network", "a language model is one or more lstm nodes, then the decoder")
        if not isinstance(decoder, Linear):
            _fail(decoder.where, "the last node of a language model must be the linear decoder")
        before = "input"
        for node in net.nodes:
            if node.inputs != (before,):
                _fail(node.where, f"reads {node.inputs[0]!r}; in a language model each node "
                                  f"reads the one before it ({before!r})")
            before = node.name
        if net.input.max < 1:
            _fail("network", "the one-hot input format must hold 1; use {\"width\": 1, "
                             "\"signed\": false} or wider")
        if net.n_in != net.n_out:
            _fail("network", f"the one-hot input has {net.n_in} entries but the decoder gives "
                             f"{net.n_out} logits; both are the vocabulary size")
        if not isinstance(alphabet, str) or (alphabet and len(alphabet) != net.n_out):
            _fail("network", f"'alphabet' must be a string of {net.n_out} characters (one per "
                             "index) or empty")
        self.cells, self.decoder = tuple(cells), decoder.layer

    @property
    def name(self):
        return self.net.name

    @property
    def vocab(self):
        return self.net.n_out

    def multiplications(self):
        """Multiplications per character: ``products`` (Σ r of every product and the
        decoder), ``elementwise`` (3·n per lstm node)."""
        counts = [c.multiplications() for c in self.cells]
        return {"products": sum(c["products"] for c in counts) + self.decoder.r,
                "elementwise": sum(c["elementwise"] for c in counts)}

    def to_json(self):
        doc = self.net.to_json()
        nodes = doc.pop("nodes")
        return {**doc, "alphabet": self.alphabet, "nodes": nodes}


def language_model(name, cells, decoder, alphabet="", decoder_name="decoder",
                   input=Format(1, False)):
    """A :class:`FrozenLM` from its lstm nodes (a chain, the first reading ``"input"``) and the
    decoder layer."""
    cells = list(cells)
    if not cells:
        _fail("network", "a language model needs one or more lstm nodes")
    nodes = cells + [Linear(decoder_name, [cells[-1].name], decoder)]
    net = FrozenNetwork(name, input, nodes=nodes, input_shape=(cells[0].n_in,))
    return FrozenLM(net, alphabet)


def logit_step(lm):
    """The real value of one unit of the logits: ``2^(product_shift + shift - a_frac_bits)`` of
    the decoder (whose ã carries the hidden state's step, as :func:`~strassen_hw.train.lstm.
    freeze_lm` writes it)."""
    d = lm.decoder
    return 2.0 ** (d.product_shift + d.shift - d.a_frac_bits)


def one_hot(lm, chars):
    """Character indices (batch, steps) → one-hot int64 (batch, steps, vocab)."""
    chars = np.asarray(chars)
    if chars.dtype.kind not in "iu":
        raise FrozenError(f"characters have dtype {chars.dtype}; give integer indices")
    if chars.size and (chars.min() < 0 or chars.max() >= lm.vocab):
        raise FrozenError(f"a character index is outside 0..{lm.vocab - 1}")
    return (chars[..., None] == np.arange(lm.vocab)).astype(np.int64)


def lm_forward(lm, chars, state=None, return_state=False):
    """Exact integer logits (batch, steps, vocab) of ``lm`` for character indices ``chars``
    (batch, steps), from ``state`` (``{lstm name: (h, c)}``; default: the initial states).
    With ``return_state`` also the final states."""
    chars = np.asarray(chars)
    if chars.ndim != 2:
        raise FrozenError(f"characters have shape {chars.shape}; give (sequences, steps)")
    return sequence_forward(lm.net, one_hot(lm, chars), state, return_state)


# --- file I/O ------------------------------------------------------------------------------

_TOP_KEYS = ("format", "version", "name", "input", "input_shape", "alphabet", "nodes")


def from_json(doc):
    """A validated :class:`FrozenLM` from its decoded JSON document: a version-3 graph with
    ``lstm`` nodes and an ``alphabet``. Nodes of other kinds are read by
    :mod:`strassen_hw.frozen`."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        _fail("network", "not a frozen network (no \"format\": \"strassen-hw-frozen\")")
    if doc.get("version") != VERSION or type(doc.get("version")) is not int:
        _fail("network", f"version {_show(doc.get('version'))} is not a language model "
                         "file; an lstm network is version 3")
    frozen._keys("network", doc, _TOP_KEYS)
    nodes = doc["nodes"]
    if not isinstance(nodes, list) or len(nodes) < 2:
        _fail("network", "'nodes' must list one or more lstm nodes and then the decoder")
    built = [LSTM.from_json(item, f"node {k}")
             if isinstance(item, dict) and item.get("kind") == LSTM.KIND
             else frozen._node_from_json(k, item) for k, item in enumerate(nodes)]
    fmt = frozen._format("network input", doc["input"])
    frozen.check_name(doc["name"])
    net = FrozenNetwork(doc["name"], fmt, nodes=built, input_shape=doc["input_shape"])
    return FrozenLM(net, doc["alphabet"])


def dumps(lm):
    """Deterministic file text of ``lm`` (fixed key order, one node per line)."""
    doc = lm.to_json()
    nodes = doc.pop("nodes")
    head = json.dumps(doc, indent=1, ensure_ascii=True)[:-2]
    body = ",\n".join("  " + json.dumps(node, separators=(",", ":")) for node in nodes)
    return f'{head},\n "nodes": [\n{body}\n ]\n}}\n'


def save(lm, path):
    """Write ``lm`` to ``path`` atomically."""
    frozen.atomic_write(path, dumps(lm))


def load(path):
    """Read and validate a language-model file; one-line :class:`FrozenError` on any fault."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise FrozenError(f"{path}: no such file; write one with "
                          "benchmarks/lstm_bpc.py --save or strassen_hw.lstm.save") from None
    except UnicodeDecodeError:
        raise FrozenError(f"{path}: not a frozen network (not UTF-8 text)") from None
    except OSError as e:
        raise FrozenError(f"{path}: cannot read a frozen network ({e.strerror or e})") from None
    try:
        doc = json.loads(text, object_pairs_hook=frozen._no_duplicates,
                         parse_int=frozen._parse_int, parse_constant=frozen._parse_constant)
        return from_json(doc)
    except json.JSONDecodeError as e:
        raise FrozenError(f"{path}: not a frozen network (not JSON: {e.msg} at line "
                          f"{e.lineno})") from None
    except RecursionError:
        raise FrozenError(f"{path}: not a frozen network (JSON nested too deeply)") from None
    except FrozenError as e:
        raise FrozenError(f"{path}: {e}") from None


def bits_per_char(lm, chars, chunk=250):
    """Bits per character of ``lm`` on the sequences ``chars`` (batch, steps), each from the
    initial state: every character after the first is predicted from the integer logits (times
    :func:`logit_step`), softmax in float64. Runs ``chunk`` steps at a time."""
    chars = np.asarray(chars, dtype=np.int64)
    total, count, state = 0.0, 0, None
    for start in range(0, chars.shape[1] - 1, chunk):
        x = chars[:, start:min(start + chunk, chars.shape[1] - 1)]
        target = chars[:, start + 1:start + 1 + x.shape[1]]
        logits, state = lm_forward(lm, x, state, return_state=True)
        logits = logits.astype(np.float64) * logit_step(lm)
        logits -= logits.max(-1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        total -= np.take_along_axis(logp, target[..., None], -1).sum()
        count += target.size
    return float(total / count / math.log(2))
