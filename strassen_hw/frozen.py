"""The frozen network: the one contract between training and hardware.

A frozen network holds only integers and fixed-point formats. It is stored as one JSON file
(format ``strassen-hw-frozen``, version 1, documented field by field in ``docs/frozen-format.md``)
and validated when loaded. Everything downstream (reference, hardware, simulation) reads it;
nothing here imports torch or amaranth.

Per layer, with integer input vector ``x``::

    u = W_b @ x                                    # ternary, additions only
    p = round_shift(a_tilde * u, product_shift)    # the r multiplications
    v = W_c @ p + bias                             # ternary, additions only
    y = saturate(relu?(round_shift(v, shift)))     # requantization to the output format
"""

import json
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "FORMAT", "VERSION", "ROUNDING", "MAX_WIDTH",
    "FrozenError", "Format", "FrozenLayer", "FrozenNetwork",
    "load", "save", "random_network",
]

FORMAT = "strassen-hw-frozen"
VERSION = 1
#: Rounding rules of ``round_shift``: ``floor`` (arithmetic shift right) and ``half_up``
#: (add half an output LSB, then shift: ties round toward +infinity).
ROUNDING = ("floor", "half_up")
#: Widest intermediate value allowed anywhere; keeps the numpy reference exact in int64.
MAX_WIDTH = 62


class FrozenError(ValueError):
    """A frozen network is malformed. The message is one line naming the problem and the fix."""


def _fail(where, message):
    raise FrozenError(f"{where}: {message}")


def signed_width(lo, hi):
    """Smallest two's complement width that holds every integer in ``[lo, hi]``."""
    lo, hi = int(lo), int(hi)
    width = 1
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width


@dataclass(frozen=True)
class Format:
    """An integer format: ``width`` bits, two's complement when ``signed``."""
    width: int
    signed: bool = True

    @property
    def min(self):
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max(self):
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    def to_json(self):
        return {"width": self.width, "signed": self.signed}


@dataclass(frozen=True, eq=False)
class FrozenLayer:
    """One Strassen layer in integers. See the module docstring for the arithmetic.

    Attributes
    ----------
    w_b : ndarray of int64, shape (r, n_in), values in {-1, 0, 1}
    a_tilde : ndarray of int64, shape (r,); the r constant multipliers, ``a_width`` bits signed
    a_frac_bits : int; ã in real units is ``a_tilde / 2**a_frac_bits`` (documentation only)
    w_c : ndarray of int64, shape (n_out, r), values in {-1, 0, 1}
    bias : ndarray of int64, shape (n_out,); added after ``W_c``, ``bias_width`` bits signed
    product_shift, product_rounding : rounding shift applied to the r products
    shift, rounding, relu, output : requantization of ``W_c @ p + bias`` to ``output``
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

    def __post_init__(self):
        for key in ("w_b", "a_tilde", "w_c", "bias"):
            value = getattr(self, key)
            if isinstance(value, np.ndarray) and value.dtype == object:
                value = value.astype(np.int64)   # arbitrary Python ints, range-checked later
            object.__setattr__(self, key, np.asarray(value, dtype=np.int64))

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
        return {
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


@dataclass(frozen=True, eq=False)
class FrozenNetwork:
    """A validated chain of frozen layers. Build it with the constructor, :func:`load` or
    :func:`random_network`; the constructor validates everything."""
    name: str
    input: Format
    layers: tuple = field(default_factory=tuple)

    def __post_init__(self):
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

def _int(where, key, value, lo=None, hi=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        _fail(where, f"'{key}' must be an integer, not {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        _fail(where, f"'{key}' = {value} is outside {lo}..{hi}")
    return int(value)


def _format(where, value):
    if not isinstance(value, dict) or set(value) != {"width", "signed"}:
        _fail(where, "must be an object with exactly the keys 'width' and 'signed'")
    if not isinstance(value["signed"], bool):
        _fail(where, f"'signed' must be true or false, not {value['signed']!r}")
    return Format(_int(where, "width", value["width"], 1, 32), value["signed"])


def _array(where, key, value, ndim):
    try:
        array = np.array(value, dtype=object)
    except Exception:
        array = None
    if array is None or array.ndim != ndim or 0 in array.shape:
        _fail(where, f"'{key}' must be a non-empty {ndim}-D array of integers")
    for item in array.flat:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)):
            _fail(where, f"'{key}' holds {item!r}; only integers are allowed")
        if abs(int(item)) >= 1 << MAX_WIDTH:
            _fail(where, f"'{key}' holds {item}, wider than {MAX_WIDTH} bits; scale it down")
    return array


def _validate_layer(where, layer, n_in):
    w_b, w_c, a, bias = layer.w_b, layer.w_c, layer.a_tilde, layer.bias
    for key, m in (("w_b", w_b), ("w_c", w_c)):
        if m.ndim != 2:
            _fail(where, f"'{key}' must be 2-D, not {m.ndim}-D")
        bad = np.argwhere((m != -1) & (m != 0) & (m != 1))
        if len(bad):
            i, j = bad[0]
            _fail(where, f"'{key}'[{i}][{j}] = {m[i, j]} is not ternary; use only -1, 0, 1")
    if w_b.shape[1] != n_in:
        _fail(where, f"'w_b' has {w_b.shape[1]} columns but the layer input has {n_in} values")
    if w_c.shape[1] != w_b.shape[0]:
        _fail(where, f"'w_c' has {w_c.shape[1]} columns but 'w_b' has {w_b.shape[0]} rows (r)")
    if a.shape != (w_b.shape[0],):
        _fail(where, f"'a_tilde' has shape {a.shape}; it needs one value per row of 'w_b' "
                     f"({w_b.shape[0]})")
    if bias.shape != (w_c.shape[0],):
        _fail(where, f"'bias' has shape {bias.shape}; it needs one value per row of 'w_c' "
                     f"({w_c.shape[0]})")
    for key, values, key_w in (("a_tilde", a, "a_width"), ("bias", bias, "bias_width")):
        width = _int(where, key_w, getattr(layer, key_w), 1, 32)
        lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
        bad = np.flatnonzero((values < lo) | (values > hi))
        if len(bad):
            _fail(where, f"'{key}'[{bad[0]}] = {values[bad[0]]} does not fit {width} signed bits; "
                         f"raise '{key_w}' or scale the values")
    for key in ("product_shift", "shift"):
        _int(where, key, getattr(layer, key), 0, MAX_WIDTH)
    _int(where, "a_frac_bits", layer.a_frac_bits, -64, 64)
    for key in ("product_rounding", "rounding"):
        if getattr(layer, key) not in ROUNDING:
            _fail(where, f"'{key}' is {getattr(layer, key)!r}; use one of {', '.join(ROUNDING)}")
    if not isinstance(layer.relu, bool):
        _fail(where, f"'relu' must be true or false, not {layer.relu!r}")


def _validate_network(net):
    if not isinstance(net.name, str) or not net.name.isidentifier():
        _fail("network", f"'name' = {net.name!r} must be a Verilog-safe identifier "
                         "(letters, digits, underscores; not starting with a digit)")
    if not net.layers:
        _fail("network", "'layers' is empty; a network needs at least one layer")
    n_in = net.layers[0].w_b.shape[1] if net.layers[0].w_b.ndim == 2 else 0
    for index, (layer, fmt) in enumerate(zip(net.layers, net.layer_inputs())):
        where = f"layer {index}"
        _validate_layer(where, layer, n_in)
        widest = max(hi for _, hi in value_ranges(layer, fmt))
        if widest > MAX_WIDTH:
            _fail(where, f"an intermediate value needs {widest} bits, more than the "
                         f"{MAX_WIDTH} allowed; narrow the input, a_width or bias_width, "
                         "or add a product_shift")
        n_in = layer.n_out


# --- value ranges -----------------------------------------------------------------------------

def ternary_range(matrix, lo, hi):
    """Exact ranges of ``matrix @ x`` for ternary ``matrix`` and ``lo[j] <= x[j] <= hi[j]``.

    Returns two int64 arrays (min, max), one entry per row.
    """
    lo = np.broadcast_to(np.asarray(lo, dtype=np.int64), (matrix.shape[1],))
    hi = np.broadcast_to(np.asarray(hi, dtype=np.int64), (matrix.shape[1],))
    pos, neg = (matrix == 1).astype(np.int64), (matrix == -1).astype(np.int64)
    return pos @ lo - neg @ hi, pos @ hi - neg @ lo


def round_shift_range(lo, hi, shift, rounding):
    from .reference import round_shift
    return round_shift(lo, shift, rounding), round_shift(hi, shift, rounding)


def stage_ranges(layer, fmt):
    """Exact (min, max) arrays after each stage of ``layer`` for inputs in ``fmt``.

    Keys: ``u`` (after W_b), ``p`` (products, after product_shift), ``v`` (after W_c and bias).
    """
    u_lo, u_hi = ternary_range(layer.w_b, fmt.min, fmt.max)
    a = layer.a_tilde.astype(np.int64)
    p_lo = np.minimum(a * u_lo, a * u_hi)
    p_hi = np.maximum(a * u_lo, a * u_hi)
    p_lo, p_hi = round_shift_range(p_lo, p_hi, layer.product_shift, layer.product_rounding)
    v_lo, v_hi = ternary_range(layer.w_c, p_lo, p_hi)
    return {"u": (u_lo, u_hi), "p": (p_lo, p_hi),
            "v": (v_lo + layer.bias, v_hi + layer.bias)}


def value_ranges(layer, fmt):
    """(stage, bits) for the widest value of each stage; used to refuse overflowing layers."""
    out = []
    # Guard against int64 overflow inside the range computation itself.
    u_lo, u_hi = ternary_range(layer.w_b, fmt.min, fmt.max)
    u_bits = signed_width(u_lo.min(), u_hi.max())
    if u_bits + layer.a_width + int(np.log2(max(layer.r, 1))) + 2 > MAX_WIDTH:
        return [("p", u_bits + layer.a_width)]
    ranges = stage_ranges(layer, fmt)
    for stage in ("u", "p", "v"):
        lo, hi = ranges[stage]
        out.append((stage, signed_width(min(lo.min(), 0), max(hi.max(), 0))))
    return out


# --- file I/O ---------------------------------------------------------------------------------

_LAYER_KEYS = {"w_b", "a_tilde", "a_width", "a_frac_bits", "w_c", "bias", "bias_width",
               "product_shift", "product_rounding", "shift", "rounding", "relu", "output"}


def from_json(doc):
    """Build a validated :class:`FrozenNetwork` from the decoded JSON document ``doc``."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        _fail("file", f"not a frozen network (no \"format\": \"{FORMAT}\" at the top level)")
    if doc.get("version") != VERSION:
        _fail("file", f"version {doc.get('version')!r} is not supported; this strassen-hw reads "
                      f"version {VERSION} (re-freeze the model with this version)")
    for key in ("name", "input", "layers"):
        if key not in doc:
            _fail("network", f"missing field '{key}'")
    if not isinstance(doc["layers"], list):
        _fail("network", "'layers' must be a list of layer objects")
    layers = []
    for index, item in enumerate(doc["layers"]):
        where = f"layer {index}"
        if not isinstance(item, dict):
            _fail(where, "must be an object")
        missing = sorted(_LAYER_KEYS - set(item))
        if missing:
            _fail(where, f"missing field '{missing[0]}'")
        unknown = sorted(set(item) - _LAYER_KEYS)
        if unknown:
            _fail(where, f"unknown field '{unknown[0]}'")
        layers.append(FrozenLayer(
            w_b=_array(where, "w_b", item["w_b"], 2),
            a_tilde=_array(where, "a_tilde", item["a_tilde"], 1),
            w_c=_array(where, "w_c", item["w_c"], 2),
            bias=_array(where, "bias", item["bias"], 1),
            a_width=_int(where, "a_width", item["a_width"], 1, 32),
            bias_width=_int(where, "bias_width", item["bias_width"], 1, 32),
            output=_format(f"{where} output", item["output"]),
            a_frac_bits=item["a_frac_bits"],
            product_shift=item["product_shift"],
            product_rounding=item["product_rounding"],
            shift=item["shift"],
            rounding=item["rounding"],
            relu=item["relu"],
        ))
    return FrozenNetwork(name=doc["name"], input=_format("network input", doc["input"]),
                         layers=layers)


def load(path):
    """Read and validate a frozen network file. Raises :class:`FrozenError` with one line."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise FrozenError(f"{path}: no such file; write one with 'strassen-hw random' or "
                          "'strassen-hw freeze'") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FrozenError(f"{path}: cannot read a frozen network ({e})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise FrozenError(f"{path}: not a frozen network (not JSON: {e.msg} at line {e.lineno})"
                          ) from None
    try:
        return from_json(doc)
    except FrozenError as e:
        raise FrozenError(f"{path}: {e}") from None


def atomic_write(path, data):
    """Write ``data`` (bytes or str) to ``path`` so that ``path`` is either the old file or the
    whole new one, never a partial file: write a temporary file beside it, then rename."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)   # as open() would make it, not mkstemp's 0600
        os.replace(tmp, path)
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
    """
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
        from .reference import layer_forward
        stages = {}
        layer_forward(draft, rng.integers(fmt.min, fmt.max + 1, (256, n_in)), stages)
        typical = float(np.percentile(np.abs(stages["v"]), 99))
        shift = max(0, int(np.ceil(np.log2(max(typical, 1)))) - (out_width - 1))
        last = index == len(shapes) - 1
        layer = FrozenLayer(**{**draft.__dict__, "shift": shift, "rounding": "half_up",
                               "relu": not last})
        layers.append(layer)
        fmt = layer.output
    return FrozenNetwork(name=name, input=Format(input_width, True), layers=layers)
