"""FPGA board tops and bitstream builds through amaranth-boards platforms.

:data:`BOARDS` names the supported boards; :func:`get_board` looks one up.
"""

from dataclasses import dataclass

__all__ = ["Board", "BOARDS", "get_board"]


@dataclass(frozen=True)
class Board:
    """A supported board.

    Attributes
    ----------
    name : str
        The name used on the command line.
    description : str
    family : str
        ``"ice40"`` or ``"ecp5"`` (which nextpnr and packer).
    bitstream : str
        Extension of the file to program (``"bin"`` or ``"bit"``).
    loader_board : str
        openFPGALoader's ``-b`` name.
    alive_led, error_led : tuple
        ``platform.request`` arguments of the two LEDs.
    """
    name: str
    description: str
    family: str
    bitstream: str
    loader_board: str
    alive_led: tuple
    error_led: tuple
    _platform: str

    def platform(self):
        """A new instance of the board's amaranth-boards platform."""
        module, cls = self._platform.rsplit(".", 1)
        import importlib
        return getattr(importlib.import_module(module), cls)()


BOARDS = {
    "icebreaker": Board("icebreaker", "iCEBreaker (Lattice iCE40UP5K, 12 MHz)", "ice40", "bin",
                        "ice40_generic", ("led_g", 0), ("led_r", 0),
                        "amaranth_boards.icebreaker.ICEBreakerPlatform"),
    "ulx3s-85f": Board("ulx3s-85f", "ULX3S (Lattice ECP5 LFE5U-85F, 25 MHz)", "ecp5", "bit",
                       "ulx3s", ("led", 0), ("led", 1),
                       "amaranth_boards.ulx3s.ULX3S_85F_Platform"),
}


def get_board(name):
    """The :class:`Board` called ``name``; ``ValueError`` naming the known boards otherwise."""
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"unknown board {name!r}; known boards: "
                         + ", ".join(sorted(BOARDS))) from None
