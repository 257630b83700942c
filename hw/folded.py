"""Folded hardware: the same frozen network, each layer's work spread over several cycles.

``fold = F`` trades area for cycles (like hls4ml's reuse factor or FINN's PE/SIMD): every stage
below does at most about F steps per vector, with the least hardware that does so. ``F = 1``
callers should use the fully parallel :class:`~strassen_hw.hw.network.StrassenNetwork`.

One layer is three stages chained on streams::

    x ─▶ W_b stage ─▶ u ─▶ product stage ─▶ p ─▶ W_c stage (+ bias, requantize) ─▶ y

- A **ternary stage** computes ``init + M z`` for a ternary matrix ``M`` (``R × C``) held as
  2-bit codes (non-zero, negative) in a ROM (:class:`amaranth.lib.memory.Memory`; Yosys infers
  block RAM or LUT ROM). It has ``L`` lanes; each cycle each lane adds ``K`` ternary terms of
  one row to its accumulator, the ``K`` inputs being one word of the input RAM. Rows are
  taken in slices of ``L`` (one per lane) and columns in chunks of ``K``: ``ceil(R/L) ·
  ceil(C/K)`` steps, at most ``F``, with the least ``L · K``, then the least ``K`` (narrow RAM
  words map to block RAM; ``K`` a multiple of the producer's write group, ``L`` a divisor of
  the multipliers). The W_c
  stage starts every accumulator at ``bias + half`` (a second small ROM) and requantizes
  (:func:`~strassen_hw.hw.requantize.requantize`) each finished row.
- The **product stage** has ``m = ceil(r'/F)`` multipliers shared over ``ceil(r'/m)`` steps,
  ``ã`` from a ROM, with registered inputs and outputs (nextpnr does not time through a
  combinational iCE40 SB_MAC16; Yosys ``-dsp`` maps them to DSP blocks), then the product
  rounding. ``r'`` counts only the products that matter (ã ≠ 0, W_b row and W_c column not
  zero); the others are 0 in the reference too and are skipped, and their W_c columns dropped.

Every stage runs a counter ``t`` over its steps plus a few pipeline cycles (ROM and RAM
reads; in a ternary stage a register after every two carry chains of the adder tree, then the
accumulator; in the product stage the multiplier's output register). Vectors between stages
and between layers live in RAMs (one write port for the producer, one read port for the
consumer, one word per consumer step: the consumer's ``K`` is a multiple of the producer's
write group, so a write touches one word); the stream between two stages carries only
``valid``/``ready``. A stage reads its input in place while the producer holds ``valid``,
takes it (``ready``) in its last cycle, and writes its results group by group; a write waits
(the whole stage stalls) while the RAM still holds the previous vector, so back-pressure never
loses or duplicates a vector, and ``ready`` depends only on registers of the stage itself.
The network's input is latched and read through a multiplexer; the last layer writes the
output stream's payload registers. A layer and the next one share a RAM, so at best every
other stage runs at a time: a vector takes between ``F`` and about ``2 F`` cycles (the plan
states it exactly).

The arithmetic is decided in plain Python (:class:`FoldedPlan`: tiling, ROM contents, the exact
range of every register); the components only translate it. Every accumulator, product and
output element has the exact width of its range; a RAM field is as wide as the widest element
it holds.
"""

from dataclasses import dataclass

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..frozen import Format, FrozenLayer
from .requantize import RequantPlan, _half, format_shape, requantize, vector_ports
from .tree import fit as _fit, range_shape as _range_shape, resize as _resize
from .tree import unpack as _unpack

__all__ = ["FoldedPlan", "FoldedLayer", "FoldedNetwork", "folded_report",
           "generate_folded_verilog"]

#: Pipeline cycles of a stage after its last step (ROM read, then accumulate or multiply),
#: without the registers inside a ternary stage's adder tree.
_DEPTH = 2


def _bits(n):
    """Width of a counter over ``0 .. n`` (at least 1)."""
    return max(1, int(n).bit_length())


def _union(ranges):
    ranges = list(ranges)
    return min(lo for lo, _ in ranges), max(hi for _, hi in ranges)


def _width(lo, hi):
    return _range_shape(lo, hi).width


def _field(value, lo, hi):
    """``value`` as the two's complement bits of the shape of ``[lo, hi]``."""
    return value & ((1 << _width(lo, hi)) - 1)


def _tree(items, add, hold):
    """Sum ``items`` in a balanced tree of ``add``; ``hold`` registers the items after every
    two adder levels (the ternary terms count as the first) and before the final add into the
    accumulator when needed, so no path crosses more than two carry chains. Returns the root
    and the number of register levels."""
    level, registers = 1, 0
    while len(items) > 1:
        if level == 2:
            items, level, registers = hold(items), 0, registers + 1
        pairs = [add(a, b) for a, b in zip(items[::2], items[1::2])]
        items = pairs + items[2 * len(pairs):]
        level += 1
    if level == 2:
        items, registers = hold(items), registers + 1
    return items[0], registers


# --- plans (plain Python) ---------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class TernaryPlan:
    """``y = init + M z`` over ``steps`` cycles: ``lanes`` rows at a time, ``chunk`` columns of
    each per cycle.

    Attributes
    ----------
    matrix : ndarray (R, C) of {-1, 0, 1}
    inputs : tuple of (lo, hi)
        Range of every element of ``z``.
    init : tuple of int
        Start value of every row.
    lanes, chunk, slices, chunks, steps : int
        ``L``, ``K``, ``ceil(R/L)``, ``ceil(C/K)``, and ``slices · chunks``.
    z_ranges : tuple of (lo, hi)
        Per position ``k`` of a chunk: range of the multiplexed input.
    terms : tuple of tuple of (lo, hi)
        Per lane and position: range of the ternary term.
    acc : tuple of (lo, hi)
        Per lane: range of the accumulator (every partial sum of its rows).
    final : tuple of (lo, hi)
        Per lane: range of its finished rows; ``rows``: per row.
    init_ranges : tuple of (lo, hi)
        Per lane: range of its rows' start values.
    codes : tuple of int
        ROM words (``steps`` of ``2 · L · K`` bits): code of lane ``l``, position ``k`` at bits
        ``2 (l K + k)``, bit 0 = non-zero, bit 1 = negative.
    init_words : tuple of int or None
        Start-value ROM (``slices`` words of the lanes' fields), or None when every lane starts
        at one constant.
    """
    matrix: np.ndarray
    inputs: tuple
    init: tuple
    lanes: int
    chunk: int
    slices: int
    chunks: int
    steps: int
    z_ranges: tuple
    terms: tuple
    acc: tuple
    final: tuple
    rows: tuple
    init_ranges: tuple
    codes: tuple
    init_words: tuple

    @property
    def depth(self):
        """Pipeline cycles after the last step: ROM and RAM reads, the registers inside the
        tree of the ``K`` terms, the accumulator."""
        return _DEPTH + _tree([None] * self.chunk, lambda a, b: a, lambda x: x)[1]

    @property
    def tree_bits(self):
        """Flip-flops inside the lanes' trees (constant terms need none)."""
        bits = []

        def hold(items):
            bits.extend(_width(lo, hi) for lo, hi in items if lo != hi)
            return items

        for terms in self.terms:
            _tree(list(terms), lambda a, b: (a[0] + b[0], a[1] + b[1]), hold)
        return sum(bits)

    @property
    def cycles(self):
        """Cycles per vector of this stage alone (steps and pipeline)."""
        return self.steps + self.depth

    @property
    def adders(self):
        """Two-input add/subtract units: ``K`` per lane (``K`` terms into the accumulator)."""
        return self.lanes * self.chunk

    @property
    def rom_bits(self):
        bits = self.steps * 2 * self.lanes * self.chunk if self.steps > 1 else 0
        if self.init_words is not None:
            bits += self.slices * self.init_width
        return bits

    @property
    def init_width(self):
        return sum(_width(*r) for r in self.init_ranges)

    def writes(self, t):
        """Whether the stage writes results at count ``t``."""
        n = t - self.depth
        return 0 <= n < self.steps and n % self.chunks == self.chunks - 1


def _tile(rows, cols, fold, multiple=1, divides=None):
    """``(L, K)``: the least ``L · K`` with ``ceil(R/L) · ceil(C/K) <= F``, ``K`` a multiple of
    ``multiple`` and ``L`` a divisor of ``divides`` (when given); then the least ``K``: narrow
    RAM words, which map to block RAM rather than flip-flops."""
    best = None
    choices = range(1, rows + 1) if divides is None else \
        [d for d in range(1, divides + 1) if divides % d == 0]
    for lanes in choices:
        slices = -(-rows // lanes)
        if slices > fold:
            continue
        chunk = -(-cols // min(fold // slices, cols))
        chunk = -(-chunk // multiple) * multiple
        key = (lanes * chunk, chunk, lanes)
        if best is None or key < best[0]:
            best = (key, lanes, chunk)
    return best[1], best[2]


def _ternary_plan(matrix, lo, hi, init, fold, multiple=1, divides=None):
    matrix = np.asarray(matrix, dtype=np.int64)
    rows, cols = matrix.shape
    lanes, chunk = _tile(rows, cols, fold, multiple, divides)
    slices, chunks = -(-rows // lanes), -(-cols // chunk)
    pad = np.zeros((slices * lanes, chunks * chunk), dtype=np.int64)
    pad[:rows, :cols] = matrix
    lo_p = np.zeros(chunks * chunk, dtype=object)
    hi_p = np.zeros(chunks * chunk, dtype=object)
    lo_p[:cols], hi_p[:cols] = [int(v) for v in lo], [int(v) for v in hi]
    z_ranges = tuple(_union((lo_p[c * chunk + k], hi_p[c * chunk + k]) for c in range(chunks))
                     for k in range(chunk))
    terms = []
    for lane in range(lanes):
        lane_terms = []
        for k, (zlo, zhi) in enumerate(z_ranges):
            codes = {int(pad[s * lanes + lane, c * chunk + k])
                     for s in range(slices) for c in range(chunks)}
            options = [{0: (0, 0), 1: (zlo, zhi), -1: (-zhi, -zlo)}[code] for code in codes]
            lane_terms.append(_union(options))
        terms.append(tuple(lane_terms))
    # exact partial sums of every row after every chunk
    pos = matrix > 0
    row_ranges, acc, final, init_ranges = [], [], [], []
    partial = [[] for _ in range(rows)]
    for i in range(rows):
        s_lo = s_hi = int(init[i])
        for c in range(chunks):
            cols_c = range(c * chunk, min(cols, (c + 1) * chunk))
            s_lo += sum(int(lo[j]) if pos[i, j] else -int(hi[j]) for j in cols_c
                        if matrix[i, j])
            s_hi += sum(int(hi[j]) if pos[i, j] else -int(lo[j]) for j in cols_c
                        if matrix[i, j])
            partial[i].append((s_lo, s_hi))
        row_ranges.append((s_lo, s_hi))
    for lane in range(lanes):
        mine = [s * lanes + lane for s in range(slices) if s * lanes + lane < rows]
        acc.append(_union(r for i in mine for r in partial[i]))
        final.append(_union(row_ranges[i] for i in mine))
        init_ranges.append(_union((int(init[i]), int(init[i])) for i in mine))
    words = []
    for s in range(slices):
        for c in range(chunks):
            word = 0
            for lane in range(lanes):
                for k in range(chunk):
                    code = int(pad[s * lanes + lane, c * chunk + k])
                    bits = 0 if code == 0 else (1 if code > 0 else 3)
                    word |= bits << (2 * (lane * chunk + k))
            words.append(word)
    init_words = None
    constant = all(init_ranges[lane][0] == init_ranges[lane][1] for lane in range(lanes))
    if not constant:
        init_words = []
        for s in range(slices):
            word, offset = 0, 0
            for lane in range(lanes):
                i = s * lanes + lane
                value = int(init[i]) if i < rows else init_ranges[lane][0]
                word |= _field(value, *init_ranges[lane]) << offset
                offset += _width(*init_ranges[lane])
            init_words.append(word)
        init_words = tuple(init_words)
    return TernaryPlan(matrix=matrix, inputs=tuple(zip(map(int, lo), map(int, hi))),
                       init=tuple(int(v) for v in init), lanes=lanes, chunk=chunk,
                       slices=slices, chunks=chunks, steps=slices * chunks,
                       z_ranges=z_ranges, terms=tuple(terms), acc=tuple(acc),
                       final=tuple(final), rows=tuple(row_ranges),
                       init_ranges=tuple(init_ranges), codes=tuple(words),
                       init_words=init_words)


@dataclass(frozen=True, eq=False)
class ProductPlan:
    """``p_j = (ã_j u_j + half) >> shift`` on ``multipliers`` shared multipliers.

    Attributes
    ----------
    a : tuple of int
        ã of every product computed (in order).
    inputs, outputs : tuple of (lo, hi)
        Range of every ``u_j`` and ``p_j``.
    multipliers, steps : int
    half, shift : int
    u_ranges, a_ranges, m_ranges : tuple of (lo, hi)
        Per multiplier: range of its ``u`` input, its ã input and its product.
    """
    a: tuple
    inputs: tuple
    outputs: tuple
    multipliers: int
    steps: int
    half: int
    shift: int
    u_ranges: tuple
    a_ranges: tuple
    m_ranges: tuple

    @property
    def cycles(self):
        return self.steps + _DEPTH

    @property
    def adders(self):
        """The rounding adders (one per multiplier when the rounding adds half)."""
        return self.multipliers if self.half else 0

    @property
    def a_width(self):
        return sum(_width(*r) for r in self.a_ranges)

    @property
    def rom_bits(self):
        return self.steps * self.a_width if self.steps > 1 else 0

    def a_words(self):
        words = []
        for n in range(self.steps):
            word, offset = 0, 0
            for k, rng in enumerate(self.a_ranges):
                j = n * self.multipliers + k
                word |= _field(self.a[j] if j < len(self.a) else 0, *rng) << offset
                offset += _width(*rng)
            words.append(word)
        return tuple(words)

    def writes(self, t):
        return 0 <= t - _DEPTH < self.steps


def _product_plan(a, u_ranges, half, shift, fold):
    count = len(a)
    m = -(-count // fold)
    steps = -(-count // m)
    lanes_u, lanes_a, lanes_m = [], [], []
    for k in range(m):
        items = [n * m + k for n in range(steps)]
        real = [j for j in items if j < count]
        pad = [(0, 0)] if len(real) < len(items) else []
        lanes_u.append(_union([u_ranges[j] for j in real] + pad))
        lanes_a.append(_union([(a[j], a[j]) for j in real] + pad))
        lanes_m.append(_union([(min(a[j] * u_ranges[j][0], a[j] * u_ranges[j][1]),
                                max(a[j] * u_ranges[j][0], a[j] * u_ranges[j][1]))
                               for j in real] + pad))
    outputs = []
    for j in range(count):
        lo, hi = a[j] * u_ranges[j][0], a[j] * u_ranges[j][1]
        outputs.append(((min(lo, hi) + half) >> shift, (max(lo, hi) + half) >> shift))
    return ProductPlan(a=tuple(a), inputs=tuple(u_ranges), outputs=tuple(outputs),
                       multipliers=m, steps=steps, half=half, shift=shift,
                       u_ranges=tuple(lanes_u), a_ranges=tuple(lanes_a),
                       m_ranges=tuple(lanes_m))


@dataclass(frozen=True)
class BufferPlan:
    """A vector handed from one stage to the next in a RAM: ``depth`` words of ``chunk``
    fields of ``width`` bits (two's complement when ``signed``), one word per read of the
    consumer; the producer writes ``group`` consecutive fields of one word at a time."""
    chunk: int
    depth: int
    width: int
    signed: bool
    group: int

    @property
    def bits(self):
        return self.chunk * self.depth * self.width

    @property
    def groups(self):
        """Write groups per word."""
        return self.chunk // self.group

    @property
    def counter_bits(self):
        """The producer's write address and group counters."""
        return _bits(self.depth - 1) + _bits(self.groups - 1)


def _buffer(ranges, consumer, group):
    lo, hi = _union(ranges)
    assert consumer.chunk % group == 0, (consumer.chunk, group)
    return BufferPlan(chunk=consumer.chunk, depth=consumer.chunks, width=_width(lo, hi),
                      signed=lo < 0, group=group)


def _period(stages, vectors=12):
    """Steady-state cycles between outputs of a chain of stages (``(cycles, writes)``), with an
    always-valid source and an always-ready sink: a cycle-level model of the handshake."""
    n = len(stages)
    t, full = [0] * n, [False] * n
    outs, cycle = [], 0
    while len(outs) < vectors:
        in_valid = [True] + full[:-1]
        en = [in_valid[k] and not (stages[k][1](t[k]) and full[k]) for k in range(n)]
        ready = [en[k] and t[k] == stages[k][0] - 1 for k in range(n)]
        out_ready = ready[1:] + [True]
        if full[-1]:
            outs.append(cycle)
        for k in range(n):
            if full[k] and out_ready[k]:
                full[k] = False
            if en[k]:
                if t[k] == stages[k][0] - 1:
                    full[k] = True
                    t[k] = 0
                else:
                    t[k] += 1
        cycle += 1
    return max(b - a for a, b in zip(outs[-4:], outs[-3:]))


@dataclass(frozen=True, eq=False)
class FoldedPlan:
    """The folded hardware of one layer, decided in plain Python.

    Attributes
    ----------
    layer : FrozenLayer
    input_format : Format
    fold : int
    active : tuple of int
        The products ``j`` computed (the others are always 0).
    w_b, w_c : TernaryPlan
    products : ProductPlan
    requant : tuple of RequantPlan
        Per W_c lane (its accumulator already holds bias and rounding half: ``add = 0``).
    multiplications : int
        Multiplications per inference: the products that can be non-zero.
    x_buffer : BufferPlan or None
        The input in a RAM written by the previous layer, or None: read from the input
        stream's payload (registers) through a multiplexer.
    u_buffer, p_buffer : BufferPlan
        ``u`` and ``p`` between the stages.
    output_ram : bool
        The output goes into the next layer's ``x_buffer`` (else into the output stream's
        payload registers).
    """
    layer: FrozenLayer
    input_format: Format
    fold: int
    active: tuple
    w_b: TernaryPlan
    products: ProductPlan
    w_c: TernaryPlan
    requant: tuple
    multiplications: int
    x_buffer: BufferPlan
    u_buffer: BufferPlan
    p_buffer: BufferPlan
    output_ram: bool

    @property
    def stages(self):
        return (self.w_b, self.products, self.w_c)

    @property
    def latency(self):
        """Cycles from the first step of the W_b stage to the output, without stalls."""
        return sum(stage.cycles for stage in self.stages)

    @property
    def cycles_per_vector(self):
        """Steady-state cycles per vector of this layer alone."""
        return _period([(s.cycles, s.writes) for s in self.stages])

    @property
    def multipliers(self):
        return self.products.multipliers

    @property
    def adders(self):
        return sum(stage.adders for stage in self.stages)

    @property
    def rom_bits(self):
        return sum(stage.rom_bits for stage in self.stages)

    @property
    def buffers(self):
        return tuple(b for b in (self.x_buffer, self.u_buffer, self.p_buffer) if b)

    @property
    def ram_bits(self):
        """Bits of the RAMs holding ``x`` (when in a RAM), ``u`` and ``p``."""
        return sum(b.bits for b in self.buffers)

    @property
    def register_bits(self):
        """Flip-flops outside the ROMs and RAMs: counters, flags, pipeline registers,
        accumulators, products and the output registers."""
        bits = sum(b.counter_bits for b in self.buffers)
        for stage in (self.w_b, self.w_c):
            bits += _bits(stage.cycles - 1) + _bits(stage.chunks - 1) + _bits(stage.slices - 1)
            # delayed slice, first and last flags; valid
            bits += stage.depth * (_bits(stage.slices - 1) + 2) + 1
            bits += sum(_width(*r) for r in stage.acc) + stage.tree_bits
        if self.x_buffer is None:                                   # input multiplexer
            bits += sum(_width(*r) for r in self.w_b.z_ranges)
        p = self.products
        bits += _bits(p.cycles - 1) + 2 * _bits(p.steps - 1) + 2 + 1
        bits += (p.a_width if p.steps == 1 else 0) + sum(_width(*r) for r in p.m_ranges)
        if not self.output_ram:
            bits += self.layer.n_out * self.layer.output.width
        return bits

    def report(self):
        """The figures of this layer as a JSON-ready dict."""
        layer = self.layer
        return {
            "n_in": layer.n_in, "r": layer.r, "n_out": layer.n_out, "fold": self.fold,
            "cycles_per_vector": self.cycles_per_vector, "latency": self.latency,
            "multipliers": self.multipliers, "adders": self.adders,
            "multiplications_per_inference": self.multiplications,
            "rom_bits": self.rom_bits, "ram_bits": self.ram_bits,
            "register_bits": self.register_bits,
            "stages": {name: {"lanes": s.lanes if name != "products" else s.multipliers,
                              "terms_per_cycle": s.chunk if name != "products" else 1,
                              "steps": s.steps}
                       for name, s in zip(("w_b", "products", "w_c"), self.stages)},
            "input": self.input_format.to_json(), "output": layer.output.to_json(),
        }

    @classmethod
    def make(cls, layer, input_format, fold, *, group=None, output_ram=False):
        """The plan of ``layer`` for inputs in ``input_format`` folded by ``fold``.

        ``group``: the input comes from a RAM written ``group`` elements at a time by the
        previous layer (None: from the input stream's payload). ``output_ram``: the output
        goes to the next layer's RAM (then make that layer's plan with ``group =
        self.w_c.lanes``)."""
        if isinstance(fold, bool) or not isinstance(fold, int) or fold < 1:
            raise ValueError(f"fold must be a positive integer, not {fold!r}")
        fmt = input_format
        w_b, w_c = layer.w_b.astype(np.int64), layer.w_c.astype(np.int64)
        real = [j for j in range(layer.r) if layer.a_tilde[j] != 0 and w_b[j].any()
                and w_c[:, j].any()]
        active = real or [0]
        m = -(-len(active) // fold)
        b_plan = _ternary_plan(w_b[active], [fmt.min] * layer.n_in, [fmt.max] * layer.n_in,
                               [0] * len(active), fold, multiple=group or 1, divides=m)
        a = [int(layer.a_tilde[j]) if j in real else 0 for j in active]
        p_plan = _product_plan(a, list(b_plan.rows),
                               _half(layer.product_shift, layer.product_rounding),
                               layer.product_shift, fold)
        c_matrix = w_c[:, active] * np.array([j in real for j in active], dtype=np.int64)
        bias = [int(b) + _half(layer.shift, layer.rounding) for b in layer.bias]
        c_plan = _ternary_plan(c_matrix, [lo for lo, _ in p_plan.outputs],
                               [hi for _, hi in p_plan.outputs], bias, fold, multiple=m)
        requant = tuple(RequantPlan(lo=lo, hi=hi, add=0, shift=layer.shift, relu=layer.relu,
                                    output=layer.output) for lo, hi in c_plan.final)
        x_buffer = None if group is None else \
            _buffer([(fmt.min, fmt.max)], b_plan, group)
        u_buffer = BufferPlan(chunk=m, depth=p_plan.steps, group=b_plan.lanes,
                              width=_width(*_union(b_plan.rows)),
                              signed=_union(b_plan.rows)[0] < 0)
        return cls(layer=layer, input_format=fmt, fold=fold, active=tuple(active),
                   w_b=b_plan, products=p_plan, w_c=c_plan, requant=requant,
                   multiplications=len(real), x_buffer=x_buffer, u_buffer=u_buffer,
                   p_buffer=_buffer(p_plan.outputs, c_plan, m), output_ram=output_ram)


# --- hardware (translation of the plans) ------------------------------------------------------

def _slices(value, ranges):
    """Assignable bit slices of a flat buffer ``value``, one per range."""
    out, offset = [], 0
    for lo, hi in ranges:
        width = _width(lo, hi)
        out.append(value[offset:offset + width])
        offset += width
    return out


def _exact(value, lo, hi):
    """``value`` (known to lie in ``[lo, hi]``) in the exact shape of that range."""
    if lo == hi:
        return Const(lo, _range_shape(lo, hi))
    return _fit(value, lo, hi)


def _flat(ranges):
    return unsigned(sum(_width(lo, hi) for lo, hi in ranges))


def _rom(m, name, words, width, en, addr):
    """A ROM read synchronously (``en``, ``addr``): its data is valid the next cycle. With one
    word, a constant."""
    if len(words) == 1:
        return Const(words[0], width)
    m.submodules[name] = mem = Memory(shape=unsigned(width), depth=len(words), init=words)
    port = mem.read_port()
    m.d.comb += [port.en.eq(en), port.addr.eq(addr)]
    return port.data


class _Ram:
    """The RAM of a :class:`BufferPlan` with its write port (producer) and read port
    (consumer)."""

    def __init__(self, plan):
        self.plan = plan
        self.memory = Memory(shape=unsigned(plan.chunk * plan.width), depth=plan.depth, init=[])
        self.write = self.memory.write_port(granularity=plan.width)
        self.read = self.memory.read_port()

    def fields(self, m, en, addr):
        """The fields of the word at ``addr`` (read when ``en``), valid the next cycle."""
        plan, port = self.plan, self.read
        m.d.comb += [port.en.eq(en), port.addr.eq(addr)]
        parts = [port.data[k * plan.width:(k + 1) * plan.width] for k in range(plan.chunk)]
        return [part.as_signed() if plan.signed else part for part in parts]

    def writer(self, m, write, last, values):
        """Write ``values`` (one group) when ``write``; ``last`` marks the vector's last group.
        Groups go to consecutive fields, word after word."""
        plan, port = self.plan, self.write
        addr = Signal(range(max(plan.depth, 2)), name="waddr")
        group = Signal(range(max(plan.groups, 2)), name="wgroup")
        shape = signed(plan.width) if plan.signed else unsigned(plan.width)
        word = Cat(*(_resize(v, shape) for v in values))
        m.d.comb += [port.addr.eq(addr), port.data.eq(word.replicate(plan.groups)),
                     port.en.eq(Cat(*((write & (group == g)).replicate(plan.group)
                                      for g in range(plan.groups))))]
        with m.If(write):
            with m.If(last):
                m.d.sync += [addr.eq(0), group.eq(0)]
            with m.Elif(group == plan.groups - 1):
                m.d.sync += [addr.eq(addr + 1), group.eq(0)]
            with m.Else():
                m.d.sync += group.eq(group + 1)


class _Stage(wiring.Component):
    """Common control of a stage: step counter ``t`` over ``cycles``, stall on a write into a
    full output buffer, take the input in the last cycle. A side held in a RAM has a stream
    without payload."""

    def __init__(self, in_shape, out_shape):
        super().__init__({"i": In(stream.Signature(in_shape)),
                          "o": Out(stream.Signature(out_shape))})

    def _control(self, m, cycles, write):
        t = Signal(range(cycles), name="t")
        en = Signal()
        last = t == cycles - 1
        m.d.comb += [en.eq(self.i.valid & ~(write & self.o.valid)),
                     self.i.ready.eq(en & last)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(en):
            m.d.sync += t.eq(Mux(last, 0, t + 1))
            with m.If(last):
                m.d.sync += self.o.valid.eq(1)
        return t, en, last


class _TernaryStage(_Stage):
    """Translation of a :class:`TernaryPlan`. The input comes from the ``i`` payload through a
    multiplexer, or from the RAM ``read``; the output goes to the ``o`` payload registers or
    to the RAM ``write``. ``requant`` (per lane) maps finished rows to the output format, else
    rows keep their exact range."""

    def __init__(self, plan, requant=None, *, read=None, write=None):
        self.plan, self.requant, self.read, self.write = plan, requant, read, write
        if requant is not None:
            fmt = requant[0].output
            self.out_ranges = [(fmt.min, fmt.max)] * len(plan.rows)
        else:
            self.out_ranges = list(plan.rows)
        super().__init__(unsigned(0) if read else _flat(plan.inputs),
                         unsigned(0) if write else _flat(self.out_ranges))

    def elaborate(self, platform):
        m = Module()
        p = self.plan
        L, K, S, Cc, N = p.lanes, p.chunk, p.slices, p.chunks, p.steps
        write = Signal()
        t, en, last = self._control(m, p.cycles, write)
        c = Signal(range(max(Cc, 2)), name="c")
        s = Signal(range(max(S, 2)), name="s")
        step = t < N
        with m.If(en & step):
            with m.If(c == Cc - 1):
                m.d.sync += [c.eq(0), s.eq(Mux(s == S - 1, 0, s + 1))]
            with m.Else():
                m.d.sync += c.eq(c + 1)
        # stage 0: ROM reads, input read (RAM) or multiplexer into registers
        codes = _rom(m, "codes", list(p.codes), 2 * L * K, en, Mux(step, t, 0))
        if self.read is not None:
            fields = self.read.fields(m, en, c)
            zreg = [_exact(fields[k], lo, hi) for k, (lo, hi) in enumerate(p.z_ranges)]
        else:
            z = _unpack(self.i.payload, p.inputs)
            zreg = []
            for k, (lo, hi) in enumerate(p.z_ranges):
                options = [z[cc * K + k] if cc * K + k < len(z) else Const(0)
                           for cc in range(Cc)]
                reg = Signal(_range_shape(lo, hi), name=f"z{k}", reset_less=True)
                with m.If(en):
                    m.d.sync += reg.eq(options[0] if Cc == 1 else Array(options)[c])
                zreg.append(reg)
        depth = p.depth
        firsts, lasts, slices = [c == 0], [step & (c == Cc - 1)], [s]
        for j in range(1, depth + 1):
            firsts.append(Signal(name=f"first{j}"))
            lasts.append(Signal(name=f"last{j}"))
            slices.append(Signal.like(s, name=f"s{j}"))
            with m.If(en):
                m.d.sync += [firsts[j].eq(firsts[j - 1]), lasts[j].eq(lasts[j - 1]),
                             slices[j].eq(slices[j - 1])]
        first, last_d, s_d = firsts[depth - 1], lasts[depth], slices[depth]
        m.d.comb += write.eq(last_d)
        if p.init_words is not None:     # read so that it arrives with the accumulation
            init = _unpack(_rom(m, "init", list(p.init_words), p.init_width, en,
                                slices[depth - 2]), p.init_ranges)
        else:
            init = [lo for lo, _ in p.init_ranges]

        def hold(items):
            held = []
            for value, lo, hi in items:
                if lo != hi:
                    reg = Signal(_range_shape(lo, hi), reset_less=True)
                    with m.If(en):
                        m.d.sync += reg.eq(value)
                    value = reg
                held.append((value, lo, hi))
            return held

        def add(a, b):
            lo, hi = a[1] + b[1], a[2] + b[2]
            return (_exact(a[0] + b[0], lo, hi), lo, hi)

        # stage 1 on: each lane adds K ternary terms (a pipelined tree) to its accumulator
        results = []
        for lane in range(L):
            acc = Signal(_range_shape(*p.acc[lane]), name=f"acc{lane}", reset_less=True)
            items = []
            for k in range(K):
                lo, hi = p.terms[lane][k]
                bit = 2 * (lane * K + k)
                nz, neg = codes[bit], codes[bit + 1]
                value = Mux(nz, Mux(neg, -zreg[k], zreg[k]), 0)
                items.append((_exact(value, lo, hi), lo, hi))
            total, _ = _tree(items, add, hold)
            if Cc == 1:
                base_lo, base_hi = p.init_ranges[lane]
                base = _exact(init[lane], base_lo, base_hi)
            else:
                base_lo, base_hi = _union([p.acc[lane], p.init_ranges[lane]])
                base = _fit(Mux(first, init[lane], acc), base_lo, base_hi)
            with m.If(en):
                m.d.sync += acc.eq(_fit(base + total[0], *p.acc[lane]))
            value = _exact(acc, *p.final[lane])
            if self.requant is not None:
                value = requantize(value, self.requant[lane])
            results.append(value)
        # stage 2: finished rows into the output RAM or registers
        if self.write is not None:
            self.write.writer(m, en & last_d, last, results)
            return m
        out = _slices(self.o.payload, self.out_ranges)
        for slice_ in range(S):
            with m.If(en & last_d & (s_d == slice_)):
                for lane in range(L):
                    i = slice_ * L + lane
                    if i < len(out):
                        value = results[lane]
                        if self.requant is None:
                            value = _exact(value, *p.rows[i])
                        m.d.sync += out[i].eq(value)
        return m


class _ProductStage(_Stage):
    """Translation of a :class:`ProductPlan`: ``u`` from the RAM ``read``, ``p`` into the RAM
    ``write``."""

    def __init__(self, plan, *, read, write):
        self.plan, self.read, self.write = plan, read, write
        super().__init__(unsigned(0), unsigned(0))

    def elaborate(self, platform):
        m = Module()
        p = self.plan
        M, N = p.multipliers, p.steps
        write = Signal()
        t, en, last = self._control(m, p.cycles, write)
        step = t < N
        item = Signal(range(max(N, 2)), name="item")
        m.d.comb += item.eq(Mux(step, t, 0))
        a = _unpack(_rom(m, "a_tilde", list(p.a_words()), p.a_width, en, item), p.a_ranges)
        u = self.read.fields(m, en, item)
        valid1, valid2 = Signal(), Signal()
        with m.If(en):
            m.d.sync += [valid1.eq(step), valid2.eq(valid1)]
        m.d.comb += write.eq(valid2)
        results = []
        for k in range(M):
            areg = a[k]
            if N == 1:                       # a constant ã: register it like the ROM would
                areg = Signal(_range_shape(*p.a_ranges[k]), name=f"a{k}", reset_less=True)
                with m.If(en):
                    m.d.sync += areg.eq(a[k])
            ureg = _exact(u[k], *p.u_ranges[k])
            product = Signal(_range_shape(*p.m_ranges[k]), name=f"product{k}",
                             reset_less=True)
            with m.If(en):
                m.d.sync += product.eq(_exact(areg * ureg, *p.m_ranges[k]))
            lo, hi = p.m_ranges[k]
            rounded = product
            if p.half:
                rounded = _fit(product + p.half, lo + p.half, hi + p.half)
            if p.shift:
                rounded = _exact(Value.cast(rounded) >> p.shift, (lo + p.half) >> p.shift,
                                 (hi + p.half) >> p.shift)
            results.append(rounded)
        self.write.writer(m, en & valid2, last, results)
        return m


def _stages(plans, last_output_ram=False):
    """The stages and RAMs of consecutive layers: ``(stages, rams)``, in order."""
    stages, rams, x_ram = [], [], None
    for index, plan in enumerate(plans):
        u_ram, p_ram = _Ram(plan.u_buffer), _Ram(plan.p_buffer)
        nxt = _Ram(plans[index + 1].x_buffer) if index + 1 < len(plans) else None
        stages += [_TernaryStage(plan.w_b, read=x_ram, write=u_ram),
                   _ProductStage(plan.products, read=u_ram, write=p_ram),
                   _TernaryStage(plan.w_c, plan.requant, read=p_ram, write=nxt)]
        rams += [r for r in (x_ram, u_ram, p_ram) if r is not None]
        x_ram = nxt
    return stages, rams


def _chain(m, stages, rams, source, sink):
    """Add ``stages`` and ``rams`` to ``m`` and connect ``source`` → stages → ``sink``."""
    names = ("w_b", "products", "w_c")
    for index, stage in enumerate(stages):
        m.submodules[f"layer{index // 3}_{names[index % 3]}"] = stage
    for index, ram in enumerate(rams):
        m.submodules[f"ram{index}"] = ram.memory
    first, last = stages[0], stages[-1]
    m.d.comb += [first.i.payload.eq(source.payload.as_value()),
                 first.i.valid.eq(source.valid), source.ready.eq(first.i.ready),
                 sink.payload.as_value().eq(last.o.payload),
                 sink.valid.eq(last.o.valid), last.o.ready.eq(sink.ready)]
    for a, b in zip(stages, stages[1:]):
        wiring.connect(m, a.o, b.i)


class FoldedLayer(wiring.Component):
    """A frozen Strassen layer, folded (see the module docstring).

    The input is read in place while the layer works on it: a source must hold ``i.valid``
    and ``i.payload`` until ``i.ready`` (as this layer's own output does).

    Parameters
    ----------
    layer : FrozenLayer
    input_format : Format
    fold : int
        Steps per stage and vector, at most (``F >= 1``).
    plan : FoldedPlan, optional
        A plan already made (then ``fold`` is unused); its input and output must be streams
        (``group=None``, ``output_ram=False``).

    Attributes
    ----------
    i : stream, payload ``ArrayLayout(input shape, n_in)``
    o : stream, payload ``ArrayLayout(output shape, n_out)``
    plan : FoldedPlan
    latency, cycles_per_vector : int
    """

    def __init__(self, layer, input_format, fold=None, *, plan=None):
        self.plan = plan or FoldedPlan.make(layer, input_format, fold)
        if self.plan.x_buffer is not None or self.plan.output_ram:
            self._MustUse__silence = True        # never elaborated: no warning about it
            raise ValueError("a FoldedLayer's plan must take and give streams "
                             "(make it with group=None, output_ram=False)")
        self.latency = self.plan.latency
        self.cycles_per_vector = self.plan.cycles_per_vector
        super().__init__(vector_ports(input_format, layer.n_in, layer.output, layer.n_out))

    def elaborate(self, platform):
        m = Module()
        stages, rams = _stages([self.plan])
        _chain(m, stages, rams, self.i, self.o)
        return m


class _Latch(wiring.Component):
    """Holds one input vector: takes it when empty, gives it on until taken."""

    def __init__(self, signature):
        super().__init__({"i": In(signature), "o": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(self.i.payload)]
        return m


def _plans(net, fold):
    """The plans of the layers of ``net``: layer k+1 reads its input from the RAM that layer
    k writes (so its W_b chunks are multiples of layer k's W_c lanes)."""
    plans, group = [], None
    for index, (layer, fmt) in enumerate(zip(net.layers, net.layer_inputs())):
        plan = FoldedPlan.make(layer, fmt, fold, group=group,
                               output_ram=index + 1 < len(net.layers))
        plans.append(plan)
        group = plan.w_c.lanes
    return plans


def _timing(plans):
    """Latency and steady-state cycles per vector of the input latch and the layers."""
    latency = 1 + sum(plan.latency for plan in plans)
    period = _period([(1, lambda t: True)] + [(s.cycles, s.writes) for plan in plans
                                              for s in plan.stages])
    return latency, period


class FoldedNetwork(wiring.Component):
    """All layers of a :class:`~strassen_hw.frozen.FrozenNetwork`, folded and chained, behind
    an input latch. Same ports as :class:`~strassen_hw.hw.network.StrassenNetwork`.

    Parameters
    ----------
    net : FrozenNetwork
    fold : int
        Steps per stage and vector, at most (see the module docstring).

    Attributes
    ----------
    i, o : streams of ``ArrayLayout`` payloads, as StrassenNetwork's
    plans : list of FoldedPlan
        One per layer; layers hand their vectors over in RAMs.
    latency : int
        Cycles from an accepted input vector to its output vector, without stalls.
    cycles_per_vector : int
        Steady-state cycles between output vectors at full rate.
    """

    def __init__(self, net, fold):
        self.net, self.fold = net, fold
        self.plans = _plans(net, fold)
        self.latency, self.cycles_per_vector = _timing(self.plans)
        in_sig = stream.Signature(data.ArrayLayout(format_shape(net.input), net.n_in))
        super().__init__({
            "i": In(in_sig),
            "o": Out(stream.Signature(data.ArrayLayout(format_shape(net.output), net.n_out))),
        })
        self._in_sig = in_sig

    def elaborate(self, platform):
        m = Module()
        m.submodules.latch = latch = _Latch(self._in_sig)
        wiring.connect(m, wiring.flipped(self.i), latch.i)
        stages, rams = _stages(self.plans)
        _chain(m, stages, rams, latch.o, self.o)
        return m


_TOTALS = ("multipliers", "adders", "multiplications_per_inference", "rom_bits", "ram_bits",
           "register_bits")


def folded_report(net, fold):
    """The cost of ``net`` folded by ``fold``, JSON-ready: per layer and in total
    ``cycles_per_vector``, ``latency``, ``multipliers`` and ``adders`` (physical),
    ``multiplications_per_inference``, ``rom_bits``, ``register_bits``."""
    plans = _plans(net, fold)
    latency, period = _timing(plans)
    layers = [plan.report() for plan in plans]
    total = {key: sum(item[key] for item in layers) for key in _TOTALS}
    total["register_bits"] += net.n_in * net.input.width + 1          # the input latch
    total.update(fold=fold, cycles_per_vector=period, latency=latency,
                 n_in=net.n_in, n_out=net.n_out, r=sum(item["r"] for item in layers),
                 input=net.input.to_json(), output=net.output.to_json())
    return {"name": net.name, "layers": layers, "total": total}


def generate_folded_verilog(net, fold):
    """The Verilog text of ``net`` folded by ``fold``: a top module named ``net.name`` with
    ports ``clk``, ``rst`` and the streams ``i`` / ``o`` (as
    :func:`~strassen_hw.hw.generate.generate_verilog`). Byte-identical for identical input."""
    return verilog.convert(FoldedNetwork(net, fold), name=net.name, emit_src=False)
