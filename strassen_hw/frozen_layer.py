"""A frozen linear layer (``W_b``, ã, ``W_c``, bias, requantization) and its exact ranges.

See :mod:`strassen_hw.frozen` for the arithmetic. numpy only."""

from dataclasses import dataclass

import numpy as np

from .formats import (KINDS, MAX_SHIFT, ROUNDING, Format, _MAX_FORMAT_WIDTH, _fail, _int,
                      _integers, _show)

__all__ = ["FrozenLayer", "dense_layer", "twn_layer", "ternary_range", "stage_ranges"]


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


