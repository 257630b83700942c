"""Freeze a trained Strassen model into a :class:`~strassen_hw.frozen.FrozenNetwork`.

The model is a chain of :class:`StrassenLinear` layers with optional ReLUs between them (an
``nn.Sequential``; ``nn.Identity``, ``nn.Dropout`` and ``nn.Flatten`` are skipped). Its input is
``x_int · input_scale`` with integer ``x_int`` in ``input_format`` (digits: pixels 0..16, scale
1/16).

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

from strassen_hw.frozen import Format, FrozenError, FrozenLayer, FrozenNetwork, signed_width
from strassen_hw.frozen import stage_ranges
from strassen_hw.reference import round_shift

from .layers import StrassenLinear
from .quantize import ternarize

__all__ = ["FreezeReport", "freeze", "freeze_parts", "float_logits", "strassen_chain",
           "layer_chain"]

_SKIP = (nn.Identity, nn.Dropout, nn.Flatten)


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


def strassen_chain(model):
    """``[(StrassenLinear, relu_after), ...]`` for ``model``; raises ``ValueError`` for any
    module other than Strassen layers, ReLU and the skipped ones."""
    return layer_chain(model, StrassenLinear, "Strassen", "call strassenize() and train first")


def layer_chain(model, kind, what, hint):
    """``[(layer, relu_after), ...]`` for ``model``, whose layers are all of the class ``kind``
    (called ``what`` in messages, ``hint`` says how to get some); ``ValueError`` for any other
    module than those, ReLU and the skipped ones."""
    chain = []
    for module in _leaves(model):
        if isinstance(module, kind):
            chain.append([module, False])
        elif isinstance(module, nn.ReLU):
            if not chain or chain[-1][1]:
                raise ValueError(f"a ReLU must follow a {what} layer")
            chain[-1][1] = True
        elif not isinstance(module, _SKIP):
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
    """Per layer: (T_b, T_c, a_eff without s_in, bias) as float64 numpy arrays."""
    out = []
    for layer, _ in chain:
        # Ternarize in the model's own precision, so that entries at the threshold fall on
        # the same side as in the model's forward pass; then compute in float64.
        t_b, alpha_b, _ = ternarize(layer.w_b.detach().cpu())
        t_c, alpha_c, _ = ternarize(layer.w_c.detach().cpu())
        a = (alpha_b.double() * alpha_c.double()
             * layer.a_tilde.detach().cpu().double()).numpy()
        bias = (layer.bias.detach().cpu().double().numpy() if layer.bias is not None
                else np.zeros(layer.out_features))
        out.append((t_b.numpy().astype(np.int64), t_c.numpy().astype(np.int64), a, bias))
    return out


def _float_forward(floats, relus, x):
    """Float64 outputs of every layer of the ternarized model for real inputs ``x``."""
    outs = []
    for (t_b, t_c, a, bias), relu in zip(floats, relus):
        x = ((x @ t_b.T) * a) @ t_c.T + bias
        if relu:
            x = np.maximum(x, 0)
        outs.append(x)
    return outs


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


def _build(name, floats, relus, peaks, a_width, input_format, input_scale, act_width,
           guard_bits, logit_width, kind):
    layers, info = [], []
    fmt, scale = input_format, float(input_scale)
    for index, (parts, relu, peak) in enumerate(zip(floats, relus, peaks)):
        try:
            layer, item = _freeze_layer(parts, relu, peak, fmt, scale, a_width, act_width,
                                        guard_bits, logit_width, kind)
        except FrozenError as e:
            raise FrozenError(f"layer {index}: {e}") from None
        layers.append(layer)
        info.append(item)
        fmt, scale = layer.output, item["step"]
    return FrozenNetwork(name=name, input=input_format, layers=layers), info


def freeze(model, calibration, *, input_format, input_scale, name="net", a_width=None,
           act_width=8, guard_bits=4, logit_width=12, tolerance=0.0, max_logit_error=0.02,
           max_a_width=16):
    """Turn a trained Strassen ``model`` into a frozen integer network.

    Parameters
    ----------
    model : nn.Module
        Strassen layers and ReLUs (see the module docstring); it is not modified.
    calibration : array of int, shape (N, n_in)
        Integer inputs (the training images) that set the activation steps and choose
        ``a_width``.
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

    Returns
    -------
    (FrozenNetwork, FreezeReport)
    """
    chain = strassen_chain(model)
    return freeze_parts(_float_layers(chain), [relu for _, relu in chain], calibration,
                        input_format=input_format, input_scale=input_scale, name=name,
                        a_width=a_width, act_width=act_width, guard_bits=guard_bits,
                        logit_width=logit_width, tolerance=tolerance,
                        max_logit_error=max_logit_error, max_a_width=max_a_width)


def freeze_parts(floats, relus, calibration, *, input_format, input_scale, name="net",
                 a_width=None, act_width=8, guard_bits=4, logit_width=12, tolerance=0.0,
                 max_logit_error=0.02, max_a_width=16, kind="strassen"):
    """:func:`freeze` of a model given as its layers' float parts: per layer
    ``(T_b, T_c, a, bias)`` (int64 ternary matrices, float64 vectors) with
    ``y = T_c ((T_b x) ⊙ a) + bias``, and a ReLU after the layers where ``relus`` says so.
    ``kind`` is the :attr:`~strassen_hw.frozen.FrozenLayer.kind` of every layer;
    ``guard_bits = None`` keeps the products exact (``product_shift = 0``) and rounds once,
    by ``shift``, after the sum. The other parameters and the result are :func:`freeze`'s."""
    from strassen_hw.reference import forward
    x = np.asarray(calibration, dtype=np.int64)
    outs = _float_forward(floats, relus, x * float(input_scale))
    peaks = [float(np.abs(o).max()) for o in outs]
    expected = outs[-1].argmax(1)
    spread = float(np.abs(outs[-1] - outs[-1].mean(1, keepdims=True)).mean())

    def attempt(width):
        net, info = _build(name, floats, relus, peaks, width, input_format, input_scale,
                           act_width, guard_bits, logit_width, kind)
        logits = forward(net, x) * info[-1]["step"]
        agreement = float((logits.argmax(1) == expected).mean())
        error = float(np.abs(logits - outs[-1]).mean()) / max(spread, 1e-30)
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
    return net, FreezeReport(a_width=net.layers[0].a_width, candidates=candidates,
                             layers=info)


def float_logits(model, x_int, input_scale):
    """Float64 logits of the ternarized ``model`` (what :func:`freeze` approximates)."""
    chain = strassen_chain(model)
    floats = _float_layers(chain)
    return _float_forward(floats, [relu for _, relu in chain],
                          np.asarray(x_int, dtype=np.float64) * float(input_scale))[-1]

