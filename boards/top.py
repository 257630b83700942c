"""Board tops: any stream network behind the UART host link, with clock, reset and LEDs.

:class:`BoardLogic` is the whole design without a platform (ports ``rx``, ``tx``, ``alive``,
``error`` plus ``clk``/``rst``): it is what the Verilator test drives bit by bit.
:class:`BoardTop` places it on a board of :mod:`strassen_hw.boards` through the amaranth-boards
platform, which supplies the clock (the board oscillator) and the power-on reset.
"""

from amaranth.hdl import Elaboratable, Module, Signal, Value
from amaranth.lib import fifo, io, wiring
from amaranth.lib.wiring import In, Out

from .link import FrameLink
from .uart import divisor as uart_divisor

__all__ = ["BoardLogic", "BoardTop", "DEFAULT_BAUD", "payload_bytes"]

#: Default UART speed: 115200 baud (8N1). The boards' FTDI chips (FT2232H on the iCEBreaker,
#: FT231X on the ULX3S) and the divisors of their 12 and 25 MHz clocks (104 and 217 cycles per
#: bit) hit it within 0.2 %.
DEFAULT_BAUD = 115200

#: Default time a request may pause between two of its bytes.
DEFAULT_TIMEOUT_S = 0.005


def payload_bytes(stream_port):
    """Bytes of a frame payload carrying the payload of ``stream_port`` (bits rounded up)."""
    return (len(Value.cast(stream_port.payload)) + 7) // 8


class BoardLogic(wiring.Component):
    """A network ``core`` between the two halves of a :class:`~.link.FrameLink`.

    Parameters
    ----------
    core : wiring.Component
        Any component with an input stream ``i`` and an output stream ``o`` whose payloads are
        ``data.ArrayLayout`` of integers (a :class:`~strassen_hw.hw.StrassenNetwork` today).
    clock_hz : int
        Clock frequency; sets the UART divisor, the timeout and the LED blink.
    baud : int
        UART speed (default :data:`DEFAULT_BAUD`).
    divisor : int, optional
        Clock cycles per UART bit, overriding ``clock_hz / baud`` (simulation uses 4..16).
    timeout : int, optional
        Clock cycles a request may pause between bytes (default :data:`DEFAULT_TIMEOUT_S`).

    Attributes
    ----------
    rx : In(1), tx : Out(1)
        The UART lines.
    alive : Out(1)
        Blinks at about 1 Hz.
    error : Out(1)
        Lit from an error frame until the next good request.
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    alive: Out(1)
    error: Out(1)

    def __init__(self, core, *, clock_hz, baud=DEFAULT_BAUD, divisor=None, timeout=None):
        for name in ("i", "o"):
            if not hasattr(core, name) or not hasattr(getattr(core, name), "payload"):
                raise TypeError(f"core must have stream ports 'i' and 'o', not {core!r}")
        self.core, self.clock_hz, self.baud = core, int(clock_hz), baud
        self.divisor = divisor if divisor is not None else uart_divisor(self.clock_hz, baud)
        self.timeout = (timeout if timeout is not None
                        else max(1, round(DEFAULT_TIMEOUT_S * self.clock_hz)))
        self.in_bytes, self.out_bytes = payload_bytes(core.i), payload_bytes(core.o)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.link = link = FrameLink(self.in_bytes, self.out_bytes, self.divisor,
                                             self.timeout)
        in_bits = len(Value.cast(core.i.payload))
        # The answers wait in a small FIFO: the core's ready (the clock enable of a whole
        # parallel pipeline, thousands of flip-flops) then comes from a register of the FIFO,
        # not through the transmitter's logic.
        m.submodules.answers = answers = fifo.SyncFIFOBuffered(
            width=len(Value.cast(core.o.payload)), depth=2)
        m.d.comb += [
            link.rx.eq(self.rx), self.tx.eq(link.tx),
            core.i.payload.eq(link.o.payload[:in_bits]),
            core.i.valid.eq(link.o.valid), link.o.ready.eq(core.i.ready),
            answers.w_data.eq(Value.cast(core.o.payload)),
            answers.w_en.eq(core.o.valid), core.o.ready.eq(answers.w_rdy),
            link.i.payload.eq(answers.r_data),
            link.i.valid.eq(answers.r_rdy), answers.r_en.eq(link.i.ready),
        ]
        blink = Signal(max(1, self.clock_hz.bit_length() - 1))
        m.d.sync += blink.eq(blink + 1)
        m.d.comb += self.alive.eq(blink[-1])
        with m.If(link.bad):
            m.d.sync += self.error.eq(1)
        with m.Elif(link.good):
            m.d.sync += self.error.eq(0)
        return m


class BoardTop(Elaboratable):
    """:class:`BoardLogic` on a board: UART pins, LEDs and the board's clock.

    Parameters
    ----------
    core : wiring.Component
        The network (see :class:`BoardLogic`).
    board : str
        A key of :data:`strassen_hw.boards.BOARDS`.
    baud : int
        UART speed.

    Attributes
    ----------
    platform : amaranth-boards platform
        The board's platform instance (``platform.build(top, ...)`` builds it).
    logic : BoardLogic
    """

    def __init__(self, core, board, *, baud=DEFAULT_BAUD):
        from . import get_board
        self.board = get_board(board)
        self.platform = self.board.platform()
        self.logic = BoardLogic(core, clock_hz=self.platform.default_clk_frequency, baud=baud)

    def elaborate(self, platform):
        m = Module()
        m.submodules.logic = logic = self.logic
        if platform is None:
            return m
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.submodules.alive = alive = io.Buffer("o", platform.request(*self.board.alive_led,
                                                                      dir="-"))
        m.submodules.error = error = io.Buffer("o", platform.request(*self.board.error_led,
                                                                      dir="-"))
        m.d.comb += [logic.rx.eq(rx.i), tx.o.eq(logic.tx),
                     alive.o.eq(logic.alive), error.o.eq(logic.error)]
        return m
