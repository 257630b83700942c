"""The frozen network: the one contract between training and hardware.

A frozen network holds only integers and fixed-point formats. It is stored as one JSON file
(format ``strassen-hw-frozen``, version 1, documented field by field in ``docs/frozen-format.md``)
and validated when built: the constructors of :class:`Format`, :class:`FrozenLayer` and
:class:`FrozenNetwork` check every rule, so a network made in Python, read by :func:`load` or
drawn by :func:`random_network` obeys the same ones. Everything downstream (reference, hardware,
simulation) reads it; nothing here imports torch or amaranth.

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
import re
import tempfile
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "FORMAT", "VERSION", "ROUNDING", "KINDS", "MAX_SHIFT", "MAX_NAME",
    "FrozenError", "Format", "FrozenLayer", "FrozenNetwork", "check_name",
    "dense_layer", "twn_layer",
    "load", "save", "random_network",
]

FORMAT = "strassen-hw-frozen"
VERSION = 1
#: Rounding rules of ``round_shift``: ``floor`` (arithmetic shift right) and ``half_up``
#: (add half an output LSB, then shift: ties round toward +infinity).
ROUNDING = ("floor", "half_up")
#: Layer kinds: a Strassen layer, and the two baselines in the same form (module docstring).
KINDS = ("strassen", "twn", "dense")
#: Largest ``shift`` and ``product_shift``.
MAX_SHIFT = 62
#: Longest network name, in characters.
MAX_NAME = 64
#: Formats, ``a_width`` and ``bias_width``: 1..32 bits.
_MAX_FORMAT_WIDTH = 32
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
#: Longest integer literal the loader reads (digits); every legal value has far fewer.
_MAX_DIGITS = 40

# Verilog-2005 and SystemVerilog (IEEE 1800-2017) keywords: Verilator reads the generated
# Verilog as SystemVerilog, so none of these can name a module.
_KEYWORDS = frozenset("""
accept_on alias always always_comb always_ff always_latch and assert assign assume automatic
before begin bind bins binsof bit break buf bufif0 bufif1 byte case casex casez cell chandle
checker class clocking cmos config const constraint context continue cover covergroup coverpoint
cross deassign default defparam design disable dist do edge else end endcase endchecker
endclass endclocking endconfig endfunction endgenerate endgroup endinterface endmodule
endpackage endprimitive endprogram endproperty endspecify endsequence endtable endtask enum
event eventually expect export extends extern final first_match for force foreach forever fork
forkjoin function generate genvar global highz0 highz1 if iff ifnone ignore_bins illegal_bins
implements implies import incdir include initial inout input inside instance int integer
interconnect interface intersect join join_any join_none large let liblist library local
localparam logic longint macromodule matches medium modport module nand negedge nettype new
nexttime nmos nor noshowcancelled not notif0 notif1 null or output package packed parameter
pmos posedge primitive priority program property protected pull0 pull1 pulldown pullup
pulsestyle_ondetect pulsestyle_onevent pure rand randc randcase randsequence rcmos real
realtime ref reg reject_on release repeat restrict return rnmos rpmos rtran rtranif0 rtranif1
s_always s_eventually s_nexttime s_until s_until_with scalared sequence shortint shortreal
showcancelled signed small soft solve specify specparam static string strong strong0 strong1
struct super supply0 supply1 sync_accept_on sync_reject_on table tagged task this throughout
time timeprecision timeunit tran tranif0 tranif1 tri tri0 tri1 triand trior trireg type typedef
union unique unique0 unsigned until until_with untyped use uwire var vectored virtual void wait
wait_order wand weak weak0 weak1 while wildcard wire with within wor xnor xor
""".split())


class FrozenError(ValueError):
    """A frozen network is malformed. The message is one line naming the problem and the fix."""


def _fail(where, message):
    raise FrozenError(f"{where}: {message}" if where else message)


def signed_width(lo, hi):
    """Smallest two's complement width that holds every integer in ``[lo, hi]``."""
    lo, hi = int(lo), int(hi)
    need_hi = hi.bit_length() + 1 if hi > 0 else 1
    need_lo = (-lo - 1).bit_length() + 1 if lo < 0 else 1
    return max(need_hi, need_lo)


def _relabel(error, old, new):
    """``error`` (a FrozenError whose message starts with ``old``) with ``new`` in its place."""
    text = str(error)
    return FrozenError(new + text[len(old):] if text.startswith(old) else f"{new}: {text}")


def _int(where, key, value, lo=None, hi=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        _fail(where, f"'{key}' must be an integer, not {_show(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        _fail(where, f"'{key}' = {value} is outside {lo}..{hi}")
    return int(value)


def _show(value, limit=40):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _check_format(where, width, signed):
    _int(where, "width", width, 1, _MAX_FORMAT_WIDTH)
    if not isinstance(signed, bool):
        _fail(where, f"'signed' must be true or false, not {_show(signed)}")


@dataclass(frozen=True)
class Format:
    """An integer format: ``width`` bits (1..32), two's complement when ``signed``.

    Raises
    ------
    FrozenError
        ``width`` is not an integer in 1..32 or ``signed`` is not a bool.
    """
    width: int
    signed: bool = True

    def __post_init__(self):
        _check_format("format", self.width, self.signed)
        object.__setattr__(self, "width", int(self.width))

    @property
    def min(self):
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max(self):
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    def to_json(self):
        return {"width": self.width, "signed": self.signed}


def _integers(where, key, value, ndim):
    """``value`` as an int64 array of ``ndim`` dimensions, or a FrozenError. Entries must be
    integers (Python ints or a numpy integer dtype; no bool, no float) in ``-2^62 .. 2^62``;
    the callers narrow the range further."""
    shape_error = f"'{key}' must be a non-empty {ndim}-D array of integers"
    if isinstance(value, np.ndarray) and value.dtype != object:
        if value.dtype.kind not in "iu":
            _fail(where, f"'{key}' has dtype {value.dtype}; only integers are allowed")
        if value.ndim != ndim or 0 in value.shape:
            _fail(where, f"{shape_error}, not shape {value.shape}")
        if value.dtype.kind == "u" and value.size and int(value.max()) >= 1 << 62:
            _fail(where, f"'{key}' holds {int(value.max())}, which no field allows")
        return value.astype(np.int64)
    try:
        array = np.array(value, dtype=object)
    except Exception:       # ragged or exotic nesting: numpy's own messages vary
        _fail(where, shape_error)
    if array.ndim != ndim or 0 in array.shape:
        _fail(where, shape_error)
    for item in array.flat:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)):
            _fail(where, f"'{key}' holds {_show(item)}; only integers are allowed")
        if abs(int(item)) >= 1 << 62:
            _fail(where, f"'{key}' holds {item}, which no field allows")
    return array.astype(np.int64)


@dataclass(frozen=True, eq=False)
class FrozenLayer:
    """One Strassen layer in integers. See the module docstring for the arithmetic.

    Attributes
    ----------
    w_b : ndarray of int64, shape (r, n_in), values in {-1, 0, 1}
    a_tilde : ndarray of int64, shape (r,); the r constant multipliers, ``a_width`` bits signed
    a_frac_bits : int in -64..64; ã in real units is ``a_tilde / 2**a_frac_bits``
        (documentation only)
    w_c : ndarray of int64, shape (n_out, r), values in {-1, 0, 1}
    bias : ndarray of int64, shape (n_out,); added after ``W_c``, ``bias_width`` bits signed
    a_width, bias_width : int in 1..32
    product_shift, product_rounding : rounding shift (0..62) applied to the r products
    shift, rounding, relu, output : requantization of ``W_c @ p + bias`` to ``output``
    kind : str, one of :data:`KINDS`
        ``"strassen"`` (default), ``"twn"`` (``W_c`` is the identity) or ``"dense"``
        (``W_b`` selects input ``k % n_in`` in row ``k``, ``W_c`` sums consecutive groups of
        ``n_in`` products; r = n_in·n_out). See the module docstring.

    Raises
    ------
    FrozenError
        Any field breaks a rule of ``docs/frozen-format.md``; the message starts with "layer".
    """
    w_b: np.ndarray
    a_tilde: np.ndarray
    w_c: np.ndarray
    bias: np.ndarray
    a_width: int
    bias_width: int
    output: Format
    a_frac_bits: int = 0
    product_shift: int = 0
    product_rounding: str = "floor"
    shift: int = 0
    rounding: str = "floor"
    relu: bool = False
    kind: str = "strassen"

    def __post_init__(self):
        where = "layer"
        for key, ndim in (("w_b", 2), ("a_tilde", 1), ("w_c", 2), ("bias", 1)):
            object.__setattr__(self, key, _integers(where, key, getattr(self, key), ndim))
        _validate_layer(where, self)

    @property
    def n_in(self):
        return self.w_b.shape[1]

    @property
    def r(self):
        return self.w_b.shape[0]

    @property
    def n_out(self):
        return self.w_c.shape[0]

    def to_json(self):
        # "kind" only when it is not the default, so that Strassen layers (every file written
        # before kinds existed) keep their bytes
        return {
            **({} if self.kind == "strassen" else {"kind": self.kind}),
            "w_b": self.w_b.tolist(),
            "a_tilde": self.a_tilde.tolist(),
            "a_width": self.a_width,
            "a_frac_bits": self.a_frac_bits,
            "w_c": self.w_c.tolist(),
            "bias": self.bias.tolist(),
            "bias_width": self.bias_width,
            "product_shift": self.product_shift,
            "product_rounding": self.product_rounding,
            "shift": self.shift,
            "rounding": self.rounding,
            "relu": self.relu,
            "output": self.output.to_json(),
        }


def dense_layer(weights, bias, **fields):
    """A ``kind="dense"`` :class:`FrozenLayer`: ``v = weights @ x + bias``, one product per
    weight (r = n_in·n_out).

    Parameters
    ----------
    weights : array of int, shape (n_out, n_in)
        The integer weights ``w_ij``; they become ``a_tilde[i·n_in + j]``.
    bias : array of int, shape (n_out,)
    **fields
        The other :class:`FrozenLayer` fields (``a_width``, ``bias_width``, ``output``,
        ``shift``, ...), unchanged.
    """
    weights = _integers("dense layer", "weights", weights, 2)
    n_out, n_in = weights.shape
    return FrozenLayer(w_b=np.tile(np.eye(n_in, dtype=np.int64), (n_out, 1)),
                       a_tilde=weights.reshape(-1),
                       w_c=np.kron(np.eye(n_out, dtype=np.int64),
                                   np.ones((1, n_in), dtype=np.int64)),
                       bias=bias, kind="dense", **fields)


def twn_layer(ternary, alpha, bias, **fields):
    """A ``kind="twn"`` :class:`FrozenLayer`: ``v = alpha ⊙ (ternary @ x) + bias``, one product
    per output (r = n_out).

    Parameters
    ----------
    ternary : array of int in {-1, 0, 1}, shape (n_out, n_in)
        The ternary weights; they become ``w_b``.
    alpha : array of int, shape (n_out,)
        One integer scale per output; it becomes ``a_tilde``.
    bias : array of int, shape (n_out,)
    **fields
        The other :class:`FrozenLayer` fields, unchanged.
    """
    ternary = _integers("twn layer", "ternary", ternary, 2)
    alpha = _integers("twn layer", "alpha", alpha, 1)
    if alpha.shape != (ternary.shape[0],):
        _fail("twn layer", f"'alpha' has shape {alpha.shape}; it needs one value per row of "
                           f"'ternary' ({ternary.shape[0]})")
    return FrozenLayer(w_b=ternary, a_tilde=alpha, w_c=np.eye(len(alpha), dtype=np.int64),
                       bias=bias, kind="twn", **fields)


@dataclass(frozen=True, eq=False)
class FrozenNetwork:
    """A validated chain of frozen layers. Build it with the constructor, :func:`load` or
    :func:`random_network`; the constructor validates everything.

    Raises
    ------
    FrozenError
        A bad name (see :func:`check_name`), no layers, or layers that do not chain.
    """
    name: str
    input: Format
    layers: tuple = field(default_factory=tuple)

    def __post_init__(self):
        if isinstance(self.layers, (str, bytes)) or not hasattr(self.layers, "__iter__"):
            _fail("network", "'layers' must be a sequence of FrozenLayer")
        object.__setattr__(self, "layers", tuple(self.layers))
        _validate_network(self)

    @property
    def output(self):
        return self.layers[-1].output

    @property
    def n_in(self):
        return self.layers[0].n_in

    @property
    def n_out(self):
        return self.layers[-1].n_out

    def layer_inputs(self):
        """The input format of each layer (the network input, then each layer's output)."""
        return [self.input] + [layer.output for layer in self.layers[:-1]]

    def to_json(self):
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "input": self.input.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }


# --- validation -------------------------------------------------------------------------------

def check_name(name):
    """Raise :class:`FrozenError` unless ``name`` can name a network: 1..64 ASCII letters,
    digits and underscores, starting with a letter, and not a (System)Verilog keyword. It is
    the Verilog module name and the stem of the files written for it."""
    if not isinstance(name, str):
        _fail("network", f"'name' must be a string, not {_show(name)}")
    if not 1 <= len(name) <= MAX_NAME or not _NAME.fullmatch(name):
        _fail("network", f"'name' = {_show(name)} is not a valid network name; use 1 to "
                         f"{MAX_NAME} ASCII letters, digits and underscores, starting with a "
                         "letter")
    if name in _KEYWORDS:
        _fail("network", f"'name' = {name!r} is a Verilog keyword; choose another name")


def _validate_layer(where, layer):
    w_b, w_c, a, bias = layer.w_b, layer.w_c, layer.a_tilde, layer.bias
    for key, m in (("w_b", w_b), ("w_c", w_c)):
        bad = np.argwhere((m != -1) & (m != 0) & (m != 1))
        if len(bad):
            i, j = bad[0]
            _fail(where, f"'{key}'[{i}][{j}] = {m[i, j]} is not ternary; use only -1, 0, 1")
    if w_c.shape[1] != w_b.shape[0]:
        _fail(where, f"'w_c' has {w_c.shape[1]} columns but 'w_b' has {w_b.shape[0]} rows (r)")
    if a.shape != (w_b.shape[0],):
        _fail(where, f"'a_tilde' has shape {a.shape}; it needs one value per row of 'w_b' "
                     f"({w_b.shape[0]})")
    if bias.shape != (w_c.shape[0],):
        _fail(where, f"'bias' has shape {bias.shape}; it needs one value per row of 'w_c' "
                     f"({w_c.shape[0]})")
    for key, values, key_w in (("a_tilde", a, "a_width"), ("bias", bias, "bias_width")):
        width = _int(where, key_w, getattr(layer, key_w), 1, _MAX_FORMAT_WIDTH)
        lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
        bad = np.flatnonzero((values < lo) | (values > hi))
        if len(bad):
            _fail(where, f"'{key}'[{bad[0]}] = {values[bad[0]]} does not fit {width} signed bits; "
                         f"raise '{key_w}' or scale the values")
    for key in ("product_shift", "shift"):
        _int(where, key, getattr(layer, key), 0, MAX_SHIFT)
    _int(where, "a_frac_bits", layer.a_frac_bits, -64, 64)
    for key in ("product_rounding", "rounding"):
        value = getattr(layer, key)
        if not isinstance(value, str) or value not in ROUNDING:
            _fail(where, f"'{key}' is {_show(value)}; use one of {', '.join(ROUNDING)}")
    if not isinstance(layer.relu, bool):
        _fail(where, f"'relu' must be true or false, not {_show(layer.relu)}")
    if not isinstance(layer.output, Format):
        _fail(where, f"'output' must be a Format, not {_show(layer.output)}")
    for key in ("a_width", "bias_width", "product_shift", "shift", "a_frac_bits"):
        object.__setattr__(layer, key, int(getattr(layer, key)))
    _check_kind(where, layer)


def _check_kind(where, layer):
    """The structure that ``layer.kind`` promises (module docstring)."""
    kind, w_b, w_c = layer.kind, layer.w_b, layer.w_c
    if not isinstance(kind, str) or kind not in KINDS:
        _fail(where, f"'kind' is {_show(kind)}; use one of {', '.join(KINDS)}")
    n_in, r, n_out = w_b.shape[1], w_b.shape[0], w_c.shape[0]
    if kind == "twn":
        if r != n_out:
            _fail(where, f"'kind' is 'twn' but r = {r} differs from n_out = {n_out}; a TWN "
                         "layer has one product (its α) per output and 'w_c' = the identity")
        _same(where, "twn", "w_c", w_c, np.eye(n_out, dtype=np.int64),
              "the identity (one α per output)")
    elif kind == "dense":
        if r != n_in * n_out:
            _fail(where, f"'kind' is 'dense' but r = {r}; a dense layer has r = n_in·n_out = "
                         f"{n_in * n_out} products, one per weight")
        _same(where, "dense", "w_b", w_b, np.tile(np.eye(n_in, dtype=np.int64), (n_out, 1)),
              "1 in column k % n_in of row k, else 0 (row i·n_in + j selects input j)")
        _same(where, "dense", "w_c", w_c,
              np.kron(np.eye(n_out, dtype=np.int64), np.ones((1, n_in), dtype=np.int64)),
              "1 in columns i·n_in .. i·n_in + n_in - 1 of row i, else 0")


def _same(where, kind, key, got, want, rule):
    bad = np.argwhere(got != want)
    if len(bad):
        i, j = (int(k) for k in bad[0])
        _fail(where, f"'kind' is '{kind}' but '{key}'[{i}][{j}] = {got[i, j]}, not {want[i, j]}; "
                     f"a {kind} layer's '{key}' is {rule} (or use kind 'strassen')")


def _validate_network(net):
    check_name(net.name)
    if not isinstance(net.input, Format):
        _fail("network", f"'input' must be a Format, not {_show(net.input)}")
    if not net.layers:
        _fail("network", "'layers' is empty; a network needs at least one layer")
    n_in = None
    for index, layer in enumerate(net.layers):
        where = f"layer {index}"
        if not isinstance(layer, FrozenLayer):
            _fail(where, f"must be a FrozenLayer, not {type(layer).__name__}")
        if n_in is not None and layer.n_in != n_in:
            _fail(where, f"'w_b' has {layer.n_in} columns but the layer input has {n_in} values")
        n_in = layer.n_out


# --- value ranges (exact, Python integers) ---------------------------------------------------

def ternary_range(matrix, lo, hi):
    """Exact ranges of ``matrix @ x`` for ternary ``matrix`` and ``lo[j] <= x[j] <= hi[j]``.

    Returns two object arrays of Python integers (min, max), one entry per row.
    """
    matrix = np.asarray(matrix)
    n = matrix.shape[1]
    lo = np.broadcast_to(np.asarray(lo).astype(object), (n,))
    hi = np.broadcast_to(np.asarray(hi).astype(object), (n,))
    pos, neg = (matrix == 1).astype(object), (matrix == -1).astype(object)
    return pos @ lo - neg @ hi, pos @ hi - neg @ lo


def _round_shift_int(value, shift, rounding):
    if shift == 0:
        return value
    return (value + (1 << (shift - 1) if rounding == "half_up" else 0)) >> shift


def stage_ranges(layer, fmt):
    """Exact (min, max) object arrays of Python integers after each stage of ``layer`` for
    inputs in ``fmt``. Keys: ``u`` (after W_b), ``m`` (the products ``a_tilde * u``, before
    ``product_shift``), ``p`` (after it), ``v`` (after W_c and bias, before ``shift``)."""
    u_lo, u_hi = ternary_range(layer.w_b, fmt.min, fmt.max)
    a = layer.a_tilde.astype(object)
    m_lo = np.minimum(a * u_lo, a * u_hi)
    m_hi = np.maximum(a * u_lo, a * u_hi)
    shift = np.frompyfunc(lambda v: _round_shift_int(v, layer.product_shift,
                                                     layer.product_rounding), 1, 1)
    p_lo, p_hi = shift(m_lo), shift(m_hi)
    v_lo, v_hi = ternary_range(layer.w_c, p_lo, p_hi)
    bias = layer.bias.astype(object)
    return {"u": (u_lo, u_hi), "m": (m_lo, m_hi), "p": (p_lo, p_hi),
            "v": (v_lo + bias, v_hi + bias)}


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
    if type(version) is not int or version != VERSION:
        _fail("", f"version {_show(version)} is not supported; this strassen-hw reads version "
                  f"{VERSION} (the integer 1)")
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
        _keys(where, item, _LAYER_KEYS, _LAYER_OPTIONAL)
        output = _format(f"{where} output", item["output"])
        try:
            layers.append(FrozenLayer(**{**item, "output": output}))
        except FrozenError as e:
            raise _relabel(e, "layer", where) from None
    return FrozenNetwork(name=doc["name"], input=fmt, layers=layers)


def _parse_int(text):
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


def save(net, path):
    """Write ``net`` to ``path`` atomically as deterministic JSON."""
    atomic_write(path, dumps(net))


def dumps(net):
    """The file text of ``net``: one matrix row per line, keys in a fixed order."""
    doc = net.to_json()
    layers = doc.pop("layers")
    parts = [json.dumps(doc, indent=1)[:-2] + ',\n "layers": [\n']
    for index, layer in enumerate(layers):
        items = []
        for key, value in layer.items():
            if key in ("w_b", "w_c"):
                rows = ",\n    ".join(json.dumps(row) for row in value)
                items.append(f'   "{key}": [\n    {rows}\n   ]')
            else:
                items.append(f'   "{key}": {json.dumps(value)}')
        parts.append("  {\n" + ",\n".join(items) + "\n  }" + ("," if index < len(layers) - 1
                                                               else "") + "\n")
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
