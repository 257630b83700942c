"""Frozen network → Verilog text and a report of its cost."""

import json
import os

from tqdm import tqdm

from ..frozen import atomic_write
from .conv import conv_cycles, line_buffer_bits, patch_bank_bits
from .folded import FoldedNetwork, FoldedPlan, folded_report, generate_folded_verilog
from .layer import LayerPlan
from .network import StrassenNetwork, check_buildable
from .tree import convert

__all__ = ["generate_verilog", "generate", "report", "plan", "check_fold", "cost", "hardware"]

_TOTALS = ("multipliers", "products_shift", "products_zero", "adders", "adders_unshared",
           "register_bits", "latency")


def _layer_nodes(net):
    """The linear and conv nodes of ``net``, in order."""
    return [node for node in net.nodes if node.KIND in ("linear", "conv")]


def _node_item(net, node, fold=1, plan=None, levels_per_stage=2, share=True):
    """The report of one linear or conv node: its (patch) layer's plan figures (the parallel
    :class:`LayerPlan`'s, or with ``fold > 1`` the :class:`~.folded.FoldedPlan`'s) and
    ``multiplications_per_inference``; a convolution adds ``conv``: its geometry, windows and
    multiplications per image, line buffer and patch bank bits, and, parallel, the cycles per
    image and latency of the streaming layer (:func:`~.conv.conv_cycles`)."""
    layer, fmt = node.layer, net.format_of(node.inputs[0])
    conv = node.KIND == "conv"
    linear = layer.patch if conv else layer
    if fold > 1:
        item = FoldedPlan.make(linear, fmt, fold).report()
    else:
        plan = plan or LayerPlan(linear, fmt, levels_per_stage, share)
        item = plan.report()
    if conv:
        g = layer.geometry
        item["conv"] = {**g.to_json(), "windows_per_image": g.patches[0] * g.patches[1],
                        "multiplications_per_image": layer.multiplications(),
                        "line_buffer_bits": line_buffer_bits(layer, fmt),
                        "patch_bank_bits": patch_bank_bits(layer)}
        if fold == 1:
            cycles, latency = conv_cycles(g, plan.latency)
            item["conv"].update(cycles_per_image=cycles, latency=latency)
        item["conv"].update(n_in_image=layer.n_in, n_out_image=layer.n_out)
    windows = item["conv"]["windows_per_image"] if conv else 1
    if fold > 1:        # the folded plan counts the multiplications it does, per window
        item["multiplications_per_inference"] *= windows
    else:
        item["multiplications_per_inference"] = linear.r * windows
    return item


def _report(name, plans, net):
    nodes = _layer_nodes(net)
    layers = [_node_item(net, node, plan=p) for node, p in zip(nodes, plans)]
    total = {key: sum(item[key] for item in layers) for key in _TOTALS}
    kinds = {item["kind"] for item in layers}
    total.update(kind=kinds.pop() if len(kinds) == 1 else "mixed",
                 n_in=layers[0]["n_in"], n_out=layers[-1]["n_out"],
                 r=sum(item["r"] for item in layers),
                 input=layers[0]["input"], output=layers[-1]["output"])
    if not net.is_chain:
        total.update(n_in=net.n_in, n_out=net.n_out, output=net.output.to_json())
    total["multiplications_per_inference"] = sum(
        item["multiplications_per_inference"] for item in layers)
    if not any("conv" in item for item in layers):
        total.update(fold=1, cycles_per_vector=1)
    else:
        total.update(n_in=net.n_in, n_out=net.n_out, line_buffer_bits=sum(
            item["conv"]["line_buffer_bits"] for item in layers if "conv" in item))
    return {"name": name, "layers": layers, "total": total}


def check_fold(fold, net=None):
    """``fold`` as an int (every node), or a dict from node names to folds (those nodes; the
    others parallel); else ``ValueError`` naming the problem. With ``net``, every name in the
    dict must be a linear or conv node of it."""
    if isinstance(fold, dict):
        for name, value in fold.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"fold of node {name!r} must be a positive integer, not "
                                 f"{value!r}")
            if net is not None and not any(n.name == name and n.KIND in ("linear", "conv")
                                           for n in net.nodes):
                names = ", ".join(n.name for n in net.nodes if n.KIND in ("linear", "conv"))
                raise ValueError(f"fold names node {name!r}, which is not a linear or conv "
                                 f"node of {net.name} (those are: {names})")
        return fold
    if isinstance(fold, bool) or not isinstance(fold, int) or fold < 1:
        raise ValueError(f"fold must be a positive integer, not {fold!r}")
    return fold


def cost(net, *, fold=1, levels_per_stage=2):
    """The cost report of ``net`` built for ``fold`` (what :func:`generate` writes), without
    building it."""
    if check_fold(fold) == 1:
        return report(net, levels_per_stage=levels_per_stage)
    return _folded_conv_report(net, fold) if _has_conv(net) else folded_report(net, fold)


def hardware(net, *, fold=1, levels_per_stage=2):
    """``(component, report)``: the hardware of ``net`` for ``fold`` as one stream component
    (:class:`StrassenNetwork`, or :class:`~.folded.FoldedNetwork` for a folded network of
    linear layers) and its :func:`cost`."""
    if check_fold(fold) == 1:
        top = StrassenNetwork(net, levels_per_stage=levels_per_stage)
    elif _has_conv(net):
        top = StrassenNetwork(net, fold=fold)
    else:
        top = FoldedNetwork(net, fold)
    return top, cost(net, fold=fold, levels_per_stage=levels_per_stage)


def _has_conv(net):
    return any(node.KIND == "conv" for node in net.nodes)


def _folded_conv_report(net, fold):
    """The report of a network with convolutions folded by ``fold``: per layer the figures of
    its folded (patch) layer (:meth:`~.folded.FoldedPlan.report`: ``cycles_per_vector`` and
    ``latency`` per window for a convolution) and, for a convolution, ``conv`` as with fold 1
    without cycles per image and latency (:func:`~.conv.conv_cycles` models fold 1 only)."""
    layers = [_node_item(net, node, fold) for node in _layer_nodes(net)]
    keys = ("multipliers", "adders", "multiplications_per_inference", "rom_bits", "ram_bits",
            "register_bits")
    total = {key: sum(item[key] for item in layers) for key in keys}
    total.update(fold=fold, n_in=net.n_in, n_out=net.n_out,
                 r=sum(item["r"] for item in layers), input=net.input.to_json(),
                 output=net.output.to_json(), line_buffer_bits=sum(
                     item["conv"]["line_buffer_bits"] for item in layers if "conv" in item),
                 note="cycles per image not modelled for fold > 1 with convolutions")
    return {"name": net.name, "layers": layers, "total": total}


def _mixed_report(net, fold, levels_per_stage=2, share=True):
    """The report of ``net`` with a fold per node (``fold`` a dict): per linear and conv node
    :func:`_node_item` for its fold (``node`` and ``fold`` added), and the sums."""
    layers = []
    for node in _layer_nodes(net):
        f = fold.get(node.name, 1)
        item = _node_item(net, node, f, levels_per_stage=levels_per_stage, share=share)
        item.update(node=node.name, fold=f)
        layers.append(item)
    keys = ("multipliers", "adders", "multiplications_per_inference")
    total = {key: sum(item[key] for item in layers) for key in keys}
    total.update(fold=dict(fold), n_in=net.n_in, n_out=net.n_out,
                 input=net.input.to_json(), output=net.output.to_json())
    return {"name": net.name, "layers": layers, "total": total}


def plan(net, *, levels_per_stage=2, share=True, progress=False):
    """The :class:`LayerPlan` of every layer of ``net`` (adder graphs, folding, schedule).
    A network whose hardware cannot be built (:func:`~.network.check_buildable`) is refused
    first, in one line."""
    check_buildable(net)
    layers = [(node.layer.patch if node.KIND == "conv" else node.layer,
               net.format_of(node.inputs[0])) for node in _layer_nodes(net)]
    return [LayerPlan(layer, fmt, levels_per_stage, share)
            for layer, fmt in tqdm(layers, desc="adder graphs", unit="layer",
                                   disable=not progress, leave=False)]


def report(net, *, levels_per_stage=2, share=True):
    """The cost of ``net`` in hardware, without generating it: per layer and in total
    ``kind`` (of the layer; in the total: the one kind of all layers, else ``"mixed"``),
    ``n_in``, ``r``, ``n_out``, ``multipliers`` (after folding trivial ã: ``products_shift``
    of the r products are ã = ±2^k, wires; ``products_zero`` vanish), ``adders`` (from the
    generator's own graph; ``adders_unshared`` without sharing), ``register_bits``,
    ``latency`` (cycles), ``input`` and ``output`` formats. A convolution layer reports its
    patch layer (``n_in``, ``n_out``: one window, one patch; ``multipliers`` and ``adders``
    those that exist, ``latency`` the patch pipeline's) and under ``conv`` its geometry,
    windows and multiplications per image, line buffer bits, the bits of its two patch-row
    banks (not in ``register_bits``), and the cycles per image and
    latency of the streaming layer (:func:`~.conv.conv_cycles`: from an image's first input
    pixel to the next image's and to its last output pixel, input always valid and output
    always ready)."""
    return _report(net.name, plan(net, levels_per_stage=levels_per_stage, share=share), net)


def generate_verilog(net, *, levels_per_stage=2, share=True, trees="verilog", fold=1):
    """The Verilog text of ``net``: a top module named ``net.name`` with ports ``clk``,
    ``rst`` and the streams ``i`` / ``o``. Byte-identical for identical networks in any process.

    ``fold = 1`` is the fully parallel design (one vector per clock); ``fold = F > 1`` the
    folded one (:mod:`.folded`: each layer's work spread over about F cycles per vector, the
    other parameters unused): :class:`~.folded.FoldedNetwork` for linear layers only, else
    :class:`StrassenNetwork` with ``fold`` (folded linear and patch layers).

    The layers are Amaranth components converted by :func:`amaranth.back.verilog.convert`;
    with ``trees="verilog"`` (default) their adder trees are appended as modules written
    directly from the adder graphs (:mod:`.tree`), which keeps large layers fast;
    ``trees="amaranth"`` converts everything through Amaranth (slow for large layers).
    """
    if isinstance(check_fold(fold, net), dict):
        top = StrassenNetwork(net, levels_per_stage=levels_per_stage, share=share, trees=trees,
                              fold=fold)
        return convert(top, net.name, top.trees)
    if fold > 1 and not _has_conv(net) and net.is_chain:
        return generate_folded_verilog(net, fold)
    if fold > 1:
        top = StrassenNetwork(net, fold=fold)
        return convert(top, net.name, top.trees)
    top = StrassenNetwork(net, levels_per_stage=levels_per_stage, share=share, trees=trees)
    return convert(top, net.name, top.trees)


def generate(net, out_dir, *, levels_per_stage=2, share=True, trees="verilog", progress=False,
             fold=1):
    """Write ``out_dir/<name>.v`` and ``out_dir/report.json`` (each atomically); return the
    report (see :func:`report`; with ``fold > 1`` :func:`~.folded.folded_report`: cycles per
    vector, the multipliers and adders that physically exist, multiplications per
    inference; with convolutions per window, and no cycles per image: ``total["note"]``).
    ``progress`` shows the steps on stderr."""
    if isinstance(check_fold(fold, net), dict) or fold > 1:
        with tqdm(total=1, desc="Verilog", disable=not progress, leave=False) as bar:
            text = generate_verilog(net, fold=fold, levels_per_stage=levels_per_stage,
                                    share=share, trees=trees)
            bar.update()
        result = (_mixed_report(net, fold, levels_per_stage, share) if isinstance(fold, dict)
                  else _folded_conv_report(net, fold) if _has_conv(net)
                  else folded_report(net, fold))
        atomic_write(os.path.join(out_dir, f"{net.name}.v"), text)
        atomic_write(os.path.join(out_dir, "report.json"), json.dumps(result, indent=1) + "\n")
        return result
    plans = plan(net, levels_per_stage=levels_per_stage, share=share, progress=progress)
    top = StrassenNetwork(net, trees=trees, plans=plans)
    with tqdm(total=1, desc="Verilog", disable=not progress, leave=False) as bar:
        text = convert(top, net.name, top.trees)
        bar.update()
    result = _report(net.name, plans, net)
    atomic_write(os.path.join(out_dir, f"{net.name}.v"), text)
    atomic_write(os.path.join(out_dir, "report.json"), json.dumps(result, indent=1) + "\n")
    return result
