"""Strassen 2D convolution (StrassenNets, Sec. 2.4 and App. C) and its operation counts.

A :class:`StrassenConv2d` replaces a ``k×k`` convolution by three steps per ``p×p`` output
patch (Fig. 1, right):

1. ``W_b``: a convolution with r output channels, kernel ``s·(p-1)+k`` and stride ``s·p``
   (s the layer's stride; the paper's ``p-1+k`` and ``p`` for s = 1), in g groups (a
   block-diagonal ``W_b``), optionally followed by batch norm (App. C found it helped);
2. channel-wise scaling by the learned ã (r values): the only multiplications;
3. ``W_c``: a transposed convolution r → c_out with kernel p and stride p, which writes the
   ``p×p×c_out`` outputs of the patch, plus the bias.

``W_b`` and ``W_c`` go through the same TWN quantizer and straight-through gradient as
:class:`~strassen_hw.train.layers.StrassenLinear`, and :func:`~strassen_hw.train.set_phase`
switches both kinds of layer alike.

Geometry
--------
The output has exactly the size of ``nn.Conv2d(c_in, c_out, k, stride, padding)``'s:
``H_out = ⌊(H + 2·padding - k) / s⌋ + 1`` (likewise W_out). Output row ``i`` reads padded input
rows ``s·i .. s·i+k-1``, so patch row ``I`` (outputs ``p·I .. p·I+p-1``) reads the
``s·(p-1)+k`` padded rows from ``s·p·I``: one ``W_b`` window. When p does not divide ``H_out``
the last patch row is partial: its windows reach past the padded image, the rows they reach
there read as zeros (at most ``s·(p·⌈H_out/p⌉ - H_out)`` of them; columns at the right
likewise), the whole patch is computed and its outputs past ``H_out`` are dropped. So a layer
computes ``⌈H_out/p⌉·⌈W_out/p⌉`` patches, and every output it keeps equals the convolution's.
"""

import math
import numbers

import torch
from torch import nn
from torch.nn import functional as F

from .quantize import TernaryQuantizer, ternarize

__all__ = ["StrassenConv2d", "conv2d_counts"]


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise TypeError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


def _pair(name, value, minimum):
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral)
                              or v < minimum for v in items):
        kind = "positive" if minimum else "non-negative"
        raise TypeError(f"{name} must be a {kind} integer or a pair of them, not {value!r}")
    return tuple(int(v) for v in items)


def _out_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


class StrassenConv2d(nn.Module):
    """``nn.Conv2d`` replaced by a Strassen convolution with r products per output patch.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    kernel : int or (int, int)
        The kernel ``k`` of the convolution this layer computes.
    r : int
        Hidden channels: products per ``p×p`` output patch.
    p : int
        Side of the output patches computed by one ``W_b`` window (1: no spatial compression).
    groups : int
        Groups g of ``W_b`` (block-diagonal): g independent convolutions of ``c_in/g`` input
        and ``r/g`` hidden channels; g must divide both. ``W_c`` always sees all r channels.
    stride, padding : int or (int, int)
        Stride and zero padding of the convolution this layer computes; any stride works
        with any p (the ``W_b`` window then covers ``s·(p-1)+k`` input rows, stride ``s·p``).
    bias : bool
        Add a learned bias per output channel.
    batch_norm : bool
        Batch norm over the r channels after ``W_b`` (before ã).

    Attributes
    ----------
    w_b : Parameter, (r, c_in/g, s·(p-1)+k, s·(p-1)+k)
    w_c : Parameter, (r, c_out, p, p)
        Full-precision shadows (``conv2d`` and ``conv_transpose2d`` weight layouts); the
        forward pass sees ``α·T`` of them when quantization is on.
    a_tilde : Parameter, (r,)
    bn : nn.BatchNorm2d or None
    """

    def __init__(self, c_in, c_out, kernel, r, p=1, groups=1, stride=1, padding=0, bias=True,
                 batch_norm=False):
        super().__init__()
        self.in_channels = _positive("c_in", c_in)
        self.out_channels = _positive("c_out", c_out)
        self.r = _positive("r", r)
        self.p = _positive("p", p)
        self.groups = _positive("groups", groups)
        self.kernel_size = _pair("kernel", kernel, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        if self.in_channels % self.groups or self.r % self.groups:
            raise ValueError(f"groups={self.groups} must divide both c_in={self.in_channels} "
                             f"and r={self.r}; choose r as a multiple of the groups")
        window = tuple(s * (self.p - 1) + k for s, k in zip(self.stride, self.kernel_size))
        self.window = window
        self.w_b = nn.Parameter(torch.empty(self.r, self.in_channels // self.groups, *window))
        self.w_c = nn.Parameter(torch.empty(self.r, self.out_channels, self.p, self.p))
        self.a_tilde = nn.Parameter(torch.empty(self.r))
        self.bias = nn.Parameter(torch.empty(self.out_channels)) if bias else None
        self.bn = nn.BatchNorm2d(self.r) if batch_norm else None
        self.quant_b = TernaryQuantizer()
        self.quant_c = TernaryQuantizer()
        self.reset_parameters()

    def reset_parameters(self):
        """Uniform shadows scaled by their fan-in like ``nn.Linear``'s, ã = 1, bias 0."""
        fan_in = self.w_b[0].numel()
        nn.init.uniform_(self.w_b, -fan_in ** -0.5, fan_in ** -0.5)
        nn.init.uniform_(self.w_c, -self.r ** -0.5, self.r ** -0.5)
        nn.init.ones_(self.a_tilde)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        if self.bn is not None:
            self.bn.reset_parameters()

    @property
    def quantized(self):
        return self.quant_b.enabled

    def _shadows(self):
        """(quantizer, shadow) pairs, for :func:`~strassen_hw.train.layers.set_phase`."""
        return ((self.quant_b, self.w_b), (self.quant_c, self.w_c))

    def output_size(self, input_hw):
        """``(H_out, W_out)`` for an ``input_hw = (H, W)`` image: ``nn.Conv2d``'s.

        Raises ``ValueError`` when the padded image is smaller than the kernel.
        """
        h, w = _pair("input_hw", input_hw, 1)
        size = tuple(_out_size(n, k, s, pad) for n, k, s, pad in
                     zip((h, w), self.kernel_size, self.stride, self.padding))
        if min(size) < 1:
            raise ValueError(f"a {h}×{w} input with padding {self.padding} is smaller than "
                             f"the {self.kernel_size[0]}×{self.kernel_size[1]} kernel")
        return size

    def patches(self, input_hw):
        """``(⌈H_out/p⌉, ⌈W_out/p⌉)``: the ``p×p`` output patches per channel and image."""
        return tuple(-(-n // self.p) for n in self.output_size(input_hw))

    def forward(self, x):
        (out_h, out_w), (ph, pw) = self.output_size(x.shape[-2:]), self.patches(x.shape[-2:])
        (sh, sw), (pad_h, pad_w) = self.stride, self.padding
        # the last patch row reads padded rows up to s·(p·⌈H_out/p⌉ - 1) + k - 1: pad with zeros
        # past the image when p does not divide H_out (likewise the columns)
        (kh, kw), (height, width) = self.kernel_size, x.shape[-2:]
        extra_h = max(0, sh * (ph * self.p - 1) + kh - height - 2 * pad_h)
        extra_w = max(0, sw * (pw * self.p - 1) + kw - width - 2 * pad_w)
        x = F.pad(x, (pad_w, pad_w + extra_w, pad_h, pad_h + extra_h))
        hidden = F.conv2d(x, self.quant_b(self.w_b), stride=(sh * self.p, sw * self.p),
                          groups=self.groups)
        if self.bn is not None:
            hidden = self.bn(hidden)
        hidden = hidden * self.a_tilde.view(1, -1, 1, 1)
        out = F.conv_transpose2d(hidden, self.quant_c(self.w_c), self.bias, stride=self.p)
        return out[..., :out_h, :out_w]

    def ternary_weights(self):
        """``(T_b, α_b, T_c, α_c)``: the TWN ternary values (exactly -1, 0, 1) and scales of
        the shadows, as the quantized forward pass uses them (``α·T``), without gradient."""
        t_b, alpha_b, _ = ternarize(self.w_b)
        t_c, alpha_c, _ = ternarize(self.w_c)
        return t_b, alpha_b, t_c, alpha_c

    def multiplications(self, input_hw):
        """Multiplications per image: ``r·⌈H_out/p⌉·⌈W_out/p⌉``, the r products by ã per patch.

        ``α_b``, ``α_c`` and a batch norm fold into ã and the bias after training, so they
        cost nothing more. Against ``nn.Conv2d``'s ``c_out·H_out·W_out·(c_in/G)·k_h·k_w``
        (G its groups) this is the paper's cut ``c_in·c_out·k_h·k_w·p²/r`` when p divides
        the output size and G = 1.
        """
        ph, pw = self.patches(input_hw)
        return self.r * ph * pw

    def additions(self, input_hw, worst_case=False):
        """Additions per image, summed over the ``⌈H_out/p⌉·⌈W_out/p⌉`` patches.

        Per patch: each of the r hidden values sums its ``m`` non-zero ``W_b`` terms in
        ``max(m - 1, 0)`` additions (padding zeros count as operands: the adder tree is the
        same at the borders); each of the ``c_out·p²`` outputs sums its ``m`` non-zero ``W_c``
        terms and the bias in ``max(m + b - 1, 0)`` additions (b = 1 with a bias, else 0; a
        batch norm's offset folds into that bias). All ``p×p`` outputs of a partial last
        patch are counted. Sub-sums shared between rows are not exploited here.

        Parameters
        ----------
        input_hw : (int, int)
        worst_case : bool
            Count every ternary entry as non-zero (the paper's convention, Tables 5-7; from the
            shapes alone): ``r·(c_in/g·K_h·K_w - 1) + c_out·p²·(r - 1 + b)`` per patch with
            ``K = s·(p-1)+k``. False (default) counts the non-zeros of the current ternary
            ``T_b``, ``T_c``.
        """
        ph, pw = self.patches(input_hw)
        b = int(self.bias is not None)
        if worst_case:
            per_b = torch.full((self.r,), self.w_b[0].numel())
            per_c = torch.full((self.out_channels * self.p ** 2,), self.r)
        else:
            t_b, _, t_c, _ = self.ternary_weights()
            per_b = (t_b != 0).flatten(1).sum(1)
            per_c = (t_c != 0).flatten(1).sum(0)
        adds = (per_b - 1).clamp(min=0).sum() + (per_c + b - 1).clamp(min=0).sum()
        return int(adds) * ph * pw

    def extra_repr(self):
        return (f"c_in={self.in_channels}, c_out={self.out_channels}, "
                f"kernel={self.kernel_size}, r={self.r}, p={self.p}, groups={self.groups}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


def conv2d_counts(conv, input_hw):
    """(multiplications, additions) per image of a dense ``nn.Conv2d`` on ``input_hw``.

    ``(c_in/G)·k_h·k_w`` products per output (G its groups), summed with the bias in as many
    additions (one fewer without a bias), for ``c_out·H_out·W_out`` outputs.
    """
    h, w = _pair("input_hw", input_hw, 1)
    if conv.dilation != (1, 1) or isinstance(conv.padding, str):
        raise ValueError("conv2d_counts needs a convolution without dilation and with integer "
                         "padding")
    out = [_out_size(n, k, s, pad) for n, k, s, pad in
           zip((h, w), conv.kernel_size, conv.stride, conv.padding)]
    outputs = conv.out_channels * math.prod(out)
    terms = conv.in_channels // conv.groups * math.prod(conv.kernel_size)
    return outputs * terms, outputs * (terms - int(conv.bias is None))
