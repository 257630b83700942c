"""The ``strassen-hw`` command line: a thin layer over the importable functions.

Every subcommand is one small function. Errors a user can fix print one line,
``strassen-hw: error: ...``, and exit with status 2; no traceback.
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from .demo import CNN as _DEMO_CNN
from .demo import DEFAULT as _DEMO_MLP
from .demo import MODELS as _DEMO_MODELS
from .errors import StrassenHWError
from .frozen import FrozenError

__all__ = ["main"]


class UserError(Exception):
    """An error the user can fix; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line, like every other error of the command, and no
    abbreviations: ``--vector`` is an error, not ``--vectors`` (the subcommands' parsers are
    of this class too)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UserError(f"{message} (see '{self.prog} --help')")


def _int_type(lo, hi=None):
    """An argparse type: an integer in ``lo..hi`` (no upper bound when ``hi`` is None)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{value}: must be {lo}..{hi}" if hi is not None
                                             else f"{value}: must be at least {lo}")
        return value
    return parse


_SEED = _int_type(0)
_FOLD = _int_type(1, 1 << 20)
_WIDTH = _int_type(1, 32)


def _fold_arg(text):
    """An argparse type: ``F`` (every node) or ``NODE=F`` (one node)."""
    name, sep, value = text.rpartition("=")
    if sep and not name:
        raise argparse.ArgumentTypeError(f"{text!r}: give F or NODE=F")
    return (name, _FOLD(value)) if sep else _FOLD(text)


def _folds(args):
    """``--fold`` as :func:`strassen_hw.hw.generate_verilog` takes it: 1 when not given, an
    int for ``--fold F``, a dict for ``--fold NODE=F`` (repeatable; other nodes parallel)."""
    given = args.fold or []
    ints = [g for g in given if isinstance(g, int)]
    pairs = dict(g for g in given if not isinstance(g, int))
    if ints and pairs or len(ints) > 1:
        raise UserError("--fold: give one --fold F (every node), or --fold NODE=F per node, "
                        "not both")
    if len(pairs) < len([g for g in given if not isinstance(g, int)]):
        raise UserError("--fold: a node is named twice; give each node one fold")
    return pairs or (ints[0] if ints else 1)


def _folded(fold):
    return isinstance(fold, dict) or fold > 1


def _shape(text):
    try:
        n_in, r, n_out = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not n_in,r,n_out (three integers)")
    if min(n_in, r, n_out) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every size must be at least 1")
    return n_in, r, n_out


def _not_an_input(output, flag, *inputs):
    """Refuse an output path that is one of the input files (it would be overwritten)."""
    for given in inputs:
        if given is None:
            continue
        same = Path(output).resolve() == Path(given).resolve()
        try:
            same = same or Path(output).samefile(given)
        except OSError:
            pass
        if same:
            raise UserError(f"{flag} {output}: is also an input of this command; write the "
                            "output to another file")


def _load_npy(path, what, ndims=(2,), integers=False):
    """The array (2-D, or of ``ndims`` dimensions) of a .npy file, read without pickles. The header is checked before any
    data is read, so a damaged or huge claim costs nothing; dtype and values are checked by
    :func:`strassen_hw.reference.check_inputs`."""
    from numpy.lib import format as npy
    hint = "write it with numpy.save(path, x) from an integer array of shape (N, n_in)"
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (the {what} .npy)") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    with f:
        try:
            version = npy.read_magic(f)
        except ValueError:
            raise UserError(f"{path}: not a .npy file (no numpy header); {hint}") from None
        try:
            if version == (1, 0):
                shape, fortran, dtype = npy.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = npy.read_array_header_2_0(f)
            else:
                raise ValueError(f"version {version}")
        except ValueError:
            raise UserError(f"{path}: damaged .npy header; {hint}") from None
        if dtype.hasobject:
            raise UserError(f"{path}: holds Python objects (a pickled array), which are not "
                            f"read; {hint}")
        if (dtype.kind not in ("biu" if integers else "biuf") or dtype.fields is not None
                or dtype.subdtype is not None):
            raise UserError(f"{path}: holds {dtype} values, not integers; {hint}")
        count = 1
        for n in shape:
            count *= n
        need, have = count * dtype.itemsize, os.fstat(f.fileno()).st_size - f.tell()
        if need > have:
            raise UserError(f"{path}: truncated: its header announces shape {shape} ({need:,} "
                            f"bytes) but {have:,} bytes follow")
        if len(shape) not in ndims:
            raise UserError(f"{path}: holds an array of shape {shape}; the {what} must be "
                            + ("2-D (N, n_in): reshape one vector to (1, n_in)"
                               if ndims == (2,) else " or ".join(f"{n}-D" for n in ndims)))
        if shape[0] == 0:
            raise UserError(f"{path}: holds no vectors (shape {shape})")
        data = np.fromfile(f, dtype=dtype, count=count)
    return data.reshape(shape, order="F" if fortran else "C")


def _inputs(net, path):
    """The checked int64 inputs of ``net`` from the .npy file ``path``."""
    from .reference import check_inputs
    try:
        return check_inputs(net, _load_npy(path, "inputs"))
    except FrozenError as e:
        raise UserError(f"{path}: {e}") from None


def _save_npy(path, array):
    import io

    from .frozen import atomic_write
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write(path, buffer.getvalue())


def _is_solution(path):
    """True for a matrix-multiplication solution file (from 'discover'), False otherwise
    (a frozen network, or something the network loader will name)."""
    from .matmul import is_algorithm_file
    try:
        return is_algorithm_file(path)
    except RecursionError:
        return False


def _not_for(args, kind, *options):
    """Refuse the options of ``options`` (attribute names) that were given but do not apply to
    the design kind ``kind``."""
    for option in options:
        value = getattr(args, option)
        if value not in (None, False):
            raise UserError(f"--{option.replace('_', '-')}: does not apply to {kind}; "
                            "remove it")


# --- subcommands ------------------------------------------------------------------------------

def cmd_random(args):
    from .frozen import check_name, random_network, save
    name = args.name or _name_from_output(args.output, "net")
    try:
        check_name(name)
    except FrozenError as e:
        raise UserError(f"--name: {str(e).removeprefix('network: ')}") from None
    net = random_network(args.shape, seed=args.seed, name=name,
                         input_width=args.input_width, a_width=args.a_width)
    save(net, args.output)
    print(f"wrote {args.output}: network {net.name}, {len(net.layers)} layer(s), "
          + ", ".join(f"{l.n_in},{l.r},{l.n_out}" for l in net.layers))


def cmd_reference(args):
    from .frozen import load
    from .reference import forward
    _not_an_input(args.output, "-o", args.network, args.inputs)
    net = load(args.network)
    y = forward(net, _inputs(net, args.inputs))
    _save_npy(args.output, y)
    print(f"wrote {args.output}: {y.shape[0]} vector(s) of {y.shape[1]} output(s)")


def cmd_generate(args):
    from .frozen import load
    from .hw import generate
    if _is_solution(args.network):
        _not_for(args, "solution files", "levels_per_stage", "no_share", "clock", "device",
                 "fold")
        return _generate_matmul(args)
    _not_for(args, "frozen networks", "name", "operand_width")
    fold = _folds(args)
    if not isinstance(fold, dict) and fold > 1:
        _not_for(args, "the folded architecture (--fold > 1)", "levels_per_stage", "no_share",
                 "clock", "device")
    net = load(args.network)
    levels, clock = _levels(args, net), ""
    if args.clock is not None:
        levels, mhz = levels
        clock = (f"; {levels} adder level(s) per stage for {args.clock:g} MHz on "
                 f"{args.device} (adder stages predicted at {mhz:.0f} MHz)")
    try:
        result = generate(net, args.output, levels_per_stage=levels, share=not args.no_share,
                          progress=sys.stderr.isatty(), fold=fold)
    except ValueError as e:
        raise UserError(f"--fold: {e}") from None
    total = result["total"]
    if isinstance(fold, dict):
        out = Path(args.output)
        print(f"wrote {out / (net.name + '.v')} and {out / 'report.json'}: "
              f"{len(result['layers'])} layer(s), "
              + ", ".join(f"{name} folded by {f}" for name, f in fold.items())
              + f", the others parallel; {total['multipliers']} multiplier(s), "
              f"{total['adders']} adders")
        return
    if fold > 1:
        out = Path(args.output)
        print(f"wrote {out / (net.name + '.v')} and {out / 'report.json'}: "
              f"{len(result['layers'])} layer(s) folded by {fold}, {total['multipliers']} "
              f"multiplier(s), {total['adders']} adders, "
              + (f"{total['cycles_per_vector']} cycles per vector, latency {total['latency']} "
                 "cycles" if "note" not in total else
                 f"{total['line_buffer_bits']} line buffer bits ({total['note']})"))
        return
    out = Path(args.output)
    print(f"wrote {out / (net.name + '.v')} and {out / 'report.json'}: "
          f"{len(result['layers'])} layer(s), {total['multipliers']} multiplier(s), "
          f"{total['adders']} adders, {total['register_bits']} register bits, "
          + (f"latency {total['latency']} cycles" if "line_buffer_bits" not in total else
             f"{total['line_buffer_bits']} line buffer bits; each convolution alone, without "
             "stalls: " + ", ".join(f"{item['conv']['cycles_per_image']} cycles per image "
                                    f"(latency {item['conv']['latency']})"
                                    for item in result["layers"] if "conv" in item)) + clock)


def _levels(args, net):
    """``levels_per_stage`` of ``generate``: given, or (with ``--clock``) the largest that
    the timing model predicts to meet the clock on ``--device``, with its predicted MHz."""
    if args.clock is None:
        if args.device is not None:
            raise UserError("--device: applies with --clock only; add --clock MHZ")
        return 2 if args.levels_per_stage is None else args.levels_per_stage
    if args.device is None:
        raise UserError("--clock: needs --device (the timing model is per device), e.g. "
                        "--device up5k")
    from .hw.generate import plan
    from .hw.timing import levels_for_clock
    try:
        return levels_for_clock(plan(net, levels_per_stage=1, share=not args.no_share),
                                args.clock, args.device)
    except ValueError as e:
        raise UserError(str(e)) from None


def _operand(args):
    from .frozen import Format
    width = 8 if args.operand_width is None else args.operand_width
    if not 2 <= width <= 32:
        raise UserError(f"--operand-width {width}: must be 2..32")
    return Format(width, True)


def _solution_name(args):
    from .frozen import check_name
    name = args.name or "matmul"
    try:
        check_name(name)
    except FrozenError as e:
        raise UserError(f"--name: {str(e).removeprefix('network: ')}") from None
    return name


def _generate_matmul(args):
    """``generate`` for a bilinear solution file: the r-multiplier matrix multiplier."""
    from .hw.bilinear import generate_bilinear
    from .matmul import load_algorithm
    algorithm = load_algorithm(args.network)
    if not algorithm.is_exact():
        raise UserError(f"{args.network}: not an exact algorithm (its tensor differs from the "
                        f"{algorithm.n}x{algorithm.n} matrix-multiplication tensor)")
    name = _solution_name(args)
    rep = generate_bilinear(algorithm, _operand(args), args.output, name=name)
    n = algorithm.n
    out = Path(args.output)
    print(f"wrote {out / (name + '.v')} and {out / 'report.json'}: {n}x{n} matrix "
          f"product, {rep['multipliers']} multipliers (naive {rep['naive_multipliers']}), "
          f"{rep['adders']} adders (W_a {rep['adders_w_a']}, W_b {rep['adders_w_b']}, W_c "
          f"{rep['adders_w_c']}, negations {rep['negations']}; naive {rep['naive_adders']}), "
          f"output {rep['output']['width']} bits, latency {rep['latency']} cycles")


#: Default random vectors of ``simulate``; with ``--waves``, which traces every one of them.
_VECTORS, _WAVES_VECTORS = 10_000, 100
#: Bytes of VCD per register bit per vector (measured: 45 MB per 1,000 vectors at 64,32,32,
#: 10,468 register bits, 20 % stalls).
_VCD_BYTES = 4.3


def _simulate_network(args):
    """``simulate`` for a frozen network: extremes, random and user vectors, every output
    checked against the reference. ``--outputs`` holds the hardware's outputs for the rows of
    ``--inputs`` when given (in their order), else for every vector checked."""
    from .frozen import load
    from .hw.generate import check_fold
    from .sim import BuildError, Mismatch, SimulationError, ToolError, test_vectors, verify
    _not_for(args, "frozen networks", "name", "operand_width")
    if args.outputs:
        _not_an_input(args.outputs, "--outputs", args.design, args.inputs)
    net = load(args.design)
    try:
        fold = check_fold(_folds(args), net)
    except ValueError as e:
        raise UserError(f"--fold: {e}") from None
    vectors = args.vectors
    if vectors is None:
        vectors = _WAVES_VECTORS if args.waves else _VECTORS
    x = test_vectors(net, vectors, seed=args.seed)
    extremes = len(x) - vectors
    extra, given = "", None
    if args.inputs:
        given = _inputs(net, args.inputs)
        x = np.concatenate([x, given])
        extra = f", {len(given)} from {args.inputs}"
    waves = f"{net.name}.vcd" if args.waves else False
    if waves:
        from .hw import report
        bits = report(net)["total"]["register_bits"]
        print(f"waves: tracing {len(x):,} vectors into {waves}, about "
              f"{_VCD_BYTES * bits * len(x) / 1e6:,.0f} MB (fewer with --vectors)",
              file=sys.stderr, flush=True)
    print(f"generating the Verilog of {net.name} ...", file=sys.stderr, flush=True)

    def write_outputs(outputs):
        if args.outputs:
            _save_npy(args.outputs, outputs if given is None else outputs[len(x) - len(given):])
    try:
        result = verify(net, x, seed=args.seed, stalls=not args.no_stalls, waves=waves,
                        progress=True, fold=fold)
    except Mismatch as e:
        write_outputs(e.result.outputs)
        print(f"FAIL {net.name}: {e}")
        return 1
    except (ToolError, BuildError, SimulationError) as e:
        raise UserError(str(e))
    write_outputs(result.outputs)
    print(f"PASS {net.name}: all {len(x)} vectors ({extremes} extreme, {vectors} "
          f"random{extra}) equal the reference, bit for bit")
    built = (f"built in {result.build_seconds:.1f} s" if result.build_seconds
             else "build cached")
    print(f"{len(x)} vectors checked, {result.vectors_per_second:,.0f} vectors/s "
          f"({result.cycles} cycles in {result.loop_seconds:.2f} s; simulator "
          f"{result.sim_seconds:.1f} s in all, {built})")
    if args.outputs:
        rows = f"the {len(given)} rows of {args.inputs}" if given is not None else \
            f"all {len(x)} vectors"
        print(f"wrote the hardware's outputs for {rows} to {args.outputs}")
    if result.waves:
        print(f"waves: {result.waves}")
    return 0


def cmd_simulate(args):
    if not _is_solution(args.design):
        return _simulate_network(args)
    _not_for(args, "solution files", "inputs", "outputs", "waves", "fold")
    from .matmul import load_algorithm
    from .sim import BuildError, Mismatch, SimulationError, ToolError
    from .sim.bilinear import check_bilinear, matmul_vectors
    count = _VECTORS if args.vectors is None else args.vectors
    algorithm, operand = load_algorithm(args.design), _operand(args)
    if not algorithm.is_exact():
        raise UserError(f"{args.design}: not an exact algorithm (its tensor differs from the "
                        f"{algorithm.n}x{algorithm.n} matrix-multiplication tensor)")
    a, b = matmul_vectors(algorithm.n, operand, count, seed=args.seed)
    try:
        result, rep = check_bilinear(algorithm, operand, a, b, name=_solution_name(args),
                                     seed=args.seed, stalls=not args.no_stalls)
    except Mismatch as e:
        print(f"FAIL: {e}")
        return 1
    except (ToolError, BuildError, SimulationError) as e:
        raise UserError(str(e))
    n = algorithm.n
    print(f"PASS: all {len(a)} pairs ({len(a) - count} extreme, {count} random) of "
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
        from .frozen import Format
        from .hw.bilinear import fewest_adders
        first, adders = fewest_adders(result.solutions, Format(8, True))  # generate's default
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


def _int_list(text):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers")
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be >= 0")
    return tuple(values)


#: ``train --model cnn`` defaults (the demo's CNN): r of conv 1, conv 2 and the classifier; p of
#: the convolutions.
_CNN_PRODUCTS, _CNN_P = _DEMO_CNN["r"], _DEMO_CNN["p"]


def _user_model(args):
    """True when ``--model`` names a user's MODULE:FUNCTION (not mlp or cnn)."""
    return args.model not in ("mlp", "cnn")


_DATA_FLAGS = ("x_train", "y_train", "x_test", "y_test")


def _user_data(args):
    """The integer arrays of --x-train/--y-train (and --x-test/--y-test) and the checkpoint's
    record of them: absolute paths, input scale, format and image shape."""
    from .frozen import Format, signed_width
    if not args.x_train or not args.y_train:
        raise UserError(f"--model {args.model}: give the data, --x-train X.npy (integer "
                        "inputs, (N, n_in) or images (N, C, H, W)) and --y-train Y.npy "
                        "(class labels, (N,))")
    if (args.x_test is None) != (args.y_test is None):
        raise UserError("--x-test and --y-test go together; give both or neither")
    arrays = {}
    for key in _DATA_FLAGS:
        path = getattr(args, key)
        if path is None:
            continue
        is_x = key.startswith("x")
        arrays[key] = _load_npy(path, "inputs" if is_x else "labels",
                                ndims=(2, 4) if is_x else (1,), integers=True)
    for split in ("train", "test"):
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if x is not None and len(x) != len(y):
            raise UserError(f"--x-{split} has {len(x):,} rows but --y-{split} {len(y):,} "
                            "labels; give one label per input")
    if "x_test" in arrays and arrays["x_test"].shape[1:] != arrays["x_train"].shape[1:]:
        raise UserError(f"--x-test rows have shape {arrays['x_test'].shape[1:]}, --x-train "
                        f"rows {arrays['x_train'].shape[1:]}; give test inputs of the "
                        "training inputs' shape")
    labels = np.concatenate([arrays[k] for k in ("y_train", "y_test") if k in arrays])
    if labels.min() < 0:
        raise UserError("the labels must be class indices 0, 1, ...; found "
                        f"{int(labels.min())}")
    xs = [arrays[k] for k in ("x_train", "x_test") if k in arrays]
    lo, hi = min(int(x.min()) for x in xs), max(int(x.max()) for x in xs)
    width = signed_width(lo, hi) if lo < 0 else max(1, hi.bit_length())
    if width > 32:
        raise UserError(f"the inputs span {lo}..{hi}, more than 32 bits; scale them down")
    shape = arrays["x_train"].shape[1:]
    record = {key: str(Path(getattr(args, key)).resolve()) for key in _DATA_FLAGS
              if getattr(args, key) is not None}
    scale = 1.0 if args.input_scale is None else args.input_scale
    if not 0 < scale < float("inf"):
        raise UserError(f"--input-scale {scale}: must be a positive number")
    record.update(input_scale=scale,
                  input_format=Format(width, signed=lo < 0).to_json(),
                  input_shape=list(shape) if len(shape) == 3 else None)
    return arrays, record


def _train_config(args):
    from .train.recipe import TrainConfig
    cnn = args.model == "cnn"
    user = _user_model(args)
    if not cnn and not user and (args.p is not None or args.batch_norm is not None):
        raise UserError("--p and --batch-norm apply to --model cnn or MODULE:FUNCTION only; "
                        "remove them")
    if not user:
        given = [f"--{k.replace('_', '-')}" for k in (*_DATA_FLAGS, "input_scale")
                 if getattr(args, k) is not None]
        if given:
            raise UserError(f"{given[0]}: applies to --model MODULE:FUNCTION (your own model "
                            "and data) only; the digits come with the package")
    if user:
        if not args.products:
            raise UserError(f"--model {args.model}: give --products, r per Strassen layer "
                            "(one value for every layer, or one per nn.Linear/nn.Conv2d in "
                            "module order)")
        products = args.products
        if min(products) < 1:
            raise UserError(f"--products {','.join(map(str, products))}: every value must "
                            "be at least 1")
    else:
        products = args.products or (_CNN_PRODUCTS if cnn else _DEMO_MLP["r"])
        want = 3 if cnn else 2
        if len(products) != want or min(products) < 1:
            raise UserError(f"--products {','.join(map(str, products))}: give "
                            + ("three positive values, r of conv 1, conv 2 and the classifier"
                               if cnn else "two positive values, r of the hidden layer and r "
                               "of the output layer"))
    p = args.p or (_CNN_P if cnn else ())
    if cnn and (len(p) != 2 or min(p) < 1):
        raise UserError(f"--p {','.join(map(str, p))}: give two positive values, the patch "
                        "side of conv 1 and conv 2")
    if user and p and min(p) < 1:
        raise UserError(f"--p {','.join(map(str, p))}: every patch side must be at least 1")
    if len(args.epochs) != 3:
        raise UserError(f"--epochs {','.join(map(str, args.epochs))}: give three values "
                        "(full precision, quantized, ternary fixed)")
    if args.hidden < 1 or args.batch_size < 1 or args.lr <= 0:
        raise UserError("--hidden, --batch-size and --lr must be positive")
    if cnn:
        extra = dict(model="cnn", p=p, batch_norm=args.batch_norm is not False)
    elif user:
        extra = dict(model=args.model, p=p, batch_norm=bool(args.batch_norm))
    else:
        extra = {}
    try:
        return TrainConfig(hidden=args.hidden, r=products, seed=args.seed,
                           teacher_epochs=args.teacher_epochs, phase_epochs=args.epochs,
                           batch_size=args.batch_size, lr=args.lr,
                           weight_decay=args.weight_decay, distill=not args.no_distill,
                           **extra)
    except ValueError as e:
        raise UserError(f"--model {args.model}: {e}") from None


def _user_run(config, args):
    """The data and fresh models of a user's ``--model``: (arrays, record, teacher,
    student), each problem one line."""
    from .train.recipe import build_models
    arrays, record = _user_data(args)
    try:
        teacher, student = build_models(config)
    except (ValueError, TypeError) as e:
        message = str(e)
        raise UserError(message if message.startswith(config.model)
                        else f"--model {config.model}: {message}") from None
    return arrays, record, teacher, student


def _train_user(config, run, context):
    """Train the user's model of ``config`` on the data of ``run`` (:func:`_user_run`): a
    TrainResult with the data record, so that 'freeze' finds the calibration inputs and
    formats."""
    import torch

    from .train.recipe import TrainResult, fit
    arrays, record, teacher, student = run

    def tensors(split):
        x = arrays.get(f"x_{split}")
        if x is None:
            return None
        x = torch.as_tensor(x, dtype=torch.float32, device=context.device)
        x = x * record["input_scale"]
        return x, torch.as_tensor(arrays[f"y_{split}"], device=context.device)

    student, history = fit(teacher, tensors("train"), student=student,
                           test_data=tensors("test"), epochs=config.phase_epochs,
                           teacher_epochs=config.teacher_epochs,
                           batch_size=config.batch_size, lr=config.lr,
                           weight_decay=config.weight_decay, distill=config.distill,
                           seed=config.seed, context=context, log=print)
    rows = [row for stage_rows in history.values() for row in stage_rows]
    return TrainResult(config, teacher, student, rows, record)


def cmd_train(args):
    from .demo import dense_counts
    from .train import data as digits
    from .train.distributed import setup, teardown
    from .train.recipe import save_checkpoint, train
    config = _train_config(args)
    user = _user_model(args)
    if user:
        _not_an_input(args.output, "-o", *(getattr(args, k) for k in _DATA_FLAGS))
        run = _user_run(config, args)
    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available; use --device cpu")
    context = setup(None if args.device == "auto" else args.device)
    try:
        if context.main:
            if user:
                teacher = f"{config.model}()"
            elif config.model == "mlp":
                teacher = f"64-{config.hidden}-10"
            else:
                teacher = ("CNN (p = " + ",".join(map(str, config.p))
                           + (", batch norm)" if config.batch_norm else ")"))
            print(f"training on {context.device}"
                  + (f" in {context.world_size} processes" if context.distributed else "")
                  + f": teacher {teacher}, Strassen r = "
                  + ",".join(map(str, config.r)) + f", seed {config.seed}")
        try:
            if user:
                result = _train_user(config, run, context)
            else:
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
            shape = (64,) if not user else tuple(np.load(result.data["x_train"],
                                                         mmap_mode="r").shape[1:])
            if config.model == "mlp":
                dense, _ = dense_counts([(64, config.hidden), (config.hidden, 10)])
                mults = sum(config.r)
            else:
                from .train.layers import count_operations
                dense = count_operations(result.teacher, shape)["multiplications"]
                mults = count_operations(result.student, shape)["multiplications"]
            split = "test" if last["ternary_fixed"]["test_accuracy"] is not None else "train"
            print(f"wrote {args.output}: teacher {split} accuracy "
                  f"{100 * last['teacher'][f'{split}_accuracy']:.2f}%, Strassen "
                  f"{100 * last['ternary_fixed'][f'{split}_accuracy']:.2f}% with {mults:,} "
                  f"multiplications per inference ({100 * mults / dense:.2f}% of the dense "
                  f"{dense:,})")
    finally:
        teardown(context)


def _name_from_output(output, fallback):
    """The network name for an output file: its name up to the first dot, other characters
    than letters, digits and underscores made underscores (``out/two-layer.json``:
    ``two_layer``), or ``fallback`` when that is still no valid name (a Verilog keyword, or
    not starting with a letter)."""
    import re

    from .frozen import check_name
    stem = re.sub(r"[^A-Za-z0-9_]", "_", Path(output).name.split(".")[0])[:64]
    try:
        check_name(stem)
        return stem
    except FrozenError:
        return fallback


def _user_freeze_data(result, args):
    """(calibration, test inputs or None, test labels or None, formats, input_shape) of a
    checkpoint of a user's model, in the pixel order of frozen networks."""
    from .frozen import Format
    from .train.data import pixel_order
    record = result.data
    if record is None:
        raise UserError(f"{args.checkpoint}: a checkpoint of {result.config.model} without "
                        "its data record; train it again with 'strassen-hw train'")

    def load(key, override=None):
        path = override or record.get(key)
        if path is None:
            return None
        is_x = key.startswith("x")
        what = "inputs" if is_x else "labels"
        if override is None and not Path(path).is_file():
            raise UserError(f"{path}: the {what} this checkpoint was trained on are gone; "
                            + ("give them with --calibration X.npy" if key == "x_train"
                               else "put them back or freeze without a test accuracy"))
        array = _load_npy(path, what, ndims=(2, 4) if is_x else (1,), integers=True)
        return pixel_order(array) if is_x and array.ndim == 4 else array

    shape = record.get("input_shape")
    formats = dict(input_format=Format(**record["input_format"]),
                   input_scale=float(record["input_scale"]))
    return (load("x_train", args.calibration), load("x_test"), load("y_test"), formats,
            tuple(shape) if shape else None)


def cmd_freeze(args):
    import numpy as np

    from .frozen import save
    from .reference import forward
    from .train import data as digits
    from .train.recipe import load_checkpoint
    from .train.freeze import float_logits, freeze
    _not_an_input(args.output, "-o", args.checkpoint, args.calibration)
    try:
        result = load_checkpoint(args.checkpoint)
    except ValueError as e:
        raise UserError(str(e))
    if args.a_width is not None and not 2 <= args.a_width <= 32:
        raise UserError(f"--a-width {args.a_width}: must be 2..32")
    if not 1 <= args.act_width <= 32:
        raise UserError(f"--act-width {args.act_width}: must be 1..32")
    user = result.config.model not in ("mlp", "cnn")
    if user:
        x_train, x_test, y_test, formats, shape = _user_freeze_data(result, args)
        name = args.name or _name_from_output(args.output, "net")
    else:
        if args.calibration is not None:
            raise UserError("--calibration: applies to checkpoints of your own model only; "
                            "the digits checkpoints calibrate on the digits")
        data = digits.load()
        x_train, x_test, y_test, shape = data.x_train, data.x_test, data.y_test, None
        formats = dict(input_format=data.input_format, input_scale=data.input_scale)
        name = args.name or "digits"
    if result.config.student == "twn":            # a TWN baseline (see train/baselines.py)
        import torch

        from .train.baselines import freeze_twn
        net, report = freeze_twn(result.student, x_train, name=name,
                                 a_width=args.a_width, act_width=args.act_width, **formats)
        with torch.no_grad():
            x = torch.as_tensor(x_test, dtype=torch.float32) * formats["input_scale"]
            float_pred = result.student(x).argmax(1).numpy()
    else:
        try:
            net, report = freeze(result.student, x_train, name=name, a_width=args.a_width,
                                 act_width=args.act_width, guard_bits=args.guard_bits,
                                 input_shape=shape, **formats)
        except ValueError as e:
            raise UserError(f"{args.checkpoint}: {e}") from None
        if x_test is not None:
            float_pred = float_logits(result.student, x_test, formats["input_scale"],
                                      shape).argmax(1)
    save(net, args.output)
    for item in report.candidates:
        print(f"  ã in {item['a_width']:2} bits: {100 * item['agreement']:6.2f}% of the "
              f"training predictions kept, logit error {100 * item['logit_error']:.2f}%")
    line = (f"wrote {args.output}: ã in {report.a_width} signed bits, hidden activations in "
            f"{args.act_width} unsigned bits, logits in {net.output.width} signed bits")
    if x_test is None:
        print(line + "; no test data, so no test accuracy (train with --x-test/--y-test)")
        return
    frozen_pred = forward(net, x_test).argmax(1)
    float_acc = float(np.mean(float_pred == y_test))
    frozen_acc = float(np.mean(frozen_pred == y_test))
    print(f"{line}; test "
          f"accuracy {100 * float_acc:.2f}% (float) -> {100 * frozen_acc:.2f}% (frozen), "
          f"quantization loss {100 * (float_acc - frozen_acc):.2f} points, "
          f"{int(np.sum(float_pred != frozen_pred))} of {len(frozen_pred)} predictions changed")


def cmd_demo(args):
    from .demo import DemoError, format_table, rows_to_json, run_demo
    from .frozen import atomic_write
    import time
    start = time.perf_counter()
    try:
        rows = run_demo(model=args.model, quick=args.quick, seed=args.seed, out_dir=args.out,
                        cache_dir=args.cache_dir)
    except DemoError as e:
        print(f"strassen-hw: error: {e}", file=sys.stderr)
        return 1
    print()
    print(format_table(rows))
    print("\nAccuracy on the fixed test split (360 images). Additions: the float and frozen rows "
          "count k-1 per\nternary row of k non-zeros plus one per bias; the hardware row counts "
          "the generator's adders,\nwhich share common sub-sums"
          + (" (a convolution's patch layer: its multipliers and adders\nonce per window)"
             if args.model != "mlp" else "")
          + ("; the Strassen rows also count the shortcut additions, one per value\nthat an add node outputs"
             if args.model == "resnet" else "")
          + f". The demo took {time.perf_counter() - start:.0f} s.")
    if args.json:
        try:
            atomic_write(args.json, rows_to_json(rows))
        except OSError as e:
            raise UserError(f"{args.json}: cannot write the table ({e.strerror or e})")
        print(f"wrote {args.json}")
    return 0


# --- cost -------------------------------------------------------------------------------------

def cmd_report(args):
    import json

    from .cost import DEVICES, CostError, Variant, cost_report, digits_accuracy, format_table
    from .cost import baseline_variants
    from .frozen import atomic_write, load
    devices = args.device or ["up5k"]
    for device in devices:
        if device not in DEVICES:
            raise UserError(f"--device {device}: unknown device; choose one of "
                            + ", ".join(DEVICES))
    if args.timeout <= 0:
        raise UserError(f"--timeout {args.timeout:g}: must be positive")
    if args.data and not args.baselines:
        raise UserError("--data: applies with --baselines only")
    for option in ("quick", "cache_dir"):
        if getattr(args, option) and args.data != "digits":
            raise UserError(f"--{option.replace('_', '-')}: applies with --baselines --data "
                            "digits only")
    net = load(args.network)
    try:
        variants = [Variant("strassen", net, digits_accuracy(net))]
        if args.baselines and args.data == "digits":
            if digits_accuracy(net) is None:
                raise UserError(f"--data digits: {args.network} does not read the digits (64 "
                                "pixels in, 10 classes out); leave out --data for the TWN and "
                                "dense counterparts of its own graph")
            from .demo import QUICK
            variants += baseline_variants(args.seed, args.cache_dir,
                                          QUICK if args.quick else None)
        elif args.baselines:
            from .counterparts import counterpart
            variants += [Variant("twn_structural", counterpart(net, "twn"), None),
                         Variant("dense_int8_structural", counterpart(net, "dense"), None)]
        rows = cost_report(variants, devices, pnr=args.pnr,
                           levels_per_stage=args.levels_per_stage, timeout=args.timeout,
                           progress=True)
    except CostError as e:
        raise UserError(str(e))
    print(format_table(rows))
    if args.json:
        try:
            atomic_write(args.json, json.dumps(rows, indent=1) + "\n")
        except OSError as e:
            raise UserError(f"{args.json}: cannot write the report ({e.strerror or e})")
        print(f"wrote {args.json}")


# --- boards -----------------------------------------------------------------------------------

def cmd_build(args):
    from .boards.build import BoardBuildError, build_board
    from .frozen import load
    net = load(args.network)
    try:
        rep = build_board(net, args.board, args.output, fold=args.fold, baud=args.baud,
                          levels_per_stage=args.levels_per_stage, timeout=args.timeout,
                          progress=True, say=lambda line: print(line, file=sys.stderr,
                                                                flush=True))
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
          f"({rep['device']}), fold {rep['fold']}, " + ", ".join(parts)
          + f"; Fmax {rep['fmax_mhz']} MHz "
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
    p.add_argument("--fold", type=_FOLD, metavar="F",
                   help="1: fully parallel (one vector per clock); F > 1: about F cycles per "
                        "vector (see 'generate --fold'); default: the smallest that fits")
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
    parser = _Parser(
        prog="strassen-hw",
        description="StrassenNets layers as bit-exact hardware: ternary adder trees and "
                    "r multipliers per layer.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("random", help="write a random valid frozen network")
    p.add_argument("--shape", type=_shape, action="append", required=True,
                   metavar="N_IN,R,N_OUT", help="one layer (repeat for more layers)")
    p.add_argument("--seed", type=_SEED, default=0)
    p.add_argument("--name", default=None,
                   help="network (and Verilog module) name (default: the output file's name "
                        "without its extension, or net when that is not a valid name)")
    p.add_argument("--input-width", type=_WIDTH, default=8,
                   help="signed input bits, 1..32 (default 8)")
    p.add_argument("--a-width", type=_WIDTH, default=8, help="signed bits of ã, 1..32 (default 8)")
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
    p.add_argument("--operand-width", type=int, metavar="W",
                   help="solution files: signed bits of each entry of A and B (default 8)")
    p.add_argument("--name", help="solution files: Verilog module name (default matmul)")
    depth = p.add_mutually_exclusive_group()
    depth.add_argument("--levels-per-stage", type=_int_type(1), metavar="K",
                       help="networks: adder levels between pipeline registers (default 2)")
    depth.add_argument("--clock", type=float, metavar="MHZ",
                       help="networks: the fewest pipeline registers whose adder stages the "
                            "timing model predicts to meet MHZ on --device")
    p.add_argument("--device", metavar="DEVICE",
                   help="with --clock: the FPGA (up5k, ecp5-25k, ecp5-45k, ecp5-85k)")
    p.add_argument("--no-share", action="store_true",
                   help="networks: no sharing of common sub-sums between rows")
    p.add_argument("--fold", type=_fold_arg, metavar="F|NODE=F", action="append",
                   help="networks: 1 fully parallel (default, one vector per clock); F > 1 "
                        "spreads each layer's work over about F cycles per vector; NODE=F "
                        "(repeatable) folds that linear or conv node only, the others parallel")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("simulate", help="simulate the Verilog in Verilator and check every "
                                        "output (a network, or a discovered solution)")
    p.add_argument("design", metavar="NET_OR_SOLUTION",
                   help="a frozen network, or a solution file from 'discover'")
    p.add_argument("--vectors", "--count", dest="vectors", type=_int_type(0), metavar="N",
                   help=f"random vectors, after the extremes (default {_VECTORS:,}; "
                        f"{_WAVES_VECTORS} with --waves)")
    p.add_argument("--seed", type=_SEED, default=0, help="random vectors and stalls (default 0)")
    p.add_argument("--inputs", metavar="X.npy", help="networks: also check these inputs (N, n_in)")
    p.add_argument("--outputs", metavar="Y.npy",
                   help="networks: write the hardware's outputs for the rows of --inputs, in "
                        "order (without --inputs: for every vector checked, extremes first)")
    p.add_argument("--waves", action="store_true",
                   help="networks: write a VCD trace of every signal to <name>.vcd (large: "
                        "~45 MB per 1,000 vectors at 64,32,32; prints the expected size first)")
    p.add_argument("--no-stalls", action="store_true", help="no random stalls/back-pressure")
    p.add_argument("--fold", type=_fold_arg, metavar="F|NODE=F", action="append",
                   help="networks: the architecture to simulate (see 'generate --fold')")
    p.add_argument("--operand-width", type=int, metavar="W",
                   help="solution files: signed bits of each entry of A and B (default 8)")
    p.add_argument("--name", help="solution files: Verilog module name (default matmul)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("discover", help="learn an exact ternary matrix-multiplication algorithm "
                                        "(Strassen: 2x2 with 7 products)")
    p.add_argument("--size", type=int, default=2, metavar="N", help="n×n matrices (default 2)")
    p.add_argument("--rank", type=int, default=7, metavar="R", help="products (default 7)")
    p.add_argument("--restarts", type=int, default=1000, metavar="K",
                   help="random restarts, trained together (default 1000)")
    p.add_argument("--seed", type=_SEED, default=0)
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
    p.add_argument("--model", default="mlp", metavar="MODEL",
                   help="mlp (64-hidden-10, default), cnn (two 3×3 convolutions with max "
                        "pooling, then a linear classifier), or your own model as "
                        "MODULE:FUNCTION (FUNCTION() returns a float torch nn.Module; "
                        "with --x-train, --y-train)")
    p.add_argument("--x-train", metavar="X.npy",
                   help="MODULE:FUNCTION: integer training inputs, (N, n_in) or images "
                        "(N, C, H, W); the model sees them times --input-scale")
    p.add_argument("--y-train", metavar="Y.npy", help="MODULE:FUNCTION: class labels (N,)")
    p.add_argument("--x-test", metavar="X.npy", help="MODULE:FUNCTION: test inputs (optional)")
    p.add_argument("--y-test", metavar="Y.npy", help="MODULE:FUNCTION: test labels")
    p.add_argument("--input-scale", type=float, metavar="S",
                   help="MODULE:FUNCTION: real value of one integer input step (default 1)")
    p.add_argument("--hidden", type=int, default=_DEMO_MLP["hidden"],
                   help=f"hidden width (default {_DEMO_MLP['hidden']}, the demo's)")
    # not "--r": torchrun would take it for an abbreviation of its own options
    p.add_argument("--products", type=_int_list, default=None, metavar="R1,R2[,R3]",
                   help="r per Strassen layer: of the hidden and the output layer (default "
                        f"{','.join(map(str, _DEMO_MLP['r']))}, the demo's); cnn: of conv 1, conv 2 and the classifier, per output patch "
                        "for a convolution (default 8,16,10)")
    p.add_argument("--p", type=_int_list, default=None, metavar="P1,P2",
                   help="cnn: output patch side of conv 1 and conv 2 (default 2,2); "
                        "MODULE:FUNCTION: one for all convolutions or one each (default 1)")
    p.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=None,
                   help="cnn: batch norm after W_b in the convolutions (default on)")
    p.add_argument("--seed", type=_SEED, default=0)
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
    p.add_argument("--name", default=None,
                   help="network (and Verilog module) name (default digits; for your own "
                        "model the output file's name, or net)")
    p.add_argument("--calibration", metavar="X.npy",
                   help="checkpoints of your own model: the inputs that set the activation "
                        "steps (default: its --x-train)")
    p.add_argument("--a-width", type=int, default=None,
                   help="signed bits of ã (default: the smallest that keeps the predictions)")
    p.add_argument("--act-width", type=int, default=8,
                   help="unsigned bits of hidden activations (default 8)")
    p.add_argument("--guard-bits", type=_int_type(0), default=4,
                   help="product bits kept below each layer's output step (default 4; a "
                        "TWN checkpoint keeps its products exact)")
    p.set_defaults(func=cmd_freeze)

    p = sub.add_parser("demo", help="train, freeze, generate and simulate the digits networks; "
                                    "print accuracy and operation counts")
    p.add_argument("--model", choices=_DEMO_MODELS, default="mlp",
                   help="the MLP (64-32-10, default), the CNN (two Strassen convolutions and a "
                        "Strassen classifier), both (about 5 min from a cold start on 2 cores), "
                        "or resnet (a small ST-ResNet with skip connections, trained each time)")
    p.add_argument("--quick", action="store_true", help="small networks, few epochs")
    p.add_argument("--seed", type=_SEED, default=0)
    p.add_argument("--json", metavar="PATH",
                   help="also write the table as JSON rows (model, accuracy, multiplications, "
                        "additions)")
    p.add_argument("--out", default="runs/demo", metavar="DIR",
                   help="frozen network, Verilog and report (default runs/demo)")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="trained checkpoints (default ~/.cache/strassen-hw/checkpoints)")
    p.set_defaults(func=cmd_demo)

    _add_board_commands(sub)
    _add_report_command(sub)
    from .generate_text import add_command as _add_generate_text
    _add_generate_text(sub)
    return parser


def _add_report_command(sub):
    from .cost import DEVICES
    p = sub.add_parser("report", help="synthesize a frozen network (and its baselines) and "
                                      "print what it costs: LUTs, logic cells, DSPs, Fmax")
    p.add_argument("network", metavar="NET")
    p.add_argument("--device", action="append", metavar="DEVICE",
                   help="one of " + ", ".join(DEVICES) + " (repeat for several; default up5k)")
    p.add_argument("--baselines", action="store_true",
                   help="also the TWN and dense int8 counterparts of this network's own graph "
                        "(derived from its layers, not trained: no accuracy)")
    p.add_argument("--data", choices=("digits",),
                   help="--baselines: the TWN and dense int8 digits models trained by the demo "
                        "instead (for a network that reads the digits), with accuracies")
    p.add_argument("--seed", type=_SEED, default=0, help="--data digits: the demo's seed")
    p.add_argument("--quick", action="store_true",
                   help="--data digits: of the model of 'demo --quick'")
    p.add_argument("--cache-dir", metavar="DIR", help="--data digits: trained checkpoints")
    p.add_argument("--pnr", action="store_true",
                   help="also place and route (nextpnr) for Fmax; slow")
    p.add_argument("--levels-per-stage", type=_int_type(1), default=2, metavar="K",
                   help="adder levels between pipeline registers (default 2)")
    p.add_argument("--timeout", type=float, default=3600, metavar="S",
                   help="seconds allowed to each tool run (default 3600)")
    p.add_argument("--json", metavar="PATH", help="write one row per variant and device")
    p.set_defaults(func=cmd_report)


def main(argv=None):
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); returns the exit status.
    Every error a user can fix (including argparse's) is one line on stderr and status 2."""
    try:
        args = build_parser().parse_args(argv)
        status = args.func(args)
    except (UserError, StrassenHWError) as e:
        return _error(e)
    except OSError as e:          # a file that cannot be read or written
        return _error(f"{e.filename}: {e.strerror}" if e.filename and e.strerror else e)
    except KeyboardInterrupt:
        print("strassen-hw: interrupted", file=sys.stderr)
        return 130
    return status or 0


def _error(message):
    print(f"strassen-hw: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
