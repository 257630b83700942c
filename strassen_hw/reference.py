"""The reference: exact integer outputs of a frozen network, in numpy. It is the specification
the hardware must match bit for bit. No float anywhere on the path and no width limit: a layer
runs in int64 when a bound on its values (from the actual inputs) proves that every value fits,
and on Python integers (numpy object arrays) otherwise, so nothing ever wraps.

A convolution layer (:class:`~strassen_hw.frozen.FrozenConvLayer`) cuts its input image into
windows (zeros past the image), runs its embedded linear layer on every window exactly as
above, puts the patches in place, drops the outputs past the image and pools: the largest of
each window (``max``) or its sum shifted right (``avg``, floor). See
:mod:`strassen_hw.frozen_conv` for the geometry and the pixel order."""

import numpy as np

from .formats import FrozenError

__all__ = ["round_shift", "saturate", "layer_forward", "conv_forward", "pool_image", "forward",
           "node_forward", "FORWARD", "check_inputs"]

#: Values up to this magnitude are computed in int64 (one bit of margin below 2^63).
_INT64_SAFE = 1 << 62


def round_shift(value, shift, rounding):
    """Divide by ``2**shift`` with the stated rounding: ``floor`` or ``half_up`` (ties toward
    +infinity). ``shift = 0`` returns the value unchanged. Object arrays of Python integers
    stay exact at any width; other arrays are computed in int64."""
    value = np.asarray(value)
    if value.dtype != object:
        value = value.astype(np.int64)
    if shift == 0:
        return value
    half = 1 << (shift - 1)
    if value.dtype == object:
        return (value + half if rounding == "half_up" else value) >> shift
    if rounding == "half_up":
        value = value + np.int64(half)
    return value >> np.int64(shift)


def saturate(value, fmt):
    """Clamp to the range of the integer format ``fmt``; returns int64."""
    return np.minimum(np.maximum(value, fmt.min), fmt.max).astype(np.int64)


def _magnitude(array):
    return max(abs(int(array.min())), abs(int(array.max()))) if array.size else 0


def _fits_int64(layer, x):
    """True when every value of ``layer`` on ``x`` is within ±2^62: a bound from the largest
    |x|, the largest row sums of |W_b| and |W_c|, |ã|, |bias| and the rounding offsets."""
    row_b = int(np.abs(layer.w_b).sum(axis=1).max())
    row_c = int(np.abs(layer.w_c).sum(axis=1).max())
    u = _magnitude(x) * row_b
    m = u * _magnitude(layer.a_tilde) + (1 << layer.product_shift)
    v = (m >> layer.product_shift) * row_c + _magnitude(layer.bias) + (1 << layer.shift)
    return max(m, v) < _INT64_SAFE


def layer_forward(layer, x, stages=None):
    """Outputs of one :class:`~strassen_hw.frozen.FrozenLayer` for integer inputs ``x`` of
    shape (batch, n_in), exactly. When ``stages`` is a dict it receives the intermediate ``u``,
    ``p``, ``v`` (int64 arrays, or object arrays of Python integers when int64 cannot hold
    them)."""
    x = np.asarray(x)
    if x.dtype != object:
        x = x.astype(np.int64)
    if x.dtype == object or not _fits_int64(layer, x):
        x = x.astype(object)
        w_b, a, w_c = (m.astype(object) for m in (layer.w_b, layer.a_tilde, layer.w_c))
        bias = layer.bias.astype(object)
    else:
        w_b, a, w_c, bias = layer.w_b, layer.a_tilde, layer.w_c, layer.bias
    u = x @ w_b.T
    p = round_shift(u * a, layer.product_shift, layer.product_rounding)
    v = p @ w_c.T + bias
    y = round_shift(v, layer.shift, layer.rounding)
    if layer.relu:
        y = np.maximum(y, 0)
    if stages is not None:
        stages.update(u=u, p=p, v=v)
    return saturate(y, layer.output)


def conv_forward(layer, x):
    """Outputs of one :class:`~strassen_hw.frozen.FrozenConvLayer` for integer images ``x``
    of shape (batch, height·width·in_channels) in pixel order: int64 (batch, n_out), the
    output image in pixel order (see :mod:`strassen_hw.frozen_conv`)."""
    g = layer.geometry
    x = np.asarray(x)
    windows = g.windows(x).reshape(-1, g.n_window)
    y = layer_forward(layer.patch, windows)
    image = g.pixels(y.reshape(x.shape[0], *g.patches, g.n_patch))
    if g.pool != "none":
        image = pool_image(image, g.pool, g.pool_size)
    return np.ascontiguousarray(image).reshape(x.shape[0], -1).astype(np.int64)


def pool_image(image, mode, q):
    """``max`` or ``avg`` pooling of images ``(N, H, W, C)`` over q×q windows with stride q,
    the last ``H mod q`` rows and columns dropped: the largest value, or the sum shifted right
    by ``2·log2 q`` (floor; the mean of q·q values, no multiplier)."""
    n, h, w, c = image.shape
    h, w = h // q * q, w // q * q
    windows = image[:, :h, :w].reshape(n, h // q, q, w // q, q, c).swapaxes(2, 3)
    windows = windows.reshape(n, h // q, w // q, q * q, c)
    if mode == "max":
        return windows.max(axis=3)
    return round_shift(windows.astype(np.int64).sum(axis=3), 2 * (q.bit_length() - 1), "floor")


def _first(mask):
    i, j = (int(k) for k in np.argwhere(mask)[0])
    return i, j


def check_inputs(net, x):
    """Validate an input batch and return it as int64 (batch, n_in), or raise FrozenError.

    ``x`` is (N, n_in), or one vector (n_in,). Its values must be integers in the network's
    input format whatever the dtype: integer dtypes (int8 .. uint64), floats holding whole
    numbers, or Python integers; booleans, fractions, inf/NaN and other objects are refused.
    """
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != net.n_in:
        raise FrozenError(f"inputs have shape {x.shape}; the network takes (N, {net.n_in})")
    lo, hi = net.input.min, net.input.max
    kind = x.dtype.kind
    if kind == "b":
        raise FrozenError("inputs are booleans; give integers (e.g. x.astype(numpy.int64))")
    if kind == "O":
        ok = np.frompyfunc(lambda v: isinstance(v, (int, np.integer))
                           and not isinstance(v, (bool, np.bool_)), 1, 1)(x).astype(bool)
        if not ok.all():
            i, j = _first(~ok)
            raise FrozenError(f"input [{i}][{j}] = {x[i, j]!r} is not an integer; give integers")
        bad = np.frompyfunc(lambda v: v < lo or v > hi, 1, 1)(x).astype(bool)
    elif kind == "f":
        finite = np.isfinite(x)
        if not finite.all():
            i, j = _first(~finite)
            raise FrozenError(f"input [{i}][{j}] = {x[i, j]} is not a number; give integers")
        whole = x == np.floor(x)
        if not whole.all():
            i, j = _first(~whole)
            raise FrozenError(f"input [{i}][{j}] = {x[i, j]} is not an integer; quantize the "
                              "inputs first")
        bad = (x < lo) | (x > hi)
    elif kind == "u":
        bad = x.astype(np.uint64) > np.uint64(hi)
    elif kind == "i":
        x64 = x.astype(np.int64)
        bad = (x64 < lo) | (x64 > hi)
    else:
        raise FrozenError(f"inputs have dtype {x.dtype}; give integers")
    if bad.any():
        i, j = _first(bad)
        value = int(x[i, j]) if kind in "iu" else x[i, j]
        raise FrozenError(f"input [{i}][{j}] = {value} is outside the network input range "
                          f"{lo}..{hi}")
    return x.astype(np.int64)


def _image(net, name, x):
    return x.reshape(x.shape[0], *net.shape_of(name))


def _linear(net, node, xs):
    return layer_forward(node.layer, xs[0])


def _conv(net, node, xs):
    return conv_forward(node.layer, xs[0])


def _pool(net, node, xs):
    image = _image(net, node.inputs[0], xs[0])
    if node.mode == "global":
        total = image.astype(np.int64).sum(axis=(1, 2))   # ≤ 2^24 values of ≤ 32 bits each
        return saturate(round_shift(total, node.shift, "floor"), node.output)
    return pool_image(image, node.mode, node.size).reshape(image.shape[0], -1)


def _flatten(net, node, xs):
    return xs[0]


def _add(net, node, xs):
    bound = sum(max(abs(net.format_of(i).min), net.format_of(i).max) << a
                for i, a in zip(node.inputs, node.align))
    exact = bound + (1 << node.shift) >= _INT64_SAFE
    total = sum((x.astype(object) if exact else x) * (1 << a) for x, a in zip(xs, node.align))
    y = round_shift(total, node.shift, node.rounding)
    if node.relu:
        y = np.maximum(y, 0)
    return saturate(y, node.output)


#: The exact function of each node kind: ``(net, node, inputs) → output``, every value an
#: int64 array ``(N, values)`` in pixel order.
FORWARD = {"linear": _linear, "conv": _conv, "pool": _pool, "flatten": _flatten, "add": _add}


def node_forward(net, x):
    """Every node's outputs for inputs ``x``: a dict from node name (and ``"input"``) to an
    int64 array ``(N, values)`` in pixel order."""
    values = {"input": check_inputs(net, x)}
    for node in net.nodes:
        values[node.name] = FORWARD[node.KIND](net, node, [values[i] for i in node.inputs])
    return values


def forward(net, x):
    """Exact outputs of ``net`` for inputs ``x`` (batch, n_in): int64 array (batch, n_out).
    A network whose input is an image takes it in pixel order (rows top to bottom, all
    channels of a pixel together); one whose output is an image gives it so."""
    values = {"input": check_inputs(net, x)}
    last = {name: k for k, node in enumerate(net.nodes) for name in node.inputs}
    for k, node in enumerate(net.nodes):
        values[node.name] = FORWARD[node.KIND](net, node, [values[i] for i in node.inputs])
        for name in set(node.inputs):
            if last[name] == k:      # nothing later reads it: free it
                del values[name]
    return values[net.nodes[-1].name]
