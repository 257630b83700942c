"""``strassen-hw run-board``: send vectors to a board over its serial port, read the answers."""

import time
from dataclasses import dataclass

import numpy as np

from ..reference import check_inputs
from ..sim.payload import pack, unpack
from .protocol import ERRORS, KIND_ERROR, FrameDecoder, encode_request
from .top import DEFAULT_BAUD

from strassen_hw.errors import StrassenHWError

__all__ = ["BoardError", "BoardRun", "run_board"]


class BoardError(StrassenHWError, RuntimeError):
    """The board did not answer, or answered with an error or a corrupted frame; one line."""


@dataclass
class BoardRun:
    """Answers of a board: ``outputs`` (int64, (N, n_out), in input order) and ``seconds``
    from the first request sent to the last answer read."""
    outputs: np.ndarray
    seconds: float

    @property
    def vectors_per_second(self):
        return len(self.outputs) / max(self.seconds, 1e-9)


def _open(port, baud):
    import serial
    try:
        return serial.Serial(port, baud, timeout=0.02, write_timeout=5)
    except (serial.SerialException, OSError, ValueError) as e:
        raise BoardError(f"cannot open the serial port {port}: {e}") from None


def run_board(net, port, inputs, *, baud=DEFAULT_BAUD, timeout=2.0, window=2, progress=None):
    """Send every row of ``inputs`` to the board on ``port`` and return its answers.

    Parameters
    ----------
    net : FrozenNetwork
        The network the board was built for (its input and output formats).
    port : str
        Serial port (``/dev/ttyUSB1``, ``COM5``, any pyserial URL).
    inputs : array_like of int, shape (N, n_in)
    baud : int
        The baud rate the bitstream was built for.
    timeout : float
        Seconds without any byte from the board, while answers are due, before giving up.
    window : int
        Requests sent ahead of the answers (the board holds a few vectors at a time).
    progress : tqdm, optional
        Updated once per answer.

    Raises
    ------
    BoardError
        The port cannot be opened, the board stays silent, reports an error frame, or sends a
        frame that fails its CRC or length.
    """
    x = check_inputs(net, inputs)
    requests = [encode_request(row.tobytes()) for row in pack(x, net.input.width)]
    out_bytes = (net.n_out * net.output.width + 7) // 8
    decoder = FrameDecoder()
    answers = []
    with _open(port, baud) as link:
        link.reset_input_buffer()
        start = last = time.perf_counter()
        sent = 0
        while len(answers) < len(requests):
            while sent < len(requests) and sent - len(answers) < window:
                link.write(requests[sent])
                sent += 1
            data = link.read(max(1, link.in_waiting))
            now = time.perf_counter()
            if not data:
                if now - last > timeout:
                    raise BoardError(
                        f"no answer from {port} for {timeout:g} s after {len(answers)} of "
                        f"{len(requests)} vectors: is the board programmed with {net.name} "
                        f"at {baud} baud?")
                continue
            last = now
            for frame in decoder.feed(data):
                where = f"answer {len(answers)} of {len(requests)}"
                if frame.error:
                    raise BoardError(f"corrupted frame from the board ({where}: "
                                     f"{ERRORS[frame.error]}); check the cable and the baud "
                                     f"rate ({baud})")
                if frame.kind == KIND_ERROR:
                    code = frame.payload[0] if frame.payload else 0
                    raise BoardError(f"the board reported an error for vector {len(answers)}: "
                                     f"{ERRORS.get(code, f'code {code}')}")
                if len(frame.payload) != out_bytes:
                    raise BoardError(f"the board sent {len(frame.payload)} bytes for {where}, "
                                     f"{net.name} has {out_bytes}: a bitstream of another "
                                     "network?")
                answers.append(frame.payload)
                if progress is not None:
                    progress.update()
            if decoder.skipped:
                raise BoardError(f"{decoder.skipped} stray byte(s) from the board outside any "
                                 f"frame: wrong baud rate ({baud}) or another bitstream?")
        seconds = time.perf_counter() - start
    rows = np.frombuffer(b"".join(answers), dtype=np.uint8).reshape(len(answers), out_bytes)
    return BoardRun(unpack(rows, net.n_out, net.output.width, net.output.signed), seconds)
