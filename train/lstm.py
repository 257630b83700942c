"""A Strassen LSTM and a character language model on Shakespeare (StrassenNets, Sec. 3.3).

Each LSTM layer has eight matrix products, an input-to-hidden and a hidden-to-hidden one per
gate (``i``, ``f``, ``g``, ``o``), as in the paper's code. Each is a module of its own: a
:class:`~strassen_hw.train.layers.StrassenLinear` (``product="strassen"``, r per product), a
:class:`~strassen_hw.train.layers.TWNLinear` (``"twn"``) or an ``nn.Linear`` (``"dense"``), so
:func:`~strassen_hw.train.layers.set_phase` and the TWN quantizer work on it unchanged. The cell
is the standard one::

    z_k = X_k x_t + H_k h_{t-1}      (k = i, f, g, o; the bias is X_k's)
    i, f, o = sigmoid(z_i, z_f, z_o);  g = tanh(z_g)
    c_t = f ⊙ c_{t-1} + i ⊙ g;         h_t = o ⊙ tanh(c_t)

For speed the forward pass forms each product's effective matrix once per batch
(``α_c T_c diag(ã) α_b T_b`` of a Strassen product: the same function) and runs torch's fused
LSTM on them; the gradient flows through the matrices to every product's parameters.

:class:`CharLM` is the language model: one-hot characters, the LSTM, a decoder to the
vocabulary (a product of the same kind). :func:`train_lm` trains a float teacher (``nn.LSTM``)
and a student in the three :data:`PHASES` with distillation (cross-entropy to the labels plus
cross-entropy to the teacher's softmax, T = 1, equal weights, paper Sec. 2.3).
:func:`bits_per_char` measures a model on the test plays; :func:`multiplications` counts
multiplications per character exactly. :func:`freeze_lm` makes the integer model of
:mod:`strassen_hw.lstm`.
"""

import math
import numbers
import time

import numpy as np
import torch
from torch import nn

from strassen_hw.frozen import Format, FrozenError, FrozenLayer, signed_width

from . import text
from .freeze import Stage, _a_fraction, _float_layers, _freeze_layer, _round
from .layers import PHASES, StrassenLinear, TWNLinear, set_phase

__all__ = ["GATES", "PRODUCTS", "StrassenLSTM", "CharLM", "Teacher", "train_teacher",
           "train_student", "bits_per_char", "multiplications", "dense_multiplications",
           "freeze_lm", "FREEZE_DEFAULTS", "segments", "effective"]

#: The gates, in the order of ``nn.LSTM``'s weight rows.
GATES = ("i", "f", "g", "o")
#: Kinds of product: Strassen (r products), TWN (one α per output) and dense (float).
PRODUCTS = ("strassen", "twn", "dense")


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise TypeError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


def _product(kind, n_in, n_out, r, bias):
    if kind == "strassen":
        return StrassenLinear(n_in, r, n_out, bias=bias)
    if kind == "twn":
        return TWNLinear(n_in, n_out, bias=bias)
    if kind == "dense":
        return nn.Linear(n_in, n_out, bias=bias)
    raise ValueError(f"product must be one of {', '.join(PRODUCTS)}, not {kind!r}")


def _r(rule, n_out):
    """r of a product with ``n_out`` outputs: an int, or a float c for ``max(1, round(c·n_out))``
    (the paper's ``r = c·n_out``)."""
    if isinstance(rule, numbers.Integral) and not isinstance(rule, bool):
        return _positive("r", rule)
    if isinstance(rule, numbers.Real) and not isinstance(rule, bool) and rule > 0:
        return max(1, round(rule * n_out))
    raise TypeError(f"r must be a positive integer or a positive factor of n_out, not {rule!r}")


def effective(product):
    """``(W, b)`` with ``product(x) = x @ W.T + b`` as the product computes it now (quantized
    when its quantizers are on), differentiable; ``b`` is None without a bias."""
    if isinstance(product, StrassenLinear):
        w_b, w_c = product.quant_b(product.w_b), product.quant_c(product.w_c)
        return (w_c * product.a_tilde) @ w_b, product.bias
    if isinstance(product, TWNLinear):
        return product.quant(product.weight) * product.gain[:, None], product.bias
    return product.weight, product.bias


class StrassenLSTM(nn.Module):
    """An LSTM (``batch_first``) whose eight products per layer are Strassen layers.

    Parameters
    ----------
    input_size, hidden_size : int
    num_layers : int
    r : int or float
        r of every hidden-to-hidden product (an int, or c for ``r = round(c·hidden_size)``).
    r_x : int or float or None
        r of the input-to-hidden products (default: as ``r``).
    product : str
        ``"strassen"``, ``"twn"`` or ``"dense"`` (:data:`PRODUCTS`); r is ignored unless
        Strassen.

    Attributes
    ----------
    cells : nn.ModuleList of nn.ModuleDict
        Per layer, the products ``x_i, x_f, x_g, x_o`` (input-to-hidden, with the bias) and
        ``h_i, h_f, h_g, h_o`` (hidden-to-hidden, no bias).
    """

    def __init__(self, input_size, hidden_size, num_layers=1, r=2.0, r_x=None,
                 product="strassen"):
        super().__init__()
        self.input_size = _positive("input_size", input_size)
        self.hidden_size = n = _positive("hidden_size", hidden_size)
        self.num_layers = _positive("num_layers", num_layers)
        self.product = product
        self.cells = nn.ModuleList()
        for layer in range(self.num_layers):
            n_in = self.input_size if layer == 0 else n
            cell = {}
            for gate in GATES:
                cell[f"x_{gate}"] = _product(product, n_in, n, _r(r if r_x is None else r_x, n),
                                             bias=True)
            for gate in GATES:
                cell[f"h_{gate}"] = _product(product, n, n, _r(r, n), bias=False)
            self.cells.append(nn.ModuleDict(cell))

    def _matrices(self, cell):
        wx, bx = zip(*(effective(cell[f"x_{g}"]) for g in GATES))
        wh = [effective(cell[f"h_{g}"])[0] for g in GATES]
        return torch.cat(wx), torch.cat(bx), torch.cat(wh)

    def forward(self, x, state=None):
        """Run a batch of sequences.

        Parameters
        ----------
        x : Tensor
            (batch, steps, input_size) floats, or (batch, steps) integer indices read as
            one-hot vectors (first layer only).
        state : list of (h, c) or None
            One pair of (batch, hidden_size) tensors per layer; zeros when None.

        Returns
        -------
        out : Tensor (batch, steps, hidden_size), the last layer's h_t
        state : list of (h, c), the final state per layer
        """
        batch = x.shape[0]
        if not x.is_floating_point():
            x = nn.functional.one_hot(x.long(), self.input_size).float()
        new_state = []
        for layer, cell in enumerate(self.cells):
            wx, bx, wh = self._matrices(cell)
            if state is None:
                h = c = x.new_zeros(1, batch, self.hidden_size)
            else:
                h, c = (s[None] for s in state[layer])
            # torch's fused LSTM on the effective matrices: the same cell (gate order i, f, g,
            # o), differentiable in them, so the gradient reaches every product's parameters
            x, h, c = torch.lstm(x, (h, c), [wx, wh, bx, torch.zeros_like(bx)], True, 1, 0.0,
                                 self.training, False, True)
            new_state.append((h[0], c[0]))
        return x, new_state


class CharLM(nn.Module):
    """Character language model: one-hot characters → :class:`StrassenLSTM` → decoder.

    Parameters
    ----------
    vocab, hidden_size, num_layers : int
    r, r_x : as :class:`StrassenLSTM`
    r_out : int or float or None
        r of the decoder (default: as ``r``, a factor applied to ``vocab``).
    product : str
        :data:`PRODUCTS`, for the LSTM's products and the decoder.
    """

    def __init__(self, vocab=len(text.VOCAB), hidden_size=128, num_layers=1, r=2.0, r_x=None,
                 r_out=None, product="strassen"):
        super().__init__()
        self.vocab = _positive("vocab", vocab)
        self.lstm = StrassenLSTM(vocab, hidden_size, num_layers, r=r, r_x=r_x, product=product)
        self.decoder = _product(product, hidden_size, vocab, _r(r if r_out is None else r_out,
                                                                vocab), bias=True)

    def forward(self, chars, state=None):
        """Logits (batch, steps, vocab) for character indices (batch, steps), and the state."""
        out, state = self.lstm(chars, state)
        return self.decoder(out), state


class Teacher(nn.Module):
    """The float teacher: ``nn.LSTM`` of the same shape as the student, one-hot input, a dense
    decoder. ``nn.LSTM``'s gate order is i, f, g, o, like :data:`GATES`."""

    def __init__(self, vocab=len(text.VOCAB), hidden_size=128, num_layers=1):
        super().__init__()
        self.vocab = vocab
        self.lstm = nn.LSTM(vocab, hidden_size, num_layers, batch_first=True)
        self.decoder = nn.Linear(hidden_size, vocab)

    def forward(self, chars, state=None):
        x = nn.functional.one_hot(chars.long(), self.vocab).float()
        if state is not None:
            state = tuple(torch.stack(s) for s in zip(*state))
        out, (h, c) = self.lstm(x, state)
        return self.decoder(out), list(zip(h, c))


# --- training ---------------------------------------------------------------------------------

def _batches(data, batch, steps, rng):
    """Random windows of ``steps + 1`` characters: (inputs, targets) int64 (batch, steps)."""
    start = rng.integers(0, len(data) - steps - 1, batch)
    window = np.stack([data[s:s + steps + 1] for s in start]).astype(np.int64)
    window = torch.from_numpy(window)
    return window[:, :-1], window[:, 1:]


def _run(model, data, steps_per_phase, *, batch, seq, lr, seed, teacher=None, log=None,
         phases=(None,)):
    """Adam with gradient clipping over ``steps_per_phase`` batches per phase."""
    rng = np.random.default_rng(seed)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for phase, count in zip(phases, steps_per_phase):
        if phase is not None:
            set_phase(model, phase)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(count, 1), lr * 0.05)
        for step in range(count):
            x, y = _batches(data, batch, seq, rng)
            logits, _ = model(x)
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            if teacher is not None:
                with torch.no_grad():
                    soft = torch.softmax(teacher(x)[0], -1)
                loss = loss + loss_fn(logits.reshape(-1, logits.shape[-1]),
                                      soft.reshape(-1, soft.shape[-1]))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            if log is not None and (step % 100 == 0 or step == count - 1):
                log(f"{phase or 'teacher'} step {step}/{count} loss {loss.item():.3f}")
    model.eval()
    return model


def train_teacher(hidden_size=64, num_layers=1, steps=1500, batch=64, seq=50, lr=1e-2,
                  seed=0, log=None, data=None):
    """Train the float :class:`Teacher` on the training plays; returns it (eval mode)."""
    torch.manual_seed(seed)
    model = Teacher(len(text.VOCAB), hidden_size, num_layers)
    data = text.corpus("train") if data is None else data
    return _run(model, data, (steps,), batch=batch, seq=seq, lr=lr, seed=seed, log=log)


def train_student(teacher, r=2.0, r_x=None, r_out=None, product="strassen",
                  steps=(600, 600, 300), batch=64, seq=50, lr=1e-2, seed=0, log=None,
                  data=None):
    """Train a :class:`CharLM` of the teacher's shape in the three :data:`PHASES` (one entry of
    ``steps`` each) with distillation from ``teacher`` (None: labels only). A dense student
    trains in one phase of ``sum(steps)``. Returns it (eval mode, last phase set)."""
    torch.manual_seed(seed)
    model = CharLM(teacher.vocab, teacher.lstm.hidden_size, teacher.lstm.num_layers, r=r,
                   r_x=r_x, r_out=r_out, product=product)
    data = text.corpus("train") if data is None else data
    phases = PHASES if product != "dense" else (None,)
    steps = tuple(steps) if product != "dense" else (sum(steps),)
    if teacher is not None:
        teacher.eval()
    return _run(model, data, steps, batch=batch, seq=seq, lr=lr, seed=seed + 1, log=log,
                teacher=teacher, phases=phases)


def segments(data, count):
    """``data`` cut into ``count`` equal consecutive segments (the tail that does not fill the
    last one is dropped): int64 (count, length). Every model is measured on the same ones."""
    length = len(data) // count
    return np.asarray(data[:count * length], dtype=np.int64).reshape(count, length)


def bits_per_char(model, data=None, count=128, chunk=500):
    """Bits per character of ``model`` on ``data`` (default: the test plays): the text is cut
    into ``count`` :func:`segments`, each read from a zero state; every character after the
    first of its segment is predicted. Returns a float."""
    data = text.corpus("test") if data is None else data
    seg = torch.from_numpy(segments(data, count))
    total, n = 0.0, 0
    state = None
    model.eval()
    with torch.no_grad():
        for start in range(0, seg.shape[1] - 1, chunk):
            x = seg[:, start:min(start + chunk, seg.shape[1] - 1)]
            y = seg[:, start + 1:start + 1 + x.shape[1]]
            logits, state = model(x, state)
            total += nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 y.reshape(-1), reduction="sum").item()
            n += y.numel()
    return total / n / math.log(2)


# --- counting ---------------------------------------------------------------------------------

def _product_mults(product):
    if isinstance(product, StrassenLinear):
        return product.r
    if isinstance(product, TWNLinear):
        return product.out_features
    return product.in_features * product.out_features


def multiplications(model):
    """Exact multiplications per character of a :class:`CharLM` or :class:`Teacher`.

    Returns
    -------
    dict
        ``products``: the matrix products' multiplications (the budget; a Strassen product
        counts its r, a TWN one one α per output, a dense one ``n_in·n_out``: every weight,
        the paper's count, even where a one-hot input makes the input products a lookup);
        ``elementwise``: the cell's ``f⊙c``, ``i⊙g`` and ``o⊙tanh(c)``, 3·hidden per layer
        (not in the paper's count; the hardware pays them); ``per_layer``: the products of each
        layer (``x`` and ``h`` sums) and the ``decoder``.
    """
    if isinstance(model, Teacher):
        n, v, layers = model.lstm.hidden_size, model.vocab, model.lstm.num_layers
        x = [4 * n * (v if k == 0 else n) for k in range(layers)]
        h = [4 * n * n] * layers
        dec = n * v
        return {"products": sum(x) + sum(h) + dec, "elementwise": 3 * n * layers,
                "per_layer": [{"x": a, "h": b} for a, b in zip(x, h)], "decoder": dec}
    per_layer = []
    for cell in model.lstm.cells:
        per_layer.append({"x": sum(_product_mults(cell[f"x_{g}"]) for g in GATES),
                          "h": sum(_product_mults(cell[f"h_{g}"]) for g in GATES)})
    dec = _product_mults(model.decoder)
    return {"products": sum(p["x"] + p["h"] for p in per_layer) + dec,
            "elementwise": 3 * model.lstm.hidden_size * model.lstm.num_layers,
            "per_layer": per_layer, "decoder": dec}


def dense_multiplications(vocab, hidden_size, num_layers=1):
    """Multiplications per character of the dense LSTM LM of this shape (its matrix products)."""
    return multiplications(Teacher(vocab, hidden_size, num_layers))["products"]


# --- freezing -----------------------------------------------------------------------------

def _parts(product):
    """``(T_b, T_c, a_eff, bias)`` of a Strassen product, float64 (α_b·α_c folded into ã)."""
    return _float_layers([Stage(product)])[0]


def _product_layer(parts, in_step, a_width, guard_bits, preact_frac, preact_width):
    """A FrozenLayer for one gate product: inputs of real step ``in_step``, outputs on the
    pre-activation grid 2^-preact_frac, saturated to ``preact_width`` signed bits."""
    t_b, t_c, a, bias = parts
    a_eff = a * in_step
    frac = _a_fraction(a_eff, a_width)
    total = frac - preact_frac
    if total < 0:
        raise FrozenError(f"a product's multipliers are too large for {a_width}-bit ã on the "
                          f"pre-activation grid 2^-{preact_frac}; raise a_width")
    product_shift = max(0, total - guard_bits)
    shift = total - product_shift
    b_int = _round(bias * 2.0 ** (frac - product_shift))
    return FrozenLayer(w_b=t_b, a_tilde=_round(a_eff * 2.0 ** frac), w_c=t_c, bias=b_int,
                       a_width=a_width, bias_width=max(2, signed_width(b_int.min(), b_int.max())),
                       output=Format(preact_width, True), a_frac_bits=frac,
                       product_shift=product_shift, product_rounding="half_up", shift=shift,
                       rounding="half_up")


#: Default integer formats of :func:`freeze_lm` (chosen with benchmarks/lstm_bpc.py).
FREEZE_DEFAULTS = dict(a_width=12, guard_bits=4, preact_frac=6, table_range=8, gate_frac=12,
                       preact_width=16, cell_width=16, cell_frac=11, hidden_width=12,
                       logit_width=16)


def freeze_lm(model, calibration=None, name="shakespeare", **options):
    """The integer model (:class:`strassen_hw.lstm.FrozenLM`) of a trained Strassen
    :class:`CharLM`.

    Every product is frozen like a layer of :mod:`strassen_hw.train.freeze`: ternary ``T_b``,
    ``T_c``, ``a_eff = α_b·α_c·ã·s_in`` rounded half up to ``a_width`` signed bits with the
    largest fraction F that fits, products rounded ``guard_bits`` below the result's grid. The
    gate products land on the pre-activation grid ``2^-preact_frac`` (``preact_width`` signed
    bits); the tables cover ``±table_range``; gates have ``gate_frac`` fraction bits; the cell
    ``cell_width`` signed bits with ``cell_frac``; the hidden state ``hidden_width`` signed bits
    with ``hidden_width - 1`` fraction bits (|h| < 1). The decoder's logits keep
    ``logit_width`` bits for the largest logit of the float model on ``calibration`` (character
    indices (sequences, steps); default: 32 sequences of 400 characters of the validation
    plays) and are never saturated (:mod:`strassen_hw.train.freeze`).

    Parameters
    ----------
    model : CharLM
        With ``product="strassen"``; its quantizer state does not matter (the shadows are
        always ternarized).
    options
        Any of :data:`FREEZE_DEFAULTS`.
    """
    from strassen_hw import lstm as frozen_lstm
    unknown = set(options) - set(FREEZE_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown freeze option {sorted(unknown)[0]!r}; use "
                        f"{', '.join(FREEZE_DEFAULTS)}")
    o = {**FREEZE_DEFAULTS, **options}
    if not isinstance(model, CharLM) or model.lstm.product != "strassen":
        raise TypeError("freeze_lm needs a CharLM with Strassen products (product='strassen')")
    hidden_frac = o["hidden_width"] - 1
    zf, gf = o["preact_frac"], o["gate_frac"]
    size = 2 * o["table_range"] << zf
    table_min = -(o["table_range"] << zf)
    cells, before, in_step = [], "input", 1.0
    for index, cell in enumerate(model.lstm.cells):
        products = {}
        for key in frozen_lstm.PRODUCTS:
            step = in_step if key.startswith("x") else 2.0 ** -hidden_frac
            products[key] = _product_layer(_parts(cell[key]), step, o["a_width"],
                                           o["guard_bits"], zf, o["preact_width"])
        n = model.lstm.hidden_size
        node = frozen_lstm.LSTM(
            name=f"lstm{index}", inputs=(before,), products=products, table_min=table_min,
            preact_frac=zf, gate_frac=gf,
            sigmoid=frozen_lstm.activation_table("sigmoid", table_min, size, zf, gf),
            tanh=frozen_lstm.activation_table("tanh", table_min, size, zf, gf),
            cell=Format(o["cell_width"], True), cell_frac=o["cell_frac"],
            hidden=Format(o["hidden_width"], True), hidden_frac=hidden_frac,
            fc_shift=gf, ig_shift=2 * gf - o["cell_frac"], h_shift=2 * gf - hidden_frac,
            cell_shift=o["cell_frac"] - zf, h0=np.zeros(n, np.int64), c0=np.zeros(n, np.int64))
        cells.append(node)
        before, in_step = node.name, 2.0 ** -hidden_frac
    if calibration is None:
        calibration = segments(text.corpus("validation")[:32 * 400], 32)
    with torch.no_grad():
        logits, _ = model.eval()(torch.as_tensor(np.asarray(calibration), dtype=torch.long))
    peak = float(logits.abs().max())
    decoder, _ = _freeze_layer(_parts(model.decoder), False, peak, cells[-1].hidden,
                               2.0 ** -hidden_frac, o["a_width"], 8, o["guard_bits"],
                               o["logit_width"], "strassen")
    return frozen_lstm.language_model(
        name, cells, decoder, alphabet=text.VOCAB if model.vocab == len(text.VOCAB) else "")


def timed(fn, *args, **kwargs):
    """``(result, seconds)`` of ``fn(*args, **kwargs)``."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start
