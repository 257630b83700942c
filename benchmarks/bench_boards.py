"""Board builds: utilization, Fmax and time of networks built for boards; one line each.

    python benchmarks/bench_boards.py [--net NET.json ...] [--shape 8,6,4 ...]
                                      [--board icebreaker] [--board ulx3s-85f] [--json PATH]
                                      [--link N,W ...]

Each network (frozen files with ``--net``, random ones with ``--shape n_in,r,n_out``; default
one random 8,6,4 layer) is built with ``strassen_hw.boards.build.build_board`` (YoWASP Yosys and
nextpnr, results cached by content under ``~/.cache/strassen-hw/builds``: a second run is
instant and prints ``cached``). ``time`` is the tools' wall clock when they ran. A design that
does not fit or misses the clock prints its one-line reason. The link column is what a UART at
the given baud rate carries (both directions at once; the longer frame sets the rate), the core
column what the network takes (the board clock over cycles per vector). ``--link N,W`` builds
the board top around an identity core of N signed W-bit elements each way instead: the cost of
the UART link and its framing alone.
"""

import argparse
import json
import tempfile
import time

from strassen_hw.boards.build import BoardBuildError, build_board
from strassen_hw.frozen import load, random_network


def _networks(args):
    nets = [load(path) for path in args.net or []]
    for index, text in enumerate(args.shape or ([] if args.net else ["8,6,4"])):
        layers = [tuple(int(v) for v in layer.split(",")) for layer in text.split("/")]
        nets.append(random_network(layers, seed=0, name=f"rand{index}"))
    return nets


def _link_only(text, board):
    """Logic cells and Fmax of the board top around an identity core (the link's own cost)."""
    from amaranth.hdl import Module, signed
    from amaranth.lib import data, stream, wiring
    from amaranth.lib.wiring import In, Out

    from strassen_hw.boards.top import BoardTop
    from strassen_hw.toolchain import build_options, run_plan
    n, width = (int(v) for v in text.split(","))
    layout = data.ArrayLayout(signed(width), n)

    class Identity(wiring.Component):
        i: In(stream.Signature(layout))
        o: Out(stream.Signature(layout))

        def elaborate(self, platform):
            m = Module()
            wiring.connect(m, wiring.flipped(self.i), wiring.flipped(self.o))
            return m

    top = BoardTop(Identity(), board)
    family = top.board.family
    plan = top.platform.build(top, name=f"link_{n}x{width}", do_build=False,
                              **build_options(family))
    result = run_plan(plan, family, progress=True)
    lc = result.utilization["ICESTORM_LC" if family == "ice40" else "TRELLIS_COMB"]
    fmax = min(v["achieved"] for v in result.fmax.values())
    print(f"link only, {n} x {width} bits each way, {board}: {lc['used']:,} of "
          f"{lc['available']:,} logic cells, Fmax {fmax} MHz")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--net", action="append", help="a frozen network file")
    parser.add_argument("--shape", action="append",
                        help="random network: n_in,r,n_out[/n_in,r,n_out...]")
    parser.add_argument("--board", action="append", help="default: icebreaker")
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--timeout", type=float, default=7200)
    parser.add_argument("--json", help="also write the reports as a JSON list")
    parser.add_argument("--link", action="append", metavar="N,W",
                        help="the link alone, around an identity core of N W-bit elements")
    args = parser.parse_args()
    for text in args.link or []:
        for board in args.board or ["icebreaker"]:
            _link_only(text, board)
    if args.link and not (args.net or args.shape):
        return
    rows = []
    print(f"{'network':>10} {'board':>10} {'LCs/LUTs':>15} {'LUT4':>6} {'FF':>6} {'DSP':>6} "
          f"{'RAM':>5} {'Fmax MHz':>8} {'clock':>5} {'link vec/s':>10} {'core vec/s':>11} "
          f"{'time':>8}")
    for net in _networks(args):
        for board in args.board or ["icebreaker"]:
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as out:
                try:
                    rep = build_board(net, board, out, baud=args.baud, timeout=args.timeout,
                                      progress=True)
                except BoardBuildError as e:
                    print(f"{net.name:>10} {board:>10} {e} "
                          f"({time.perf_counter() - start:.0f} s)", flush=True)
                    rows.append({"network": net.name, "board": board, "error": str(e)})
                    continue
            use = rep["utilization"]

            def cell(key):
                item = use.get(key, {})
                return (f"{item.get('used', 0):,}" + (f"/{item['available']:,}"
                                                       if "available" in item else ""))
            took = "cached" if rep["cached"] else f"{rep['build_seconds']:.0f} s"
            print(f"{net.name:>10} {board:>10} {cell('logic_cells'):>15} {cell('luts'):>6} "
                  f"{cell('ffs').split('/')[0]:>6} {cell('dsps'):>6} {cell('rams'):>5} "
                  f"{rep['fmax_mhz']:>8} {rep['clock_mhz']:>5g} "
                  f"{rep['link']['vectors_per_s']:>10,.0f} {rep['core']['vectors_per_s']:>11,} "
                  f"{took:>8}", flush=True)
            rows.append({"network": net.name, "board": board,
                         **{k: rep[k] for k in ("device", "utilization", "fmax_mhz",
                                                "clock_mhz", "link", "core", "build_seconds")}})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
