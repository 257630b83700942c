"""Fuzzing the edges of the frozen-network file and the .npy inputs, for
``tests/test_edges_fuzz.py`` and ``benchmarks/fuzz_edges.py``.

Everything that judges a case here is written from ``docs/frozen-format.md`` alone, without
calling the package: :func:`doc_is_valid` and :func:`inputs_are_valid` state the rules,
:func:`evaluate` computes the outputs with Python integers. A case writes a (possibly mutated)
network file and a (possibly mutated) .npy file, runs ``strassen-hw reference`` in-process
through :func:`strassen_hw.cli.main`, and :func:`run_case` returns its outcome or raises
:class:`Failure`.
"""

import contextlib
import io
import json
import math
import os
import re

import numpy as np

ROUNDINGS = ("floor", "half_up")
LAYER_KEYS = ("w_b", "a_tilde", "a_width", "a_frac_bits", "w_c", "bias", "bias_width",
              "product_shift", "product_rounding", "shift", "rounding", "relu", "output")
TOP_KEYS = ("format", "version", "name", "input", "layers")
#: The keywords the name mutations use (the doc forbids every Verilog/SystemVerilog keyword).
KEYWORDS = ("module", "wire", "logic", "begin", "input", "int")
NAMES = ("", "9lives", "x" * 64, "x" * 65, "r\u00e9seau", "a b", "_x", "x_1", "a$b", "A9_",
         "net.v", "../up") + KEYWORDS


class Failure(AssertionError):
    """The command broke a promise of the README or the doc."""


# --- the rules of docs/frozen-format.md ------------------------------------------------------

def _is_int(v):
    return type(v) is int


def _fmt_ok(f):
    return (type(f) is dict and set(f) == {"width", "signed"} and _is_int(f["width"])
            and 1 <= f["width"] <= 32 and type(f["signed"]) is bool)


def _fmt_range(f):
    w = f["width"]
    return (-(1 << (w - 1)), (1 << (w - 1)) - 1) if f["signed"] else (0, (1 << w) - 1)


def _matrix(m, rows=None, cols=None):
    """The (rows, cols) of a non-empty rectangular ternary list of lists, or None."""
    if type(m) is not list or not m or any(type(row) is not list for row in m):
        return None
    if any(len(row) != len(m[0]) for row in m) or not m[0]:
        return None
    if any(not _is_int(v) or v not in (-1, 0, 1) for row in m for v in row):
        return None
    shape = (len(m), len(m[0]))
    if (rows is not None and shape[0] != rows) or (cols is not None and shape[1] != cols):
        return None
    return shape


def _vector(v, n, width):
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    return (type(v) is list and len(v) == n
            and all(_is_int(x) and lo <= x <= hi for x in v))


def parse(text):
    """The JSON document of ``text`` under the doc's JSON rules, or None when they refuse it
    (not JSON, duplicate fields, NaN/Infinity, integers of more than 40 digits)."""
    def pairs(items):
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate")
        return dict(items)

    def constant(name):
        raise ValueError(name)

    def integer(digits):
        if len(digits.lstrip("-")) > 40:
            raise ValueError("long")
        return int(digits)
    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant,
                          parse_int=integer)
    except (ValueError, RecursionError):
        return None


def doc_is_valid(doc):
    """True when the decoded document obeys every rule of docs/frozen-format.md."""
    if type(doc) is not dict or set(doc) != set(TOP_KEYS):
        return False
    if doc["format"] != "strassen-hw-frozen" or not _is_int(doc["version"]) \
            or doc["version"] not in (1, 2):
        return False
    name = doc["name"]
    if type(name) is not str or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", name) \
            or name in KEYWORDS:
        return False
    if not _fmt_ok(doc["input"]) or type(doc["layers"]) is not list or not doc["layers"]:
        return False
    n_in = None
    for layer in doc["layers"]:
        if type(layer) is not dict or set(layer) != set(LAYER_KEYS):
            return False
        shape_b = _matrix(layer["w_b"], cols=n_in)
        if shape_b is None:
            return False
        r = shape_b[0]
        shape_c = _matrix(layer["w_c"], cols=r)
        if shape_c is None:
            return False
        for key in ("a_width", "bias_width"):
            if not _is_int(layer[key]) or not 1 <= layer[key] <= 32:
                return False
        if not _vector(layer["a_tilde"], r, layer["a_width"]) \
                or not _vector(layer["bias"], shape_c[0], layer["bias_width"]):
            return False
        for key in ("product_shift", "shift"):
            if not _is_int(layer[key]) or not 0 <= layer[key] <= 62:
                return False
        if not _is_int(layer["a_frac_bits"]) or not -64 <= layer["a_frac_bits"] <= 64:
            return False
        if any(type(layer[k]) is not str or layer[k] not in ROUNDINGS
               for k in ("product_rounding", "rounding")):
            return False
        if type(layer["relu"]) is not bool or not _fmt_ok(layer["output"]):
            return False
        n_in = shape_c[0]
    return True


def n_inputs(doc):
    return len(doc["layers"][0]["w_b"][0])


def inputs_are_valid(path, doc):
    """The input rows as Python integers when the .npy file obeys the doc, else None."""
    try:     # mmap: a header that announces more data than the file holds is an error
        x = np.array(np.load(path, allow_pickle=False, mmap_mode="r"))
    except Exception:
        return None
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[0] < 1 \
            or x.shape[1] != n_inputs(doc):
        return None
    if x.dtype.kind not in "iuf" or x.dtype.fields is not None:
        return None
    rows = x.tolist()
    lo, hi = _fmt_range(doc["input"])
    out = []
    for row in rows:
        ints = []
        for v in row:
            if isinstance(v, float):
                if not math.isfinite(v) or v != math.floor(v):
                    return None
                v = int(v)
            if not lo <= v <= hi:
                return None
            ints.append(v)
        out.append(ints)
    return out


def _round_shift(v, s, rounding):
    if s == 0:
        return v
    if rounding == "half_up":
        v += 1 << (s - 1)
    return v >> s          # Python's >> is floor division by 2^s for negative v too


def evaluate(doc, rows):
    """The outputs of the network ``doc`` for the integer ``rows``, with Python integers."""
    for layer in doc["layers"]:
        lo, hi = _fmt_range(layer["output"])
        out = []
        for x in rows:
            u = [sum(w * xi for w, xi in zip(row, x)) for row in layer["w_b"]]
            p = [_round_shift(a * uj, layer["product_shift"], layer["product_rounding"])
                 for a, uj in zip(layer["a_tilde"], u)]
            v = [sum(w * pj for w, pj in zip(row, p)) + b
                 for row, b in zip(layer["w_c"], layer["bias"])]
            y = [_round_shift(vi, layer["shift"], layer["rounding"]) for vi in v]
            if layer["relu"]:
                y = [max(yi, 0) for yi in y]
            out.append([min(max(yi, lo), hi) for yi in y])
        rows = out
    return rows


# --- random valid networks and inputs --------------------------------------------------------

def _edge_int(rng, lo, hi):
    """An integer in lo..hi, often one of the edges."""
    choice = rng.random()
    if choice < 0.35:
        return rng.choice([lo, hi, lo + 1 if lo < hi else lo, hi - 1 if lo < hi else hi])
    if choice < 0.45 and lo <= 0 <= hi:
        return rng.choice([v for v in (-1, 0, 1) if lo <= v <= hi])
    return rng.randint(lo, hi)


def _fmt(rng):
    return {"width": _edge_int(rng, 1, 32), "signed": rng.random() < 0.6}


def random_doc(rng, max_layers=3, max_size=6):
    """A random valid network document, edges favoured (widths 1 and 32, shifts 0 and 62, ã
    and bias at their limits, long rows of equal signs)."""
    n = rng.randint(1, max_size)
    layers = []
    wide = rng.random() < 0.3     # values past 2^63 before the shift: exactness at any width
    for _ in range(rng.randint(1, max_layers)):
        r, n_out = rng.randint(1, max_size), rng.randint(1, max_size)
        dense = wide or rng.random() < 0.3       # all +1 or all -1: the widest sums

        def ternary(rows, cols):
            if dense:
                sign = rng.choice([-1, 1])
                return [[sign] * cols for _ in range(rows)]
            return [[rng.choice([-1, 0, 1]) for _ in range(cols)] for _ in range(rows)]
        a_width, bias_width = _edge_int(rng, 1, 32), _edge_int(rng, 1, 32)
        a_lo, a_hi = -(1 << (a_width - 1)), (1 << (a_width - 1)) - 1
        b_lo, b_hi = -(1 << (bias_width - 1)), (1 << (bias_width - 1)) - 1
        if wide:
            r, n_out, a_width = max(r, 3), max(n_out, 3), 32
            a_lo, a_hi = -(1 << 31), (1 << 31) - 1
        layers.append({
            "w_b": ternary(r, n), "a_tilde": [_edge_int(rng, a_lo, a_hi) for _ in range(r)],
            "a_width": a_width, "a_frac_bits": _edge_int(rng, -64, 64),
            "w_c": ternary(n_out, r), "bias": [_edge_int(rng, b_lo, b_hi) for _ in range(n_out)],
            "bias_width": bias_width, "product_shift": _edge_int(rng, 0, 62),
            "product_rounding": rng.choice(ROUNDINGS), "shift": _edge_int(rng, 0, 62),
            "rounding": rng.choice(ROUNDINGS), "relu": rng.random() < 0.5,
            "output": _fmt(rng)})
        if wide:
            layers[-1].update(a_tilde=[rng.choice([a_lo, a_hi]) for _ in range(r)],
                              product_shift=0, shift=rng.randint(34, 62),
                              output={"width": 32, "signed": True})
        n = n_out
    fmt = {"width": 32, "signed": rng.random() < 0.5} if wide else _fmt(rng)
    return {"format": "strassen-hw-frozen", "version": 1,
            "name": rng.choice(["net", "x_1", "A9_", "n" * 64]), "input": fmt,
            "layers": layers}


def random_rows(rng, doc, max_rows=4):
    lo, hi = _fmt_range(doc["input"])
    return [[_edge_int(rng, lo, hi) for _ in range(n_inputs(doc))]
            for _ in range(rng.randint(1, max_rows))]


# --- mutations ---------------------------------------------------------------------------------

def _junk(rng):
    return rng.choice([None, True, False, 0, -1, 1, 2, -2, 33, 63, 64, 1.0, 0.5, 1e300, "1",
                       "", "floor", [], [1], [[1]], {}, {"width": 8, "signed": True},
                       2 ** 62, -2 ** 62, 2 ** 70, 10 ** 40])


def _objects(doc):
    """(label, dict) of every object of a document: top, layers, formats."""
    out = [("top", doc), ("input", doc["input"])]
    for layer in doc["layers"]:
        out += [("layer", layer), ("output", layer["output"])]
    return out


def mutate_doc(rng, doc):
    """A mutated copy of ``doc`` (a decoded document) and the mutation's name."""
    doc = json.loads(json.dumps(doc))
    kind = rng.choice(["value", "delete", "unknown", "entry", "ragged", "version", "name",
                       "edge", "shape"])
    label, obj = rng.choice(_objects(doc))
    key = rng.choice(sorted(obj))
    if kind == "value":
        obj[key] = _junk(rng)
    elif kind == "delete":
        del obj[key]
    elif kind == "unknown":
        obj[rng.choice(["extra", "Name", "comment", "w_a"])] = _junk(rng)
    elif kind in ("entry", "ragged", "shape"):
        layer = rng.choice(doc["layers"])
        key = rng.choice(["w_b", "w_c", "a_tilde", "bias"])
        value = layer[key]
        if kind == "entry":
            target = rng.choice(value) if isinstance(value[0], list) else value
            target[rng.randrange(len(target))] = _junk(rng)
        elif kind == "ragged" and isinstance(value[0], list):
            rng.choice(value).append(0)
        else:
            layer[key] = rng.choice([[], [[]], value + value[:1], value[:-1] or [],
                                     [value], value[0]])
    elif kind == "version":
        doc["version"] = rng.choice([True, 1.0, 2, "1", 0, None, 1])
    elif kind == "name":
        doc["name"] = rng.choice(NAMES)
    else:   # edge: a value just inside or just outside its limit
        layer = rng.choice(doc["layers"])
        key = rng.choice(["a_tilde", "bias", "product_shift", "shift", "a_frac_bits"])
        if key in ("a_tilde", "bias"):
            w = layer["a_width" if key == "a_tilde" else "bias_width"]
            layer[key][rng.randrange(len(layer[key]))] = rng.choice(
                [(1 << (w - 1)) - 1, (1 << (w - 1)), -(1 << (w - 1)), -(1 << (w - 1)) - 1])
        elif key == "a_frac_bits":
            layer[key] = rng.choice([-64, 64, -65, 65])
        else:
            layer[key] = rng.choice([0, 62, 63, -1])
    return doc, f"{kind} {label}"


def mutate_text(rng, text):
    """A mutated copy of the file text and the mutation's name."""
    kind = rng.choice(["truncate", "duplicate", "long-int", "nan", "deep", "byte", "empty",
                       "not-object", "solution"])
    if kind == "truncate":
        return text[:rng.randrange(len(text))], kind
    if kind == "duplicate":
        return text.replace("{", '{"name": "dup", ', 1), kind
    if kind == "long-int":
        digits = rng.choice([40, 41, 5000])
        return re.sub(r"(?<=\[)-?\d+", "9" * digits, text, count=1), f"{kind} {digits}"
    if kind == "nan":
        return re.sub(r"(?<=\[)-?\d+", rng.choice(["NaN", "Infinity", "-Infinity"]), text,
                      count=1), kind
    if kind == "deep":
        depth = rng.choice([50, 5000, 100000])
        return "[" * depth + "]" * depth, f"{kind} {depth}"
    if kind == "byte":
        at = rng.randrange(len(text))
        return text[:at] + rng.choice(["\udcff", "\x00", "}", "\u00e9"]) + text[at:], kind
    if kind == "empty":
        return "", kind
    if kind == "solution":
        return json.dumps({"W_a": [[1]], "W_b": [[1]], "W_c": [[1]]}), kind
    return rng.choice(["[]", "1", '"net"', "null", "true"]), kind


def write_inputs(rng, path, doc, rows, mutate):
    """Write the .npy of ``rows`` (mutated when ``mutate``); returns the mutation's name."""
    x = np.array(rows, dtype=np.int64)
    if not mutate:
        np.save(path, x)
        return "valid"
    kind = rng.choice(["dtype", "uint64", "bool", "fraction", "nan", "object", "1-D", "0-row",
                       "3-D", "columns", "truncated", "huge", "text", "empty", "outside",
                       "complex", "str", "fortran"])
    lo, hi = _fmt_range(doc["input"])
    if kind == "dtype":
        dtype = rng.choice(["int8", "int16", "int32", "uint8", "uint16", "uint32", "uint64",
                            "float32", "float64", "float16"])
        with np.errstate(all="ignore"):
            np.save(path, x.astype(dtype))
        return f"dtype {dtype}"
    if kind == "uint64":
        y = x.astype(np.uint64)
        y.flat[rng.randrange(y.size)] = rng.choice([2 ** 64 - 1, 2 ** 63, hi + 1 if hi >= 0
                                                    else 0])
        np.save(path, y)
    elif kind == "bool":
        np.save(path, x != 0)
    elif kind == "fraction":
        np.save(path, x + 0.5)
    elif kind == "nan":
        y = x.astype(np.float64)
        y.flat[rng.randrange(y.size)] = rng.choice([np.nan, np.inf, -np.inf])
        np.save(path, y)
    elif kind == "object":
        np.save(path, x.astype(object), allow_pickle=True)
    elif kind == "1-D":
        np.save(path, x[0])
    elif kind == "0-row":
        np.save(path, x[:0])
    elif kind == "3-D":
        np.save(path, x[None])
    elif kind == "columns":
        np.save(path, np.concatenate([x, x[:, :1]], axis=1) if rng.random() < 0.5
                else x[:, 1:])
    elif kind == "truncated":
        np.save(path, x)
        data = open(path, "rb").read()
        open(path, "wb").write(data[:rng.randrange(len(data))])
    elif kind == "huge":
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<i8", "fortran_order": False, "shape": (10 ** 8, 10 ** 8)})
    elif kind == "text":
        open(path, "w").write(" ".join(map(str, x.flat)) + "\n")
    elif kind == "empty":
        open(path, "wb").close()
    elif kind == "outside":
        y = x.copy()
        y.flat[rng.randrange(y.size)] = rng.choice([lo - 1, hi + 1])
        np.save(path, y)
    elif kind == "complex":
        np.save(path, x.astype(np.complex128))
    elif kind == "str":
        np.save(path, x.astype(str))
    else:
        np.save(path, np.asfortranarray(x))
    return kind


# --- one case ----------------------------------------------------------------------------------

def run_case(rng, workdir):
    """One fuzz case in the empty folder ``workdir``. Returns ``(outcome, mutation)`` with
    outcome ``accepted`` (and exact) or ``refused`` (one line, exit 2, no output touched);
    raises :class:`Failure` otherwise."""
    from strassen_hw.cli import main
    doc = random_doc(rng)
    rows = random_rows(rng, doc)
    mutation = "none"
    roll = rng.random()
    net, x_path = os.path.join(workdir, "net.json"), os.path.join(workdir, "x.npy")
    if roll < 0.35:
        mutated, mutation = mutate_doc(rng, doc)
        text = json.dumps(mutated)
    elif roll < 0.5:
        text, mutation = mutate_text(rng, json.dumps(doc, indent=rng.choice([None, 1])))
    else:
        text = json.dumps(doc)
    with open(net, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(text)
    npy_mutation = write_inputs(rng, x_path, doc, rows, mutate=0.5 <= roll < 0.85)
    if npy_mutation != "valid":
        mutation = f"npy {npy_mutation}"
    out = os.path.join(workdir, rng.choice(["y.npy", "sub/y.npy"]))
    before = None
    if rng.random() < 0.3:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        before = b"sentinel"
        open(out, "wb").write(before)
    if rng.random() < 0.05:
        out, mutation = rng.choice([net, x_path]), mutation + " + output is an input"
    snapshot = {p: open(p, "rb").read() for p in (net, x_path)}
    parsed = parse(text)
    valid = parsed is not None and doc_is_valid(parsed)
    good_rows = inputs_are_valid(x_path, parsed) if valid else None
    expect_ok = valid and good_rows is not None and out not in (net, x_path)

    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            status = main(["reference", net, "--inputs", x_path, "-o", out])
    except BaseException as e:          # a traceback for the user
        raise Failure(f"{mutation}: {type(e).__name__}: {e}") from e
    err = stderr.getvalue()
    for path, data in snapshot.items():
        if open(path, "rb").read() != data:
            raise Failure(f"{mutation}: {path} was changed")
    if status == 0:
        if not expect_ok:
            raise Failure(f"{mutation}: accepted what the doc refuses (status 0)")
        y = np.load(out, allow_pickle=False)
        want = evaluate(parsed, good_rows)
        if y.dtype != np.int64 or y.tolist() != want:
            raise Failure(f"{mutation}: wrong outputs {y.tolist()} != {want}")
        return "accepted", mutation
    lines = err.splitlines()
    if status != 2 or len(lines) != 1 or not lines[0].startswith("strassen-hw: error: ") \
            or "Traceback" in err:
        raise Failure(f"{mutation}: status {status}, stderr {err!r}")
    if expect_ok:
        raise Failure(f"{mutation}: refused what the doc allows: {lines[0]}")
    now = open(out, "rb").read() if os.path.exists(out) else None
    if out not in snapshot and now != before:
        raise Failure(f"{mutation}: the output file was created or changed")
    leftovers = [name for _, _, files in os.walk(workdir) for name in files
                 if name.startswith(".tmp-")]
    if leftovers:
        raise Failure(f"{mutation}: left temporary files {leftovers}")
    return "refused", mutation
