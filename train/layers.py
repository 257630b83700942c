"""Strassen layers for PyTorch, the three training phases, and :func:`strassenize`.

A Strassen layer computes ``y = W_c (ã ⊙ (W_b x)) + bias`` (StrassenNets, Sec. 2.1-2.2): ``W_b``
(r × in) and ``W_c`` (out × r) become ternary, so the only multiplications left are the r
products with the learned vector ã. :class:`StrassenLinear` is the fully connected layer;
:class:`~strassen_hw.train.conv.StrassenConv2d` the convolution (Sec. 2.4).
"""

import numbers

import torch
from torch import nn

from .conv import StrassenConv2d, conv2d_counts
from .quantize import TernaryQuantizer, ternarize

__all__ = ["PHASES", "StrassenLinear", "TWNLinear", "strassenize", "twnize", "set_phase",
           "strassen_layers", "count_operations"]

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
    batch_norm : bool
        Batch norm over the r hidden values after ``W_b`` (before ã), as in
        :class:`~strassen_hw.train.conv.StrassenConv2d`; it folds into ã and the bias at
        freeze time.

    Attributes
    ----------
    w_b, w_c : Parameter
        Full-precision shadows; the forward pass sees ``α·T`` of them when quantization is on.
    a_tilde : Parameter
        ã, learned directly as the paper does when training from scratch.
    bn : nn.BatchNorm1d or None
    """

    def __init__(self, in_features, r, out_features, bias=True, batch_norm=False):
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
        self.bn = nn.BatchNorm1d(self.r) if batch_norm else None
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
        if self.bn is not None:
            self.bn.reset_parameters()

    @property
    def quantized(self):
        return self.quant_b.enabled

    def _shadows(self):
        """(quantizer, shadow) pairs, for :func:`set_phase`."""
        return ((self.quant_b, self.w_b), (self.quant_c, self.w_c))

    def forward(self, x):
        hidden = nn.functional.linear(x, self.quant_b(self.w_b))
        if self.bn is not None:
            hidden = self.bn(hidden)
        hidden = hidden * self.a_tilde
        return nn.functional.linear(hidden, self.quant_c(self.w_c), self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, r={self.r}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")

    def multiplications(self, input_hw=None):
        """Multiplications per input vector: r (``input_hw`` is ignored)."""
        return self.r

    def additions(self, input_hw=None, worst_case=False):
        """Additions per input vector: ``max(m - 1, 0)`` per row of ``T_b`` with m non-zeros,
        ``max(m + b - 1, 0)`` per row of ``T_c`` (b = 1 with a bias); ``worst_case`` counts
        every entry as non-zero. See :meth:`StrassenConv2d.additions`."""
        b = int(self.bias is not None)
        if worst_case:
            return self.r * (self.in_features - 1) + self.out_features * (self.r - 1 + b)
        per_b = (ternarize(self.w_b)[0] != 0).sum(1)
        per_c = (ternarize(self.w_c)[0] != 0).sum(1)
        return int((per_b - 1).clamp(min=0).sum() + (per_c + b - 1).clamp(min=0).sum())


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
    return [m for m in model.modules()
            if isinstance(m, (StrassenLinear, StrassenConv2d, TWNLinear))]


def strassen_layers(model):
    """The Strassen layers (:class:`StrassenLinear`, :class:`StrassenConv2d`) of ``model``, in
    module order."""
    return [m for m in model.modules() if isinstance(m, (StrassenLinear, StrassenConv2d))]


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


def strassenize(model, r, p=1, groups=None, batch_norm=False, input_shape=None):
    """Replace every ``nn.Linear`` and ``nn.Conv2d`` of ``model`` (in place) by a Strassen layer.

    The model's forward pass is traced first (:func:`strassen_hw.train.trace.trace`): a model
    that :func:`~strassen_hw.train.freeze.freeze` would refuse (an op it cannot freeze, a
    data-dependent branch, a batch norm where it cannot fold, ...) is refused here, before any
    training, with the same one line. The layers are replaced wherever they sit (inside blocks,
    in shortcuts). A batch norm that directly follows a replaced layer (and nothing else reads
    that layer's output) moves after its ``W_b`` (``batch_norm=True`` of the new layer; the
    old module becomes ``nn.Identity``): there it folds into ã and the bias exactly, while after
    the ternary ``W_c`` it could not.

    Parameters
    ----------
    model : nn.Module
        Any model; its ``nn.Linear`` children become :class:`StrassenLinear`, its ``nn.Conv2d``
        children :class:`StrassenConv2d` (same kernel, stride, padding and bias; zero padding,
        no dilation), everything else is kept.
    r : int, float, sequence of int, or callable
        The number of products per layer (per output patch for a convolution): one int for
        all layers; a float c for ``r = max(1, round(c·out))`` with ``out`` the layer's output
        features or channels (the paper's ``r = c·c_out``); one int per replaced layer in
        module order; or a rule ``r(layer) -> int or None`` such as
        ``lambda m: m.out_features // 2``, where None keeps that layer dense.
    p : int, sequence of int, or callable
        Output patch side of the convolutions: one for all, one per ``nn.Conv2d`` in module
        order, or a rule ``p(conv) -> int``.
    groups : int, callable or None
        Groups of ``W_b`` in the convolutions; None takes each ``nn.Conv2d``'s own groups.
    batch_norm : bool
        Batch norm after ``W_b`` in every convolution (those followed by a batch norm get one
        anyway).
    input_shape : (int, int, int) or None
        ``(channels, height, width)`` of the input images, when known: the check then covers
        shapes too (a module called with two input shapes, pooling that does not fit).

    Returns
    -------
    nn.Module
        ``model`` itself, with fresh Strassen layers (they do not inherit the dense weights).
    """
    from .trace import trace
    if isinstance(model, (nn.Linear, nn.Conv2d)):
        raise TypeError("strassenize needs a model that contains nn.Linear or nn.Conv2d layers; "
                        "wrap a bare layer in nn.Sequential")
    plan = trace(model, input_shape)
    followed = {}                            # id(layer) -> the batch norms right after it
    for op in plan.layers():
        if op.bns and isinstance(op.module, (nn.Linear, nn.Conv2d)):
            followed.setdefault(id(op.module), []).extend(op.bns)
    targets = [(parent, name, child) for parent in model.modules()
               for name, child in parent.named_children()
               if isinstance(child, (nn.Linear, nn.Conv2d))]
    if callable(r):
        sizes = [r(child) for _, _, child in targets]
    elif isinstance(r, numbers.Integral) and not isinstance(r, bool):
        sizes = [int(r)] * len(targets)
    elif isinstance(r, numbers.Real) and not isinstance(r, bool):
        sizes = [max(1, round(r * _outputs(child))) for _, _, child in targets]
    else:
        sizes = list(r)
        if len(sizes) != len(targets):
            raise ValueError(f"r lists {len(sizes)} value(s) but the model has {len(targets)} "
                             "nn.Linear/nn.Conv2d layer(s)")
    convs = [child for _, _, child in targets if isinstance(child, nn.Conv2d)]
    if callable(p) or isinstance(p, numbers.Integral):
        patch = {id(conv): p(conv) if callable(p) else p for conv in convs}
    else:
        patch = list(p)
        if len(patch) != len(convs):
            raise ValueError(f"p lists {len(patch)} value(s) but the model has {len(convs)} "
                             "nn.Conv2d layer(s)")
        patch = dict(zip(map(id, convs), patch))
    moved = set()
    for (parent, name, child), size in zip(targets, sizes):
        if size is None:
            continue
        bns = followed.get(id(child), [])
        if isinstance(child, nn.Linear):
            layer = StrassenLinear(child.in_features, size, child.out_features,
                                   bias=child.bias is not None, batch_norm=bool(bns))
        else:
            layer = _strassen_conv(child, size, patch[id(child)],
                                   groups(child) if callable(groups) else groups,
                                   batch_norm or bool(bns))
        moved.update(map(id, bns))
        setattr(parent, name, layer.to(child.weight.device, child.weight.dtype))
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if id(child) in moved:
                setattr(parent, name, nn.Identity())
    return model


def _outputs(layer):
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def _strassen_conv(conv, r, p, groups, batch_norm):
    if conv.dilation != (1, 1) or conv.padding_mode != "zeros":
        raise ValueError(f"cannot strassenize {conv}: only zero padding without dilation is "
                         "supported")
    padding = conv.padding
    if padding == "valid":
        padding = (0, 0)
    elif padding == "same":
        if conv.stride != (1, 1) or any(k % 2 == 0 for k in conv.kernel_size):
            raise ValueError(f"cannot strassenize {conv}: padding='same' needs an odd kernel "
                             "and stride 1; give the padding as integers")
        padding = tuple(k // 2 for k in conv.kernel_size)
    return StrassenConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, r, p=p,
                          groups=conv.groups if groups is None else groups, stride=conv.stride,
                          padding=padding, bias=conv.bias is not None, batch_norm=batch_norm)


def count_operations(model, input_shape, worst_case=False):
    """Multiplications and additions per input of ``model``'s linear and convolution layers.

    Runs one all-zero input of ``input_shape`` (without the batch dimension) through ``model``
    to find each layer's input size, then sums :meth:`StrassenConv2d.multiplications` and
    ``.additions`` of the Strassen layers and :func:`~strassen_hw.train.conv.conv2d_counts` of
    dense ``nn.Conv2d`` (``nn.Linear``: ``in·out`` of each). ReLU, pooling (comparisons, or an
    average pool's shift) and batch norms (folded into the layer before) are not counted.

    Returns
    -------
    dict
        ``{"multiplications": int, "additions": int, "layers": [{"name", "type",
        "multiplications", "additions"}, ...]}``.
    """
    rows, hooks = [], []

    def count(name, module, args):
        x = args[0]
        hw = tuple(x.shape[-2:])
        if isinstance(module, StrassenConv2d):
            mults, adds = module.multiplications(hw), module.additions(hw, worst_case)
        elif isinstance(module, nn.Conv2d):
            mults, adds = conv2d_counts(module, hw)
        else:                           # a linear layer, applied at every leading position
            positions = x.numel() // (x.shape[0] * module.in_features)
            if isinstance(module, StrassenLinear):
                mults, adds = module.multiplications(), module.additions(worst_case=worst_case)
            else:
                mults = module.in_features * module.out_features
                adds = mults - module.out_features * int(module.bias is None)
            mults, adds = positions * mults, positions * adds
        rows.append({"name": name, "type": type(module).__name__, "multiplications": mults,
                     "additions": adds})

    for name, module in model.named_modules():
        if isinstance(module, (StrassenLinear, StrassenConv2d, nn.Linear, nn.Conv2d)):
            hooks.append(module.register_forward_pre_hook(
                lambda m, args, name=name: count(name, m, args)))
    training = model.training
    try:
        param = next(model.parameters())
        with torch.no_grad():
            model.eval()(torch.zeros((1, *input_shape), device=param.device, dtype=param.dtype))
    finally:
        model.train(training)
        for hook in hooks:
            hook.remove()
    return {"multiplications": sum(row["multiplications"] for row in rows),
            "additions": sum(row["additions"] for row in rows), "layers": rows}
