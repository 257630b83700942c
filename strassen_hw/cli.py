"""The ``strassen-hw`` command line: a thin layer over the importable functions.

Every subcommand is one small function. Errors a user can fix print one line,
``strassen-hw: error: ...``, and exit with status 2; no traceback.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

__all__ = ["main"]


class UserError(Exception):
    """An error the user can fix; printed as one line, exit status 2."""


def _shape(text):
    try:
        n_in, r, n_out = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not n_in,r,n_out (three integers)")
    if min(n_in, r, n_out) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every size must be at least 1")
    return n_in, r, n_out


def _load_npy(path, what):
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (the {what} .npy)")
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a numpy .npy file of integers ({e})")


def _save_npy(path, array):
    import io

    from .frozen import atomic_write
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write(path, buffer.getvalue())


# --- subcommands ------------------------------------------------------------------------------

def cmd_random(args):
    from .frozen import random_network, save
    net = random_network(args.shape, seed=args.seed, name=args.name,
                         input_width=args.input_width, a_width=args.a_width)
    save(net, args.output)
    print(f"wrote {args.output}: {len(net.layers)} layer(s), "
          + ", ".join(f"{l.n_in},{l.r},{l.n_out}" for l in net.layers))


def cmd_reference(args):
    from .frozen import load
    from .reference import forward
    net = load(args.network)
    y = forward(net, _load_npy(args.inputs, "inputs"))
    _save_npy(args.output, y)
    print(f"wrote {args.output}: {y.shape[0]} vector(s) of {y.shape[1]} output(s)")


def cmd_generate(args):
    from .frozen import load
    from .hw import generate
    from .matmul import is_algorithm_file
    if is_algorithm_file(args.network):
        return _generate_matmul(args)
    net = load(args.network)
    if args.levels_per_stage < 1:
        raise UserError(f"--levels-per-stage {args.levels_per_stage}: must be at least 1")
    try:
        result = generate(net, args.output, levels_per_stage=args.levels_per_stage,
                          share=not args.no_share, progress=True)
    except OSError as e:
        raise UserError(f"{args.output}: cannot write the Verilog ({e.strerror or e})")
    total = result["total"]
    out = Path(args.output)
    print(f"wrote {out / (net.name + '.v')} and {out / 'report.json'}: "
          f"{len(result['layers'])} layer(s), {total['multipliers']} multiplier(s), "
          f"{total['adders']} adders, {total['register_bits']} register bits, "
          f"latency {total['latency']} cycles")


def _operand(args):
    from .frozen import Format
    if not 2 <= args.operand_width <= 32:
        raise UserError(f"--operand-width {args.operand_width}: must be 2..32")
    return Format(args.operand_width, True)


def _generate_matmul(args):
    """``generate`` for a bilinear solution file: the r-multiplier matrix multiplier."""
    from .hw.bilinear import generate_bilinear
    from .matmul import load_algorithm
    algorithm = load_algorithm(args.network)
    if not algorithm.is_exact():
        raise UserError(f"{args.network}: not an exact algorithm (its tensor differs from the "
                        f"{algorithm.n}x{algorithm.n} matrix-multiplication tensor)")
    name = args.name or "matmul"
    try:
        rep = generate_bilinear(algorithm, _operand(args), args.output, name=name)
    except OSError as e:
        raise UserError(f"{args.output}: cannot write the Verilog ({e.strerror or e})")
    n = algorithm.n
    out = Path(args.output)
    print(f"wrote {out / (name + '.v')} and {out / 'report.json'}: {n}x{n} matrix "
          f"product, {rep['multipliers']} multipliers (naive {rep['naive_multipliers']}), "
          f"{rep['adders']} adders (W_a {rep['adders_w_a']}, W_b {rep['adders_w_b']}, W_c "
          f"{rep['adders_w_c']}, negations {rep['negations']}; naive {rep['naive_adders']}), "
          f"output {rep['output']['width']} bits, latency {rep['latency']} cycles")


def _simulate_network(args):
    """``simulate`` for a frozen network: extremes, random and user vectors, every output
    checked against the reference."""
    from .frozen import load
    from .reference import check_inputs
    from .sim import BuildError, Mismatch, SimulationError, ToolError, check, test_vectors
    net = load(args.design)
    x = test_vectors(net, args.vectors, seed=args.seed)
    extremes = len(x) - args.vectors
    extra = ""
    if args.inputs:
        given = check_inputs(net, _load_npy(args.inputs, "inputs"))
        x = np.concatenate([x, given])
        extra = f", {len(given)} from {args.inputs}"
    waves = f"{net.name}.vcd" if args.waves else False
    print(f"generating the Verilog of {net.name} ...", file=sys.stderr, flush=True)
    try:
        result = check(net, x, seed=args.seed, stalls=not args.no_stalls, waves=waves,
                       progress=True)
    except Mismatch as e:
        if args.outputs:
            _save_npy(args.outputs, e.result.outputs)
        print(f"FAIL {net.name}: {e}")
        return 1
    except (ToolError, BuildError, SimulationError) as e:
        raise UserError(str(e))
    if args.outputs:
        _save_npy(args.outputs, result.outputs)
    print(f"PASS {net.name}: all {len(x)} vectors ({extremes} extreme, {args.vectors} "
          f"random{extra}) "
          f"equal the reference, bit for bit")
    built = (f"built in {result.build_seconds:.1f} s" if result.build_seconds
             else "build cached")
    print(f"{len(x)} vectors checked, {result.vectors_per_second:,.0f} vectors/s "
          f"({result.cycles} cycles in {result.loop_seconds:.2f} s; simulator "
          f"{result.sim_seconds:.1f} s in all, {built})")
    if args.outputs:
        print(f"wrote the hardware's outputs to {args.outputs}")
    if result.waves:
        print(f"waves: {result.waves}")
    return 0


def cmd_simulate(args):
    from .matmul import is_algorithm_file
    if args.vectors < 0:
        raise UserError(f"--vectors {args.vectors}: must be >= 0")
    if not is_algorithm_file(args.design):
        return _simulate_network(args)
    args.count = args.vectors
    from .matmul import load_algorithm
    from .sim import BuildError, Mismatch, SimulationError, ToolError
    from .sim.bilinear import check_bilinear, matmul_vectors
    algorithm, operand = load_algorithm(args.design), _operand(args)
    if not algorithm.is_exact():
        raise UserError(f"{args.design}: not an exact algorithm (its tensor differs from the "
                        f"{algorithm.n}x{algorithm.n} matrix-multiplication tensor)")
    a, b = matmul_vectors(algorithm.n, operand, args.count, seed=args.seed)
    try:
        result, rep = check_bilinear(algorithm, operand, a, b, name=args.name or "matmul",
                                     seed=args.seed, stalls=not args.no_stalls)
    except Mismatch as e:
        print(f"FAIL: {e}")
        return 1
    except (ToolError, BuildError, SimulationError) as e:
        raise UserError(str(e))
    n = algorithm.n
    print(f"PASS: all {len(a)} pairs ({len(a) - args.count} extreme, {args.count} random) of "
          f"{n}x{n} int{operand.width} matrices give exactly A @ B with {rep['multipliers']} "
          f"multipliers (naive {rep['naive_multipliers']}); {result.cycles} cycles")
    return 0


def _format_matrix(name, w):
    rows = [" ".join(f"{v:2d}" for v in row) for row in w.tolist()]
    return "\n".join(f"{name if i == 0 else '':5}[{row} ]" for i, row in enumerate(rows))


def cmd_discover(args):
    import json

    from .frozen import atomic_write
    from .matmul import save_algorithm
    if not 1 <= args.size <= 4:
        raise UserError(f"--size {args.size}: must be 1..4 (n×n matrices)")
    if not 1 <= args.rank <= args.size ** 3:
        raise UserError(f"--rank {args.rank}: must be 1..{args.size ** 3} for {args.size}×"
                        f"{args.size} (the naive product needs {args.size ** 3})")
    if args.restarts < 1:
        raise UserError(f"--restarts {args.restarts}: must be at least 1")
    for key in ("fit_steps", "quant_steps"):
        if getattr(args, key) is not None and getattr(args, key) < 0:
            raise UserError(f"--{key.replace('_', '-')} {getattr(args, key)}: must be >= 0")
    from .train.discover import discover
    overrides = {k: getattr(args, k) for k in ("fit_steps", "quant_steps")
                 if getattr(args, k) is not None}
    result = discover(args.size, args.rank, args.restarts, seed=args.seed, recipe=args.recipe,
                      progress=True, **overrides)
    n, first = args.size, result.first
    if first is not None and args.pick == "fewest-adders":
        first, adders = _fewest_adders(result.solutions)
    print(f"{result.restarts} restart(s) of {n}x{n}, r={args.rank}, recipe '{args.recipe}' "
          f"on {result.device}: {int(result.exact.sum())} exact ({100 * result.rate:.1f}%), "
          f"{result.distinct()} distinct, {result.seconds:.1f} s; "
          f"{100 * result.fit_fraction:.1f}% fitted at full precision (loss < 1e-4)")
    if args.json:
        doc = first.to_json() if first else {"W_a": None, "W_b": None, "W_c": None}
        doc.update(n=n, r=args.rank, recipe=args.recipe, seed=args.seed,
                   restarts=result.restarts, exact=int(result.exact.sum()), rate=result.rate,
                   distinct=result.distinct(), seconds=round(result.seconds, 3),
                   first_seconds=None if first is None else round(result.first_seconds, 3),
                   fit_fraction=result.fit_fraction, device=result.device, pick=args.pick)
        atomic_write(args.json, json.dumps(doc) + "\n")
    if first is None:
        print("no exact algorithm found: try more --restarts or another --seed")
        return 1
    output = args.output or f"matmul-{n}x{n}-r{args.rank}.json"
    save_algorithm(first, output)
    which = (f"first exact algorithm after {result.first_seconds:.1f} s"
             if args.pick == "first" else f"exact algorithm with the fewest adders ({adders})")
    print(f"{which} ({first.r} products; tensor identity checked in integers), saved to "
          f"{output}:")
    for name, w in (("W_a", first.w_a), ("W_b", first.w_b), ("W_c", first.w_c)):
        print(_format_matrix(name, w))
    return 0


def _fewest_adders(solutions):
    """The solution whose multiplier needs the fewest adders (first found on ties), and that
    number of adders."""
    from .frozen import Format
    from .hw.bilinear import BilinearPlan
    best, fewest = None, None
    for solution in solutions:
        adders = BilinearPlan(solution, Format(8, True)).report()["adders"]
        if fewest is None or adders < fewest:
            best, fewest = solution, adders
    return best, fewest


def _int_list(text):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers")
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be >= 0")
    return tuple(values)


def _train_config(args):
    from .train.fit import TrainConfig
    if len(args.products) != 2 or min(args.products) < 1:
        raise UserError(f"--products {','.join(map(str, args.products))}: give two positive "
                        "values, r of the hidden layer and r of the output layer")
    if len(args.epochs) != 3:
        raise UserError(f"--epochs {','.join(map(str, args.epochs))}: give three values "
                        "(full precision, quantized, ternary fixed)")
    if args.hidden < 1 or args.batch_size < 1 or args.lr <= 0:
        raise UserError("--hidden, --batch-size and --lr must be positive")
    return TrainConfig(hidden=args.hidden, r=args.products, seed=args.seed,
                       teacher_epochs=args.teacher_epochs, phase_epochs=args.epochs,
                       batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                       distill=not args.no_distill)


def cmd_train(args):
    from .demo import dense_counts
    from .train import data as digits
    from .train.distributed import setup, teardown
    from .train.fit import save_checkpoint, train
    config = _train_config(args)
    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available; use --device cpu")
    context = setup(None if args.device == "auto" else args.device)
    try:
        if context.main:
            print(f"training on {context.device}"
                  + (f" in {context.world_size} processes" if context.distributed else "")
                  + f": teacher 64-{config.hidden}-10, Strassen r = "
                  + ",".join(map(str, config.r)) + f", seed {config.seed}")
        try:
            result = train(config, digits.load(), context=context, log=print)
        except ValueError as e:
            raise UserError(str(e))
        if context.main:
            try:
                save_checkpoint(args.output, result)
            except OSError as e:
                raise UserError(f"{args.output}: cannot write the checkpoint "
                                f"({e.strerror or e})")
            last = {row["stage"]: row for row in result.history}
            dense, _ = dense_counts([(64, config.hidden), (config.hidden, 10)])
            mults = sum(config.r)
            print(f"wrote {args.output}: teacher test accuracy "
                  f"{100 * last['teacher']['test_accuracy']:.2f}%, Strassen "
                  f"{100 * last['ternary_fixed']['test_accuracy']:.2f}% with {mults} "
                  f"multiplications per inference ({100 * mults / dense:.2f}% of the dense "
                  f"{dense:,})")
    finally:
        teardown(context)


def cmd_freeze(args):
    import numpy as np

    from .frozen import save
    from .reference import forward
    from .train import data as digits
    from .train.fit import load_checkpoint
    from .train.freeze import float_logits, freeze
    try:
        result = load_checkpoint(args.checkpoint)
    except ValueError as e:
        raise UserError(str(e))
    if args.a_width is not None and not 2 <= args.a_width <= 32:
        raise UserError(f"--a-width {args.a_width}: must be 2..32")
    if not 1 <= args.act_width <= 32:
        raise UserError(f"--act-width {args.act_width}: must be 1..32")
    data = digits.load()
    net, report = freeze(result.student, data.x_train, name=args.name, a_width=args.a_width,
                         act_width=args.act_width, guard_bits=args.guard_bits)
    save(net, args.output)
    float_pred = float_logits(result.student, data.x_test).argmax(1)
    frozen_pred = forward(net, data.x_test).argmax(1)
    float_acc = float(np.mean(float_pred == data.y_test))
    frozen_acc = float(np.mean(frozen_pred == data.y_test))
    for item in report.candidates:
        print(f"  ã in {item['a_width']:2} bits: {100 * item['agreement']:6.2f}% of the "
              f"training predictions kept, logit error {100 * item['logit_error']:.2f}%")
    print(f"wrote {args.output}: ã in {report.a_width} signed bits, hidden activations in "
          f"{args.act_width} unsigned bits, logits in {net.output.width} signed bits; test "
          f"accuracy {100 * float_acc:.2f}% (float) -> {100 * frozen_acc:.2f}% (frozen), "
          f"quantization loss {100 * (float_acc - frozen_acc):.2f} points, "
          f"{int(np.sum(float_pred != frozen_pred))} of {len(frozen_pred)} predictions changed")


def cmd_demo(args):
    from .demo import DemoError, format_table, rows_to_json, run_demo
    from .frozen import atomic_write
    import time
    start = time.perf_counter()
    try:
        rows = run_demo(quick=args.quick, seed=args.seed, out_dir=args.out,
                        cache_dir=args.cache_dir)
    except DemoError as e:
        print(f"strassen-hw: error: {e}", file=sys.stderr)
        return 1
    print()
    print(format_table(rows))
    print("\nAccuracy on the fixed test split (360 images). Additions: the float and frozen rows "
          "count k-1 per\nternary row of k non-zeros plus one per bias; the hardware row counts "
          "the generator's adders,\nwhich share common sub-sums. "
          f"The demo took {time.perf_counter() - start:.0f} s.")
    if args.json:
        try:
            atomic_write(args.json, rows_to_json(rows))
        except OSError as e:
            raise UserError(f"{args.json}: cannot write the table ({e.strerror or e})")
        print(f"wrote {args.json}")
    return 0


# --- boards -----------------------------------------------------------------------------------

def cmd_build(args):
    from .boards.build import BoardBuildError, build_board
    from .frozen import load
    net = load(args.network)
    try:
        rep = build_board(net, args.board, args.output, fold=args.fold, baud=args.baud,
                          levels_per_stage=args.levels_per_stage, timeout=args.timeout,
                          progress=True)
    except BoardBuildError as e:
        raise UserError(str(e))
    except OSError as e:
        raise UserError(f"{args.output}: cannot write the bitstream ({e.strerror or e})")
    use = rep["utilization"]
    parts = [f"{use[k]['used']:,}" + (f"/{use[k]['available']:,}" if "available" in use[k]
                                       else "") + f" {label}"
             for k, label in (("logic_cells", "LCs"), ("luts", "LUT4"), ("ffs", "FFs"),
                              ("dsps", "DSPs"), ("rams", "RAMs")) if k in use]
    out = Path(args.output)
    print(f"wrote {out / rep['bitstream']} and {out / 'report.json'}: {rep['board']} "
          f"({rep['device']}), " + ", ".join(parts) + f"; Fmax {rep['fmax_mhz']} MHz "
          f"(clock {rep['clock_mhz']:g} MHz); link {rep['link']['vectors_per_s']:,.0f} "
          f"vectors/s at {rep['baud']} baud" + (" (cached)" if rep["cached"] else
                                                 f" ({rep['build_seconds']:.0f} s)"))


def cmd_program(args):
    from .boards.program import ProgramError, program
    try:
        command = program(args.directory)
    except ProgramError as e:
        raise UserError(str(e))
    print("programmed: " + " ".join(command))


def cmd_run_board(args):
    from tqdm import tqdm

    from .boards.host import BoardError, run_board
    from .frozen import load
    from .reference import check_inputs, forward
    from .sim import test_vectors
    net = load(args.network)
    if args.vectors < 0 or args.timeout <= 0:
        raise UserError("--vectors must be >= 0 and --timeout positive")
    if args.inputs:
        x = check_inputs(net, _load_npy(args.inputs, "inputs"))
    else:
        x = test_vectors(net, args.vectors, seed=args.seed)
    try:
        with tqdm(total=len(x), desc="vectors", unit="vec", leave=False) as bar:
            run = run_board(net, args.port, x, baud=args.baud, timeout=args.timeout,
                            progress=bar)
    except BoardError as e:
        raise UserError(str(e))
    expected = forward(net, x)
    differ = run.outputs != expected
    if differ.any():
        i, j = (int(k) for k in np.argwhere(differ)[0])
        print(f"FAIL {net.name}: vector {i}, output {j}: the board gave {run.outputs[i, j]}, "
              f"the reference says {expected[i, j]} ({int(differ.any(axis=1).sum())} of "
              f"{len(x)} vectors differ)")
        return 1
    print(f"PASS {net.name}: all {len(x)} vectors from the board on {args.port} equal the "
          f"reference, bit for bit; {run.vectors_per_second:,.1f} inferences/s")
    return 0


def _add_board_commands(sub):
    from .boards import BOARDS
    from .boards.top import DEFAULT_BAUD
    p = sub.add_parser("build", help="build the bitstream of a frozen network for a board")
    p.add_argument("network", metavar="NET")
    p.add_argument("--board", required=True, choices=sorted(BOARDS),
                   help="; ".join(f"{k}: {v.description}" for k, v in BOARDS.items()))
    p.add_argument("--fold", type=int, default=1, metavar="F",
                   help="cycles per vector (1: fully parallel, the default)")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD,
                   help=f"UART baud rate (default {DEFAULT_BAUD})")
    p.add_argument("--levels-per-stage", type=int, default=2, metavar="K",
                   help="adder levels between pipeline registers (default 2)")
    p.add_argument("--timeout", type=float, default=3600, metavar="S",
                   help="seconds allowed to the tools (default 3600)")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="writes DIR/<name>.bin or .bit and DIR/report.json")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("program", help="load a built bitstream onto its board (openFPGALoader)")
    p.add_argument("directory", metavar="DIR", help="the output directory of 'build'")
    p.set_defaults(func=cmd_program)

    p = sub.add_parser("run-board", help="send vectors to a programmed board over its serial "
                                         "port and check every answer against the reference")
    p.add_argument("network", metavar="NET")
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB1")
    p.add_argument("--inputs", metavar="X.npy", help="integers (N, n_in); default: the "
                                                     "extremes and --vectors random vectors")
    p.add_argument("--vectors", type=int, default=100, metavar="N",
                   help="random vectors without --inputs (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD,
                   help=f"the baud rate of the build (default {DEFAULT_BAUD})")
    p.add_argument("--timeout", type=float, default=2.0, metavar="S",
                   help="seconds of silence before giving up (default 2)")
    p.set_defaults(func=cmd_run_board)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="strassen-hw",
        description="StrassenNets layers as bit-exact hardware: ternary adder trees and "
                    "r multipliers per layer.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("random", help="write a random valid frozen network")
    p.add_argument("--shape", type=_shape, action="append", required=True,
                   metavar="N_IN,R,N_OUT", help="one layer (repeat for more layers)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="net", help="network (and Verilog module) name")
    p.add_argument("--input-width", type=int, default=8, help="signed input bits (default 8)")
    p.add_argument("--a-width", type=int, default=8, help="signed bits of ã (default 8)")
    p.add_argument("-o", "--output", required=True, metavar="NET")
    p.set_defaults(func=cmd_random)

    p = sub.add_parser("reference", help="run the exact integer reference on inputs")
    p.add_argument("network", metavar="NET")
    p.add_argument("--inputs", required=True, metavar="X.npy", help="integers, shape (N, n_in)")
    p.add_argument("-o", "--output", required=True, metavar="Y.npy")
    p.set_defaults(func=cmd_reference)

    p = sub.add_parser("generate", help="write the Verilog of a frozen network and its report")
    p.add_argument("network", metavar="NET")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="writes DIR/<name>.v and DIR/report.json")
    p.add_argument("--operand-width", type=int, default=8, metavar="W",
                   help="solution files: signed bits of each entry of A and B (default 8)")
    p.add_argument("--name", help="solution files: Verilog module name (default matmul)")
    p.add_argument("--levels-per-stage", type=int, default=2, metavar="K",
                   help="networks: adder levels between pipeline registers (default 2)")
    p.add_argument("--no-share", action="store_true",
                   help="networks: no sharing of common sub-sums between rows")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("simulate", help="simulate the Verilog in Verilator and check every "
                                        "output (a network, or a discovered solution)")
    p.add_argument("design", metavar="NET_OR_SOLUTION",
                   help="a frozen network, or a solution file from 'discover'")
    p.add_argument("--vectors", "--count", dest="vectors", type=int, default=10000,
                   metavar="N", help="random vectors, after the extremes (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="random vectors and stalls (default 0)")
    p.add_argument("--inputs", metavar="X.npy", help="networks: also check these inputs (N, n_in)")
    p.add_argument("--outputs", metavar="Y.npy",
                   help="networks: write the hardware's outputs, in input order")
    p.add_argument("--waves", action="store_true",
                   help="networks: write a VCD trace of every signal to <name>.vcd and print "
                        "its path (large: ~45 MB per 1000 vectors at 64,32,32; use few --vectors)")
    p.add_argument("--no-stalls", action="store_true", help="no random stalls/back-pressure")
    p.add_argument("--operand-width", type=int, default=8, metavar="W",
                   help="solution files: signed bits of each entry of A and B (default 8)")
    p.add_argument("--name", help="solution files: Verilog module name (default matmul)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("discover", help="learn an exact ternary matrix-multiplication algorithm "
                                        "(Strassen: 2x2 with 7 products)")
    p.add_argument("--size", type=int, default=2, metavar="N", help="n×n matrices (default 2)")
    p.add_argument("--rank", type=int, default=7, metavar="R", help="products (default 7)")
    p.add_argument("--restarts", type=int, default=1000, metavar="K",
                   help="random restarts, trained together (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--recipe", choices=("default", "paper"), default="default",
                   help="'paper': the paper's SGD + TWN protocol (slow, ~1%% exact)")
    p.add_argument("--fit-steps", type=int, metavar="S", help="override the full-precision steps")
    p.add_argument("--quant-steps", type=int, metavar="S", help="override the quantization steps")
    p.add_argument("--json", metavar="PATH",
                   help="write the first solution (W_a, W_b, W_c) and the run's figures as JSON")
    p.add_argument("-o", "--output", metavar="SOLUTION",
                   help="solution file (default matmul-<n>x<n>-r<r>.json)")
    p.add_argument("--pick", choices=("first", "fewest-adders"), default="first",
                   help="which exact solution to print and save: the first found (default), "
                        "or the one whose hardware needs the fewest adders")
    p.set_defaults(func=cmd_discover)

    p = sub.add_parser("train", help="train a float teacher and a Strassen model on the digits "
                                     "(runs under torchrun too)")
    p.add_argument("--hidden", type=int, default=128, help="hidden width (default 128)")
    # not "--r": torchrun would take it for an abbreviation of its own options
    p.add_argument("--products", type=_int_list, default=(48, 30), metavar="R1,R2",
                   help="r, the products of the hidden and of the output layer (default 48,30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--teacher-epochs", type=int, default=60, metavar="N")
    p.add_argument("--epochs", type=_int_list, default=(60, 60, 30), metavar="E1,E2,E3",
                   help="epochs of the phases full precision, quantized, ternary fixed "
                        "(default 60,60,30)")
    p.add_argument("--batch-size", type=int, default=64, help="global batch (default 64)")
    p.add_argument("--lr", type=float, default=3e-3, help="AdamW learning rate (default 3e-3)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--no-distill", action="store_true",
                   help="train the Strassen model on the labels alone")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="default: CUDA when present, else CPU")
    p.add_argument("-o", "--output", required=True, metavar="CHECKPOINT.pt")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("freeze", help="turn a trained checkpoint into a frozen integer network")
    p.add_argument("checkpoint", metavar="CHECKPOINT.pt")
    p.add_argument("-o", "--output", required=True, metavar="NET")
    p.add_argument("--name", default="digits", help="network (and Verilog module) name")
    p.add_argument("--a-width", type=int, default=None,
                   help="signed bits of ã (default: the smallest that keeps the predictions)")
    p.add_argument("--act-width", type=int, default=8,
                   help="unsigned bits of hidden activations (default 8)")
    p.add_argument("--guard-bits", type=int, default=4,
                   help="product bits kept below each layer's output step (default 4)")
    p.set_defaults(func=cmd_freeze)

    p = sub.add_parser("demo", help="train, freeze, generate and simulate the digits network; "
                                    "print accuracy and operation counts")
    p.add_argument("--quick", action="store_true", help="a small network, few epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH",
                   help="also write the table as JSON rows (model, accuracy, multiplications, "
                        "additions)")
    p.add_argument("--out", default="runs/demo", metavar="DIR",
                   help="frozen network, Verilog and report (default runs/demo)")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="trained checkpoints (default ~/.cache/strassen-hw/checkpoints)")
    p.set_defaults(func=cmd_demo)

    _add_board_commands(sub)
    return parser


def main(argv=None):
    from .frozen import FrozenError
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except (UserError, FrozenError) as e:
        print(f"strassen-hw: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("strassen-hw: interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
