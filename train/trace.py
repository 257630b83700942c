"""What a model computes, read from its forward pass with ``torch.fx``: the plan that
:func:`~strassen_hw.train.freeze.freeze` freezes and :func:`~strassen_hw.train.strassenize`
checks.

:func:`trace` runs ``torch.fx.symbolic_trace`` (Strassen, TWN and every ``torch.nn`` layer are
leaves) and walks the traced graph node by node. It accepts, in any order the graph allows:

- ``nn.Linear``, ``nn.Conv2d`` (dense layers), :class:`StrassenLinear`, :class:`StrassenConv2d`
  and :class:`TWNLinear`: one :class:`Op` of kind ``"layer"`` each call;
- ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` right after a dense or TWN layer that nothing else
  reads: folded into its multipliers and bias (after a Strassen layer it cannot fold, the
  ternary ``W_c`` has no per-output scale: :class:`StrassenConv2d` ``(batch_norm=True)``
  holds it after ``W_b`` instead, which is what :func:`strassenize` builds);
- ``nn.ReLU`` / ``F.relu`` / ``torch.relu`` / ``x.relu()``: folded into the layer or add before
  it (or its max pooling) when nothing else reads that; on values known to be non-negative
  (a ReLU's output, or a max pool of one) it vanishes;
- ``nn.MaxPool2d`` / ``nn.AvgPool2d`` (kernel = stride, no padding; average: a power of two),
  folded into the convolution before it, or a ``"pool"`` op; ``nn.AdaptiveAvgPool2d(1)`` and
  ``F.adaptive_avg_pool2d(x, 1)``: a ``"global"`` pool;
- ``nn.Flatten`` / ``torch.flatten(x, 1)`` / ``x.flatten(1)`` / ``x.view(x.size(0), -1)``:
  a ``"flatten"`` op (image in pixel order to vector; the linear layer after it reads torch's
  channel-major order, so its columns are permuted);
- ``a + b`` / ``torch.add(a, b)`` / ``a.add(b)`` between tensors of one shape: an ``"add"`` op
  (``(a + b) + c`` with nothing else reading ``a + b`` is one add of three);
- ``nn.Identity``, ``nn.Dropout`` (the model is read in eval mode) and ``F.dropout``: nothing;
- ``nn.Unflatten(1, (1, H, W))`` on the input: the images' shape.

Anything else raises :class:`TraceRefusal` with one line naming the op, the graph node and the
source line of the model's forward, and a hint: a concatenation, another activation, a reordering
view, a data-dependent branch, a module called with two input shapes, ...
"""

import operator
import os
import re
import traceback
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import fx, nn
from torch.nn import functional as F

from strassen_hw.frozen import ConvGeometry, FrozenError, check_name

from .conv import StrassenConv2d
from .layers import StrassenLinear, TWNLinear

__all__ = ["TraceRefusal", "Op", "Plan", "trace"]

_TORCH_DIR = os.path.dirname(torch.__file__)
_HERE = os.path.dirname(os.path.abspath(__file__))
_LAYERS = (StrassenLinear, StrassenConv2d, TWNLinear, nn.Linear, nn.Conv2d)
_VANISH = (nn.Identity, nn.modules.dropout._DropoutNd)
_ACTIVATIONS = ("sigmoid", "tanh", "softmax", "log_softmax", "gelu", "silu", "elu", "selu",
                "leaky_relu", "hardtanh", "relu6", "softplus", "mish", "hardswish",
                "hardsigmoid", "prelu", "celu", "glu", "logsigmoid", "softsign", "exp", "log")
_HINTS = {
    "cat": "a frozen graph has no concatenation (its nodes are layers, add, pool and flatten); "
           "sum the branches with + instead, or keep them in one layer",
    "stack": "a frozen graph has no concatenation; sum the branches with + instead",
    "mul": "tensors are multiplied only inside a layer (its ã); fold the factor into a layer",
    "sub": "a frozen graph adds but does not subtract; fold the sign into the layer before",
    "permute": "a reordering cannot be frozen: the pixel order is fixed; remove it",
    "transpose": "a reordering cannot be frozen: the pixel order is fixed; remove it",
    "mean": "a global mean is nn.AdaptiveAvgPool2d(1) (then nn.Flatten)",
    "matmul": "products of activations cannot be frozen; use nn.Linear",
    "pad": "padding belongs to the convolution (its padding argument)",
}


class TraceRefusal(ValueError):
    """A model that cannot be frozen: one line naming the op, the node, the source line and a
    fix."""


@dataclass
class Op:
    """One node of the plan.

    ``kind`` is ``"layer"`` (``module`` a Strassen, TWN or dense layer, ``layer_kind`` its
    frozen kind, ``geometry`` for a convolution with any pooling folded in, ``perm`` the column
    order of a linear layer that reads a flattened image, ``bns`` the batch norms folded into a
    dense or TWN layer), ``"add"``, ``"pool"`` (``mode`` max / avg with ``size``, or global)
    or ``"flatten"``. ``shape`` is its output: ``(C, H, W)`` or ``(n,)`` (None where unknown,
    when :func:`trace` has no input shape). ``where`` names the node and its source line."""
    name: str
    kind: str
    inputs: tuple
    shape: tuple
    where: str
    module: nn.Module = None
    layer_kind: str = None
    geometry: ConvGeometry = None
    perm: np.ndarray = None
    bns: list = field(default_factory=list)
    relu: bool = False
    mode: str = None
    size: int = None


@dataclass
class Plan:
    """The ops in topological order (the last is the output) and the input's shape."""
    ops: list
    input_shape: tuple

    def op(self, name):
        return next(op for op in self.ops if op.name == name)

    @property
    def is_chain(self):
        """Layers (and flattens) one after the other, no pool op: a version-1/2 chain."""
        previous = "input"
        for op in self.ops:
            if op.kind not in ("layer", "flatten") or op.inputs != (previous,):
                return False
            previous = op.name
        return self.ops[-1].kind == "layer"

    def layers(self):
        return [op for op in self.ops if op.kind == "layer"]


@dataclass
class _Val:
    """What an fx node holds: the output of op ``op`` (or ``"input"``), of ``shape``;
    ``fresh``: it is that op's output as the op stands (a batch norm, ReLU or pooling may still
    fold into it); ``nonneg``: known to be >= 0; ``batch``: the batch size (``x.size(0)``)."""
    op: str = None
    shape: tuple = None
    fresh: bool = False
    nonneg: bool = False
    batch: bool = False
    shape_of: bool = False


class _Tracer(fx.Tracer):
    def __init__(self):
        super().__init__()
        self.record_stack_traces = True

    def _filter_traceback_frames(self, user_stack_summary):
        return user_stack_summary          # every frame: _source picks the model's own

    def is_leaf_module(self, m, qualname):
        return isinstance(m, _LAYERS) or super().is_leaf_module(m, qualname)


def _frames(frames):
    """The last frame of the model's own code among (filename, line, name, text) frames."""
    mine = [f for f in frames if not f[0].startswith(_TORCH_DIR)
            and os.path.dirname(os.path.abspath(f[0])) != _HERE]
    return mine[-1] if mine else None


def _source(node):
    text = node.stack_trace or ""
    frames = [(m.group(1), int(m.group(2)), m.group(3), m.group(4).strip()) for m in re.finditer(
        r'File "([^"]+)", line (\d+), in (\S+)\n\s*(.*)', text)]
    frame = _frames(frames)
    if frame is None:
        return ""
    return f" ({os.path.basename(frame[0])}:{frame[1]}: {frame[3]})"


def _describe(model, node):
    if node.op == "call_module":
        what = type(model.get_submodule(node.target)).__name__
    elif node.op == "call_method":
        what = f"Tensor.{node.target}"
    elif node.op == "call_function":
        what = getattr(node.target, "__name__", str(node.target))
        module = getattr(node.target, "__module__", None) or ""
        if getattr(F, what, None) is node.target or module.startswith("torch.nn.functional"):
            what = f"F.{what}"
        elif module.startswith("torch") or module == "_operator":
            what = ("" if module == "_operator" else "torch.") + what
    else:
        what = node.op
    return what


def _trace_graph(model):
    try:
        return _Tracer().trace(model)
    except Exception as e:           # a data-dependent branch, or Python code on a Proxy
        frames = [(f.filename, f.lineno, f.name, (f.line or "").strip())
                  for f in traceback.extract_tb(e.__traceback__)]
        frame = _frames(frames)
        at = f" at {os.path.basename(frame[0])}:{frame[1]}: {frame[3]}" if frame else ""
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TraceRefusal(
            f"cannot trace {type(model).__name__}.forward{at} ({message}); a data-dependent "
            "branch or loop (if/while on a tensor's values, or Python arithmetic on a "
            "tensor's size) cannot be frozen: make forward the same for every input") from None


def _pair(value):
    if isinstance(value, (tuple, list)):
        return value[0] if len(set(value)) == 1 else None
    return value


def _image(shape):
    return shape is not None and len(shape) == 3


def _show_shape(shape):
    return "×".join("?" if v is None else str(v) for v in shape)


class _Walker:
    def __init__(self, model, input_shape):
        self.model, self.input_shape = model, input_shape
        self.ops, self.vals, self.names = [], {}, set()
        self.calls = {}             # id(module) -> input shape of its first call
        self.pool_sources = {}      # pool op name -> the fx node it pools
        self.node = None

    # --- helpers ------------------------------------------------------------------------
    def refuse(self, message, what=None):
        node = self.node
        what = what or _describe(self.model, node)
        raise TraceRefusal(f"cannot freeze {what} at node '{node.name}'{_source(node)}: "
                           f"{message}")

    def where(self):
        return f"node '{self.node.name}'{_source(self.node)}"

    def name(self, base):
        name = re.sub(r"[^A-Za-z0-9_]", "_", base).strip("_") or "node"
        if not name[0].isalpha():
            name = "n" + name
        name = name[:56]
        candidate, k = name, 0
        while True:
            try:
                check_name(candidate)
                ok = candidate != "input" and candidate not in self.names
            except FrozenError:
                ok = False
            if ok:
                break
            k += 1
            candidate = f"{name}_{k}"
        self.names.add(candidate)
        return candidate

    def val(self, arg):
        if not isinstance(arg, fx.Node):
            self.refuse(f"it reads the constant {arg!r}; a frozen network holds constants only "
                        "inside layers (fold it into a layer's bias)")
        return self.vals[arg]

    def tensor(self, arg):
        v = self.val(arg)
        if v.batch or v.shape_of:
            self.refuse("it computes with a tensor's size; shapes are fixed in a frozen network")
        return v

    def sole(self, arg):
        """Whether the fx node ``arg`` is read by this node only."""
        return len(arg.users) == 1

    def emit(self, op):
        self.ops.append(op)
        return op

    def op(self, name):
        return None if name == "input" else next(o for o in self.ops if o.name == name)

    def fresh_op(self, arg, kinds):
        """The op whose output ``arg`` is, if more may fold into it (``arg`` read only here)."""
        v = self.vals[arg]
        if not v.fresh or not self.sole(arg) or v.op == "input":
            return None
        op = self.op(v.op)
        return op if op.kind in kinds else None

    # --- the walk -----------------------------------------------------------------------
    def run(self, graph):
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            self.node = placeholders[1] if placeholders else next(iter(graph.nodes))
            self.refuse(f"forward takes {len(placeholders)} tensors; a frozen network has one "
                        "input", what="the input")
        output = None
        for node in graph.nodes:
            self.node = node
            if node.op == "placeholder":
                self.vals[node] = _Val("input", self.input_shape, fresh=False)
            elif node.op == "get_attr":
                self.refuse(f"forward reads '{node.target}' directly; parameters and buffers "
                            "are frozen only inside layers", what="a parameter")
            elif node.op == "call_module":
                self.module(node, self.model.get_submodule(node.target))
            elif node.op == "call_function":
                self.function(node)
            elif node.op == "call_method":
                self.method(node)
            elif node.op == "output":
                output = node
        self.node = output
        result = output.args[0]
        if not isinstance(result, fx.Node):
            self.refuse("forward returns several values; a frozen network has one output",
                        what="the output")
        v = self.val(result)
        if v.op == "input" or not self.ops:
            self.refuse("the model has no layers; call strassenize() and train first",
                        what="the output")
        if v.op != self.ops[-1].name:
            self.refuse(f"the output is '{v.op}', computed before other nodes; a frozen "
                        "network ends with its output", what="the output")
        if not any(o.kind == "layer" for o in self.ops):
            self.refuse("the model has no layers", what="the output")
        self.check_read()
        return Plan(self.ops, self.input_shape)

    def check_read(self):
        read = {name for op in self.ops for name in op.inputs}
        for op in self.ops[:-1]:
            if op.name not in read:
                raise TraceRefusal(f"cannot freeze the output of {op.where}: nothing reads it; "
                                   "a frozen network computes only what its output needs")

    # --- modules ------------------------------------------------------------------------
    def module(self, node, m):
        if isinstance(m, _VANISH):
            self.vals[node] = self.tensor(node.args[0])
        elif isinstance(m, _LAYERS):
            self.layer(node, m)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            self.batch_norm(node, m)
        elif isinstance(m, nn.ReLU):
            self.relu(node)
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            mode = "max" if isinstance(m, nn.MaxPool2d) else "avg"
            q, stride = _pair(m.kernel_size), _pair(m.stride)
            ok = (isinstance(q, int) and stride == q and _pair(m.padding) == 0
                  and not m.ceil_mode and (mode == "avg" or _pair(m.dilation) == 1)
                  and (mode == "max" or m.divisor_override is None))
            self.pool(node, mode, q, ok, str(m))
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            self.global_pool(node, m.output_size)
        elif isinstance(m, nn.Flatten):
            self.flatten(node, m.start_dim, m.end_dim)
        elif isinstance(m, nn.Unflatten):
            self.unflatten(node, m)
        else:
            name = type(m).__name__
            hint = ("only ReLU activations freeze (a comparison); this one needs a multiplier "
                    "or a table" if name.lower() in _ACTIVATIONS else
                    "a frozen network holds linear and convolution layers (Strassen, TWN or "
                    "dense), batch norms folded into them, ReLU, pooling, flatten and add")
            self.refuse(hint)

    def layer(self, node, m):
        if len(node.args) != 1 or node.kwargs:
            self.refuse("a layer is called with one tensor")
        v = self.tensor(node.args[0])
        conv = isinstance(m, (StrassenConv2d, nn.Conv2d))
        shape = v.shape
        if v.op == "input" and shape is None:
            shape = (m.in_channels, None, None) if conv else (m.in_features,)
        if conv:
            if not _image(shape):
                if v.op == "input":
                    self.refuse("a convolution needs images: start the model with "
                                "nn.Unflatten(1, (1, H, W)) or give input_shape")
                self.refuse("a convolution reads an image, not a vector")
            if shape[0] != m.in_channels:
                self.refuse(f"it takes {m.in_channels} channel(s) but gets {shape[0]}")
        else:
            if _image(shape):
                self.refuse("put nn.Flatten() between the convolutions and the linear layers")
            if shape[0] is not None and shape[0] != m.in_features:
                self.refuse(f"it takes {m.in_features} inputs but gets {shape[0]}")
        first = self.calls.setdefault(id(m), shape)
        if first != shape:
            self.refuse(f"module '{node.target}' is called with {_show_shape(first)} and "
                        f"{_show_shape(shape)} inputs; a frozen layer has one geometry: use "
                        "one module per input shape")
        kind = ("strassen" if isinstance(m, (StrassenLinear, StrassenConv2d)) else
                "twn" if isinstance(m, TWNLinear) else "dense")
        op = Op(self.name(node.name), "layer", (v.op,), None, self.where(), module=m,
                layer_kind=kind)
        if conv:
            geometry = self.geometry(m, shape)
            op.geometry = geometry
            op.shape = ((m.out_channels, *geometry.output_hw) if geometry is not None else
                        (m.out_channels, None, None))
        else:
            source = self.op(v.op)
            if source is not None and source.kind == "flatten":
                c, h, w = self.op(source.inputs[0]).shape if source.inputs[0] != "input" \
                    else self.input_shape
                if None not in (c, h, w):
                    op.perm = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0) \
                        .reshape(-1)
            op.shape = (m.out_features,)
        self.emit(op)
        self.vals[node] = _Val(op.name, op.shape, fresh=True)

    def geometry(self, m, shape):
        c, h, w = shape
        if h is None:
            return None
        if isinstance(m, StrassenConv2d):
            args = dict(kernel=m.kernel_size, stride=m.stride, padding=m.padding, p=m.p,
                        groups=m.groups)
        else:
            if m.dilation != (1, 1) or m.padding_mode != "zeros":
                self.refuse("only zero padding without dilation is supported")
            padding = m.padding
            if padding == "valid":
                padding = (0, 0)
            elif padding == "same":
                if m.stride != (1, 1) or any(k % 2 == 0 for k in m.kernel_size):
                    self.refuse("padding='same' needs an odd kernel and stride 1; give the "
                                "padding as integers")
                padding = tuple(k // 2 for k in m.kernel_size)
            args = dict(kernel=m.kernel_size, stride=m.stride, padding=padding, p=1, groups=1)
        try:
            return ConvGeometry(in_channels=c, out_channels=m.out_channels, height=h, width=w,
                                **args)
        except FrozenError as e:
            self.refuse(str(e).removeprefix("conv: "))

    def batch_norm(self, node, m):
        v = self.tensor(node.args[0])
        name = type(m).__name__
        op = self.fresh_op(node.args[0], ("layer",))
        if op is None or op.relu or (op.geometry is not None and op.geometry.pool != "none"):
            self.refuse(f"a {name} folds only into the layer right before it, when nothing "
                        "else reads that layer's output (not after a ReLU, pooling or add)")
        if op.layer_kind == "strassen":
            self.refuse(f"cannot freeze a separate {name} after the Strassen layer '{op.name}': "
                        "its ternary W_c has no per-output scale to absorb it; use "
                        "StrassenConv2d(batch_norm=True) (a batch norm after W_b, folded into ã), "
                        "which strassenize() builds from an nn.Conv2d followed by a batch norm",
                        what=name)
        if m.running_mean is None:
            self.refuse("a batch norm without running statistics cannot be frozen")
        channels = op.shape[0]
        if m.num_features != channels:
            self.refuse(f"it normalizes {m.num_features} channels but gets {channels}")
        if isinstance(m, nn.BatchNorm1d) != (op.geometry is None and len(op.shape) == 1):
            self.refuse("BatchNorm1d goes after a linear layer, BatchNorm2d after a convolution")
        op.bns.append(m)
        self.vals[node] = _Val(op.name, op.shape, fresh=True)

    def relu(self, node, arg=None):
        arg = node.args[0] if arg is None else arg
        v = self.tensor(arg)
        if v.nonneg:                                  # relu of a non-negative value: itself
            self.vals[node] = v
            return
        op = self.fresh_op(arg, ("layer", "add"))
        if op is not None and not op.relu and (op.geometry is None or op.geometry.pool != "avg"):
            op.relu = True
            self.vals[node] = _Val(op.name, op.shape, fresh=True, nonneg=True)
            return
        pool = self.fresh_pool(arg)
        if pool is not None:
            pool.relu = True
            self.vals[node] = _Val(v.op, v.shape, fresh=False, nonneg=True)
            return
        self.refuse("a ReLU must follow a layer, an add or a max pooling after one, once, and "
                    "nothing else may read the value before the ReLU (after average pooling "
                    "it does not commute)", what="ReLU")

    def fresh_pool(self, arg):
        """The layer or add before the max pool op that ``arg`` is, when a ReLU after the pool
        may fold into it (relu(max(x)) = max(relu(x)); nothing else reads either)."""
        v = self.vals[arg]
        if v.op == "input" or not self.sole(arg):
            return None
        op = self.op(v.op)
        if op is None or op.kind != "pool" or op.mode != "max":
            return None
        source = self.pool_sources.get(op.name)
        if source is None or not self.sole(source) or not self.vals[source].fresh:
            return None
        before = self.op(self.vals[source].op)
        if before is None or before.kind not in ("layer", "add") or before.relu:
            return None
        return before

    def pool(self, node, mode, q, ok, text):
        v = self.tensor(node.args[0])
        if not _image(v.shape):
            self.refuse("pooling needs an image")
        if not ok:
            self.refuse(f"cannot freeze {text}: pooling needs kernel = stride, no padding, no "
                        "dilation, floor mode")
        op = self.fresh_op(node.args[0], ("layer",))
        if op is not None and op.geometry is not None and op.geometry.pool == "none":
            try:
                op.geometry = ConvGeometry(**{**op.geometry.__dict__, "pool": mode,
                                              "pool_size": q})
            except FrozenError as e:
                self.refuse(f"cannot freeze {text}: {str(e).removeprefix('conv: ')}")
            op.shape = (op.shape[0], *op.geometry.output_hw)
            self.vals[node] = _Val(op.name, op.shape, fresh=True, nonneg=op.relu)
            return
        c, h, w = v.shape
        if mode == "avg" and q & (q - 1):
            self.refuse(f"cannot freeze {text}: the pool side {q} is not a power of two; "
                        "average pooling divides by a shift")
        if h is not None and not 2 <= q <= min(h, w):
            self.refuse(f"cannot freeze {text}: the pool side {q} must be 2..{min(h, w)}")
        shape = (c, None if h is None else h // q, None if w is None else w // q)
        new = self.emit(Op(self.name(node.name), "pool", (v.op,), shape, self.where(),
                           mode=mode, size=q))
        self.pool_sources[new.name] = node.args[0]
        self.vals[node] = _Val(new.name, shape, fresh=False, nonneg=v.nonneg)

    def global_pool(self, node, size):
        v = self.tensor(node.args[0])
        if size not in (1, (1, 1), [1, 1]):
            self.refuse(f"adaptive pooling to {size}: only to 1 (a global average) freezes")
        if not _image(v.shape):
            self.refuse("a global pool needs an image")
        shape = (v.shape[0], 1, 1)
        new = self.emit(Op(self.name(node.name), "pool", (v.op,), shape, self.where(),
                           mode="global"))
        self.vals[node] = _Val(new.name, shape, fresh=False, nonneg=v.nonneg)

    def flatten(self, node, start, end):
        v = self.tensor(node.args[0])
        if start != 1 or end not in (-1, len(v.shape) if v.shape else -1):
            self.refuse(f"flatten from dimension {start} to {end}: only flatten(x, 1) (all "
                        "but the batch) freezes")
        if not _image(v.shape):                       # a vector already: nothing to do
            self.vals[node] = v
            return
        c, h, w = v.shape
        n = None if None in v.shape else c * h * w
        new = self.emit(Op(self.name(node.name), "flatten", (v.op,), (n,), self.where()))
        self.vals[node] = _Val(new.name, (n,), fresh=False, nonneg=v.nonneg)

    def unflatten(self, node, m):
        v = self.tensor(node.args[0])
        size = tuple(m.unflattened_size)
        if v.op != "input" or m.dim not in (1, -1) or len(size) != 3 or size[0] != 1 or (
                v.shape is not None and _image(v.shape)):
            self.refuse(f"cannot freeze {m}: only a first nn.Unflatten(1, (1, H, W)) to "
                        "one-channel images (pixel order = its order)", what="Unflatten")
        if v.shape is not None and v.shape[0] is not None and v.shape[0] != size[1] * size[2]:
            self.refuse(f"it makes {size[1]}×{size[2]} images of {v.shape[0]} inputs")
        self.input_shape = size
        self.vals[node] = _Val("input", size, fresh=False)

    def add(self, node, args):
        if len(args) != 2:
            self.refuse("add takes two tensors (no alpha)")
        vals = []
        for arg in args:
            if not isinstance(arg, fx.Node):
                self.refuse(f"it adds the constant {arg!r}; fold constants into a layer's bias")
            vals.append(self.tensor(arg))
        if vals[0].shape != vals[1].shape:
            self.refuse(f"it adds {_show_shape(vals[0].shape)} and {_show_shape(vals[1].shape)}"
                        " tensors; an add node needs one shape (no broadcasting)")
        inputs = []
        for arg, v in zip(args, vals):
            inner = self.fresh_op(arg, ("add",))
            if inner is not None and not inner.relu and inner is self.ops[-1]:
                self.ops.pop()                            # (a + b) + c: one add of three
                self.names.discard(inner.name)
                inputs += inner.inputs
            else:
                inputs.append(v.op)
        new = self.emit(Op(self.name(node.name), "add", tuple(inputs), vals[0].shape,
                           self.where()))
        self.vals[node] = _Val(new.name, new.shape, fresh=True)

    # --- functions and methods ----------------------------------------------------------
    def function(self, node):
        target, args, kwargs = node.target, node.args, node.kwargs
        if target in (operator.add, torch.add, operator.iadd):
            if kwargs.get("alpha", 1) != 1:
                self.refuse("torch.add with alpha scales a tensor; fold it into a layer")
            self.add(node, args[:2] if len(args) >= 2 else (args[0], kwargs.get("other")))
        elif target in (F.relu, torch.relu, torch.relu_):
            self.relu(node)
        elif target in (F.max_pool2d, torch.max_pool2d, F.avg_pool2d):
            mode = "avg" if target is F.avg_pool2d else "max"
            names = (("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                      "divisor_override") if mode == "avg" else
                     ("kernel_size", "stride", "padding", "dilation", "ceil_mode",
                      "return_indices"))
            given = {**dict(zip(names, args[1:])), **kwargs}
            q = _pair(given.get("kernel_size"))
            stride = _pair(given.get("stride")) or q
            ok = (isinstance(q, int) and stride == q and _pair(given.get("padding", 0)) == 0
                  and not given.get("ceil_mode", False) and _pair(given.get("dilation", 1)) == 1
                  and given.get("divisor_override") is None
                  and not given.get("return_indices", False))
            self.pool(node, mode, q, ok, f"{_describe(self.model, node)}(kernel_size={q})")
        elif target is F.adaptive_avg_pool2d:
            self.global_pool(node, args[1] if len(args) > 1 else kwargs.get("output_size"))
        elif target is torch.flatten:
            given = {**dict(zip(("start_dim", "end_dim"), args[1:])), **kwargs}
            self.flatten(node, given.get("start_dim", 0), given.get("end_dim", -1))
        elif target in (F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout):
            if args[3:4] == (True,) or kwargs.get("training") is True:
                self.refuse("dropout in training mode is random; call it with "
                            "training=self.training (the model is frozen in eval mode)")
            self.vals[node] = self.tensor(args[0])
        elif target is getattr and args[1] == "shape":
            self.vals[node] = _Val(shape_of=True)
        elif target is operator.getitem and isinstance(args[0], fx.Node) and \
                self.vals[args[0]].shape_of and args[1] == 0:
            self.vals[node] = _Val(batch=True)
        else:
            name = getattr(target, "__name__", str(target))
            self.refuse(self.hint(name))

    def method(self, node):
        name, args = node.target, node.args
        if name in ("relu", "relu_"):
            self.relu(node)
        elif name in ("add", "add_", "__add__", "__iadd__"):
            if node.kwargs.get("alpha", 1) != 1:
                self.refuse("add with alpha scales a tensor; fold it into a layer")
            self.add(node, args[:2] if len(args) >= 2 else (args[0], node.kwargs.get("other")))
        elif name == "flatten":
            given = {**dict(zip(("start_dim", "end_dim"), args[1:])), **node.kwargs}
            self.flatten(node, given.get("start_dim", 0), given.get("end_dim", -1))
        elif name in ("view", "reshape"):
            shape = args[1:]
            if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
                shape = tuple(shape[0])
            v = self.tensor(args[0])
            batch = len(shape) == 2 and isinstance(shape[0], fx.Node) and \
                self.vals[shape[0]].batch
            n = None if v.shape is None or None in v.shape else int(np.prod(v.shape))
            if batch and (shape[1] == -1 or (n is not None and shape[1] == n)):
                self.flatten(node, 1, -1)
            elif (isinstance(shape[0], fx.Node) and self.vals[shape[0]].batch
                  and len(shape) == 4 and shape[1] == 1 and v.op == "input"
                  and all(isinstance(k, int) and k > 0 for k in shape[2:])):
                self.unflatten(node, nn.Unflatten(1, tuple(shape[1:])))
            else:
                self.refuse(f"a {name} to another shape than (batch, -1) reinterprets the "
                            "pixel order; only flattening freezes (torch.flatten(x, 1))")
        elif name == "size":
            self.tensor(args[0])
            if args[1:] == (0,) or node.kwargs.get("dim") == 0:
                self.vals[node] = _Val(batch=True)
            else:
                self.vals[node] = _Val(shape_of=True)
        elif name in ("contiguous", "clone", "detach"):
            self.vals[node] = self.tensor(args[0])
        else:
            self.refuse(self.hint(name))

    def hint(self, name):
        name = name.strip("_")
        if name in _HINTS:
            return _HINTS[name]
        if name.lower() in _ACTIVATIONS:
            return ("only ReLU activations freeze (a comparison); this one needs a multiplier "
                    "or a table")
        return ("a frozen network holds linear and convolution layers, folded batch norms, "
                "ReLU, pooling, flatten and add; express the model with those")


def trace(model, input_shape=None, n_in=None):
    """The :class:`Plan` of ``model``'s forward pass (read in eval mode; the model is left as
    it was).

    ``input_shape`` is ``(channels, height, width)`` of the input images, or None: then the
    input is a vector of ``n_in`` values (None: unknown, for :func:`strassenize`'s check before
    any data) unless an ``nn.Unflatten`` makes images of it first. Raises
    :class:`TraceRefusal` (a ``ValueError``) with one line for what cannot be frozen."""
    if not isinstance(model, nn.Module):
        raise TraceRefusal(f"freeze needs an nn.Module, not {type(model).__name__}")
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        graph = _trace_graph(model)
    finally:
        for m, training in modes:
            m.training = training
    shape = tuple(input_shape) if input_shape is not None else (
        (n_in,) if n_in is not None else None)
    return _Walker(model, shape).run(graph)
