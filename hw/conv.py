"""A frozen convolution layer as a stream of pixels through line buffers and the patch layer.

::

    pixels ─▶ line buffer (K_h rows) ─▶ windows ─▶ StrassenLayer(patch)
           ─▶ two patch-row banks ─▶ pixels (row-major, cropped) ─▶ pooling ─▶ pixels

One pixel (all channels) per transfer, rows top to bottom, left to right (the pixel order of
:mod:`strassen_hw.frozen_conv`). The line buffer holds ``K_h = s·(p-1)+k`` image rows in a ring;
patch row I needs the padded rows ``s·p·I - pad .. s·p·I - pad + K_h - 1``, and input row r may
overwrite its slot (r mod K_h) only once the row it replaces (r - K_h) is above the window of
the current patch row. Windows read zeros outside the image (padding and the rows or columns a
partial last patch reaches past it). Each window goes through the embedded linear layer's
:class:`~.layer.StrassenLayer` (the same ``W_b`` tree, r multipliers and ``W_c`` tree as a
linear layer); the ``P_w`` patches of a patch row are collected in a bank, then sent out as
pixels, row-major, the outputs past the image dropped; pooling (max: comparisons, avg: a sum and a
shift) works on that pixel stream. Every stage waits on its stream handshakes, so back-pressure
stalls without loss.

The schedule: a patch row's windows go out one per clock as soon as the rows they read are in
and one of two patch-row banks is free; the patches come back into that bank, and a full bank
goes out as pixels (one per clock) while the next patch row's windows fill the other bank and
the input keeps filling the line buffer (the next image's too, once the last patch row of an
image has been sent). :func:`conv_cycles` gives its cycles per image and latency.

With ``fold = F > 1`` the patch layer is a :class:`~.folded.FoldedLayer` instead: it takes a
window only every ``F`` or so cycles and answers after its own latency. Nothing else changes:
a window is held (valid, payload) until ``patch.i.ready`` (the line buffer rows it reads cannot
be overwritten meanwhile), and patches are collected when ``patch.o.valid`` (always ready, a
bank being free for every window sent). :func:`conv_cycles` models fold 1 only.
:class:`PixelSerializer` and :class:`PixelDeserializer` turn whole vectors into pixel streams and
back, so a network with convolutions keeps the vector stream ports of
:class:`~.network.StrassenNetwork`.
"""

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .folded import FoldedLayer
from .layer import StrassenLayer, format_shape

__all__ = ["StreamingConv", "PoolStream", "PixelSerializer", "PixelDeserializer",
           "line_buffer_bits", "patch_bank_bits", "conv_cycles"]


def _pixels(fmt, channels):
    return stream.Signature(data.ArrayLayout(format_shape(fmt), channels))


def _counter(limit):
    """An unsigned signal that counts 0..limit."""
    return Signal(range(max(limit, 1) + 1))


def line_buffer_bits(layer, input_format):
    """Bits of the line buffer of ``layer``: ``K_h`` rows of ``W·C`` input values."""
    g = layer.geometry
    return g.window[0] * g.width * g.in_channels * input_format.width


def patch_bank_bits(layer):
    """Bits of the two patch-row banks of ``layer``: ``2·P_w`` patches of ``p·p·C_out``
    output values."""
    g = layer.geometry
    return 2 * g.patches[1] * g.p * g.p * g.out_channels * layer.output.width


def conv_cycles(geometry, patch_latency, images=6):
    """Cycles per image and latency of :class:`StreamingConv`, from its schedule, exactly.

    With its input always valid and its output always ready: input pixels enter one per clock
    while the line buffer has room (row r once ``r < top_row + K_h``, the top of the next
    patch row to send); patch row I waits until the rows its windows read are in and one of
    the two patch-row banks is free, sends its ``P_w`` windows (one per clock) and moves on;
    its patches come back ``patch_latency`` cycles later into that bank, which is emitted
    (one pixel per clock; pooling passes them on in the same cycle) once full and once the
    bank before it is out. After the last patch row's windows the layer takes the rest of
    the image and starts on the next one while the last rows are still being emitted.

    Parameters
    ----------
    geometry : ConvGeometry
    patch_latency : int
        Pipeline latency of the patch layer (:attr:`.layer.LayerPlan.latency`).
    images : int
        Images streamed back to back (at least 3; the schedule is periodic from the third).

    Returns
    -------
    (int, int)
        Cycles per image (between the first input pixels of the last two of ``images``
        images, the steady state) and latency (from the first image's first input pixel to
        its last output pixel, into an idle layer).
    """
    g = geometry
    kh, sh, pad_h = g.window[0], g.stride[0], g.padding[0]
    (ph, pw), (h_out, w_out), p = g.patches, g.conv_hw, g.p
    tops = [sh * p * i - pad_h for i in range(ph + 1)]   # top_row before each patch row
    if g.pool == "none":
        y, x = h_out - 1, w_out - 1
    else:
        y, x = (h_out // g.pool_size) * g.pool_size - 1, (w_out // g.pool_size) * g.pool_size - 1
    free, emitted = 0, [-1, -1]  # free: the producer's first WAIT cycle; emitted: last cycles
    starts, latency = [], None   # of the emission of the two patch rows before
    for _ in range(images):
        since, arrived = [free], []   # since[J]: first cycle with top_row = tops[J]

        def arrive(rows, done=None):
            while len(arrived) < rows:
                r = len(arrived)
                allowed = next((t for top, t in zip(tops, since) if r < top + kh), done)
                arrived.append(max(arrived[-1] if arrived else free, allowed) + g.width)

        emits = []
        for i in range(ph):
            need = min(tops[i] + kh, g.height)
            arrive(need)
            send = max(free, arrived[need - 1] if need > 0 else free, emitted[-2] + 1) + 1
            since.append(send + pw)
            emits.append(max(send + pw + patch_latency, emitted[-1] + 1))
            emitted.append(emits[-1] + (p if i < ph - 1 else h_out - p * (ph - 1)) * w_out - 1)
            free = send + pw
        arrive(g.height, done=free)
        starts.append(arrived[0] - g.width)
        if latency is None:
            latency = emits[y // p] + (y % p) * w_out + x - starts[0]
        free = max(free, arrived[-1]) + 1
    return starts[-1] - starts[-2], latency


class PixelSerializer(wiring.Component):
    """A vector of ``pixels·channels`` values in, ``pixels`` pixel transfers out."""

    def __init__(self, fmt, pixels, channels):
        self.n, self.c, self.w = pixels, channels, fmt.width
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(format_shape(fmt), pixels * channels))),
            "o": Out(_pixels(fmt, channels)),
        })

    def elaborate(self, platform):
        m = Module()
        held = Signal(self.n * self.c * self.w)
        full = Signal()
        k = _counter(self.n - 1)
        m.d.comb += [self.i.ready.eq(~full), self.o.valid.eq(full),
                     self.o.payload.as_value().eq(held.word_select(k, self.c * self.w))]
        with m.If(self.i.valid & ~full):
            m.d.sync += [held.eq(self.i.payload.as_value()), full.eq(1), k.eq(0)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += k.eq(k + 1)
            with m.If(k == self.n - 1):
                m.d.sync += full.eq(0)
        return m


class PixelDeserializer(wiring.Component):
    """``pixels`` pixel transfers in, one vector of ``pixels·channels`` values out."""

    def __init__(self, fmt, pixels, channels):
        self.n, self.c, self.w = pixels, channels, fmt.width
        super().__init__({
            "i": In(_pixels(fmt, channels)),
            "o": Out(stream.Signature(data.ArrayLayout(format_shape(fmt), pixels * channels))),
        })

    def elaborate(self, platform):
        m = Module()
        store = Array(Signal(self.c * self.w, name=f"pixel{k}") for k in range(self.n))
        full = Signal()
        k = _counter(self.n - 1)
        m.d.comb += [self.i.ready.eq(~full), self.o.valid.eq(full),
                     self.o.payload.as_value().eq(Cat(*store))]
        with m.If(self.i.valid & ~full):
            m.d.sync += [store[k].eq(self.i.payload.as_value()), k.eq(k + 1)]
            with m.If(k == self.n - 1):
                m.d.sync += [full.eq(1), k.eq(0)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        return m


class PoolStream(wiring.Component):
    """``q×q`` pooling with stride q of a pixel stream of ``height × width`` images (the last
    ``height mod q`` rows and ``width mod q`` columns dropped): ``max`` keeps the largest value
    per channel (comparisons), ``avg`` the sum shifted right by ``2·log2 q`` (floor)."""

    def __init__(self, fmt, height, width, channels, kind, q):
        self.fmt, self.h, self.w, self.c, self.kind, self.q = fmt, height, width, channels, kind, q
        super().__init__({"i": In(_pixels(fmt, channels)), "o": Out(_pixels(fmt, channels))})

    def elaborate(self, platform):
        m = Module()
        q, fmt = self.q, self.fmt
        hq, wq = self.h // q, self.w // q
        extra = 0 if self.kind == "max" else 2 * (q.bit_length() - 1)
        acc_shape = (signed if fmt.signed else unsigned)(fmt.width + extra)
        acc = [Array(Signal(acc_shape, name=f"acc{c}_{x}") for x in range(wq))
               for c in range(self.c)]
        y, x = _counter(self.h - 1), _counter(self.w - 1)
        yq, xq, big_x = _counter(q - 1), _counter(q - 1), _counter(wq)
        area = (y < hq * q) & (x < wq * q)
        first = (xq == 0) & (yq == 0)
        emit = area & (xq == q - 1) & (yq == q - 1)
        new = []
        for c in range(self.c):
            v, a = self.i.payload[c], acc[c][big_x]
            combined = Mux(v > a, v, a) if self.kind == "max" else a + v
            value = Signal(acc_shape, name=f"new{c}")
            m.d.comb += value.eq(Mux(first, v, combined))
            new.append(value)
            m.d.comb += self.o.payload[c].eq(value if self.kind == "max" else value >> extra)
        m.d.comb += [self.o.valid.eq(self.i.valid & emit), self.i.ready.eq(~emit | self.o.ready)]
        with m.If(self.i.valid & self.i.ready):
            with m.If(area):
                m.d.sync += [acc[c][big_x].eq(new[c]) for c in range(self.c)]
            last_x = x == self.w - 1
            m.d.sync += [x.eq(Mux(last_x, 0, x + 1)),
                         xq.eq(Mux(last_x | (xq == q - 1), 0, xq + 1)),
                         big_x.eq(Mux(last_x, 0, Mux(xq == q - 1, big_x + 1, big_x)))]
            with m.If(last_x):
                last_y = y == self.h - 1
                m.d.sync += [y.eq(Mux(last_y, 0, y + 1)),
                             yq.eq(Mux(last_y | (yq == q - 1), 0, yq + 1))]
        return m


class StreamingConv(wiring.Component):
    """A :class:`~strassen_hw.frozen.FrozenConvLayer` on pixel streams (module docstring).

    Parameters
    ----------
    layer : FrozenConvLayer
    input_format : Format
    levels_per_stage, share, trees, module_prefix, plan
        As for :class:`~.layer.StrassenLayer` (of the patch layer; unused with ``fold > 1``).
    fold : int
        1 (default): the patch layer is a :class:`~.layer.StrassenLayer`, one window per
        clock; ``F > 1``: a :class:`~.folded.FoldedLayer` folded by ``F``.

    Attributes
    ----------
    i : stream of input pixels, payload ``ArrayLayout(input shape, in_channels)``
    o : stream of output pixels (after pooling), ``ArrayLayout(output shape, out_channels)``
    patch : StrassenLayer or FoldedLayer
    trees : list of TernaryAdderTree
        Empty with ``fold > 1``.
    line_buffer_bits : int
    """

    def __init__(self, layer, input_format, *, levels_per_stage=2, share=True, trees="verilog",
                 module_prefix="layer", plan=None, fold=1):
        self.layer, self.input_format = layer, input_format
        if fold > 1:
            self.patch = FoldedLayer(layer.patch, input_format, fold)
            self.trees = []
        else:
            self.patch = StrassenLayer(layer.patch, input_format,
                                       levels_per_stage=levels_per_stage, share=share,
                                       trees=trees, module_prefix=module_prefix, plan=plan)
            self.trees = self.patch.trees
        self.line_buffer_bits = line_buffer_bits(layer, input_format)
        g = layer.geometry
        self.pool = (None if g.pool == "none" else
                     PoolStream(layer.output, *g.conv_hw, g.out_channels, g.pool, g.pool_size))
        super().__init__({"i": In(_pixels(input_format, g.in_channels)),
                          "o": Out(_pixels(layer.output, g.out_channels))})

    def elaborate(self, platform):
        m = Module()
        g, patch = self.layer.geometry, self.patch
        m.submodules.patch = patch
        (kh, kw), (sh, sw), (pad_h, pad_w) = g.window, g.stride, g.padding
        height, width, p = g.height, g.width, g.p
        (ph, pw), (h_out, w_out) = g.patches, g.conv_hw
        pix = g.in_channels * self.input_format.width
        out_pix = g.out_channels * self.layer.output.width

        buf = Array(Array(Signal(pix, name=f"line{r}_{c}") for c in range(width))
                    for r in range(kh))
        # --- input: pixels into the ring of K_h rows ---------------------------------------
        in_row, in_col, wslot = _counter(height), _counter(width - 1), _counter(kh - 1)
        span = max(abs(pad_h), sh * p * ph + kh + height) + 1
        top_row = Signal(signed(span.bit_length() + 1), init=-pad_h)    # s·p·I - pad_h
        top_slot = Signal(range(max(kh, 2)), init=(-pad_h) % kh)        # top_row mod K_h
        done = Signal()
        can_write = (in_row < height) & (done | (in_row < top_row + kh))
        m.d.comb += self.i.ready.eq(can_write)
        with m.If(self.i.valid & can_write):
            m.d.sync += buf[wslot][in_col].eq(self.i.payload.as_value())
            with m.If(in_col == width - 1):
                m.d.sync += [in_col.eq(0), in_row.eq(in_row + 1),
                             wslot.eq(Mux(wslot == kh - 1, 0, wslot + 1))]
            with m.Else():
                m.d.sync += in_col.eq(in_col + 1)

        # --- windows of the current patch row ----------------------------------------------
        j = _counter(pw - 1)
        left = Signal(signed((sw * p * pw + width + pad_w).bit_length() + 1), init=-pad_w)
        elements = []
        for i in range(kh):
            row = top_row + i
            slot = Signal(range(max(kh, 2)), name=f"slot{i}")
            m.d.comb += slot.eq(Mux(top_slot + i >= kh, top_slot + i - kh, top_slot + i))
            row_ok = (row >= 0) & (row < height)
            for jj in range(kw):
                col = left + jj
                ok = row_ok & (col >= 0) & (col < width)
                index = Signal(range(max(width, 2)), name=f"col{i}_{jj}")
                m.d.comb += index.eq(Mux(ok, col[:index.shape().width], 0))
                value = Signal(pix, name=f"win{i}_{jj}")
                m.d.comb += value.eq(Mux(ok, buf[slot][index], 0))
                elements.append(value)
        m.d.comb += patch.i.payload.as_value().eq(Cat(*elements))

        # --- patch outputs, double-buffered by patch row, then pixels ----------------------
        # The producer (WAIT/SEND/DONE) sends a patch row's windows into a free bank; the
        # patches come back into that bank in order; the emitter sends a full bank out as
        # pixels while the producer fills the other one.
        store = Array(Array(Signal(p * p * out_pix, name=f"patch{b}_{k}") for k in range(pw))
                      for b in range(2))
        busy = Array(Signal(name=f"busy{b}") for b in range(2))    # sent into, not yet emitted
        full = Array(Signal(name=f"full{b}") for b in range(2))    # all its patches are back
        sbank, rbank, ebank = Signal(), Signal(), Signal()
        received = _counter(pw - 1)
        send_i, emit_i = _counter(ph - 1), _counter(ph - 1)
        a, x, ej, eb = _counter(p - 1), _counter(w_out - 1), _counter(pw - 1), _counter(p - 1)
        last_a = Mux(emit_i == ph - 1, h_out - p * (ph - 1) - 1, p - 1)
        conv_o = stream.Signature(data.ArrayLayout(format_shape(self.layer.output),
                                                   g.out_channels)).create()
        m.d.comb += patch.o.ready.eq(1)     # a bank is free for every window sent
        with m.If(patch.o.valid):
            m.d.sync += [store[rbank][received].eq(patch.o.payload.as_value()),
                         received.eq(received + 1)]
            with m.If(received == pw - 1):
                m.d.sync += [received.eq(0), full[rbank].eq(1), rbank.eq(~rbank)]
        m.d.comb += conv_o.payload.as_value().eq(
            store[ebank][ej].word_select(a * p + eb, out_pix))
        m.d.comb += conv_o.valid.eq(full[ebank])
        with m.If(conv_o.valid & conv_o.ready):
            last_x = x == w_out - 1
            m.d.sync += [x.eq(Mux(last_x, 0, x + 1)),
                         eb.eq(Mux(last_x | (eb == p - 1), 0, eb + 1)),
                         ej.eq(Mux(last_x, 0, Mux(eb == p - 1, ej + 1, ej)))]
            with m.If(last_x):
                m.d.sync += a.eq(a + 1)
                with m.If(a == last_a):
                    m.d.sync += [a.eq(0), full[ebank].eq(0), busy[ebank].eq(0),
                                 ebank.eq(~ebank),
                                 emit_i.eq(Mux(emit_i == ph - 1, 0, emit_i + 1))]
        rows_ready = in_row >= Mux(top_row + kh < height, top_row + kh, height)
        with m.FSM():
            with m.State("WAIT"):
                with m.If(rows_ready & ~busy[sbank]):
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += patch.i.valid.eq(1)
                with m.If(patch.i.ready):
                    m.d.sync += [j.eq(j + 1), left.eq(left + sw * p)]
                    with m.If(j == pw - 1):
                        m.d.sync += [j.eq(0), left.eq(-pad_w), top_row.eq(top_row + sh * p),
                                     top_slot.eq(Mux(top_slot + (sh * p) % kh >= kh,
                                                     top_slot + (sh * p) % kh - kh,
                                                     top_slot + (sh * p) % kh)),
                                     busy[sbank].eq(1), sbank.eq(~sbank)]
                        with m.If(send_i == ph - 1):
                            m.d.sync += [send_i.eq(0), done.eq(1)]
                            m.next = "DONE"
                        with m.Else():
                            m.d.sync += send_i.eq(send_i + 1)
                            m.next = "WAIT"
            with m.State("DONE"):
                with m.If(in_row == height):      # the whole image is in: start the next one
                    m.d.sync += [in_row.eq(0), in_col.eq(0), wslot.eq(0), done.eq(0),
                                 top_row.eq(-pad_h), top_slot.eq((-pad_h) % kh)]
                    m.next = "WAIT"

        if self.pool is None:
            wiring.connect(m, conv_o, wiring.flipped(self.o))
        else:
            m.submodules.pool = self.pool
            wiring.connect(m, conv_o, self.pool.i)
            wiring.connect(m, self.pool.o, wiring.flipped(self.o))
        return m
