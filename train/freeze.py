"""Freeze a trained Strassen model into a :class:`~strassen_hw.frozen.FrozenNetwork`.

:func:`freeze` traces the model's forward pass with ``torch.fx``
(:func:`strassen_hw.train.trace.trace`) and freezes what it computes: Strassen, TWN and dense
(``nn.Linear``, ``nn.Conv2d``) layers in any order the forward pass uses them, a module called
twice becoming two layers; batch norms folded into the layer before them; ReLU; max and average
pooling (folded into the convolution before them, or a pool node); global average pooling;
flattening; and ``+`` between tensors. Anything else is refused with one line naming the op,
the node and the source line. The model's input is ``x_int · input_scale`` with integer
``x_int`` in ``input_format`` (digits: pixels 0..16, scale 1/16); a model that starts with
``nn.Unflatten(1, (1, H, W))`` (or ``x.view(x.size(0), 1, H, W)``) reads images of one
channel from the flat pixels, otherwise ``input_shape`` gives ``(C, H, W)``.

A model whose layers follow one another (each reading the one before, with ReLU, pooling
folded into its convolution, and flattening between) freezes into a chain, byte for byte the
network it froze into before tracing existed (format versions 1 and 2). Any other model --
with an add, a global pool, or a pool that cannot fold -- freezes into a version-3 graph
(:mod:`strassen_hw.graph`): one node per layer, add, pool and flatten, named after the
traced nodes.

Convolutions become :class:`~strassen_hw.frozen.FrozenConvLayer`: their ``W_b``/``W_c`` are
reshaped into the patch layer's matrices (pixel order of :mod:`strassen_hw.frozen_conv`), the
block-diagonal ``W_b`` of g groups filled with zeros; a batch norm after ``W_b`` (its running
statistics) folds into ã (its scale) and into a bias per patch output (its offset through
``W_c``): no multiplier beyond the r per window. The first linear layer after a convolution
gets its ``W_b`` columns permuted from torch's flattening (channel, row, column) to the pixel
order (row, column, channel). Pooling is kept as pooling: max (comparisons) or the window sum
shifted right (average; floor).

What is exact
-------------
- ``W_b`` and ``W_c`` are the TWN ternary matrices ``T`` of the shadows (always ternarized here,
  whatever the quantizer switch says); their scales ``α_b``, ``α_c`` and the input scale fold
  into ã exactly: per layer, the real multiplier of each integer ``u = W_b x`` is
  ``a_eff = α_b · α_c · ã · s_in``.
- The inputs are the integer pixels; ``W_b x`` and ``W_c p`` are exact integer sums. The last
  layer's logits are never saturated: its output width covers the exact range of its values
  (up to 32 bits; a wider range makes the logit step coarser instead).

What is rounded (all ``half_up``, identical in reference and hardware)
--------------------------------------------------------------------
- ã: ``a_tilde = round(a_eff · 2^F)`` in ``a_width`` signed bits, ``F = a_frac_bits`` the largest
  that fits; error ≤ 2^-(F+1) per product and integer unit of ``u``. Unless given, ``a_width``
  is the smallest (from 2 bits up) that keeps as many calibration predictions of the float
  model as 16 bits do and keeps the mean logit error within 2 % of the logits' spread (see
  :func:`freeze`).
- products: ``product_shift`` drops the bits more than ``guard_bits`` below the layer's output
  step; error ≤ half a product step each.
- bias: rounded to the product step ``2^(product_shift - F)``.
- hidden activations: after ReLU, rounded to a power-of-two step chosen so that the largest
  activation on the calibration images fits ``act_width`` unsigned bits, then saturated there
  (larger activations on other images clip).
- logits: the last layer keeps ``logit_width`` signed bits for the largest calibration logit
  (``shift = 0``; its step is set by ``product_shift``).

Every layer's real step (the value of one integer unit of its output) is a power of two:
``2^(product_shift + shift - F)``; :func:`freeze` reports it.

Graph nodes (version 3)
-----------------------
- A layer without ReLU keeps every value it can produce, as the logits do (its calibration
  peak in ``logit_width`` signed bits, the width covering its exact range, up to 32 bits).
- ``add``: each input is shifted left (``align``) onto the finest input step, which is exact
  because every step is a power of two (an input whose step is not, such as a global pool's,
  is refused: put a layer on that branch); the sum is rounded ``half_up`` by ``shift`` to
  ``act_width`` unsigned bits for its calibration peak after a ReLU (saturated there), or,
  without ReLU, kept whole like a layer without ReLU.
- ``pool`` max / avg keep their input's format and step; ``global`` sums each channel over
  the H·W pixels and shifts right by the smallest shift that keeps the calibration peak in
  ``act_width`` bits (saturated), so one output unit is ``step·2^shift/(H·W)`` of the mean,
  a factor the next layer's ã takes (H·W need not be a power of two).
- :meth:`FreezeReport.summary` lists per node what was chosen (formats, shifts, steps) and the
  largest magnitude calibration saw there; :attr:`FreezeReport.nodes` holds the same entries.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from strassen_hw.frozen import (ConvGeometry, Format, FrozenConvLayer, FrozenError, FrozenLayer,
                                FrozenNetwork, signed_width, stage_ranges)
from strassen_hw.reference import round_shift

from .conv import StrassenConv2d
from .layers import StrassenLinear
from .quantize import ternarize

__all__ = ["FreezeReport", "Stage", "freeze", "freeze_parts", "float_logits", "strassen_chain",
           "layer_chain"]

_SKIP = (nn.Identity, nn.Dropout)


@dataclass
class FreezeReport:
    """What :func:`freeze` chose and what it cost.

    Attributes
    ----------
    a_width : int
        Signed bits of ã in every layer.
    candidates : list of dict
        ``{"a_width", "agreement", "logit_error"}`` for each width tried: the fraction of
        calibration images whose frozen prediction equals the float model's, and the mean
        absolute logit error relative to the logits' spread.
    layers : list of dict
        Per layer: ``a_frac_bits``, ``product_shift``, ``shift``, ``step`` (real value of one
        output unit), ``output`` width and signedness.
    """
    a_width: int
    candidates: list = field(default_factory=list)
    layers: list = field(default_factory=list)
    nodes: list = None

    @property
    def output_step(self):
        """Real value of one unit of the network's integer logits."""
        return (self.nodes or self.layers)[-1]["step"]

    def summary(self):
        """One line per layer (a graph: per node) with what the freeze chose (formats, shifts,
        the step of one output unit) and the largest magnitude calibration saw there."""
        lines = [f"ã in {self.a_width} signed bits"]
        for index, e in enumerate(self.nodes or self.layers):
            out = e["output"]
            fmt = f"{out['width']} {'signed' if out['signed'] else 'unsigned'} bits"
            name = e.get("name", f"layer {index}")
            kind = e.get("kind", "layer")
            what = {"layer": lambda: (f"ã 2^-{e['a_frac_bits']}, product shift "
                                      f"{e['product_shift']}, shift {e['shift']}"),
                    "add": lambda: f"align {e['align']}, shift {e['shift']}",
                    "pool": lambda: (f"global sum of {e['pixels']} pixels >> {e['shift']}"
                                     if "pixels" in e else f"{e['mode']} {e['size']}×"
                                     f"{e['size']}"),
                    "flatten": lambda: "pixel order"}[kind]()
            peak = f", calibration peak {e['peak']:.4g}" if "peak" in e else ""
            lines.append(f"{name} ({kind}): {what}; output {fmt}, step {e['step']:.4g}{peak}")
        return lines


@dataclass
class Stage:
    """One frozen layer to be: a Strassen ``layer``, the ReLU after it, and for a convolution
    its ``geometry`` (with the pooling after it); ``perm`` (a linear layer after a
    convolution) maps each input in pixel order to its index in torch's flattening."""
    layer: nn.Module
    relu: bool = False
    geometry: ConvGeometry = None
    perm: np.ndarray = None
    kind: str = None
    bns: list = field(default_factory=list)


def _pool(module, stage):
    """``stage`` with the pooling of ``module`` (nn.MaxPool2d / nn.AvgPool2d) in its geometry."""
    def one(value):
        return value[0] if isinstance(value, tuple) and len(set(value)) == 1 else value
    q, stride = one(module.kernel_size), one(module.stride)
    kind = "max" if isinstance(module, nn.MaxPool2d) else "avg"
    ok = (isinstance(q, int) and stride == q and one(module.padding) == 0 and not module.ceil_mode
          and (kind == "avg" or one(module.dilation) == 1)
          and (kind == "max" or module.divisor_override is None))
    if stage is None or stage.geometry is None or stage.geometry.pool != "none":
        raise ValueError(f"{type(module).__name__} must follow a Strassen convolution (or its "
                         "ReLU), once")
    if not ok:
        raise ValueError(f"cannot freeze {module}: pooling needs kernel = stride, no padding, "
                         "no dilation, floor mode")
    try:
        stage.geometry = ConvGeometry(**{**stage.geometry.__dict__, "pool": kind,
                                         "pool_size": q})
    except FrozenError as e:
        raise ValueError(f"cannot freeze {module}: {str(e).removeprefix('conv: ')}") from None


def strassen_chain(model, input_shape=None, n_in=None):
    """The :class:`Stage` list of a chain ``model`` (layers one after the other, see
    :attr:`~strassen_hw.train.trace.Plan.is_chain`), from its traced forward pass; raises
    ``ValueError`` (one line) for what :func:`~strassen_hw.train.trace.trace` refuses or a
    model that is not a chain.

    ``input_shape`` is ``(channels, height, width)`` of the input image when the model starts
    with a convolution without an ``nn.Unflatten`` before it."""
    plan = _plan(model, input_shape, n_in)
    if not plan.is_chain:
        raise ValueError("the model is a graph (add or pooling nodes), not a chain of layers")
    return _stages(plan)


def _plan(model, input_shape=None, n_in=None):
    from .trace import trace
    plan = trace(model, input_shape, n_in)
    kinds = [op.layer_kind for op in plan.layers()]
    if "strassen" not in kinds and "twn" not in kinds:
        what = type(plan.layers()[0].module).__name__
        raise ValueError(f"cannot freeze {what}: the model has no Strassen or TWN layers (a "
                         "float model); call strassenize() and train first (the int8 "
                         "baseline of a float model is train.baselines.freeze_dense)")
    return plan


def _stages(plan):
    return [Stage(op.module, op.relu, op.geometry, op.perm, op.layer_kind, list(op.bns))
            for op in plan.layers()]


def layer_chain(model, kind, what, hint):
    """``[(layer, relu_after), ...]`` for a model of fully connected layers, all of the class
    ``kind`` (called ``what`` in messages, ``hint`` says how to get some); ``ValueError`` for
    any other module than those, ReLU, flattening and the skipped ones."""
    chain = []
    for module in _leaves(model):
        if isinstance(module, kind):
            chain.append([module, False])
        elif isinstance(module, nn.ReLU):
            if not chain or chain[-1][1]:
                raise ValueError(f"a ReLU must follow a {what} layer")
            chain[-1][1] = True
        elif not isinstance(module, (*_SKIP, nn.Flatten)):
            raise ValueError(f"cannot freeze {type(module).__name__}; a frozen network holds "
                             f"{what} layers with optional ReLU between them")
    if not chain:
        raise ValueError(f"the model has no {what} layers; {hint}")
    return [tuple(item) for item in chain]


def _leaves(module):
    if isinstance(module, nn.Sequential):
        for child in module:
            yield from _leaves(child)
    else:
        yield module


def _float_layers(chain):
    """Per stage: (T_b, T_c, a_eff without s_in, bias) as numpy arrays (ternary int64, float64)
    in the frozen layer's layout (a convolution's: its patch layer's)."""
    out = []
    for stage in chain:
        layer = stage.layer
        if stage.kind in ("twn", "dense"):
            out.append(_other_parts(stage))
            continue
        # Ternarize in the model's own precision, so that entries at the threshold fall on
        # the same side as in the model's forward pass; then compute in float64.
        t_b, alpha_b, _ = ternarize(layer.w_b.detach().cpu())
        t_c, alpha_c, _ = ternarize(layer.w_c.detach().cpu())
        t_b, t_c = t_b.numpy().astype(np.int64), t_c.numpy().astype(np.int64)
        a_tilde = layer.a_tilde.detach().cpu().double().numpy()
        a = float(alpha_b) * float(alpha_c) * a_tilde
        n_out = layer.out_channels if stage.geometry is not None else layer.out_features
        bias = (layer.bias.detach().cpu().double().numpy() if layer.bias is not None
                else np.zeros(n_out))
        if stage.geometry is None:
            if stage.perm is not None:
                t_b = t_b[:, stage.perm]
            if getattr(layer, "bn", None) is not None:       # as for a convolution, below
                scale, offset = _bn_fold(layer.bn)
                bias = bias + t_c @ (float(alpha_c) * a_tilde * offset)
                a = a * scale
            out.append((t_b, t_c, a, bias))
            continue
        # W_b (r, c_in/g, K, K) -> block-diagonal (r, c_in, K, K) -> window order (r, K·K·c_in);
        # W_c (r, c_out, p, p) -> patch order (p·p·c_out, r)
        r, c_group = t_b.shape[:2]
        full = np.zeros((r, layer.in_channels, *t_b.shape[2:]), dtype=np.int64)
        per = r // layer.groups
        for g in range(layer.groups):
            rows = slice(g * per, (g + 1) * per)
            full[rows, g * c_group:(g + 1) * c_group] = t_b[rows]
        t_b = full.transpose(0, 2, 3, 1).reshape(r, -1)
        t_c = t_c.transpose(2, 3, 1, 0).reshape(-1, r)
        bias = np.tile(bias, layer.p * layer.p)
        if layer.bn is not None:
            # BN(α_b·u) = scale·α_b·u + offset per hidden channel: scale into ã, ã·α_c·offset
            # through W_c into the bias of each patch output
            scale, offset = _bn_fold(layer.bn)
            bias = bias + t_c @ (float(alpha_c) * a_tilde * offset)
            a = a * scale
        out.append((t_b, t_c, a, bias))
    return out


def _bn_fold(bn):
    """``(scale, offset)`` of a batch norm in its running statistics: ``bn(y) = scale·y +
    offset`` per channel (float64)."""
    if bn.running_mean is None:
        raise ValueError("cannot freeze a batch norm without running statistics")
    scale = 1 / np.sqrt(bn.running_var.detach().cpu().double().numpy() + bn.eps)
    offset = -bn.running_mean.detach().cpu().double().numpy() * scale
    if bn.affine:
        gamma = bn.weight.detach().cpu().double().numpy()
        scale, offset = scale * gamma, offset * gamma + bn.bias.detach().cpu().double().numpy()
    return scale, offset


def _other_parts(stage):
    """(T_b, T_c, a, bias) of a TWN or dense layer (kinds ``"twn"``, ``"dense"`` of
    :data:`strassen_hw.frozen.KINDS`), with the batch norms after it folded into ``a`` and the
    bias: one multiplier per output (TWN) or per weight (dense) takes a per-output scale
    exactly."""
    layer, conv = stage.layer, stage.geometry is not None
    n_out = layer.out_channels if conv else layer.out_features
    bias = (layer.bias.detach().cpu().double().numpy() if layer.bias is not None
            else np.zeros(n_out))
    if stage.kind == "twn":
        ternary, alpha, _ = ternarize(layer.weight.detach().cpu(), dim=(1,))
        t_b = ternary.numpy().astype(np.int64)
        if stage.perm is not None:
            t_b = t_b[:, stage.perm]
        a = alpha.double().reshape(-1).numpy() * layer.gain.detach().cpu().double().numpy()
        t_c = np.eye(n_out, dtype=np.int64)
        rows = a.reshape(n_out, 1)
    else:
        w = layer.weight.detach().cpu().double().numpy()
        if conv:
            # (c_out, c_in/G, kh, kw) -> block-diagonal (c_out, c_in, kh, kw) -> window order
            groups, c_group = layer.groups, w.shape[1]
            full = np.zeros((n_out, layer.in_channels, *w.shape[2:]))
            per = n_out // groups
            for g in range(groups):
                full[g * per:(g + 1) * per, g * c_group:(g + 1) * c_group] = w[g * per:
                                                                              (g + 1) * per]
            w = full.transpose(0, 2, 3, 1).reshape(n_out, -1)
        elif stage.perm is not None:
            w = w[:, stage.perm]
        n_in = w.shape[1]
        t_b = np.tile(np.eye(n_in, dtype=np.int64), (n_out, 1))
        t_c = np.kron(np.eye(n_out, dtype=np.int64), np.ones((1, n_in), dtype=np.int64))
        rows = w
    rows = rows.copy()
    for bn in stage.bns:
        scale, offset = _bn_fold(bn)
        rows, bias = rows * scale[:, None], bias * scale + offset
    return t_b, t_c, rows.reshape(-1), bias


def _conv_float(geometry, parts, relu, x):
    """Float64 output image of a convolution stage (before pooling) for images ``x``."""
    t_b, t_c, a, bias = parts
    windows = geometry.windows(x)
    y = ((windows @ t_b.T) * a) @ t_c.T + bias
    if relu:
        y = np.maximum(y, 0)
    return geometry.pixels(y)


def _float_forward(chain, floats, x):
    """``(outs, y)``: float64 outputs of every stage of the ternarized model for real inputs
    ``x`` (in pixel order; for a convolution its output image before pooling, what its format
    must hold) and the model's output ``y``."""
    outs = []
    for stage, (t_b, t_c, a, bias) in zip(chain, floats):
        g = stage.geometry
        if g is None:
            x = ((x @ t_b.T) * a) @ t_c.T + bias
            if stage.relu:
                x = np.maximum(x, 0)
            outs.append(x)
            continue
        image = _conv_float(g, (t_b, t_c, a, bias), stage.relu, x)
        outs.append(image.reshape(len(x), -1))
        if g.pool == "max":
            image = g.pool_windows(image).max(axis=3)
        elif g.pool == "avg":
            image = g.pool_windows(image).mean(axis=3)
        x = image.reshape(len(x), -1)
    return outs, x


def _round(value):
    """Round half up (toward +infinity on ties), like the hardware's ``half_up``."""
    return np.floor(np.asarray(value, dtype=np.float64) + 0.5).astype(np.int64)


def _a_fraction(a_eff, a_width):
    """Largest F such that round(a_eff · 2^F) fits ``a_width`` signed bits."""
    top = (1 << (a_width - 1)) - 1
    biggest = float(np.abs(a_eff).max())
    frac = 0 if biggest == 0 else math.floor(math.log2(top / biggest))
    while np.abs(_round(a_eff * 2.0 ** frac)).max() > top:
        frac -= 1
    return frac


def _freeze_layer(parts, relu, peak, fmt, scale, a_width, act_width, guard_bits, logit_width,
                  kind):
    """One frozen layer (and its report entry) for inputs in ``fmt`` of real step ``scale``.
    ``guard_bits = None``: exact products (``product_shift = 0``), one rounding at the end."""
    t_b, t_c, a, bias = parts
    a_eff = a * scale
    frac = _a_fraction(a_eff, a_width)
    a_int = _round(a_eff * 2.0 ** frac)
    out = Format(act_width, signed=False) if relu else Format(logit_width, signed=True)
    # Output step 2^k: the calibration peak fits the output format; never finer than the
    # products' grid 2^-frac.
    k = max(math.ceil(math.log2(max(peak, 1e-30) / out.max)), -frac)
    while True:
        total = k + frac
        if guard_bits is None:                 # exact products, one rounding at the end
            product_shift, shift = 0, total
        elif relu:
            product_shift = max(0, total - guard_bits)
            shift = total - product_shift
        else:                                  # logits: shift 0, the product shift sets the step
            product_shift, shift = total, 0
        b_int = _round(bias / 2.0 ** (product_shift - frac))
        bias_width = max(2, signed_width(b_int.min(), b_int.max()))
        if bias_width > 32:
            raise FrozenError(f"the bias needs {bias_width} bits; lower guard_bits or a_width")
        layer = FrozenLayer(w_b=t_b, a_tilde=a_int, w_c=t_c, bias=b_int, a_width=a_width,
                            bias_width=bias_width, output=out, a_frac_bits=frac,
                            product_shift=product_shift, product_rounding="half_up",
                            shift=shift, rounding="half_up", relu=relu, kind=kind)
        if relu:
            break
        # The logits keep every value the layer can produce: no saturation.
        lo, hi = stage_ranges(layer, fmt)["v"]
        lo, hi = (round_shift(np.array([v], dtype=object), shift, "half_up")[0]
                  for v in (lo.min(), hi.max()))
        width = signed_width(min(lo, 0), max(hi, 0))
        if width <= 32:
            layer = FrozenLayer(**{**layer.__dict__, "output": Format(width, signed=True)})
            break
        k += width - 32                        # coarser logits until they fit 32 bits
    step = 2.0 ** (product_shift + shift - frac)
    info = {"a_frac_bits": frac, "product_shift": product_shift, "shift": shift,
            "step": step, "output": layer.output.to_json()}
    return layer, info


def _build(name, chain, floats, peaks, a_width, input_format, input_scale, act_width,
           guard_bits, logit_width, kind):
    layers, info = [], []
    fmt, scale = input_format, float(input_scale)
    for index, (stage, parts, peak) in enumerate(zip(chain, floats, peaks)):
        try:
            layer, item = _freeze_layer(parts, stage.relu, peak, fmt, scale, a_width,
                                        act_width, guard_bits, logit_width,
                                        stage.kind or kind)
            if stage.geometry is not None:
                layer = FrozenConvLayer(stage.geometry, layer)
        except FrozenError as e:
            raise FrozenError(f"layer {index}: {e}") from None
        layers.append(layer)
        info.append({**item, "peak": peak})
        fmt, scale = layer.output, item["step"]
    return FrozenNetwork(name=name, input=input_format, layers=layers), info


def freeze(model, calibration, *, input_format, input_scale, name="net", a_width=None,
           act_width=8, guard_bits=4, logit_width=12, tolerance=0.0, max_logit_error=0.02,
           max_a_width=16, input_shape=None):
    """Turn a trained Strassen ``model`` into a frozen integer network.

    Parameters
    ----------
    model : nn.Module
        Strassen layers, ReLUs and pooling (see the module docstring); it is not modified
        (its batch norms are read in their running statistics, as in eval mode).
    calibration : array of int, shape (N, n_in)
        Integer inputs (the training images) that set the activation steps and choose
        ``a_width``; images in pixel order (rows, then all channels of a pixel together).
    name : str
        Network (and Verilog module) name.
    input_format, input_scale : Format, float
        The integer input format and the real value of one input unit (of the data set: for
        the digits ``Digits.input_format`` and ``Digits.input_scale``).
    a_width : int or None
        Signed bits of ã; None picks the smallest that keeps the predictions (``tolerance``).
    act_width, guard_bits, logit_width : int
        Unsigned bits of hidden activations; product bits kept below the output step; signed
        bits of the largest calibration logit.
    tolerance, max_logit_error : float
        When ``a_width`` is chosen automatically, the smallest width wins whose predictions on
        the calibration images agree with the float model's on no less than a ``tolerance``
        fraction below what ``max_a_width`` bits reach, and whose mean absolute logit error is
        at most ``max_logit_error`` times the mean absolute deviation of the float logits from
        their per-image mean.
    input_shape : (int, int, int) or None
        ``(channels, height, width)`` of the input images when the model starts with a
        convolution and no ``nn.Unflatten`` (see :func:`strassen_chain`).

    Returns
    -------
    (FrozenNetwork, FreezeReport)
    """
    x = np.asarray(calibration)
    plan = _plan(model, input_shape, x.shape[1] if x.ndim == 2 else None)
    if not plan.is_chain:
        return _freeze_graph(plan, calibration, input_format=input_format,
                             input_scale=input_scale, name=name, a_width=a_width,
                             act_width=act_width, guard_bits=guard_bits,
                             logit_width=logit_width, tolerance=tolerance,
                             max_logit_error=max_logit_error, max_a_width=max_a_width)
    chain = _stages(plan)
    return freeze_parts(_float_layers(chain), chain, calibration, input_format=input_format,
                        input_scale=input_scale, name=name, a_width=a_width,
                        act_width=act_width, guard_bits=guard_bits, logit_width=logit_width,
                        tolerance=tolerance, max_logit_error=max_logit_error,
                        max_a_width=max_a_width)


def freeze_parts(floats, chain, calibration, *, input_format, input_scale, name="net",
                 a_width=None, act_width=8, guard_bits=4, logit_width=12, tolerance=0.0,
                 max_logit_error=0.02, max_a_width=16, kind="strassen"):
    """:func:`freeze` of a model given as its layers' float parts: per layer
    ``(T_b, T_c, a, bias)`` (int64 ternary matrices, float64 vectors) with
    ``y = T_c ((T_b x) ⊙ a) + bias``, and per layer its :class:`Stage` in ``chain`` (the ReLU
    after it, a convolution's geometry), or just whether a ReLU follows (a bool).
    ``kind`` is the :attr:`~strassen_hw.frozen.FrozenLayer.kind` of every layer;
    ``guard_bits = None`` keeps the products exact (``product_shift = 0``) and rounds once,
    by ``shift``, after the sum. The other parameters and the result are :func:`freeze`'s."""
    from strassen_hw.reference import forward
    chain = [stage if isinstance(stage, Stage) else Stage(None, bool(stage)) for stage in chain]
    x = np.asarray(calibration, dtype=np.int64)
    outs, final = _float_forward(chain, floats, x * float(input_scale))
    peaks = [float(np.abs(o).max()) for o in outs]
    expected = final.argmax(1)
    spread = float(np.abs(final - final.mean(1, keepdims=True)).mean())

    def attempt(width):
        net, info = _build(name, chain, floats, peaks, width, input_format, input_scale,
                           act_width, guard_bits, logit_width, kind)
        logits = forward(net, x) * info[-1]["step"]
        agreement = float((logits.argmax(1) == expected).mean())
        error = float(np.abs(logits - final).mean()) / max(spread, 1e-30)
        return net, info, {"a_width": width, "agreement": agreement, "logit_error": error}

    return _choose(attempt, a_width, tolerance, max_logit_error, max_a_width)


def _choose(attempt, a_width, tolerance, max_logit_error, max_a_width):
    """``(net, FreezeReport)``: ``attempt(width)`` at ``a_width``, or the narrowest width that
    keeps the predictions (see :func:`freeze`)."""
    if a_width is not None:
        net, info, item = attempt(a_width)
        return net, _report(a_width, [item], info)
    # The widest ã shows what the other roundings (activations, products) leave; the
    # narrowest width that comes within ``tolerance`` of it wins.
    best = attempt(max_a_width)
    candidates = []
    for width in range(2, max_a_width + 1):
        net, info, item = attempt(width) if width < max_a_width else best
        candidates.append(item)
        if (item["agreement"] >= best[2]["agreement"] - tolerance
                and item["logit_error"] <= max_logit_error):
            break
    return net, _report(candidates[-1]["a_width"], candidates, info)


def _report(a_width, candidates, info):
    if info and "kind" in info[0]:                      # a graph: one entry per node
        return FreezeReport(a_width=a_width, candidates=candidates,
                            layers=[e for e in info if e["kind"] == "layer"], nodes=info)
    return FreezeReport(a_width=a_width, candidates=candidates, layers=info)


def float_logits(model, x_int, input_scale, input_shape=None):
    """Float64 logits of the ternarized ``model`` (what :func:`freeze` approximates); batch
    norms in their running statistics."""
    x = np.asarray(x_int, dtype=np.float64)
    plan = _plan(model, input_shape, x.shape[1] if x.ndim == 2 else None)
    if not plan.is_chain:
        return _graph_forward(plan, _plan_parts(plan), x * float(input_scale))[1]
    chain = _stages(plan)
    return _float_forward(chain, _float_layers(chain), x * float(input_scale))[1]



# --- graphs (version 3): add, pool and flatten nodes between the layers ----------------------

def _plan_parts(plan):
    """``{op name: (T_b, T_c, a, bias)}`` of every layer op of ``plan``."""
    layers = plan.layers()
    return {op.name: parts for op, parts in zip(layers, _float_layers(_stages(plan)))}


def _pixels(shape):
    """Pixel-order shape ``(H, W, C)`` or ``(n,)`` of a plan shape ``(C, H, W)`` / ``(n,)``."""
    return (shape[1], shape[2], shape[0]) if len(shape) == 3 else tuple(shape)


def _graph_forward(plan, parts, x):
    """``(peaks, y)``: per op the largest magnitude of its float64 output on the real inputs
    ``x`` (pixel order; a convolution's before its pooling, what its format must hold) and
    the output ``y``. Images are (N, H·W·C) in pixel order throughout."""
    values, peaks = {"input": x}, {}
    last_use = {}
    for index, op in enumerate(plan.ops):
        for name in op.inputs:
            last_use[name] = index
    for index, op in enumerate(plan.ops):
        ins = [values[name] for name in op.inputs]
        if op.kind == "layer":
            stage = Stage(op.module, op.relu, op.geometry, op.perm, op.layer_kind)
            peak_of, y = _stage_forward(stage, parts[op.name], ins[0])
        elif op.kind == "add":
            y = np.sum(ins, axis=0)
            if op.relu:
                y = np.maximum(y, 0)
            peak_of = y
        elif op.kind == "flatten":
            y = peak_of = ins[0]
        else:                                          # pool
            c, h, w = plan_shape(plan, op.inputs[0])
            img = ins[0].reshape(len(x), h, w, c)
            if op.mode == "global":
                y = img.mean(axis=(1, 2))
            else:
                q = op.size
                hq, wq = h // q, w // q
                win = img[:, :hq * q, :wq * q].reshape(len(x), hq, q, wq, q, c)
                y = win.max(axis=(2, 4)) if op.mode == "max" else win.mean(axis=(2, 4))
                y = y.reshape(len(x), -1)
            peak_of = y
        peaks[op.name] = float(np.abs(peak_of).max()) if peak_of.size else 0.0
        values[op.name] = y
        for name in op.inputs:                          # free what no later op reads
            if last_use.get(name) == index and name != "input":
                values.pop(name, None)
    return peaks, values[plan.ops[-1].name]


def plan_shape(plan, name):
    return plan.input_shape if name == "input" else plan.op(name).shape


def _stage_forward(stage, parts, x):
    """``(before_pool, y)`` of one stage for real inputs ``x`` (N, n_in) in pixel order, as
    :func:`_float_forward` computes it."""
    t_b, t_c, a, bias = parts
    g = stage.geometry
    if g is None:
        y = ((x @ t_b.T) * a) @ t_c.T + bias
        if stage.relu:
            y = np.maximum(y, 0)
        return y, y
    image = _conv_float(g, parts, stage.relu, x)
    before = image.reshape(len(x), -1)
    if g.pool == "max":
        image = g.pool_windows(image).max(axis=3)
    elif g.pool == "avg":
        image = g.pool_windows(image).mean(axis=3)
    return before, image.reshape(len(x), -1)


def _power_of_two(value):
    """k when ``value`` is exactly 2^k, else None."""
    mantissa, exponent = math.frexp(value)
    return exponent - 1 if mantissa == 0.5 else None


def _exact_width(lo, hi, shift):
    lo, hi = (round_shift(np.array([v], dtype=object), shift, "half_up")[0] for v in (lo, hi))
    return signed_width(min(lo, 0), max(hi, 0))


def _freeze_add(op, ins, peak, act_width, logit_width):
    """``(fields, fmt, step, info)`` of an add node: align shifts that put every input at the
    finest input step exactly, then one ``half_up`` shift to the output format (after a ReLU:
    ``act_width`` unsigned bits for the calibration peak, saturated; without: every value the
    sum can take, the calibration peak in ``logit_width`` signed bits)."""
    steps = [step for _, step in ins]
    finest = min(steps)
    align = []
    for (fmt, step), name in zip(ins, op.inputs):
        k = _power_of_two(step / finest)
        if k is None:
            raise FrozenError(f"add '{op.name}': the step of '{name}' ({step:g}) is not a "
                              f"power-of-two multiple of {finest:g}, so the inputs cannot be "
                              "aligned exactly; put a layer on that branch")
        if k > 32:
            raise FrozenError(f"add '{op.name}': '{name}' needs an align shift of {k} (> 32)")
        align.append(k)
    lo = sum(fmt.min << k for (fmt, _), k in zip(ins, align))
    hi = sum(fmt.max << k for (fmt, _), k in zip(ins, align))
    peak_int = peak / finest
    if op.relu:
        out = Format(act_width, signed=False)
        shift = max(0, math.ceil(math.log2(max(peak_int, 1e-30) / out.max)))
    else:
        top = (1 << (logit_width - 1)) - 1
        shift = max(0, math.ceil(math.log2(max(peak_int, 1e-30) / top)))
        while _exact_width(lo, hi, shift) > 32:
            shift += 1
        out = Format(max(2, _exact_width(lo, hi, shift)), signed=True)
    step = finest * 2.0 ** shift
    fields = dict(align=tuple(align), shift=shift, rounding="half_up", relu=op.relu, output=out)
    info = {"align": list(align), "shift": shift, "step": step, "output": out.to_json()}
    return fields, out, step, info


def _freeze_global(op, fmt, step, shape, peak, act_width):
    """``(fields, fmt, step, info)`` of a global average pool: the per-channel sum over the
    H·W pixels shifted right by the smallest shift that keeps the calibration peak in
    ``act_width`` bits (signed like its input), saturated there. One output unit is
    ``step·2^shift/(H·W)`` of the mean: the next layer's ã takes that factor."""
    c, h, w = shape
    out = Format(act_width, signed=fmt.signed)
    peak_sum = peak * h * w / step
    shift = max(0, math.ceil(math.log2(max(peak_sum, 1e-30) / out.max)))
    new_step = step * 2.0 ** shift / (h * w)
    info = {"shift": shift, "step": new_step, "output": out.to_json(), "pixels": h * w}
    return dict(shift=shift, output=out), out, new_step, info


def _build_graph(name, plan, parts, peaks, a_width, input_format, input_scale, act_width,
                 guard_bits, logit_width):
    """The version-3 :class:`~strassen_hw.frozen.FrozenNetwork` of ``plan`` and one report
    entry per node."""
    state = {"input": (input_format, float(input_scale))}
    nodes, info = [], []
    for op in plan.ops:
        ins = [state[n] for n in op.inputs]
        entry = {"name": op.name, "kind": op.kind, "inputs": list(op.inputs),
                 "peak": peaks[op.name], "where": op.where}
        try:
            if op.kind == "layer":
                (fmt, scale), = ins
                layer, item = _freeze_layer(parts[op.name], op.relu, peaks[op.name], fmt,
                                            scale, a_width, act_width, guard_bits, logit_width,
                                            op.layer_kind)
                if op.geometry is not None:
                    layer = FrozenConvLayer(op.geometry, layer)
                entry.update(item, layer_kind=op.layer_kind, a_width=a_width)
                nodes.append(("conv" if op.geometry is not None else "linear", op, layer))
                state[op.name] = (layer.output, item["step"])
            elif op.kind == "add":
                fields, fmt, step, item = _freeze_add(op, ins, peaks[op.name], act_width,
                                                      logit_width)
                entry.update(item)
                nodes.append(("add", op, fields))
                state[op.name] = (fmt, step)
            elif op.kind == "flatten":
                nodes.append(("flatten", op, None))
                state[op.name] = ins[0]
                entry.update(step=ins[0][1], output=ins[0][0].to_json())
            elif op.mode == "global":
                (fmt, step), = ins
                fields, fmt, step, item = _freeze_global(op, fmt, step,
                                                         plan_shape(plan, op.inputs[0]),
                                                         peaks[op.name], act_width)
                entry.update(item)
                nodes.append(("global", op, fields))
                state[op.name] = (fmt, step)
            else:
                nodes.append(("pool", op, None))
                state[op.name] = ins[0]
                entry.update(step=ins[0][1], output=ins[0][0].to_json(), mode=op.mode,
                             size=op.size)
        except FrozenError as e:
            raise FrozenError(f"{op.where}: {e}") from None
        info.append(entry)
    return _emit_graph(name, input_format, _pixels(plan.input_shape), nodes), info


def _emit_graph(name, input_format, input_shape, nodes):
    """The graph API's nodes (:mod:`strassen_hw.graph`) for ``(what, op, payload)``."""
    from strassen_hw import graph
    out = []
    for what, op, payload in nodes:
        if what == "linear":
            out.append(graph.Linear(op.name, op.inputs, payload))
        elif what == "conv":
            out.append(graph.Conv(op.name, op.inputs, payload))
        elif what == "add":
            out.append(graph.Add(op.name, op.inputs, **payload))
        elif what == "flatten":
            out.append(graph.Flatten(op.name, op.inputs))
        elif what == "global":
            out.append(graph.Pool(op.name, op.inputs, "global", **payload))
        else:
            out.append(graph.Pool(op.name, op.inputs, op.mode, size=op.size))
    return FrozenNetwork(name=name, input=input_format, nodes=out, input_shape=input_shape)


def _freeze_graph(plan, calibration, *, input_format, input_scale, name, a_width, act_width,
                  guard_bits, logit_width, tolerance, max_logit_error, max_a_width):
    """:func:`freeze` of a plan with add, pool or flatten nodes (a version-3 graph)."""
    from strassen_hw.reference import forward
    parts = _plan_parts(plan)
    x = np.asarray(calibration, dtype=np.int64)
    peaks, final = _graph_forward(plan, parts, x * float(input_scale))
    expected = final.argmax(1)
    spread = float(np.abs(final - final.mean(1, keepdims=True)).mean())

    def attempt(width):
        net, info = _build_graph(name, plan, parts, peaks, width, input_format, input_scale,
                                 act_width, guard_bits, logit_width)
        logits = forward(net, x) * info[-1]["step"]
        agreement = float((logits.argmax(1) == expected).mean())
        error = float(np.abs(logits - final).mean()) / max(spread, 1e-30)
        return net, info, {"a_width": width, "agreement": agreement, "logit_error": error}

    return _choose(attempt, a_width, tolerance, max_logit_error, max_a_width)
