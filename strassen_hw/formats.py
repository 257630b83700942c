"""The contract's primitives: the one error class, integer formats, names and field checks.

numpy only; every other contract module (:mod:`.frozen_layer`, :mod:`.frozen_conv`,
:mod:`.graph`, :mod:`.frozen`) builds on this one."""

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["FORMAT", "ROUNDING", "KINDS", "MAX_SHIFT", "MAX_NAME", "FrozenError", "Format",
           "check_name", "signed_width"]

FORMAT = "strassen-hw-frozen"
#: Rounding rules of ``round_shift``: ``floor`` (arithmetic shift right) and ``half_up``
#: (add half an output LSB, then shift: ties round toward +infinity).
ROUNDING = ("floor", "half_up")
#: Layer kinds: a Strassen layer, and the two baselines in the same form (module docstring).
KINDS = ("strassen", "twn", "dense")
#: Largest ``shift`` and ``product_shift``.
MAX_SHIFT = 62
#: Longest network name, in characters.
MAX_NAME = 64
#: Formats, ``a_width`` and ``bias_width``: 1..32 bits.
_MAX_FORMAT_WIDTH = 32
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
#: Longest integer literal the loader reads (digits); every legal value has far fewer.
_MAX_DIGITS = 40

# Verilog-2005 and SystemVerilog (IEEE 1800-2017) keywords: Verilator reads the generated
# Verilog as SystemVerilog, so none of these can name a module.
_KEYWORDS = frozenset("""
accept_on alias always always_comb always_ff always_latch and assert assign assume automatic
before begin bind bins binsof bit break buf bufif0 bufif1 byte case casex casez cell chandle
checker class clocking cmos config const constraint context continue cover covergroup coverpoint
cross deassign default defparam design disable dist do edge else end endcase endchecker
endclass endclocking endconfig endfunction endgenerate endgroup endinterface endmodule
endpackage endprimitive endprogram endproperty endspecify endsequence endtable endtask enum
event eventually expect export extends extern final first_match for force foreach forever fork
forkjoin function generate genvar global highz0 highz1 if iff ifnone ignore_bins illegal_bins
implements implies import incdir include initial inout input inside instance int integer
interconnect interface intersect join join_any join_none large let liblist library local
localparam logic longint macromodule matches medium modport module nand negedge nettype new
nexttime nmos nor noshowcancelled not notif0 notif1 null or output package packed parameter
pmos posedge primitive priority program property protected pull0 pull1 pulldown pullup
pulsestyle_ondetect pulsestyle_onevent pure rand randc randcase randsequence rcmos real
realtime ref reg reject_on release repeat restrict return rnmos rpmos rtran rtranif0 rtranif1
s_always s_eventually s_nexttime s_until s_until_with scalared sequence shortint shortreal
showcancelled signed small soft solve specify specparam static string strong strong0 strong1
struct super supply0 supply1 sync_accept_on sync_reject_on table tagged task this throughout
time timeprecision timeunit tran tranif0 tranif1 tri tri0 tri1 triand trior trireg type typedef
union unique unique0 unsigned until until_with untyped use uwire var vectored virtual void wait
wait_order wand weak weak0 weak1 while wildcard wire with within wor xnor xor
""".split())

class FrozenError(ValueError):
    """A frozen network is malformed. The message is one line naming the problem and the fix."""


def _fail(where, message):
    raise FrozenError(f"{where}: {message}" if where else message)


def signed_width(lo, hi):
    """Smallest two's complement width that holds every integer in ``[lo, hi]``."""
    lo, hi = int(lo), int(hi)
    need_hi = hi.bit_length() + 1 if hi > 0 else 1
    need_lo = (-lo - 1).bit_length() + 1 if lo < 0 else 1
    return max(need_hi, need_lo)


def _relabel(error, old, new):
    """``error`` (a FrozenError whose message starts with ``old``) with ``new`` in its place."""
    text = str(error)
    return FrozenError(new + text[len(old):] if text.startswith(old) else f"{new}: {text}")


def _int(where, key, value, lo=None, hi=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        _fail(where, f"'{key}' must be an integer, not {_show(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        _fail(where, f"'{key}' = {value} is outside {lo}..{hi}")
    return int(value)


def _show(value, limit=40):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _check_format(where, width, signed):
    _int(where, "width", width, 1, _MAX_FORMAT_WIDTH)
    if not isinstance(signed, bool):
        _fail(where, f"'signed' must be true or false, not {_show(signed)}")


@dataclass(frozen=True)
class Format:
    """An integer format: ``width`` bits (1..32), two's complement when ``signed``.

    Raises
    ------
    FrozenError
        ``width`` is not an integer in 1..32 or ``signed`` is not a bool.
    """
    width: int
    signed: bool = True

    def __post_init__(self):
        _check_format("format", self.width, self.signed)
        object.__setattr__(self, "width", int(self.width))

    @property
    def min(self):
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max(self):
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    def to_json(self):
        return {"width": self.width, "signed": self.signed}


def _integers(where, key, value, ndim):
    """``value`` as an int64 array of ``ndim`` dimensions, or a FrozenError. Entries must be
    integers (Python ints or a numpy integer dtype; no bool, no float) in ``-2^62 .. 2^62``;
    the callers narrow the range further."""
    shape_error = f"'{key}' must be a non-empty {ndim}-D array of integers"
    if isinstance(value, np.ndarray) and value.dtype != object:
        if value.dtype.kind not in "iu":
            _fail(where, f"'{key}' has dtype {value.dtype}; only integers are allowed")
        if value.ndim != ndim or 0 in value.shape:
            _fail(where, f"{shape_error}, not shape {value.shape}")
        if value.dtype.kind == "u" and value.size and int(value.max()) >= 1 << 62:
            _fail(where, f"'{key}' holds {int(value.max())}, which no field allows")
        return value.astype(np.int64)
    try:
        array = np.array(value, dtype=object)
    except Exception:       # ragged or exotic nesting: numpy's own messages vary
        _fail(where, shape_error)
    if array.ndim != ndim or 0 in array.shape:
        _fail(where, shape_error)
    if set(map(type, array.flat)) == {int}:      # plain Python ints (a dense layer's million)
        try:
            out = array.astype(np.int64)
        except OverflowError:
            out = None
        if out is not None and not ((out >= 1 << 62) | (out <= -(1 << 62))).any():
            return out
    for item in array.flat:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)):
            _fail(where, f"'{key}' holds {_show(item)}; only integers are allowed")
        if abs(int(item)) >= 1 << 62:
            _fail(where, f"'{key}' holds {item}, which no field allows")
    return array.astype(np.int64)


def check_name(name, where="network", what="network"):
    """Raise :class:`FrozenError` unless ``name`` can name a network (or a node): 1..64 ASCII
    letters, digits and underscores, starting with a letter, and not a (System)Verilog keyword
    (:data:`_KEYWORDS`). It is the Verilog module name and the stem of the files written for
    it."""
    if not isinstance(name, str):
        _fail(where, f"'name' must be a string, not {_show(name)}")
    if not 1 <= len(name) <= MAX_NAME or not _NAME.fullmatch(name):
        _fail(where, f"'name' = {_show(name)} is not a valid {what} name; use 1 to "
                     f"{MAX_NAME} ASCII letters, digits and underscores, starting with a "
                     "letter")
    if name in _KEYWORDS:
        _fail(where, f"'name' = {name!r} is a Verilog keyword; choose another name")
