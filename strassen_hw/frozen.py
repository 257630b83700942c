"""The frozen network: the one contract between training and hardware.

A frozen network holds only integers and fixed-point formats. It is stored as one JSON file
(format ``strassen-hw-frozen``: version 1, a chain of linear layers; 2, with convolution
layers from :mod:`.frozen_conv`; 3, a graph of named nodes from :mod:`.graph`; documented field by
field in ``docs/frozen-format.md``) and validated when built: the constructors of
:class:`Format`, :class:`FrozenLayer`, the nodes and :class:`FrozenNetwork` check every rule, so
a network made in Python, read by :func:`load` or drawn by :func:`random_network` obeys the same
ones. Everything downstream (reference, hardware, simulation) reads it; nothing here imports
torch or amaranth.

This module is the contract's front: the file codec (:func:`from_json`, :func:`load`,
:func:`dumps`, :func:`save`), :func:`random_network`, and the names of the modules below it
(:mod:`.formats`, :mod:`.frozen_layer`, :mod:`.frozen_conv`, :mod:`.graph`), which import
nothing from here.

Per layer, with integer input vector ``x`` (exact integers, no width limit)::

    u = W_b @ x                                    # ternary, additions only
    p = round_shift(a_tilde * u, product_shift)    # the r multiplications
    v = W_c @ p + bias                             # ternary, additions only
    y = saturate(relu?(round_shift(v, shift)))     # requantization to the output format

A layer's ``kind`` names its structure: ``"strassen"`` (any ternary ``W_b``, ``W_c``), or one of
the two baselines that are Strassen layers of a fixed shape (:data:`KINDS`): ``"twn"`` (a
ternary-weight layer: ``W_b`` the ternary weights, ã one α per output, ``W_c`` the identity) and
``"dense"`` (an integer-weight layer: row ``i·n_in + j`` of ``W_b`` selects input ``j``,
ã[i·n_in + j] is the weight ``w_ij``, ``W_c`` sums each output's ``n_in`` products). The
arithmetic is the same for every kind; the constructor checks the structure.
"""

import json
import os
import tempfile

import numpy as np

from .formats import (FORMAT, KINDS, MAX_NAME, MAX_SHIFT, ROUNDING, Format, FrozenError,
                      _MAX_DIGITS, _MAX_FORMAT_WIDTH, _check_format, _fail, _int, _relabel,
                      _show, check_name, signed_width)
from .frozen_conv import CONV_KEYS, ConvGeometry, FrozenConvLayer
from .frozen_layer import FrozenLayer, dense_layer, stage_ranges, ternary_range, twn_layer
from .graph import MAX_NODES as _MAX_NODES, NODE_KINDS, Add, Conv, Flatten, FrozenNetwork, Linear, Pool

__all__ = [
    "FORMAT", "VERSION", "VERSIONS", "ROUNDING", "KINDS", "MAX_SHIFT", "MAX_NAME",
    "FrozenError", "Format", "FrozenLayer", "FrozenConvLayer", "ConvGeometry", "FrozenNetwork",
    "Linear", "Conv", "Pool", "Flatten", "Add",
    "check_name", "dense_layer", "twn_layer", "signed_width", "stage_ranges", "ternary_range",
    "from_json", "dumps", "load", "save", "atomic_write", "random_network",
]

VERSION = 1
#: Versions read: 1 (linear layers), 2 (also convolution layers, :mod:`.frozen_conv`) and 3
#: (a graph of nodes, :mod:`.graph`); a network is written as the lowest version that holds it.
VERSIONS = (1, 2, 3)

# --- file I/O ---------------------------------------------------------------------------------

_TOP_KEYS = ("format", "version", "name", "input", "layers")
_LAYER_KEYS = ("w_b", "a_tilde", "a_width", "a_frac_bits", "w_c", "bias", "bias_width",
               "product_shift", "product_rounding", "shift", "rounding", "relu", "output")
#: Layer fields that may be left out (then their default holds).
_LAYER_OPTIONAL = ("kind",)


def _keys(where, item, keys, optional=()):
    """Every key of ``keys`` present in the object ``item``, perhaps some of ``optional``, and
    no other."""
    missing = [key for key in keys if key not in item]
    if missing:
        _fail(where, f"missing field '{missing[0]}'")
    unknown = sorted(str(key) for key in item if key not in keys and key not in optional)
    if unknown:
        _fail(where, f"unknown field {_show(unknown[0])}; remove it (allowed: "
                     f"{', '.join(keys + optional)})")


def _format(where, value):
    if not isinstance(value, dict):
        _fail(where, "must be an object with exactly the keys 'width' and 'signed'")
    _keys(where, value, ("width", "signed"))
    _check_format(where, value["width"], value["signed"])
    return Format(value["width"], value["signed"])


def _what_it_is(doc):
    """Why ``doc`` is not a frozen network, for the error message."""
    if isinstance(doc, dict) and {"W_a", "W_b", "W_c"} <= set(doc):
        return ("a matrix-multiplication solution from 'discover', not a frozen network; "
                "'generate' and 'simulate' take it, 'reference' does not")
    kind = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(doc), "a number")
    return (f"not a frozen network (the JSON is {kind} without \"format\": \"{FORMAT}\"); "
            "write one with 'strassen-hw random' or 'strassen-hw freeze'")


def from_json(doc):
    """Build a validated :class:`FrozenNetwork` from the decoded JSON document ``doc``."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        _fail("", _what_it_is(doc))
    if "version" not in doc:
        _fail("network", "missing field 'version'")
    version = doc["version"]
    if type(version) is not int or version not in VERSIONS:
        _fail("", f"version {_show(version)} is not supported; this strassen-hw reads versions "
                  "1, 2 and 3 (the integers)")
    if version == 3:
        return _graph_from_json(doc)
    _keys("network", doc, _TOP_KEYS)
    if not isinstance(doc["layers"], list):
        _fail("network", "'layers' must be a list of layer objects")
    fmt = _format("network input", doc["input"])
    check_name(doc["name"])
    if not doc["layers"]:
        _fail("network", "'layers' is empty; a network needs at least one layer")
    layers = []
    for index, item in enumerate(doc["layers"]):
        where = f"layer {index}"
        if not isinstance(item, dict):
            _fail(where, "must be an object")
        if "conv" in item:
            layers.append(_conv_from_json(where, item, version))
            continue
        layers.append(_layer_from_json(where, item))
    return FrozenNetwork(name=doc["name"], input=fmt, layers=layers)


def _layer_from_json(where, item):
    """A :class:`FrozenLayer` from its object, errors labelled ``where``."""
    if not isinstance(item, dict):
        _fail(where, "must be an object")
    _keys(where, item, _LAYER_KEYS, _LAYER_OPTIONAL)
    output = _format(f"{where} output", item["output"])
    try:
        return FrozenLayer(**{**item, "output": output})
    except FrozenError as e:
        raise _relabel(e, "layer", where) from None


_GRAPH_KEYS = ("format", "version", "name", "input", "input_shape", "nodes")
#: The fields of each node kind, after ``name``, ``kind`` and ``inputs``.
_NODE_KEYS = {"linear": ("layer",), "conv": ("conv", "patch"), "flatten": (),
              "pool": ("mode",), "add": ("align", "shift", "rounding", "relu", "output")}
_POOL_KEYS = {"global": ("shift", "output")}


def _node_from_json(index, item):
    where = f"node {index}"
    if not isinstance(item, dict):
        _fail(where, "must be an object")
    for key in ("name", "kind", "inputs"):
        if key not in item:
            _fail(where, f"missing field '{key}'")
    if isinstance(item["name"], str) and len(item["name"]) <= MAX_NAME:
        where = f"node '{item['name']}'"
    kind = item["kind"]
    if not isinstance(kind, str) or kind not in NODE_KINDS:
        _fail(where, f"'kind' is {_show(kind)}; use one of {', '.join(NODE_KINDS)}")
    keys = ("name", "kind", "inputs") + _NODE_KEYS[kind]
    if kind == "pool":
        mode = item.get("mode")
        keys += _POOL_KEYS.get(mode, ("size",)) if isinstance(mode, str) else ()
    _keys(where, item, keys)
    name, inputs = item["name"], item["inputs"]
    if kind == "linear":
        return Linear(name, inputs, _layer_from_json(f"{where} layer", item["layer"]))
    if kind == "conv":
        return Conv(name, inputs, _conv_from_json(where, item, 3))
    if kind == "flatten":
        return Flatten(name, inputs)
    if kind == "pool":
        fields = {k: item[k] for k in keys[3:]}
        if "output" in fields:
            fields["output"] = _format(f"{where} output", fields["output"])
        return Pool(name, inputs, **fields)
    return Add(name, inputs, item["align"], item["shift"], item["rounding"], item["relu"],
               _format(f"{where} output", item["output"]))


def _graph_from_json(doc):
    _keys("network", doc, _GRAPH_KEYS)
    fmt = _format("network input", doc["input"])
    check_name(doc["name"])
    nodes = doc["nodes"]
    if not isinstance(nodes, list):
        _fail("network", "'nodes' must be a list of node objects")
    if len(nodes) > _MAX_NODES:
        _fail("network", f"'nodes' has {len(nodes)} nodes; at most {_MAX_NODES}")
    return FrozenNetwork(name=doc["name"], input=fmt, input_shape=doc["input_shape"],
                         nodes=[_node_from_json(k, item) for k, item in enumerate(nodes)])


def _conv_from_json(where, item, version):
    """A :class:`FrozenConvLayer` from its object ``{"conv": {...}, "patch": {...}}``."""
    if version < 2:
        _fail(where, "a convolution layer ('conv') needs version 2; set \"version\": 2")
    if version < 3:
        _keys(where, item, ("conv", "patch"))
    if not isinstance(item["conv"], dict):
        _fail(f"{where} conv", "must be an object")
    _keys(f"{where} conv", item["conv"], CONV_KEYS)
    for key in ("kernel", "stride", "padding"):
        if not isinstance(item["conv"][key], list) or len(item["conv"][key]) != 2:
            _fail(f"{where} conv", f"'{key}' must be a pair [rows, columns] of integers, not "
                                   f"{_show(item['conv'][key])}")
    try:
        geometry = ConvGeometry(**item["conv"])
    except FrozenError as e:
        raise _relabel(e, "conv", f"{where} conv") from None
    patch = _layer_from_json(f"{where} patch", item["patch"])
    try:
        return FrozenConvLayer(geometry, patch)
    except FrozenError as e:
        raise _relabel(e, "layer", where) from None


def _parse_int(text):
    if len(text) <= _MAX_DIGITS:
        return int(text)
    digits = len(text.lstrip("-"))
    if digits > _MAX_DIGITS:
        raise FrozenError(f"an integer of {digits} digits; no field of a frozen network holds "
                          "more than 19")
    return int(text)


def _parse_constant(text):
    raise FrozenError(f"{text} is not a JSON number; write integers")


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise FrozenError(f"duplicate field {_show(key)} in one object; keep one")
        seen[key] = value
    return seen


def load(path):
    """Read and validate a frozen network file. Raises :class:`FrozenError` with one line."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise FrozenError(f"{path}: no such file; write one with 'strassen-hw random' or "
                          "'strassen-hw freeze'") from None
    except UnicodeDecodeError:
        raise FrozenError(f"{path}: not a frozen network (not UTF-8 text)") from None
    except OSError as e:
        raise FrozenError(f"{path}: cannot read a frozen network ({e.strerror or e})") from None
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_int=_parse_int,
                         parse_constant=_parse_constant)
        return from_json(doc)
    except json.JSONDecodeError as e:
        raise FrozenError(f"{path}: not a frozen network (not JSON: {e.msg} at line {e.lineno})"
                          ) from None
    except RecursionError:
        raise FrozenError(f"{path}: not a frozen network (JSON nested too deeply)") from None
    except FrozenError as e:
        raise FrozenError(f"{path}: {e}") from None


def atomic_write(path, data):
    """Write ``data`` (bytes or str) to ``path`` so that ``path`` is either the old file or the
    whole new one, never a partial file: write a temporary file beside it, then rename.
    Raises OSError naming ``path`` (``e.filename``) when that cannot be done."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        if os.path.isdir(path):
            raise IsADirectoryError(21, "is a folder; give a file name", path)
        try:
            os.makedirs(directory, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise NotADirectoryError(20, f"cannot make the folder {directory}: a file is in "
                                         "the way", path) from None
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)   # as open() would make it, not mkstemp's 0600
        os.replace(tmp, path)
    except OSError as e:
        os.unlink(tmp)
        raise OSError(e.errno, e.strerror, path) from None
    except BaseException:
        os.unlink(tmp)
        raise


def _dump_layer(layer, indent):
    """A linear layer object, one matrix row per line, each line prefixed with ``indent``."""
    items = []
    for key, value in layer.items():
        if key in ("w_b", "w_c"):
            rows = f",\n{indent}    ".join(json.dumps(row) for row in value)
            items.append(f'{indent}   "{key}": [\n{indent}    {rows}\n{indent}   ]')
        else:
            items.append(f'{indent}   "{key}": {json.dumps(value)}')
    return f"{indent}  {{\n" + ",\n".join(items) + f"\n{indent}  }}"


def save(net, path):
    """Write ``net`` to ``path`` atomically as deterministic JSON."""
    atomic_write(path, dumps(net))


def _dump_conv(layer, indent):
    return (f'{indent}   "conv": {json.dumps(layer["conv"])},\n{indent}   "patch": '
            + _dump_layer(layer["patch"], indent + "   ").lstrip())


def _dump_node(node):
    """A version-3 node object: its short fields on the first line, a layer one matrix row
    per line."""
    head = {k: v for k, v in node.items() if k not in ("layer", "conv", "patch")}
    text = "  " + json.dumps(head)[:-1]
    if "layer" in node:
        return text + ',\n   "layer": ' + _dump_layer(node["layer"], "   ").lstrip() + "\n  }"
    if "patch" in node:
        return text + ",\n" + _dump_conv(node, "") + "\n  }"
    return text + "}"


def dumps(net):
    """The file text of ``net``: one matrix row per line, keys in a fixed order."""
    doc = net.to_json()
    if doc["version"] == 3:
        nodes = doc.pop("nodes")
        return (json.dumps(doc, indent=1)[:-2] + ',\n "nodes": [\n'
                + ",\n".join(_dump_node(node) for node in nodes) + "\n ]\n}\n")
    layers = doc.pop("layers")
    parts = [json.dumps(doc, indent=1)[:-2] + ',\n "layers": [\n']
    for index, layer in enumerate(layers):
        if "patch" in layer:        # a convolution: its geometry on one line, then the patch
            text = "  {\n" + _dump_conv(layer, "") + "\n  }"
        else:
            text = _dump_layer(layer, "")
        parts.append(text + ("," if index < len(layers) - 1 else "") + "\n")
    parts.append(" ]\n}\n")
    return "".join(parts)


# --- random networks --------------------------------------------------------------------------

def random_network(shapes, seed=0, name="net", input_width=8, a_width=8, bias_width=8,
                   density=2 / 3, out_width=8):
    """A random valid network, one layer per ``(n_in, r, n_out)`` in ``shapes``.

    Ternary entries are non-zero with probability ``density``; ã and bias are uniform over their
    widths. Every layer requantizes to ``out_width`` signed bits with ReLU between layers, with
    the shift that puts the 99th percentile of its outputs on random inputs just inside range.
    Widths follow the rules of the file (1..32); a bad one raises :class:`FrozenError`.
    """
    from .reference import layer_forward
    check_name(name)
    for key, width in (("input_width", input_width), ("a_width", a_width),
                       ("bias_width", bias_width), ("out_width", out_width)):
        _int("random_network", key, width, 1, _MAX_FORMAT_WIDTH)
    rng = np.random.default_rng(seed)
    fmt = Format(input_width, True)
    layers = []
    for index, (n_in, r, n_out) in enumerate(shapes):
        if layers and layers[-1].n_out != n_in:
            raise FrozenError(f"shape {index}: n_in = {n_in} but the previous layer has "
                              f"n_out = {layers[-1].n_out}; chain shapes so they match")

        def ternary(rows, cols):
            nz = rng.random((rows, cols)) < density
            return (nz * rng.choice(np.array([-1, 1], dtype=np.int8), (rows, cols))).astype(np.int8)

        half_a, half_b = 1 << (a_width - 1), 1 << (bias_width - 1)
        draft = FrozenLayer(
            w_b=ternary(r, n_in), w_c=ternary(n_out, r),
            a_tilde=rng.integers(-half_a, half_a, r, dtype=np.int64),
            bias=rng.integers(-half_b, half_b, n_out, dtype=np.int64),
            a_width=a_width, bias_width=bias_width, output=Format(out_width, True))
        # Pick the shift from the layer's own values on random inputs: the 99th percentile of
        # |W_c p + bias| lands just inside the output range.
        stages = {}
        layer_forward(draft, rng.integers(fmt.min, fmt.max + 1, (256, n_in)), stages)
        typical = float(np.percentile(np.abs(stages["v"]).astype(np.float64), 99))
        shift = min(MAX_SHIFT, max(0, int(np.ceil(np.log2(max(typical, 1)))) - (out_width - 1)))
        last = index == len(shapes) - 1
        layer = FrozenLayer(**{**draft.__dict__, "shift": shift, "rounding": "half_up",
                               "relu": not last})
        layers.append(layer)
        fmt = layer.output
    return FrozenNetwork(name=name, input=Format(input_width, True), layers=layers)
