"""Strassen layers for PyTorch, the three training phases, and :func:`strassenize`.

A Strassen layer computes ``y = W_c (ã ⊙ (W_b x)) + bias`` (StrassenNets, Sec. 2.1-2.2): ``W_b``
(r × in) and ``W_c`` (out × r) become ternary, so the only multiplications left are the r
products with the learned vector ã.
"""

import numbers

import torch
from torch import nn

from .quantize import TernaryQuantizer

__all__ = ["PHASES", "StrassenLinear", "TWNLinear", "strassenize", "twnize", "set_phase",
           "strassen_layers"]

#: The training phases, in order (paper Sec. 2.2): full-precision ``W_b``/``W_c``; ternary
#: ``W_b``/``W_c`` with straight-through gradients to their shadows; ternary values fixed while
#: ã, biases and every other parameter keep training.
PHASES = ("full_precision", "quantized", "ternary_fixed")


class StrassenLinear(nn.Module):
    """``nn.Linear`` replaced by ``W_c (ã ⊙ (W_b x)) + bias`` with r hidden products.

    Parameters
    ----------
    in_features, r, out_features : int
        Sizes: ``W_b`` is (r, in_features), ã has r entries, ``W_c`` is (out_features, r).
    bias : bool
        Learn an additive bias of ``out_features`` entries.

    Attributes
    ----------
    w_b, w_c : Parameter
        Full-precision shadows; the forward pass sees ``α·T`` of them when quantization is on.
    a_tilde : Parameter
        ã, learned directly as the paper does when training from scratch.
    """

    def __init__(self, in_features, r, out_features, bias=True):
        super().__init__()
        for name, value in (("in_features", in_features), ("r", r),
                            ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise TypeError(f"{name} must be a positive integer, not {value!r}")
        self.in_features, self.r, self.out_features = int(in_features), int(r), int(out_features)
        self.w_b = nn.Parameter(torch.empty(r, in_features))
        self.w_c = nn.Parameter(torch.empty(out_features, r))
        self.a_tilde = nn.Parameter(torch.empty(r))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.quant_b = TernaryQuantizer()
        self.quant_c = TernaryQuantizer()
        self.reset_parameters()

    def reset_parameters(self):
        """Uniform shadows scaled like ``nn.Linear``'s, ã = 1, bias 0."""
        nn.init.uniform_(self.w_b, -self.in_features ** -0.5, self.in_features ** -0.5)
        nn.init.uniform_(self.w_c, -self.r ** -0.5, self.r ** -0.5)
        nn.init.ones_(self.a_tilde)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    @property
    def quantized(self):
        return self.quant_b.enabled

    def _shadows(self):
        """(quantizer, shadow) pairs, for :func:`set_phase`."""
        return ((self.quant_b, self.w_b), (self.quant_c, self.w_c))

    def forward(self, x):
        hidden = nn.functional.linear(x, self.quant_b(self.w_b)) * self.a_tilde
        return nn.functional.linear(hidden, self.quant_c(self.w_c), self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, r={self.r}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class TWNLinear(nn.Module):
    """``nn.Linear`` with ternary weights (TWN): ``y = g ⊙ α ⊙ (T x) + bias``.

    ``T`` and ``α`` come from the full-precision shadow ``weight`` by the TWN quantizer with
    one threshold Δ and one α per output row; ``g`` is a learned gain per output that keeps
    training when the ternary values are fixed, as ã does in :class:`StrassenLinear`. After
    freezing, ``α ⊙ g`` is the one multiplier per output. Trains in the same :data:`PHASES`.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Learn an additive bias of ``out_features`` entries.

    Attributes
    ----------
    weight : Parameter, shape (out_features, in_features)
        Full-precision shadow; the forward pass sees ``α·T`` of it when quantization is on.
    gain : Parameter, shape (out_features,)
        ``g``, initialised to 1.
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise TypeError(f"{name} must be a positive integer, not {value!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.gain = nn.Parameter(torch.ones(out_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.quant = TernaryQuantizer(dim=(1,))
        nn.init.uniform_(self.weight, -self.in_features ** -0.5, self.in_features ** -0.5)

    @property
    def quantized(self):
        return self.quant.enabled

    def _shadows(self):
        """(quantizer, shadow) pairs, for :func:`set_phase`."""
        return ((self.quant, self.weight),)

    def forward(self, x):
        return nn.functional.linear(x, self.quant(self.weight)) * self.gain + (
            0 if self.bias is None else self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


def _quantized_layers(model):
    return [m for m in model.modules() if isinstance(m, (StrassenLinear, TWNLinear))]


def strassen_layers(model):
    """The :class:`StrassenLinear` modules of ``model``, in module order."""
    return [m for m in model.modules() if isinstance(m, StrassenLinear)]


def set_phase(model, phase):
    """Put every Strassen (and TWN) layer of ``model`` into ``phase`` (one of :data:`PHASES`).

    ``full_precision``: quantizers off, shadows train. ``quantized``: quantizers on, shadows
    train through the straight-through gradient. ``ternary_fixed``: quantizers on, shadows stop
    training, so the ternary values and their α stay fixed; ã, biases and all other parameters
    keep training. Build the optimizer after calling this (from the parameters that require
    gradients).
    """
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}, not {phase!r}")
    for layer in _quantized_layers(model):
        for quantizer, shadow in layer._shadows():
            quantizer.enabled = phase != "full_precision"
            shadow.requires_grad_(phase != "ternary_fixed")
    return model


def _linears(model, what):
    if isinstance(model, nn.Linear):
        raise TypeError(f"{what} needs a model that contains nn.Linear layers; wrap a bare "
                        "nn.Linear in nn.Sequential")
    return [(parent, name, child) for parent in model.modules()
            for name, child in parent.named_children() if isinstance(child, nn.Linear)]


def twnize(model):
    """Replace every ``nn.Linear`` of ``model`` (in place) by a :class:`TWNLinear` whose
    shadow starts from the linear's weight and bias (the gain from 1).

    Returns
    -------
    nn.Module
        ``model`` itself.
    """
    for parent, name, child in _linears(model, "twnize"):
        layer = TWNLinear(child.in_features, child.out_features, bias=child.bias is not None)
        with torch.no_grad():
            layer.weight.copy_(child.weight)
            if child.bias is not None:
                layer.bias.copy_(child.bias)
        setattr(parent, name, layer.to(child.weight.device, child.weight.dtype))
    return model


def strassenize(model, r):
    """Replace every ``nn.Linear`` of ``model`` (in place) by a :class:`StrassenLinear`.

    Parameters
    ----------
    model : nn.Module
        Any model; its ``nn.Linear`` children are replaced, everything else is kept.
    r : int, sequence of int, or callable
        The number of products per layer: one int for all layers, one int per ``nn.Linear`` in
        module order, or a rule ``r(linear) -> int`` such as
        ``lambda lin: lin.out_features // 2`` (r = c·out_features).

    Returns
    -------
    nn.Module
        ``model`` itself, with fresh Strassen layers (they do not inherit the dense weights).
    """
    targets = _linears(model, "strassenize")
    if callable(r):
        sizes = [r(child) for _, _, child in targets]
    elif isinstance(r, int):
        sizes = [r] * len(targets)
    else:
        sizes = list(r)
        if len(sizes) != len(targets):
            raise ValueError(f"r lists {len(sizes)} value(s) but the model has {len(targets)} "
                             "nn.Linear layer(s)")
    for (parent, name, child), size in zip(targets, sizes):
        layer = StrassenLinear(child.in_features, int(size), child.out_features,
                               bias=child.bias is not None)
        setattr(parent, name, layer.to(child.weight.device, child.weight.dtype))
    return model
