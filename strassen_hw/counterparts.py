"""The TWN and dense counterparts of a frozen network's own graph, without training.

``report --baselines`` compares a network with the same graph in which every Strassen layer
(each ``linear`` node's layer, each ``conv`` node's patch layer) is replaced by its TWN or its
dense counterpart; every other node, every format and every shift stays as it is. Without
training data the counterparts are derived from the Strassen layer itself, so they have the
same shape and roughly the same function (their accuracy is not measured):

* the layer's integer matrix ``E = W_c · diag(ã) · W_b`` (n_out × n_in) is what it computes
  when ``product_shift`` is 0 (``v = E x + bias``);
* **dense**: the weights ``round(E / 2^s)`` with the smallest ``s`` that fits them into 8
  signed bits (int8); ``s`` is taken from ``product_shift`` first, then from ``shift`` (with the
  bias divided by the same power of two, rounded), so the sum keeps its scale. Where the shifts
  cannot absorb all of ``s`` the weights keep the bits that remain (wider than 8);
* **TWN** (Li and Liu's ternary weight networks, per output row): the threshold
  ``Δ_i = 0.7 · mean_j |E_ij|``, the ternary row ``sign(E_ij)`` where ``|E_ij| > Δ_i``, and the
  integer scale ``alpha_i`` the mean of those ``|E_ij|`` (rounded half up), divided by ``2^s`` (rounded) with the
  ``s`` that fits the scales into the Strassen layer's own ``a_width``, absorbed as for dense.

A layer that already is TWN or dense stays as it is in both counterparts.
"""

from dataclasses import replace

import numpy as np

from .frozen_layer import dense_layer, twn_layer
from .graph import Conv, FrozenNetwork, Linear

__all__ = ["COUNTERPARTS", "effective_matrix", "counterpart_layer", "counterpart"]

#: The counterparts :func:`counterpart` makes, with the bits of their constants (None: the
#: Strassen layer's ``a_width``).
COUNTERPARTS = {"twn": None, "dense": 8}


def effective_matrix(layer):
    """``W_c · diag(ã) · W_b`` of a frozen layer, as Python-sized int64 (object if wider)."""
    w_c = layer.w_c.astype(object)
    return (w_c * layer.a_tilde.astype(object)[None, :]).dot(layer.w_b.astype(object))


def _signed_bits(values):
    top = max((abs(int(v)) for v in np.ravel(values)), default=0)
    return top.bit_length() + 1


def _absorb(layer, s):
    """How much of a scale-down by ``2^s`` the product shift and then the final shift take:
    ``(product_shift, shift, s_bias, s)`` with ``s`` cut to what they can take."""
    s = min(s, layer.product_shift + layer.shift)
    from_product = min(s, layer.product_shift)
    from_shift = s - from_product
    return layer.product_shift - from_product, layer.shift - from_shift, from_shift, s


def _round_div(values, s):
    """``values / 2^s`` rounded half away from zero, in Python integers."""
    if s == 0:
        return np.array(values, dtype=object)
    half = 1 << (s - 1)
    return np.array([(abs(int(v)) + half) >> s if v >= 0 else -((abs(int(v)) + half) >> s)
                     for v in np.ravel(values)], dtype=object).reshape(np.shape(values))


def _fields(layer, product_shift, shift, a_values):
    fields = {"a_width": max(2, _signed_bits(a_values)), "bias_width": layer.bias_width,
              "output": layer.output, "a_frac_bits": layer.a_frac_bits,
              "product_shift": product_shift, "product_rounding": layer.product_rounding,
              "shift": shift, "rounding": layer.rounding, "relu": layer.relu}
    return fields


def counterpart_layer(layer, kind):
    """The ``kind`` (``"twn"`` or ``"dense"``) counterpart of a frozen Strassen layer (see the
    module docstring); a TWN or dense layer is returned unchanged."""
    if kind not in COUNTERPARTS:
        raise ValueError(f"no counterpart of kind {kind!r}; choose one of {list(COUNTERPARTS)}")
    if layer.kind != "strassen":
        return layer
    e = effective_matrix(layer)
    bits = COUNTERPARTS[kind] or layer.a_width
    if kind == "dense":
        values = e
    else:
        magnitude = np.abs(e)
        delta = 0.7 * magnitude.astype(float).mean(axis=1, keepdims=True)
        keep = magnitude.astype(float) > delta
        ternary = (np.sign(e.astype(float)) * keep).astype(np.int64)
        counts = np.maximum(keep.sum(axis=1), 1)
        # the mean of the kept magnitudes, rounded half up, in exact integers
        values = np.array([(2 * sum(int(v) for v in row[mask]) + int(count)) // (2 * int(count))
                           for row, mask, count in zip(magnitude, keep, counts)], dtype=object)
    s = max(0, _signed_bits(values) - bits)
    product_shift, shift, s_bias, s = _absorb(layer, s)
    scaled = _round_div(values, s)
    bias = _round_div(layer.bias, s_bias).astype(np.int64)
    fields = _fields(layer, product_shift, shift, scaled)
    if kind == "dense":
        return dense_layer(scaled.astype(np.int64), bias, **fields)
    return twn_layer(ternary, scaled.astype(np.int64), bias, **fields)


def counterpart(net, kind):
    """``net`` with every Strassen layer replaced by its ``kind`` counterpart, named
    ``<name>_<kind>``; nodes, inputs, formats and shifts otherwise unchanged."""
    nodes = []
    for node in net.nodes:
        if isinstance(node, Linear):
            node = Linear(node.name, node.inputs, counterpart_layer(node.layer, kind))
        elif isinstance(node, Conv):
            conv = node.layer
            geometry = conv.geometry
            if geometry.groups != 1 and conv.patch.kind == "strassen":
                geometry = replace(geometry, groups=1)     # TWN/dense rows read every channel
            node = Conv(node.name, node.inputs,
                        replace(conv, geometry=geometry,
                                patch=counterpart_layer(conv.patch, kind)))
        nodes.append(node)
    return FrozenNetwork(f"{net.name}_{kind}", net.input, nodes=nodes,
                         input_shape=net.input_shape)
