"""The reference: exact integer outputs of a frozen network, in numpy. It is the specification
the hardware must match bit for bit. No float anywhere on the path: every value is int64 and
:mod:`strassen_hw.frozen` refuses networks whose intermediate values could exceed 62 bits."""

import numpy as np

from .frozen import FrozenError

__all__ = ["round_shift", "saturate", "layer_forward", "forward", "check_inputs"]


def round_shift(value, shift, rounding):
    """Divide by ``2**shift`` with the stated rounding: ``floor`` or ``half_up`` (ties toward
    +infinity). ``shift = 0`` returns the value unchanged."""
    value = np.asarray(value, dtype=np.int64)
    if shift == 0:
        return value
    if rounding == "half_up":
        value = value + (np.int64(1) << np.int64(shift - 1))
    return value >> np.int64(shift)


def saturate(value, fmt):
    """Clamp to the range of the integer format ``fmt``."""
    return np.clip(value, fmt.min, fmt.max).astype(np.int64)


def layer_forward(layer, x, stages=None):
    """Outputs of one :class:`~strassen_hw.frozen.FrozenLayer` for int64 inputs ``x`` of shape
    (batch, n_in). When ``stages`` is a dict it receives the intermediate ``u``, ``p``, ``v``."""
    u = x @ layer.w_b.T
    p = round_shift(u * layer.a_tilde, layer.product_shift, layer.product_rounding)
    v = p @ layer.w_c.T + layer.bias
    y = round_shift(v, layer.shift, layer.rounding)
    if layer.relu:
        y = np.maximum(y, 0)
    if stages is not None:
        stages.update(u=u, p=p, v=v)
    return saturate(y, layer.output)


def check_inputs(net, x):
    """Validate an input batch: returns it as int64 (batch, n_in) or raises FrozenError."""
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != net.n_in:
        raise FrozenError(f"inputs have shape {x.shape}; the network takes (N, {net.n_in})")
    if not np.issubdtype(x.dtype, np.integer):
        if not (np.issubdtype(x.dtype, np.floating) and np.all(x == np.round(x))):
            raise FrozenError(f"inputs must be integers, not {x.dtype} with fractions; "
                              "quantize them first")
    x = x.astype(np.int64)
    bad = np.argwhere((x < net.input.min) | (x > net.input.max))
    if len(bad):
        i, j = bad[0]
        raise FrozenError(f"input [{i}][{j}] = {x[i, j]} is outside the network input range "
                          f"{net.input.min}..{net.input.max}")
    return x


def forward(net, x):
    """Exact outputs of ``net`` for inputs ``x`` (batch, n_in): int64 array (batch, n_out)."""
    x = check_inputs(net, x)
    for layer in net.layers:
        x = layer_forward(layer, x)
    return x
