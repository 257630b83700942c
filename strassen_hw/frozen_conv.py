"""Frozen convolution layers (format version 2): geometry plus one embedded linear layer.

Per ``p×p`` output patch a Strassen convolution is a linear Strassen layer from the window
vector to the patch vector (StrassenNets Sec. 2.4): a :class:`FrozenConvLayer` is a
:class:`ConvGeometry` (channels, image size, kernel, stride, padding, p, groups, pooling) and a
:class:`~strassen_hw.frozen.FrozenLayer` ``patch`` with ``n_in = K_h·K_w·c_in`` window values
(``K = s·(p-1)+k``) and ``n_out = p·p·c_out`` patch outputs. The patch layer's ``W_b``, ã,
``W_c``, bias, shifts, ReLU and output format apply unchanged to every window.

Pixel order, everywhere (network input, between layers, window and patch vectors): rows
top to bottom, pixels left to right in a row, and all channels of one pixel together
(``index = (row·W + col)·C + channel``): the order of the hardware's pixel stream. Windows
and patches list their pixels in the same order: window entry ``(i·K_w + j)·c_in + c`` is
channel c of window pixel (i, j); patch entry ``(a·p + b)·c_out + o`` is channel o of patch
pixel (a, b).

The geometry is train/conv.py's: output ``H_out = ⌊(H + 2·pad - k)/s⌋ + 1``; patch row I
reads padded rows ``s·p·I .. s·p·I + K - 1``; zeros past the image (padding, and the rows and
columns a partial last patch reaches beyond it); outputs past ``H_out``/``W_out`` are dropped.
Pooling (after the patch layer's ReLU and saturation) takes ``q×q`` windows with stride q and
drops the last ``H_out mod q`` rows and columns (``nn.MaxPool2d(q)``): ``max`` is comparisons,
``avg`` the window sum shifted right by ``2·log2 q`` (floor; q a power of two), no multiplier.

Nothing here imports torch; the methods are pure index operations on arrays of any dtype.
"""

from dataclasses import dataclass

import numpy as np

from .formats import _fail, _int, _show
from .frozen_layer import FrozenLayer

__all__ = ["POOLS", "ConvGeometry", "FrozenConvLayer"]

#: Pooling after the convolution: none, max or average over q×q windows, stride q.
POOLS = ("none", "max", "avg")
#: Largest image side and channel count; largest kernel, stride, padding, p and pool side.
_MAX_SIDE, _MAX_SMALL = 4096, 64


def _pair(where, key, value, lo, hi):
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        _fail(where, f"'{key}' must be a pair [rows, columns] of integers, not "
                        f"{_show(value)}")
    return tuple(_int(where, key, v, lo, hi) for v in value)


@dataclass(frozen=True)
class ConvGeometry:
    """The shape of a frozen convolution layer (see the module docstring).

    Attributes
    ----------
    in_channels, out_channels : int in 1..4096
    height, width : int in 1..4096; the input image
    kernel : (int, int) in 1..64; stride (1..64), padding (0..64) likewise; one int ``n``
        means ``(n, n)`` (the file always holds pairs)
    p : int in 1..64; side of the output patch computed per window
    groups : int; divides ``in_channels`` and the patch layer's r (block-diagonal ``W_b``)
    pool : ``"none"``, ``"max"`` or ``"avg"``
    pool_size : int; 1 with ``"none"``, else 2..64 and at most the output size (a power of
        two for ``"avg"``)

    Raises
    ------
    FrozenError
        A field breaks a rule; the message starts with "conv".
    """
    in_channels: int
    out_channels: int
    height: int
    width: int
    kernel: tuple
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    p: int = 1
    groups: int = 1
    pool: str = "none"
    pool_size: int = 1

    def __post_init__(self):
        where = "conv"
        for key in ("in_channels", "out_channels", "height", "width"):
            object.__setattr__(self, key, _int(where, key, getattr(self, key), 1, _MAX_SIDE))
        for key, lo in (("kernel", 1), ("stride", 1), ("padding", 0)):
            object.__setattr__(self, key, _pair(where, key, getattr(self, key), lo, _MAX_SMALL))
        object.__setattr__(self, "p", _int(where, "p", self.p, 1, _MAX_SMALL))
        groups = _int(where, "groups", self.groups, 1, _MAX_SIDE)
        object.__setattr__(self, "groups", groups)
        if self.in_channels % groups:
            _fail(where, f"'groups' = {groups} does not divide 'in_channels' = "
                            f"{self.in_channels}")
        if min(self.conv_hw) < 1:
            _fail(where, f"the {self.height}×{self.width} image with padding "
                            f"{list(self.padding)} is smaller than the kernel "
                            f"{list(self.kernel)}; pad it or use a smaller kernel")
        if not isinstance(self.pool, str) or self.pool not in POOLS:
            _fail(where, f"'pool' is {_show(self.pool)}; use one of {', '.join(POOLS)}")
        q = _int(where, "pool_size", self.pool_size, 1, _MAX_SMALL)
        object.__setattr__(self, "pool_size", q)
        if self.pool == "none" and q != 1:
            _fail(where, f"'pool_size' = {q} without pooling; set it to 1 or choose a pool")
        if self.pool != "none" and min(self.conv_hw) < 2:
            _fail(where, f"'pool' needs a convolution output of at least 2×2, not "
                            f"{self.conv_hw[0]}×{self.conv_hw[1]}; set it to \"none\"")
        if self.pool != "none" and not 2 <= q <= min(self.conv_hw):
            _fail(where, f"'pool_size' = {q} must be 2..{min(self.conv_hw)} (the "
                            f"{self.conv_hw[0]}×{self.conv_hw[1]} convolution output)")
        if self.pool == "avg" and q & (q - 1):
            _fail(where, f"'pool_size' = {q} is not a power of two; average pooling "
                            "divides by a shift")

    @property
    def window(self):
        """``(K_h, K_w) = s·(p-1) + k``: the input pixels one patch reads."""
        return tuple(s * (self.p - 1) + k for s, k in zip(self.stride, self.kernel))

    @property
    def conv_hw(self):
        """``(H_out, W_out)`` of the convolution, before pooling."""
        return tuple((n + 2 * pad - k) // s + 1 for n, k, s, pad in
                     zip((self.height, self.width), self.kernel, self.stride, self.padding))

    @property
    def patches(self):
        """``(⌈H_out/p⌉, ⌈W_out/p⌉)``: windows (patches) per image."""
        return tuple(-(-n // self.p) for n in self.conv_hw)

    @property
    def output_hw(self):
        """The output image after pooling."""
        return tuple(n // self.pool_size for n in self.conv_hw)

    @property
    def n_window(self):
        return self.window[0] * self.window[1] * self.in_channels

    @property
    def n_patch(self):
        return self.p * self.p * self.out_channels

    @property
    def n_in(self):
        return self.height * self.width * self.in_channels

    @property
    def n_out(self):
        return self.output_hw[0] * self.output_hw[1] * self.out_channels

    def windows(self, x):
        """``(N, P_h, P_w, n_window)`` windows of the images ``x`` (N, n_in) in pixel order
        (any dtype; zeros where a window reaches past the image)."""
        x = np.asarray(x)
        n, c = x.shape[0], self.in_channels
        (kh, kw), (sh, sw), (ph, pw) = self.window, self.stride, self.patches
        pad_h, pad_w = self.padding
        img = x.reshape(n, self.height, self.width, c)
        extra_h = max(0, sh * self.p * (ph - 1) + kh - self.height - 2 * pad_h)
        extra_w = max(0, sw * self.p * (pw - 1) + kw - self.width - 2 * pad_w)
        img = np.pad(img, ((0, 0), (pad_h, pad_h + extra_h), (pad_w, pad_w + extra_w), (0, 0)))
        rows = sh * self.p * np.arange(ph)[:, None] + np.arange(kh)[None, :]
        cols = sw * self.p * np.arange(pw)[:, None] + np.arange(kw)[None, :]
        win = img[:, rows[:, None, :, None], cols[None, :, None, :], :]
        return win.reshape(n, ph, pw, self.n_window)

    def pixels(self, y):
        """Patch outputs ``y`` (N, P_h, P_w, n_patch) as the image (N, H_out, W_out, c_out):
        patches in place, the outputs past ``H_out``/``W_out`` dropped."""
        n, ph, pw, _ = y.shape
        p, co = self.p, self.out_channels
        img = y.reshape(n, ph, pw, p, p, co).transpose(0, 1, 3, 2, 4, 5)
        img = img.reshape(n, ph * p, pw * p, co)
        return img[:, :self.conv_hw[0], :self.conv_hw[1], :]

    def pool_windows(self, img):
        """``img`` (N, H_out, W_out, C) as (N, H_out/q, W_out/q, q·q, C): the pooling windows
        (the last rows and columns that make no whole window dropped)."""
        q = self.pool_size
        (hq, wq), n, c = self.output_hw, img.shape[0], img.shape[-1]
        img = img[:, :hq * q, :wq * q, :].reshape(n, hq, q, wq, q, c)
        return img.transpose(0, 1, 3, 2, 4, 5).reshape(n, hq, wq, q * q, c)

    def to_json(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "height": self.height, "width": self.width, "kernel": list(self.kernel),
                "stride": list(self.stride), "padding": list(self.padding), "p": self.p,
                "groups": self.groups, "pool": self.pool, "pool_size": self.pool_size}


#: Fields of the ``conv`` object, in file order.
CONV_KEYS = ("in_channels", "out_channels", "height", "width", "kernel", "stride", "padding",
             "p", "groups", "pool", "pool_size")


@dataclass(frozen=True, eq=False)
class FrozenConvLayer:
    """A frozen Strassen convolution: ``geometry`` and the per-window linear layer ``patch``.

    Raises
    ------
    FrozenError
        ``patch`` does not fit the geometry (sizes, or a ``W_b`` entry outside its group);
        the message starts with "layer".
    """
    geometry: ConvGeometry
    patch: object

    def __post_init__(self):
        where = "layer"
        if not isinstance(self.geometry, ConvGeometry):
            _fail(where, f"'conv' must be a ConvGeometry, not {_show(self.geometry)}")
        if not isinstance(self.patch, FrozenLayer):
            _fail(where, f"'patch' must be a FrozenLayer, not {_show(self.patch)}")
        g, patch = self.geometry, self.patch
        if patch.n_in != g.n_window:
            _fail(where, f"'patch' 'w_b' has {patch.n_in} columns but a "
                            f"{g.window[0]}×{g.window[1]} window of {g.in_channels} "
                            f"channel(s) has {g.n_window} values")
        if patch.n_out != g.n_patch:
            _fail(where, f"'patch' 'w_c' has {patch.n_out} rows but a {g.p}×{g.p} patch of "
                            f"{g.out_channels} channel(s) has {g.n_patch} values")
        if patch.r % g.groups:
            _fail(where, f"'groups' = {g.groups} does not divide r = {patch.r}")
        # group of each W_b row and of each window column (channel c of any window pixel)
        size_r, size_c = patch.r // g.groups, g.in_channels // g.groups
        row_group = np.arange(patch.r) // size_r
        col_group = (np.arange(g.n_window) % g.in_channels) // size_c
        bad = np.argwhere((patch.w_b != 0) & (row_group[:, None] != col_group[None, :]))
        if len(bad):
            i, j = (int(v) for v in bad[0])
            _fail(where, f"'patch' 'w_b'[{i}][{j}] = {patch.w_b[i, j]} is outside group "
                            f"{row_group[i]} of {g.groups}; it must be 0 (row {i} reads "
                            f"channels {row_group[i] * size_c}..{(row_group[i] + 1) * size_c - 1})")

    @property
    def n_in(self):
        return self.geometry.n_in

    @property
    def n_out(self):
        return self.geometry.n_out

    @property
    def r(self):
        """Products per window (patch); :meth:`multiplications` gives those per image."""
        return self.patch.r

    @property
    def output(self):
        return self.patch.output

    @property
    def in_shape(self):
        """``(H, W, C)`` of the input image."""
        g = self.geometry
        return g.height, g.width, g.in_channels

    @property
    def out_shape(self):
        """``(H, W, C)`` of the output image (after pooling)."""
        return (*self.geometry.output_hw, self.geometry.out_channels)

    def multiplications(self):
        """Multiplications per image: r per window, ``r·P_h·P_w``."""
        ph, pw = self.geometry.patches
        return self.r * ph * pw

    def to_json(self):
        return {"conv": self.geometry.to_json(), "patch": self.patch.to_json()}
