"""Freeze a trained Strassen model into a :class:`~strassen_hw.frozen.FrozenNetwork`.

The model is a chain (an ``nn.Sequential``) of :class:`StrassenLinear` and
:class:`StrassenConv2d` layers, each optionally followed by a ReLU, and each convolution
optionally by ``nn.MaxPool2d(q)`` or ``nn.AvgPool2d(q)`` (q a power of two; kernel = stride,
no padding); ``nn.Identity`` and ``nn.Dropout`` are skipped, an ``nn.Unflatten`` to one channel
may come first (it sets the image size) and ``nn.Flatten`` goes between the convolutions and
the linear layers. Its input is ``x_int · input_scale`` with integer ``x_int`` in
``input_format`` (digits: pixels 0..16, scale 1/16).

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

    @property
    def output_step(self):
        """Real value of one unit of the network's integer logits."""
        return self.layers[-1]["step"]


@dataclass
class Stage:
    """One frozen layer to be: a Strassen ``layer``, the ReLU after it, and for a convolution
    its ``geometry`` (with the pooling after it); ``perm`` (a linear layer after a
    convolution) maps each input in pixel order to its index in torch's flattening."""
    layer: nn.Module
    relu: bool = False
    geometry: ConvGeometry = None
    perm: np.ndarray = None


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


def strassen_chain(model, input_shape=None):
    """The :class:`Stage` list of ``model``; raises ``ValueError`` for any module other than
    those listed in the module docstring, or in another order.

    ``input_shape`` is ``(channels, height, width)`` of the input image when the model starts
    with a convolution without an ``nn.Unflatten`` before it (it is one channel then)."""
    chain, shape, flat = [], input_shape, input_shape is None
    for module in _leaves(model):
        last = chain[-1] if chain else None
        if isinstance(module, nn.Unflatten):
            size = tuple(module.unflattened_size)
            if chain or module.dim not in (1, -2) or len(size) != 3 or size[0] != 1:
                raise ValueError(f"cannot freeze {module}: only a first nn.Unflatten(1, (1, H, "
                                 "W)) to one-channel images (pixel order = its order)")
            shape, flat = size, False
        elif isinstance(module, StrassenConv2d):
            if flat or shape is None:
                raise ValueError("a Strassen convolution needs images: start the model with "
                                 "nn.Unflatten(1, (1, H, W)) or give input_shape")
            c, h, w = shape
            if c != module.in_channels:
                raise ValueError(f"{module} takes {module.in_channels} channel(s) but gets {c}")
            geometry = ConvGeometry(in_channels=c, out_channels=module.out_channels, height=h,
                                    width=w, kernel=module.kernel_size, stride=module.stride,
                                    padding=module.padding, p=module.p, groups=module.groups)
            chain.append(Stage(module, geometry=geometry))
        elif isinstance(module, StrassenLinear):
            perm = None
            if shape is not None:
                if not flat:
                    raise ValueError("put nn.Flatten() between the convolutions and the "
                                     "linear layers")
                c, h, w = shape
                perm = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
                shape = None
            chain.append(Stage(module, perm=perm))
        elif isinstance(module, nn.ReLU):
            if last is None or last.relu or (last.geometry is not None
                                             and last.geometry.pool == "avg"):
                raise ValueError("a ReLU must follow a Strassen layer (or its max pooling), "
                                 "once")
            last.relu = True
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            _pool(module, last)
        elif isinstance(module, nn.Flatten):
            flat = True
        elif isinstance(module, nn.BatchNorm2d):
            raise ValueError("cannot freeze a separate BatchNorm2d; use StrassenConv2d("
                             "batch_norm=True), which folds into ã and the bias")
        elif not isinstance(module, _SKIP):
            raise ValueError(f"cannot freeze {type(module).__name__}; a frozen network holds "
                             "Strassen layers with optional ReLU (and pooling) between them")
        if chain and chain[-1].geometry is not None and chain[-1] is not last:
            g = chain[-1].geometry
            shape = (g.out_channels, *g.output_hw)
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            shape = (last.geometry.out_channels, *last.geometry.output_hw)
    if not chain:
        raise ValueError("the model has no Strassen layers; call strassenize() and train first")
    return chain


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
            bn = layer.bn
            if bn.running_mean is None:
                raise ValueError("cannot freeze a batch norm without running statistics")
            scale = 1 / np.sqrt(bn.running_var.detach().cpu().double().numpy() + bn.eps)
            offset = -bn.running_mean.detach().cpu().double().numpy() * scale
            if bn.affine:
                gamma = bn.weight.detach().cpu().double().numpy()
                scale, offset = scale * gamma, offset * gamma + bn.bias.detach().cpu().double(
                    ).numpy()
            bias = bias + t_c @ (float(alpha_c) * a_tilde * offset)
            a = a * scale
        out.append((t_b, t_c, a, bias))
    return out


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
                                        act_width, guard_bits, logit_width, kind)
            if stage.geometry is not None:
                layer = FrozenConvLayer(stage.geometry, layer)
        except FrozenError as e:
            raise FrozenError(f"layer {index}: {e}") from None
        layers.append(layer)
        info.append(item)
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
    chain = strassen_chain(model, input_shape)
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

    if a_width is not None:
        net, info, item = attempt(a_width)
        return net, FreezeReport(a_width=a_width, candidates=[item], layers=info)
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
    return net, FreezeReport(a_width=candidates[-1]["a_width"], candidates=candidates,
                             layers=info)


def float_logits(model, x_int, input_scale, input_shape=None):
    """Float64 logits of the ternarized ``model`` (what :func:`freeze` approximates); batch
    norms in their running statistics."""
    chain = strassen_chain(model, input_shape)
    return _float_forward(chain, _float_layers(chain),
                          np.asarray(x_int, dtype=np.float64) * float(input_scale))[1]

