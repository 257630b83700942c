"""The board's end of the host link: UART, request frames in, response frames out.

:class:`FrameLink` turns request frames (:mod:`.protocol`) arriving on ``rx`` into vectors on
its ``o`` stream, and vectors from its ``i`` stream into result frames on ``tx``. Every request
is checked (start byte, length, CRC, timeout between bytes); a failed one is answered with an
error frame and the receiver waits for the next start byte.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .protocol import (ERROR_CRC, ERROR_LENGTH, ERROR_OVERRUN, ERROR_STRAY, ERROR_TIMEOUT,
                       KIND_ERROR,
                       KIND_RESULT, REQUEST_START, RESPONSE_START, crc8)
from .uart import UARTReceiver, UARTTransmitter

__all__ = ["FrameLink"]

def _crc8_next(crc, byte):
    """CRC-8/SMBUS of ``crc`` updated with ``byte`` (combinational). The CRC is linear over
    GF(2) in ``crc ^ byte``, so each output bit is the XOR of the input bits whose
    single-bit CRC (:func:`~.protocol.crc8` of one byte) has that bit set."""
    value = Value.cast(crc ^ byte)
    columns = [crc8(bytes([1 << j])) for j in range(8)]
    return Cat(*(Cat(*(value[j] for j in range(8) if columns[j] >> i & 1)).xor()
                 for i in range(8)))


class FrameLink(wiring.Component):
    """UART plus the framing of :mod:`.protocol`.

    Parameters
    ----------
    in_bytes, out_bytes : int
        Payload bytes of a request (one input vector) and of a result (one output vector).
    divisor : int
        Clock cycles per UART bit.
    timeout : int
        Clock cycles a request may pause between two bytes before it is dropped.

    Attributes
    ----------
    rx : In(1), tx : Out(1)
        The serial lines.
    o : stream of ``unsigned(8 * in_bytes)``
        The payload of every good request (first byte in the low bits).
    i : stream of ``unsigned(8 * out_bytes)``
        Vectors to send back as result frames; held until the last byte is sent.
    good, bad : Out(1)
        One-cycle pulses: a request passed its checks / an error frame was queued.
    """

    def __init__(self, in_bytes, out_bytes, divisor, timeout):
        for name, value in (("in_bytes", in_bytes), ("out_bytes", out_bytes)):
            if not 1 <= value <= 0xFFFF:
                raise ValueError(f"{name} must be 1..65535, not {value}")
        if timeout < 1:
            raise ValueError(f"timeout must be at least 1 cycle, not {timeout}")
        self.in_bytes, self.out_bytes = in_bytes, out_bytes
        self.divisor, self.timeout = divisor, timeout
        super().__init__({
            "rx": In(1, init=1), "tx": Out(1, init=1), "good": Out(1), "bad": Out(1),
            "o": Out(stream.Signature(8 * in_bytes)),
            "i": In(stream.Signature(8 * out_bytes)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UARTReceiver(self.divisor)
        m.submodules.tx = tx = UARTTransmitter(self.divisor)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx), rx.o.ready.eq(1)]

        # requests
        error = Signal(range(8))            # error code found this cycle (0: none)
        stray = Signal()                    # bytes arrived outside a frame, not yet reported
        quiet = Signal()                    # after a wrong length: the rest is not stray
        m.submodules.errors = errors = SyncFIFO(width=3, depth=4)
        length_lo = Signal(8)
        crc = Signal(8)
        count = Signal(range(self.in_bytes + 1))
        timer = Signal(range(self.timeout + 1))
        timed_out = Signal()
        byte = rx.o.payload
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.sync += self.good.eq(0)
        with m.FSM() as fsm:
            with m.State("idle"):
                with m.If(rx.o.valid & (byte == REQUEST_START)):
                    m.d.sync += [crc.eq(0), stray.eq(0), quiet.eq(0)]
                    with m.If(stray):
                        m.d.comb += error.eq(ERROR_STRAY)
                    m.next = "length_lo"
                with m.Elif(rx.o.valid & ~quiet):
                    m.d.sync += stray.eq(1)
                with m.Elif(stray & timed_out):
                    m.d.comb += error.eq(ERROR_STRAY)
                    m.d.sync += stray.eq(0)
            with m.State("length_lo"):
                with m.If(timed_out):
                    m.next = "idle"
                with m.If(rx.o.valid):
                    m.d.sync += [length_lo.eq(byte), crc.eq(_crc8_next(crc, byte))]
                    m.next = "length_hi"
            with m.State("length_hi"):
                with m.If(timed_out):
                    m.next = "idle"
                with m.If(rx.o.valid):
                    m.d.sync += [crc.eq(_crc8_next(crc, byte)), count.eq(0)]
                    with m.If(((byte << 8) | length_lo) != self.in_bytes):
                        m.d.comb += error.eq(ERROR_LENGTH)
                        m.d.sync += quiet.eq(1)
                        m.next = "idle"
                    with m.Elif(self.o.valid):
                        m.d.comb += error.eq(ERROR_OVERRUN)
                        m.next = "idle"
                    with m.Else():
                        m.next = "payload"
            with m.State("payload"):
                with m.If(timed_out):
                    m.next = "idle"
                with m.If(rx.o.valid):
                    m.d.sync += [crc.eq(_crc8_next(crc, byte)), count.eq(count + 1),
                                 self.o.payload.eq((self.o.payload >> 8)
                                                   | (byte << (8 * self.in_bytes - 8)))]
                    with m.If(count == self.in_bytes - 1):
                        m.next = "crc"
            with m.State("crc"):
                with m.If(timed_out):
                    m.next = "idle"
                with m.If(rx.o.valid):
                    with m.If(byte == crc):
                        m.d.sync += [self.o.valid.eq(1), self.good.eq(1)]
                    with m.Else():
                        m.d.comb += error.eq(ERROR_CRC)
                    m.next = "idle"
        waiting = (~fsm.ongoing("idle") | stray) & ~rx.o.valid
        m.d.sync += timer.eq(Mux(waiting & ~timed_out, timer + 1, 0))
        m.d.comb += timed_out.eq(waiting & (timer == self.timeout - 1))
        with m.If(timed_out & ~fsm.ongoing("idle")):
            m.d.comb += error.eq(ERROR_TIMEOUT)
        m.d.sync += self.bad.eq(error != 0)
        m.d.comb += [errors.w_data.eq(error), errors.w_en.eq(error != 0)]

        # responses: start, kind, length (2), payload, CRC
        is_error = Signal()
        index = Signal(range(max(self.out_bytes, 1) + 1))
        out_crc = Signal(8)
        last = Signal()
        code = Signal(range(8))             # the error code being sent
        payload_byte = self.i.payload.word_select(index, 8)
        size = Mux(is_error, 1, self.out_bytes)
        sent = tx.i.valid & tx.i.ready
        with m.If(sent):
            m.d.sync += out_crc.eq(_crc8_next(out_crc, tx.i.payload))
        with m.FSM():
            with m.State("idle"):
                m.d.sync += out_crc.eq(0)
                with m.If(errors.r_rdy):
                    m.d.comb += errors.r_en.eq(1)
                    m.d.sync += [is_error.eq(1), code.eq(errors.r_data)]
                    m.next = "start"
                with m.Elif(self.i.valid):
                    m.d.sync += is_error.eq(0)
                    m.next = "start"
            with m.State("start"):
                m.d.comb += [tx.i.payload.eq(RESPONSE_START), tx.i.valid.eq(1)]
                m.d.sync += out_crc.eq(0)
                with m.If(tx.i.ready):
                    m.next = "kind"
            with m.State("kind"):
                m.d.comb += [tx.i.payload.eq(Mux(is_error, KIND_ERROR, KIND_RESULT)),
                             tx.i.valid.eq(1)]
                with m.If(tx.i.ready):
                    m.next = "length_lo"
            with m.State("length_lo"):
                m.d.comb += [tx.i.payload.eq(size[:8]), tx.i.valid.eq(1)]
                with m.If(tx.i.ready):
                    m.next = "length_hi"
            with m.State("length_hi"):
                m.d.comb += [tx.i.payload.eq(Value.cast(size) >> 8), tx.i.valid.eq(1)]
                m.d.sync += index.eq(0)
                with m.If(tx.i.ready):
                    m.next = "payload"
            with m.State("payload"):
                m.d.comb += [tx.i.payload.eq(Mux(is_error, code, payload_byte)),
                             tx.i.valid.eq(1),
                             last.eq(is_error | (index == self.out_bytes - 1))]
                with m.If(tx.i.ready):
                    m.d.sync += index.eq(index + 1)
                    with m.If(last):
                        m.next = "crc"
            with m.State("crc"):
                m.d.comb += [tx.i.payload.eq(out_crc), tx.i.valid.eq(1)]
                with m.If(tx.i.ready):
                    m.d.comb += self.i.ready.eq(~is_error)
                    m.next = "idle"
        return m
