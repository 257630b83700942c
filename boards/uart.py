"""A small 8N1 UART: receiver and transmitter as stream components.

Both count ``divisor`` clock cycles per bit (``divisor = round(clock_hz / baud)``). The receiver
passes the line through a two-flip-flop synchronizer, waits for a falling edge, checks the start
bit again half a bit later and then samples every bit in its middle; a byte whose stop bit is
low (a framing error) is dropped and flagged on ``error`` for one cycle. The transmitter sends
one start bit, eight data bits least significant first, and one stop bit.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTReceiver", "UARTTransmitter", "divisor"]


def divisor(clock_hz, baud):
    """Clock cycles per bit for ``baud`` at ``clock_hz``; ``ValueError`` when the rounding
    error exceeds 2 % (the receiver samples mid-bit, so a 10-bit frame tolerates about 4 %)."""
    if baud <= 0 or clock_hz <= 0:
        raise ValueError(f"baud rate and clock must be positive, not {baud} and {clock_hz}")
    cycles = round(clock_hz / baud)
    if cycles < 4:
        raise ValueError(f"baud rate {baud} is too fast for a {clock_hz / 1e6:g} MHz clock "
                         f"(at least 4 clock cycles per bit; at most {clock_hz // 4} baud)")
    error = abs(clock_hz / cycles - baud) / baud
    if error > 0.02:
        raise ValueError(f"baud rate {baud} is {100 * error:.1f}% off at {clock_hz / 1e6:g} MHz "
                         f"({cycles} cycles per bit); pick one within 2%")
    return cycles


def _check_divisor(cycles):
    if not isinstance(cycles, int) or cycles < 4:
        raise ValueError(f"divisor must be an integer of at least 4 cycles per bit, "
                         f"not {cycles!r}")


class UARTReceiver(wiring.Component):
    """8N1 receiver.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least 4).

    Attributes
    ----------
    rx : In(1)
        The serial line (asynchronous; idles high).
    o : stream of ``unsigned(8)``
        Received bytes. The receiver does not wait: a byte not taken before the next one is
        complete is replaced (``error`` pulses).
    error : Out(1)
        One-cycle pulse on a framing error (low stop bit) or an overrun.
    """

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    error: Out(1)

    def __init__(self, divisor):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(self.divisor))
        bits = Signal(range(9))
        shift = Signal(8)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.sync += self.error.eq(0)
        with m.FSM():
            with m.State("idle"):
                with m.If(~line):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "start"
            with m.State("start"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(self.divisor - 1), bits.eq(0)]
                    m.next = "data"
                    with m.If(line):          # a glitch, not a start bit
                        m.next = "idle"
            with m.State("data"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(self.divisor - 1), bits.eq(bits + 1)]
                    with m.If(bits == 8):     # the stop bit
                        with m.If(line):
                            m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                            m.d.sync += self.error.eq(self.o.valid & ~self.o.ready)
                        with m.Else():
                            m.d.sync += self.error.eq(1)
                        m.next = "idle"
                    with m.Else():
                        m.d.sync += shift.eq(shift[1:] | (line << 7))
        return m


class UARTTransmitter(wiring.Component):
    """8N1 transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least 4).

    Attributes
    ----------
    i : stream of ``unsigned(8)``
        Bytes to send; ``ready`` while the line is idle.
    tx : Out(1)
        The serial line (idles high).
    """

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        bits = Signal(range(10))
        shift = Signal(9)           # start bit, then the data bits; the stop bit shifts in
        m.d.comb += self.i.ready.eq(bits == 0)
        with m.If(bits == 0):
            with m.If(self.i.valid):
                m.d.sync += [shift.eq(self.i.payload << 1), bits.eq(10),
                             timer.eq(self.divisor - 1), self.tx.eq(0)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [timer.eq(self.divisor - 1), bits.eq(bits - 1),
                             shift.eq((shift >> 1) | (1 << 8)), self.tx.eq(shift[1])]
                with m.If(bits == 1):
                    m.d.sync += self.tx.eq(1)
        return m
